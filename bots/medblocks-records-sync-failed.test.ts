import { describe, expect, it } from 'vitest';
import { recordsSyncCompleted, recordsSyncFailed, SAMPLE_SOURCE_A } from '../src/tools/fixtures/events';
import { MAX_STATUS_REASON_LENGTH } from '../src/runtime/fhir/tasks/records-sync';
import { expectStoreValid, taskFor } from '../test/support/assertions';
import { World } from '../src/tools/harness/world';
import { describeQuarantine } from '../test/support/quarantine';

const KEY = `records-sync/user_42/${SAMPLE_SOURCE_A}`;
const EARLIER = '2026-04-25T14:36:12.000Z';
const LATER = '2026-04-25T20:36:12.000Z';

function setup() {
  const world = new World();
  return {
    world,
    failedBot: world.bot('medblocks-records-sync-failed'),
    completedBot: world.bot('medblocks-records-sync-completed'),
  };
}

describe('records.sync.failed', () => {
  it('writes a failed, urgent records-sync Task with the error as status reason', async () => {
    const { world, failedBot } = setup();
    const event = recordsSyncFailed();
    expect(await failedBot.deliver(event)).toEqual({
      status: 'processed',
      event: event.id,
      type: 'records.sync.failed',
    });
    expect(await taskFor(world, KEY)).toMatchObject({
      status: 'failed',
      priority: 'urgent',
      businessStatus: { coding: [{ code: 'sync-failed' }] },
      statusReason: { text: 'FHIR server returned 503 for Observation search' },
      code: { coding: [{ system: 'urn:medblocks:code', code: 'records-sync' }] },
    });
    await expectStoreValid(world);
  });

  it('never copies an unbounded error message, and never logs it', async () => {
    const { world, failedBot } = setup();
    const message = `Jane Doe ${'x'.repeat(10_000)}`;
    await failedBot.deliver(recordsSyncFailed({ error_message: message }));
    const reason = (await taskFor(world, KEY))?.statusReason?.text ?? '';
    expect(reason.length).toBe(MAX_STATUS_REASON_LENGTH);
    expect(reason.endsWith('…')).toBe(true);
    expect(failedBot.logs.join('\n')).not.toContain('Jane');
  });

  it('says so when Medblocks gives no message', async () => {
    const { world, failedBot } = setup();
    await failedBot.deliver(recordsSyncFailed({ error_message: null }));
    expect((await taskFor(world, KEY))?.statusReason?.text).toBe('Records sync failed (Medblocks gave no message)');
  });
});

describe('one records-sync Task per patient and source heals itself: newest event wins', () => {
  const failedEarlier = recordsSyncFailed({}, { created_at: EARLIER });
  const completedLater = recordsSyncCompleted({}, { created_at: LATER });
  const completedEarlier = recordsSyncCompleted({}, { created_at: EARLIER });
  const failedLater = recordsSyncFailed({}, { created_at: LATER });

  it('failed then completed (in order): completed, reason cleared', async () => {
    const { world, failedBot, completedBot } = setup();
    await failedBot.deliver(failedEarlier);
    await completedBot.deliver(completedLater);
    const task = await taskFor(world, KEY);
    expect(task).toMatchObject({
      status: 'completed',
      priority: 'routine',
      businessStatus: { coding: [{ code: 'synced' }] },
    });
    expect(task?.statusReason).toBeUndefined();
    await expectStoreValid(world);
  });

  it('failed then completed (completed arrives first): still completed, and the old failure answers stale', async () => {
    const { world, failedBot, completedBot } = setup();
    await completedBot.deliver(completedLater);
    expect((await failedBot.deliver(failedEarlier)).status).toBe('stale');
    expect((await taskFor(world, KEY))?.status).toBe('completed');
  });

  it('completed then failed, in both arrival orders: failed', async () => {
    for (const order of ['in-order', 'reversed'] as const) {
      const { world, failedBot, completedBot } = setup();
      if (order === 'in-order') {
        await completedBot.deliver(completedEarlier);
        await failedBot.deliver(failedLater);
      } else {
        await failedBot.deliver(failedLater);
        await completedBot.deliver(completedEarlier);
      }
      const task = await taskFor(world, KEY);
      expect(task, order).toMatchObject({ status: 'failed', priority: 'urgent', lastModified: LATER });
      expect(task?.output, order).toBeUndefined();
    }
  });

  it('the failed-sync dashboard query finds exactly the failing pulls', async () => {
    const { world, failedBot } = setup();
    await failedBot.deliver(failedLater);
    const failing = await world.admin.searchResources('Task', 'code=urn:medblocks:code|records-sync&status=failed');
    expect(failing.map((t) => t.identifier?.[0]?.value)).toEqual([KEY]);
  });
});

describe('records.sync.failed at the edges (issue 13)', () => {
  it('never writes control characters or a cut surrogate pair from error_message', async () => {
    const world = new World();
    const bot = world.bot('medblocks-records-sync-failed');
    const message = `bad\u0000 \u001b[31mred\u007f \ud800 ${'😀'.repeat(MAX_STATUS_REASON_LENGTH)}`;
    await bot.deliver(recordsSyncFailed({ error_message: message }));
    const text = (await taskFor(world, `records-sync/user_42/${SAMPLE_SOURCE_A}`))?.statusReason?.text ?? '';
    // eslint-disable-next-line no-control-regex
    expect(text).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/);
    expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
    expect(Array.from(text)).toHaveLength(MAX_STATUS_REASON_LENGTH);
    expect(text.startsWith('bad   [31mred  \ufffd')).toBe(true);
    await expectStoreValid(world);
  });
});

describeQuarantine({
  bot: 'medblocks-records-sync-failed',
  event: (patientId) => recordsSyncFailed({ patient_id: patientId }),
});
