import { describe, expect, it } from 'vitest';
import { recordsSyncCompleted, SAMPLE_SOURCE_A, SAMPLE_SOURCE_B } from '../src/tools/fixtures/events';
import { expectStoreValid, markers, taskFor } from '../test/support/assertions';
import { World } from '../src/tools/harness/world';
import { describeQuarantine } from '../test/support/quarantine';

const KEY = `records-sync/user_42/${SAMPLE_SOURCE_A}`;

function setup(secrets: Record<string, string> = {}) {
  const world = new World({ secrets });
  return { world, bot: world.bot('medblocks-records-sync-completed') };
}

describe('records.sync.completed', () => {
  it('writes one completed records-sync Task per patient and source', async () => {
    const { world, bot } = setup({ MEDBLOCKS_TASK_OWNER: 'Organization/records-team' });
    const event = recordsSyncCompleted();
    expect(await bot.deliver(event)).toEqual({ status: 'processed', event: event.id, type: 'records.sync.completed' });
    const [patient] = await world.patients();
    const task = await taskFor(world, KEY);
    expect(task).toMatchObject({
      status: 'completed',
      intent: 'order',
      priority: 'routine',
      code: { coding: [{ system: 'urn:medblocks:code', code: 'records-sync' }] },
      for: { reference: `Patient/${patient?.id}` },
      owner: { reference: 'Organization/records-team' },
      businessStatus: { coding: [{ code: 'synced' }] },
      executionPeriod: { end: event.created_at },
      authoredOn: event.created_at,
      lastModified: event.created_at,
    });
    expect(task?.output?.map((o) => [o.type.text, o.valueInteger])).toEqual([
      ['total', 1342],
      ['errors', 0],
      ['duration-ms', 48211],
    ]);
    // Read, then the Task: its `last-applied-event` stamp is the marker, written in the same version.
    expect(bot.lastRequestCount()).toBe(2);
    expect(task?.extension?.find((e) => e.url.endsWith('/last-applied-event'))?.extension).toEqual([
      { url: 'eventId', valueString: event.id },
      { url: 'createdAt', valueInstant: event.created_at },
    ]);
    expect(await markers(world)).toEqual([]);
    await expectStoreValid(world);
  });

  it('marks a pull with sub-resource errors as synced-with-errors and omits a null duration', async () => {
    const { world, bot } = setup();
    await bot.deliver(recordsSyncCompleted({ errors: 4, duration_ms: null }));
    const task = await taskFor(world, KEY);
    expect(task?.businessStatus?.coding?.[0]?.code).toBe('synced-with-errors');
    expect(task?.output?.map((o) => o.type.text)).toEqual(['total', 'errors']);
  });

  it('updates the same Task on the next periodic re-pull, keeping authoredOn', async () => {
    const { world, bot } = setup();
    const first = recordsSyncCompleted({ total: 10 }, { created_at: '2026-04-25T14:36:12.000Z' });
    const second = recordsSyncCompleted({ total: 12 }, { created_at: '2026-04-26T14:36:12.000Z' });
    await bot.deliver(first);
    await bot.deliver(second);
    const tasks = await world.tasks();
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ authoredOn: first.created_at, lastModified: second.created_at });
    expect(tasks[0]?.output?.[0]?.valueInteger).toBe(12);
  });

  it('keeps separate Tasks per source', async () => {
    const { world, bot } = setup();
    await bot.deliver(recordsSyncCompleted());
    await bot.deliver(recordsSyncCompleted({ connection_id: SAMPLE_SOURCE_B }));
    expect((await world.tasks()).map((t) => t.identifier?.[0]?.value).sort()).toEqual([
      KEY,
      `records-sync/user_42/${SAMPLE_SOURCE_B}`,
    ]);
  });

  it('an older pull arriving late answers stale and changes nothing', async () => {
    const { world, bot } = setup();
    const newer = recordsSyncCompleted({ total: 12 }, { created_at: '2026-04-26T14:36:12.000Z' });
    const older = recordsSyncCompleted({ total: 10 }, { created_at: '2026-04-25T14:36:12.000Z' });
    await bot.deliver(newer);
    const before = (await world.tasks())[0];
    expect((await bot.deliver(older)).status).toBe('stale');
    const after = (await world.tasks())[0];
    expect(after?.output).toEqual(before?.output);
    // The first event time is a gap a stale event may fill.
    expect(after?.authoredOn).toBe(older.created_at);
    expect(await markers(world)).toEqual([]);
    // Delivered again, the older event is still stale, and now writes nothing at all.
    expect((await bot.deliver(older)).status).toBe('stale');
    expect(bot.lastRequestCount()).toBe(1);
    expect((await world.tasks())[0]).toEqual(after);
  });

  it('a duplicate makes one request and writes nothing, even for ids with slashes', async () => {
    const { world, bot } = setup();
    const event = recordsSyncCompleted({ patient_id: 'tenant/7/user-42' });
    await bot.deliver(event);
    const before = await world.tasks();
    expect((await bot.deliver(event)).status).toBe('duplicate');
    expect(bot.lastRequestCount()).toBe(1);
    expect(bot.requests.slice(-1).map((r) => r.url.replace(/^.*\/fhir\/R4/, ''))).toEqual(['']);
    expect(await world.tasks()).toEqual(before);
  });

  it('a Task stamped by another event of the same sync is not this event applied', async () => {
    const { world, bot } = setup();
    const first = recordsSyncCompleted({ total: 10 }, { created_at: '2026-04-25T14:36:12.000Z' });
    // Same id, another time: what a forged or corrupted stamp would look like; only both together mark it.
    const sameIdLater = recordsSyncCompleted({ total: 12 }, { id: first.id, created_at: '2026-04-26T14:36:12.000Z' });
    await bot.deliver(first);
    expect((await bot.deliver(sameIdLater)).status).toBe('processed');
    expect((await world.tasks())[0]?.output?.[0]?.valueInteger).toBe(12);
  });

  it('refuses a records.sync.failed delivery sent to this bot, before any FHIR request', async () => {
    const { bot } = setup();
    const wrong = {
      ...recordsSyncCompleted(),
      type: 'records.sync.failed' as const,
      data: {
        object: {
          resource_type: 'records_sync' as const,
          patient_id: 'user_42',
          connection_id: SAMPLE_SOURCE_A,
          error_message: null,
        },
      },
    };
    await expect(bot.deliver(wrong)).rejects.toThrow('Delivery rejected: unexpected_event_type');
    expect(bot.requests).toHaveLength(0);
    // Genuine (signed and valid) but misrouted: its id and type are safe and useful in the log.
    expect(bot.logs).toEqual([
      `medblocks evt=${wrong.id} type=records.sync.failed outcome=rejected:unexpected_event_type fhir_requests=0 ms=0`,
    ]);
  });
});

describe('records.sync.completed at the edges (issue 13, issue 12 item 7)', () => {
  it('counts beyond FHIR’s int32 are kept exactly as decimals, smaller ones stay integers', async () => {
    const { world, bot } = setup();
    await bot.deliver(recordsSyncCompleted({ total: 3_000_000_000, errors: 2_147_483_647, duration_ms: 2 ** 53 + 2 }));
    const outputs = (await taskFor(world, KEY))?.output?.map((o) => [o.type.text, o.valueInteger ?? o.valueDecimal]);
    expect(outputs).toEqual([
      ['total', 3_000_000_000],
      ['errors', 2_147_483_647],
      ['duration-ms', 2 ** 53 + 2],
    ]);
    expect((await taskFor(world, KEY))?.output?.[1]?.valueInteger).toBe(2_147_483_647);
    await expectStoreValid(world);
  });

  it('an opaque patient_id is encoded in the Task key so that keys never collide', async () => {
    const { world, bot } = setup();
    await bot.deliver(recordsSyncCompleted({ patient_id: 'a/fhirsrc_b', connection_id: 'fhirsrc_c' }));
    await bot.deliver(recordsSyncCompleted({ patient_id: 'a', connection_id: 'fhirsrc_b/fhirsrc_c' }));
    const keys = (await world.tasks()).map((t) => t.identifier?.[0]?.value).sort();
    expect(keys).toEqual(['records-sync/a%2Ffhirsrc_b/fhirsrc_c', 'records-sync/a/fhirsrc_b%2Ffhirsrc_c']);
    await expectStoreValid(world);
  });

  it('names the EHR when an Organization gives its name, without an extra request', async () => {
    const { world, bot } = setup();
    await world.admin.createResource({
      resourceType: 'Organization',
      name: 'Cerner Health',
      identifier: [{ system: 'urn:medblocks:fhir-source-id', value: SAMPLE_SOURCE_A }],
    });
    await bot.deliver(recordsSyncCompleted());
    expect(bot.lastRequestCount()).toBe(2);
    const task = await taskFor(world, KEY);
    expect(task?.description).toBe('Records were pulled from Cerner Health; nothing to do.');
    expect(task?.businessStatus?.coding?.[0]).toEqual({
      system: 'urn:medblocks:code',
      code: 'synced',
      display: 'Records synced',
    });
  });
});

describeQuarantine({
  bot: 'medblocks-records-sync-completed',
  event: (patientId) => recordsSyncCompleted({ patient_id: patientId }),
});
