// The engine under failure: conflicts are retried by re-reading and re-planning; every other FHIR
// failure makes the bot throw with nothing marked applied, so that Medblocks' retry completes it.
import { describe, expect, it } from 'vitest';
import { SYSTEM } from '../src/runtime/fhir/systems';
import {
  connection,
  patientFlowCompleted,
  recordsSyncCompleted,
  tokenRefreshFailed,
} from '../src/tools/fixtures/events';
import { appliedMarks, expectStoreValid, markers } from './support/assertions';
import { badRequest, OperationOutcomeError } from '@medplum/core';
import { SERIALIZATION_FAILURE } from '../src/tools/emulator/project-fhir';
import type { Bundle, BundleEntry } from '@medplum/fhirtypes';
import type { Fault, FaultInjector, SentRequest } from '../src/tools/harness/world';
import { World } from '../src/tools/harness/world';
import { DEFAULT_MAX_ATTEMPTS } from '../src/runtime/webhook-bot';

/**
 * A write bundle: a bundle without a search. The read bundle is searches, led by the patient's
 * conditional create when the event names one that may be created.
 */
const isWrite = (r: SentRequest) =>
  r.url.endsWith('/fhir/R4') && ((r.body as Bundle | undefined)?.entry ?? []).every((e) => e.request?.method !== 'GET');
const isMarker = (r: SentRequest) => r.url.endsWith('/fhir/R4/Basic');

/** Fails the first `times` requests that match. */
function failMatching(match: (r: SentRequest) => boolean, status: number | 'drop', times = Infinity): FaultInjector {
  let left = times;
  return (r) => {
    if (match(r) && left > 0) {
      left--;
      return status === 'drop' ? 'drop' : { status };
    }
    return undefined;
  };
}

describe('conflicts', () => {
  it('a write answered 409 once succeeds on the retry', async () => {
    const world = new World();
    const bot = world.bot('medblocks-records-sync-completed', { faults: failMatching(isWrite, 409, 1) });
    const answer = await bot.deliver(recordsSyncCompleted());
    expect(answer.status).toBe('processed');
    // read, write (409), read, write: the sync's stamp on its Task is its marker
    expect(bot.requests.map((r) => (isWrite(r) ? 'write' : isMarker(r) ? 'marker' : 'read'))).toEqual([
      'read',
      'write',
      'read',
      'write',
    ]);
    expect(await world.tasks()).toHaveLength(1);
    expect(await appliedMarks(world)).toHaveLength(1);
  });

  it('a write that keeps answering 409 makes the bot throw, with no marker written', async () => {
    const world = new World();
    const bot = world.bot('medblocks-records-sync-completed', { faults: failMatching(isWrite, 409) });
    const event = recordsSyncCompleted();
    await expect(bot.deliver(event)).rejects.toThrow(/FHIR write failed: conflict.*nothing was marked applied/);
    expect(await markers(world)).toEqual([]);
    expect(bot.logs).toEqual([
      `medblocks evt=${event.id} type=records.sync.completed outcome=failed:conflict fhir_requests=${bot.requests.length} ms=0`,
    ]);
    // every attempt the bot allows itself resends the conflicted write, and then it gives up
    expect(bot.requests.filter(isWrite).length).toBe(DEFAULT_MAX_ATTEMPTS);
  });

  it('a marker write answered 409 once goes round again and ends processed, with one marker', async () => {
    const world = new World();
    const bot = world.bot('medblocks-patient-flow-completed', { faults: failMatching(isMarker, 409, 1) });
    const flow = patientFlowCompleted();
    expect((await bot.deliver(flow)).status).toBe('processed');
    // read, write, marker (409), read (nothing left to plan), marker
    expect(bot.requests.map((r) => (isWrite(r) ? 'write' : isMarker(r) ? 'marker' : 'read'))).toEqual([
      'read',
      'write',
      'marker',
      'read',
      'marker',
    ]);
    expect(await markers(world)).toHaveLength(1);
    expect(await world.all('Consent')).toHaveLength(flow.data.object.connections.length);
  });

  it('stops retrying at the deadline, far below Medblocks’ 5 s', async () => {
    const world = new World();
    const event = recordsSyncCompleted();
    const start = Date.parse(event.created_at);
    let clock = 0;
    const bot = world.bot('medblocks-records-sync-completed', {
      faults: failMatching(isWrite, 412),
      runtime: {
        now: () => start + clock,
        deadlineMs: 2500,
        maxAttempts: 100,
        sleep: (ms) => {
          clock += ms;
          return Promise.resolve();
        },
      },
    });
    await expect(bot.deliver(event)).rejects.toThrow(/conflict/);
    expect(clock).toBeGreaterThan(1000);
    expect(clock).toBeLessThan(2500);
    expect(bot.requests.filter(isWrite).length).toBeLessThan(100);
  });

  it('a racing writer that creates the same Consent between our read and write: re-planned, one Consent, our state in it', async () => {
    const world = new World();
    const event = patientFlowCompleted({ id: 'pf_race', connections: [connection({ id: 'conn_race' })] });
    let raced = false;
    const bot = world.bot('medblocks-patient-flow-completed', {
      faults: async (r) => {
        if (isWrite(r) && !raced) {
          raced = true;
          // Another delivery (an older one) wins the race and creates the Consent first.
          const other = new World();
          await other
            .bot('medblocks-patient-flow-completed')
            .deliver(
              patientFlowCompleted(
                { id: 'pf_race', connections: [connection({ id: 'conn_race', status: 'failed' })] },
                { created_at: '2026-04-20T00:00:00.000Z' }
              )
            );
          const [consent] = await other.consents();
          if (consent) {
            const { id: _id, meta: _meta, patient: _patient, ...copy } = consent;
            await world.admin.createResource({ ...copy, patient: { display: 'raced' } });
          }
        }
        return undefined;
      },
    });
    expect((await bot.deliver(event)).status).toBe('processed');
    const consents = (await world.consents()).filter((c) =>
      c.identifier?.some((i) => i.system === SYSTEM.connectionId && i.value === 'conn_race')
    );
    expect(consents).toHaveLength(1);
    expect(consents[0]?.status).toBe('active');
    expect(bot.requests.filter(isWrite).length).toBe(2);
  });
});

/**
 * Makes the store refuse the next `times` conditional creates of one resource type with the server's
 * serialisation failure, inside the bundle: the entry answers 409 while the others commit, as a
 * real server's batch does when one entry's SERIALIZABLE transaction loses (ledger TX-4).
 */
function unserialisable(world: World, resourceType: string, times = 1): void {
  const repo = world.repo;
  const original = repo.conditionalCreate.bind(repo);
  let left = times;
  repo.conditionalCreate = (resource, search, options) => {
    if (resource.resourceType === resourceType && left > 0) {
      left--;
      return Promise.reject(new OperationOutcomeError(SERIALIZATION_FAILURE));
    }
    return original(resource, search, options);
  };
}

const kinds = (bot: { requests: SentRequest[] }) =>
  bot.requests.map((r) =>
    isWrite(r) ? `write×${String((r.body as Bundle).entry?.length ?? 0)}` : isMarker(r) ? 'marker' : 'read'
  );

describe('entries that fail to serialise inside the write bundle', () => {
  it('are sent again on their own, without a re-read: the others committed, and a conditional create finds a racing copy itself', async () => {
    const world = new World();
    unserialisable(world, 'Consent');
    const bot = world.bot('medblocks-patient-flow-completed');
    const event = patientFlowCompleted({
      connections: [
        connection({ id: 'conn_s1', connection_id: 'fhirsrc_s1' }),
        connection({ id: 'conn_s2', connection_id: 'fhirsrc_s2' }),
      ],
    });
    expect((await bot.deliver(event)).status).toBe('processed');
    // The read batch created the Patient; of the two Consents the first lost and went again alone.
    expect(kinds(bot)).toEqual(['read', 'write×2', 'write×1', 'marker']);
    const [patient] = await world.patients();
    const consents = await world.consents();
    expect(consents).toHaveLength(2);
    expect(consents.map((c) => c.patient?.reference)).toEqual([
      `Patient/${patient?.id ?? '?'}`,
      `Patient/${patient?.id ?? '?'}`,
    ]);
    expect(await markers(world)).toHaveLength(1);
    await expectStoreValid(world);
  });

  it('a reconnect Task that committed beside its lost Consent is re-pointed at the Consent the re-plan creates', async () => {
    const world = new World();
    unserialisable(world, 'Consent');
    const bot = world.bot('medblocks-connection-token-refresh-failed');
    expect((await bot.deliver(tokenRefreshFailed({ id: 'conn_lost' }))).status).toBe('processed');
    // Consent and Task in one bundle; the Task committed naming the id the server gave the lost Consent.
    expect(kinds(bot)).toEqual(['read', 'write×2', 'read', 'write×2', 'marker']);
    const [consent] = await world.consents();
    const [task] = await world.tasks();
    expect(task?.focus?.reference).toBe(`Consent/${consent?.id ?? '?'}`);
    await expectStoreValid(world);
  });

  it('keep failing: the bot gives up within its deadline, nothing marked applied', async () => {
    const world = new World();
    unserialisable(world, 'Consent', Infinity);
    const bot = world.bot('medblocks-patient-flow-completed');
    await expect(bot.deliver(patientFlowCompleted())).rejects.toThrow(/conflict.*nothing was marked applied/);
    expect(await markers(world)).toEqual([]);
    expect(kinds(bot).filter((k) => k === 'read')).toHaveLength(1);
  });
});

// Ledger TX-7: a batch gives every create its id before it runs, so what committed beside a lost create points at nothing.
describe('a new patient is created before anything that points at it', () => {
  // Ledger TX-8: a batch runs its creates before its searches, so the read batch's Patient create is seen by its searches.
  it('by the read batch: when its create fails to serialise, nothing else was written, and the delivery reads again', async () => {
    const world = new World();
    unserialisable(world, 'Patient');
    const bot = world.bot('medblocks-patient-flow-completed');
    const event = patientFlowCompleted({ connections: [connection({ id: 'conn_p1', connection_id: 'fhirsrc_p1' })] });
    expect((await bot.deliver(event)).status).toBe('processed');
    expect(kinds(bot)).toEqual(['read', 'read', 'write×1', 'marker']);
    const patients = await world.patients();
    expect(patients).toHaveLength(1);
    const [consent] = await world.consents();
    expect(consent?.patient?.reference).toBe(`Patient/${patients[0]?.id ?? '?'}`);
    await expectStoreValid(world);
  });

  it('a patient_id that could be a Medplum id is looked up as one first, then created in a bundle of its own', async () => {
    const world = new World();
    const bot = world.bot('medblocks-patient-flow-completed');
    const event = patientFlowCompleted({
      patient_id: 'mrn-12345',
      connections: [connection({ id: 'conn_m1', connection_id: 'fhirsrc_m1' })],
    });
    expect((await bot.deliver(event)).status).toBe('processed');
    // One request more than usual, for the first event of such a patient only.
    expect(kinds(bot)).toEqual(['read', 'write×1', 'write×1', 'marker']);
    const [patient] = await world.patients();
    const [consent] = await world.consents();
    expect(consent?.patient?.reference).toBe(`Patient/${patient?.id ?? '?'}`);
    const again = world.bot('medblocks-patient-flow-completed');
    await again.deliver(patientFlowCompleted({ patient_id: 'mrn-12345' }, { id: 'evt_01KQ00000000000000000000M2' }));
    expect(kinds(again).map((k) => k.replace(/×\d+/, ''))).toEqual(['read', 'write', 'marker']);
  });
});

describe('optimistic concurrency on updates', () => {
  it('a racing update between our read and our write gets 412 on If-Match, and we re-plan on the fresh version', async () => {
    const world = new World();
    const syncBot = world.bot('medblocks-records-sync-completed');
    await syncBot.deliver(recordsSyncCompleted({ total: 1 }, { created_at: '2026-04-25T00:00:00.000Z' }));
    let raced = false;
    const bot = world.bot('medblocks-records-sync-completed', {
      faults: async (r) => {
        if (isWrite(r) && !raced) {
          raced = true;
          const [task] = await world.tasks();
          if (task) await world.admin.updateResource({ ...task, note: [{ text: 'added by a care coordinator' }] });
        }
        return undefined;
      },
    });
    const writes: number[] = [];
    const event = recordsSyncCompleted({ total: 2 }, { created_at: '2026-04-26T00:00:00.000Z' });
    expect((await bot.deliver(event)).status).toBe('processed');
    for (const r of bot.requests.filter(isWrite)) writes.push(r.index);
    expect(writes).toHaveLength(2);
    const [task] = await world.tasks();
    expect(task?.output?.[0]?.valueInteger).toBe(2);
    expect(task?.note).toEqual([{ text: 'added by a care coordinator' }]);
  });
});

describe('other FHIR failures: throw, nothing marked applied, and the retry converges', () => {
  const cases: [string, (r: SentRequest) => boolean, number | 'drop', RegExp][] = [
    ['the read answers 503', (r) => !isWrite(r) && !isMarker(r), 503, /FHIR read failed: server_error/],
    ['the write answers 500', isWrite, 500, /FHIR write failed: server_error/],
    ['the write is forbidden', isWrite, 403, /FHIR write failed: access_denied/],
    ['the write answers 429', isWrite, 429, /FHIR write failed: rate_limited/],
    ['the write connection drops', isWrite, 'drop', /FHIR write failed: network/],
    ['the marker write answers 500', isMarker, 500, /FHIR marker failed: server_error/],
  ];

  it.each(cases)('%s', async (_name, match, status, message) => {
    const world = new World();
    const event = patientFlowCompleted();
    const failing = world.bot('medblocks-patient-flow-completed', { faults: failMatching(match, status) });
    await expect(failing.deliver(event)).rejects.toThrow(message);
    expect(await markers(world)).toEqual([]);

    // Medblocks retries later; the bot finishes the work and only then marks the event applied.
    const retry = world.bot('medblocks-patient-flow-completed');
    expect((await retry.deliver(event, { signedAt: Date.parse(event.created_at) + 60_000 })).status).toBe('processed');
    expect(await markers(world)).toHaveLength(1);
    await expectStoreValid(world);

    const clean = new World();
    await clean.bot('medblocks-patient-flow-completed').deliver(event);
    expect(await world.snapshot()).toEqual(await clean.snapshot());
  });

  it('failure messages quote nothing the server said', async () => {
    const world = new World();
    const serverText: Fault = {
      status: 400,
      outcome: {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'invalid', details: { text: 'Patient user_42 Jane Doe is invalid' } }],
      },
    };
    // Every write refused, the dead-letter's too: the delivery fails (non-2xx) with a classified message.
    const bot = world.bot('medblocks-records-sync-completed', { faults: (r) => (isWrite(r) ? serverText : undefined) });
    const error = await bot.deliver(recordsSyncCompleted()).catch((err: unknown) => err as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^FHIR dead-letter failed: bad_request \(HTTP 400\)/);
    expect((error as Error).message + bot.logs.join('')).not.toMatch(/user_42|Jane/);
  });

  it('a write Medplum’s validator refuses (400) is quarantined as invalid_resource; neither the answer nor the dead-letter quotes the server', async () => {
    const world = new World();
    const serverText: Fault = {
      status: 400,
      outcome: {
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'invalid', details: { text: 'Patient user_42 Jane Doe is invalid' } }],
      },
    };
    const isDeadLetter = (r: SentRequest) =>
      JSON.stringify(r.body ?? {}).includes('"ifNoneExist":"identifier=urn%3Amedblocks%3Adead-letter');
    const bot = world.bot('medblocks-records-sync-completed', {
      faults: (r) => (isWrite(r) && !isDeadLetter(r) ? serverText : undefined),
    });
    const event = recordsSyncCompleted();
    const answer = await bot.deliver(event);
    expect(answer).toEqual({
      status: 'quarantined',
      event: event.id,
      type: 'records.sync.completed',
      reason: 'invalid_resource',
    });
    expect(bot.logs).toEqual([expect.stringMatching(/ outcome=quarantined:invalid_resource fhir_requests=3 /)]);
    const deadLetters = (await world.tasks()).filter((t) => t.identifier?.[0]?.system === 'urn:medblocks:dead-letter');
    expect(deadLetters).toHaveLength(1);
    expect(JSON.stringify(deadLetters) + JSON.stringify(answer) + bot.logs.join('')).not.toMatch(/user_42|Jane/);
    expect(await markers(world)).toEqual([]);
  });
});

describe('writes are one batch bundle, the marker last, whatever the project is configured for', () => {
  const ATOMIC_SECRET = { MEDBLOCKS_ATOMIC_TRANSACTIONS: 'true' };

  it('the retired MEDBLOCKS_ATOMIC_TRANSACTIONS secret changes nothing: a batch, then the marker (3 requests)', async () => {
    const world = new World({ secrets: ATOMIC_SECRET, features: ['bots', 'transaction-bundles'] });
    const bot = world.bot('medblocks-patient-flow-completed');
    await bot.deliver(patientFlowCompleted());
    expect(bot.requests.map((r) => (isWrite(r) ? 'write' : isMarker(r) ? 'marker' : 'read'))).toEqual([
      'read',
      'write',
      'marker',
    ]);
    const write = bot.requests.find(isWrite)?.body as Bundle;
    expect(write.type).toBe('batch');
    expect(write.entry?.some((e) => e.resource?.resourceType === 'Basic')).toBe(false);
  });

  it.each([
    ['no transaction-bundles feature', ['bots'] as const],
    ['the transaction-bundles feature', ['bots', 'transaction-bundles'] as const],
  ])(
    'with %s, an entry refused while the others commit leaves the event unmarked (quarantined), and the redelivery completes it',
    async (_name, features) => {
      // What lost an event on a real server: with the secret on and the feature off, the marker rode
      // in a `transaction` that the server ran as a batch; it committed while a Task was refused.
      const world = new World({ secrets: ATOMIC_SECRET, features });
      let refused = false;
      const bot = world.bot('medblocks-records-sync-completed', {
        faults: async (r) => {
          if (!isWrite(r) || refused) return undefined;
          refused = true;
          // The server applies every entry but the Task, which its validator refuses.
          const bundle = r.body as Bundle;
          const entries = bundle.entry ?? [];
          const isTask = (e: BundleEntry) => e.resource?.resourceType === 'Task';
          const others = entries.filter((e) => !isTask(e));
          const applied = others.length > 0 ? await world.admin.executeBatch({ ...bundle, entry: others }) : undefined;
          const answers = [...(applied?.entry ?? [])];
          const response: Bundle = {
            resourceType: 'Bundle',
            type: 'batch-response',
            entry: entries.map((e) =>
              isTask(e)
                ? { response: { status: '400 Bad Request', outcome: badRequest('Invalid value') } }
                : (answers.shift() ?? {})
            ),
          };
          return { status: 200, outcome: response };
        },
      });
      const event = recordsSyncCompleted();
      expect(await bot.deliver(event)).toMatchObject({ status: 'quarantined', reason: 'invalid_resource' });
      expect(await appliedMarks(world)).toEqual([]);
      expect(await world.patients()).toHaveLength(1); // created by the read batch, before the refused Task
      const retry = await world.bot('medblocks-records-sync-completed').deliver(event);
      expect(retry.status).toBe('processed');
      const tasks = await world.tasks();
      expect(tasks.map((t) => [t.code?.coding?.[0]?.code, t.status]).sort()).toEqual([
        ['records-sync', 'completed'],
        ['webhook-dead-letter', 'completed'],
      ]);
      expect((await appliedMarks(world)).map((m) => m.eventId)).toEqual([event.id]);
      await expectStoreValid(world);
    }
  );

  it('with the transaction-bundles feature, a flow of 20 connections applies (no 8-entry serialisable cap on a batch)', async () => {
    const world = new World({ features: ['bots', 'transaction-bundles'] });
    const bot = world.bot('medblocks-patient-flow-completed');
    const flow = patientFlowCompleted({
      connections: Array.from({ length: 20 }, (_, i) => connection({ id: `conn_${i}`, connection_id: `fhirsrc_${i}` })),
    });
    expect((await bot.deliver(flow)).status).toBe('processed');
    expect(await world.consents()).toHaveLength(20);
    expect(bot.lastRequestCount()).toBe(3);
  });
});

describe('a read answered with something other than a Bundle', () => {
  it('is a classified server_error, not an internal crash', async () => {
    const world = new World();
    const bot = world.bot('medblocks-records-sync-completed', {
      faults: (r) =>
        r.index === 0
          ? {
              status: 200,
              outcome: {
                resourceType: 'OperationOutcome',
                issue: [{ severity: 'information', code: 'informational' }],
              },
            }
          : undefined,
    });
    await expect(bot.deliver(recordsSyncCompleted())).rejects.toThrow(/FHIR read failed: server_error/);
    expect(bot.logs[0]).toContain('outcome=failed:server_error');
  });
});
