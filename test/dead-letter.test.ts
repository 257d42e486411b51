// The dead-letter write under races (src/runtime/store/dead-letter.ts): deliveries of the same poison
// event at the same moment converge on one Task; a create lost to a racer updates the racer's Task;
// an update lost to a newer version re-reads and updates again; a race that never ends fails the
// delivery (non-2xx) rather than losing the quarantine.
import type { Bundle, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { buildDeadLetter } from '../src/runtime/fhir/dead-letter';
import { quarantinedEvents } from '../src/tools/redeliver/redeliver';
import { recordsSyncCompleted, serialise } from '../src/tools/fixtures/events';
import { World } from '../src/tools/harness/world';
import type { SentRequest } from '../src/tools/harness/world';
import { deadLetters } from './support/quarantine';

const BOT = 'medblocks-records-sync-completed';

function poison() {
  const event = recordsSyncCompleted();
  const rawBody = serialise({ ...event, data: { object: { ...event.data.object, total: -1 } } });
  return { event, rawBody };
}

function deadLetterWrite(r: SentRequest, method: 'POST' | 'PUT'): boolean {
  const entry = (r.body as Bundle | undefined)?.entry?.[0];
  return (
    r.url.endsWith('/fhir/R4') &&
    entry?.request?.method === method &&
    JSON.stringify(entry.resource ?? {}).includes('webhook-dead-letter')
  );
}

describe('the dead-letter write converges under races', () => {
  it('two deliveries of the same poison event at once: both quarantined, one dead-letter', async () => {
    const world = new World();
    const { event, rawBody } = poison();
    const answers = await Promise.all([
      world.bot(BOT).deliver(event, { rawBody }),
      world.bot(BOT).deliver(event, { rawBody }),
      world.bot(BOT).deliver(event, { rawBody }),
    ]);
    expect(answers.map((a) => a.status)).toEqual(['quarantined', 'quarantined', 'quarantined']);
    expect(await deadLetters(world)).toHaveLength(1);
  });

  it('a create lost to a racing delivery updates the Task the racer created (no second Task)', async () => {
    const world = new World();
    const { event, rawBody } = poison();
    const seenAt = Date.parse(event.created_at);
    const racer = buildDeadLetter({
      key: event.id,
      owner: BOT,
      type: event.type,
      reason: 'invalid_payload',
      path: 'data.object.total',
      seenAt: new Date(seenAt - 60_000).toISOString(),
    });
    const bot = world.bot(BOT, {
      faults: async (r) => {
        if (deadLetterWrite(r, 'POST') && (await deadLetters(world)).length === 0) {
          await world.admin.createResource(racer);
        }
        return undefined;
      },
    });
    expect((await bot.deliver(event, { rawBody, now: seenAt })).status).toBe('quarantined');
    const all = await deadLetters(world);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({
      authoredOn: racer.authoredOn,
      lastModified: new Date(seenAt).toISOString(),
    });
    expect(bot.lastRequestCount(), 'search, create (found), update').toBe(3);
  });

  it('an update lost to a newer version re-reads and updates again', async () => {
    const world = new World();
    const { event, rawBody } = poison();
    const first = Date.parse(event.created_at);
    await world.bot(BOT).deliver(event, { rawBody, now: first });
    let raced = false;
    const bot = world.bot(BOT, {
      faults: async (r) => {
        if (deadLetterWrite(r, 'PUT') && !raced) {
          raced = true;
          const [current] = await deadLetters(world);
          if (current) await world.admin.updateResource<Task>({ ...current, note: [{ text: 'seen by ops' }] });
        }
        return undefined;
      },
    });
    const later = first + 3_600_000;
    expect((await bot.deliver(event, { rawBody, signedAt: later, now: later })).status).toBe('quarantined');
    expect(raced).toBe(true);
    const all = await deadLetters(world);
    expect(all).toHaveLength(1);
    expect(all[0]?.lastModified).toBe(new Date(later).toISOString());
    expect(bot.lastRequestCount(), 'search, update (412), search, update').toBe(4);
  });

  it('a race that never ends fails the delivery (non-2xx): Medblocks retries, the quarantine is not lost', async () => {
    const world = new World();
    const { event, rawBody } = poison();
    await world.bot(BOT).deliver(event, { rawBody });
    const bot = world.bot(BOT, { faults: (r) => (deadLetterWrite(r, 'PUT') ? { status: 412 } : undefined) });
    const retry = Date.parse(event.created_at) + 3_600_000; // a retry an hour later: worth an update
    await expect(bot.deliver(event, { rawBody, signedAt: retry, now: retry })).rejects.toThrow(
      /^FHIR dead-letter failed: conflict \(HTTP 409\)/
    );
    expect(bot.logs.at(-1)).toMatch(/ outcome=failed:conflict /);
    expect(await deadLetters(world)).toHaveLength(1);
  });
});

describe('dead-letters another bot cannot turn against this one (issue 18 item 4)', () => {
  it('another event type’s dead-letter carrying this event’s id does not fail its genuine delivery', async () => {
    const world = new World();
    const event = recordsSyncCompleted();
    // What a compromised records-sync-failed bot may write: a dead-letter of its own type, with this id.
    await world.admin.createResource(
      buildDeadLetter({
        key: event.id,
        owner: 'medblocks-records-sync-failed',
        type: 'records.sync.failed',
        reason: 'invalid_payload',
        path: undefined,
        seenAt: event.created_at,
      })
    );
    expect((await world.bot(BOT).deliver(event)).status).toBe('processed');
    const [foreign] = await deadLetters(world);
    expect(foreign?.status, 'left as it was: not this bot’s to close').toBe('failed');
  });

  it('another bot’s dead-letter with this event’s id does not stop this bot quarantining it: each owns its own', async () => {
    const world = new World();
    const { event, rawBody } = poison();
    const FOREIGN = 'medblocks-records-sync-failed';
    await world.admin.createResource(
      buildDeadLetter({
        key: event.id,
        owner: FOREIGN,
        type: 'records.sync.failed',
        reason: 'invalid_payload',
        path: undefined,
        seenAt: event.created_at,
      })
    );
    // Before, the create's If-None-Exist matched the foreign Task, the update it planned was refused
    // (403, access_denied) and every delivery was answered non-2xx until the endpoint was disabled.
    expect((await world.bot(BOT).deliver(event, { rawBody })).status).toBe('quarantined');
    const owners = (await deadLetters(world)).map((t) => [t.groupIdentifier?.value, t.status]).sort();
    expect(owners).toEqual([
      [BOT, 'failed'],
      [FOREIGN, 'failed'],
    ]);
    // The cause fixed: this bot closes its own and leaves the foreign one as it was.
    expect((await world.bot(BOT).deliver(event)).status).toBe('processed');
    const after = (await deadLetters(world)).map((t) => [t.groupIdentifier?.value, t.status]).sort();
    expect(after).toEqual([
      [BOT, 'completed'],
      [FOREIGN, 'failed'],
    ]);
  });

  it('replays inside the signature window that change nothing write nothing: one version', async () => {
    const world = new World();
    const { event, rawBody } = poison();
    const bot = world.bot(BOT);
    for (let replay = 0; replay < 5; replay++) {
      expect((await bot.deliver(event, { rawBody })).status).toBe('quarantined');
    }
    const [deadLetter, ...others] = await deadLetters(world);
    expect(others).toHaveLength(0);
    expect(deadLetter?.meta?.versionId).toBeDefined();
    const history = await world.admin.readHistory('Task', deadLetter?.id ?? '');
    expect(history.entry).toHaveLength(1);
  });

  it('a dead-letter whose event was applied meanwhile is closed by the next delivery of it (a duplicate)', async () => {
    const world = new World();
    const { event, rawBody } = poison();
    expect((await world.bot(BOT).deliver(event)).status).toBe('processed');
    // A captured poison body with the same id, replayed later: quarantined although already applied.
    expect((await world.bot(BOT).deliver(event, { rawBody })).status).toBe('quarantined');
    expect((await deadLetters(world))[0]?.status).toBe('failed');
    expect((await world.bot(BOT).deliver(event)).status).toBe('duplicate');
    expect((await deadLetters(world))[0]?.status).toBe('completed');
  });
});

/** `count` open dead-letters with ids `evt_<prefix>0…`, written as an admin. */
async function openDeadLetters(world: World, prefix: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, (_, n) => `evt_${prefix}${String(n)}`);
  for (const key of ids) {
    await world.admin.createResource(
      buildDeadLetter({
        key,
        owner: BOT,
        type: 'records.sync.completed',
        reason: 'patient_not_found',
        path: undefined,
        seenAt: '2026-08-01T11:00:00.000Z',
      })
    );
  }
  return ids;
}

// Ledger SRCH-2.
describe('redeliver --quarantined finds every open dead-letter', () => {
  it('pages through all of them, not just the first page', async () => {
    const world = new World();
    const ids = await openDeadLetters(world, 'PAGE', 7);
    const found = await quarantinedEvents(world.admin, 3);
    expect(found.map((q) => q.id).sort()).toEqual(ids);
  });

  it('stops with an error past its page bound rather than redeliver part of the backlog', async () => {
    const world = new World();
    await openDeadLetters(world, 'MANY', 11);
    await expect(quarantinedEvents(world.admin, 1)).rejects.toThrow(/more than 10 open dead-letters/);
  });
});
