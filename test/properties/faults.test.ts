// Fault injection at every FHIR request of a delivery. For each event type (from a state where it
// creates, and where it updates) and each request index k of its fault-free run:
// - "from k on" the server fails (409, dropped connection, 5xx): the delivery is answered with an
//   error (the bot throws, Medplum answers 400), the event is not marked applied, and Medblocks'
//   redelivery reaches exactly the fault-free state;
// - "only the k-th" request fails once (409, dropped connection, or a lost response: the request
//   was applied but its answer never arrived): whatever the bot answers, the store ends in the
//   fault-free state, after a redelivery when the bot answered with an error.
// With and without atomic transactions. And while quarantining a poison event: a 2xx only once its
// dead-letter is stored; any fault otherwise fails the delivery, and the redelivery quarantines it once.
import { describe, expect, it } from 'vitest';
import {
  connection,
  failedAttempt,
  patientFlowCompleted,
  recordsSyncCompleted,
  recordsSyncFailed,
  tokenRefreshFailed,
} from '../../src/tools/fixtures/events';
import type { MedblocksEvent } from '../../src/runtime/events';
import type { Resource } from '@medplum/fhirtypes';
import { World } from '../../src/tools/harness/world';
import type { DeliverOptions, Fault, FaultInjector, SentRequest, WorldOptions } from '../../src/tools/harness/world';
import { botForEvent, canonicalState, duplicatedKeys, markedEventIds } from './support';

interface Scenario {
  readonly name: string;
  /** Applied fault-free before the delivery under test. */
  readonly before: readonly MedblocksEvent[];
  readonly target: MedblocksEvent;
}

const SRC_A = 'fhirsrc_A1';
const SRC_B = 'fhirsrc_B2';
const T = (day: number): string => `2026-04-${String(day).padStart(2, '0')}T10:00:00.000Z`;

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'patient_flow.completed creating a Patient, Consents and Tasks',
    before: [],
    target: patientFlowCompleted(
      {
        id: 'pf_new',
        patient_id: 'user_f',
        connections: [
          connection({ id: 'conn_f1', connection_id: SRC_A }),
          connection({ id: 'conn_f2', connection_id: SRC_B, status: 'refresh_failed' }),
          failedAttempt({ connection_id: SRC_B }),
        ],
      },
      { created_at: T(10) }
    ),
  },
  {
    name: 'patient_flow.completed updating a Consent and resolving a reconnect Task',
    before: [
      patientFlowCompleted(
        { id: 'pf_old', patient_id: 'user_u', connections: [connection({ id: 'conn_u1', connection_id: SRC_A })] },
        { created_at: T(10) }
      ),
      tokenRefreshFailed({ id: 'conn_u1', connection_id: SRC_A }, { created_at: T(11) }),
    ],
    target: patientFlowCompleted(
      {
        id: 'pf_again',
        patient_id: 'user_u',
        connections: [
          connection({ id: 'conn_u2', connection_id: SRC_A }),
          connection({ id: 'conn_u1', connection_id: SRC_A, status: 'refresh_failed' }),
        ],
      },
      { created_at: T(12) }
    ),
  },
  {
    name: 'connection.token_refresh_failed after its flow',
    before: [
      patientFlowCompleted(
        { id: 'pf_r', patient_id: 'user_r', connections: [connection({ id: 'conn_r', connection_id: SRC_A })] },
        { created_at: T(10) }
      ),
    ],
    target: tokenRefreshFailed({ id: 'conn_r', connection_id: SRC_A }, { created_at: T(11) }),
  },
  {
    name: 'connection.token_refresh_failed before any flow',
    before: [],
    target: tokenRefreshFailed({ id: 'conn_early', connection_id: SRC_B }, { created_at: T(11) }),
  },
  {
    name: 'records.sync.completed healing a failed sync Task',
    before: [recordsSyncFailed({ patient_id: 'user_s', connection_id: SRC_A }, { created_at: T(10) })],
    target: recordsSyncCompleted({ patient_id: 'user_s', connection_id: SRC_A }, { created_at: T(11) }),
  },
  {
    name: 'records.sync.failed for a new patient',
    before: [],
    target: recordsSyncFailed({ patient_id: 'user_n', connection_id: SRC_B }, { created_at: T(12) }),
  },
];

/**
 * Project configurations. The retired secret MEDBLOCKS_ATOMIC_TRANSACTIONS must change nothing, with
 * or without the `transaction-bundles` feature: no setting may make the bot rely on an atomicity
 * the server does not give (on a real server, a transaction without the feature ran as a batch and
 * an event was lost for good).
 */
const MODES: readonly { name: string; world: WorldOptions }[] = [
  { name: 'default project', world: {} },
  {
    name: 'MEDBLOCKS_ATOMIC_TRANSACTIONS=true, no transaction-bundles feature',
    world: { secrets: { MEDBLOCKS_ATOMIC_TRANSACTIONS: 'true' } },
  },
  {
    name: 'MEDBLOCKS_ATOMIC_TRANSACTIONS=true, transaction-bundles feature',
    world: { secrets: { MEDBLOCKS_ATOMIC_TRANSACTIONS: 'true' }, features: ['bots', 'transaction-bundles'] },
  },
];

/**
 * How a request fails: an HTTP error, a dropped connection, applied with its answer lost, or (a
 * write bundle) only its first entries applied before the connection dropped: a partly committed
 * batch, as the server leaves one when an entry fails.
 */
type Kind = { status: number } | 'drop' | 'lost' | 'partial';

function describeKind(kind: Kind): string {
  return typeof kind === 'string' ? kind : `HTTP ${kind.status}`;
}

async function prepared(scenario: Scenario, options: WorldOptions): Promise<World> {
  const world = new World(options);
  for (const event of scenario.before) {
    expect((await world.bot(botForEvent(event)).deliver(event)).status).toBe('processed');
  }
  return world;
}

interface Reference {
  readonly state: string[];
  readonly requests: readonly SentRequest[];
  readonly status: string;
}

async function faultFree(scenario: Scenario, options: WorldOptions): Promise<Reference> {
  const world = await prepared(scenario, options);
  const bot = world.bot(botForEvent(scenario.target));
  const answer = await bot.deliver(scenario.target);
  return { state: await canonicalState(world), requests: [...bot.requests], status: answer.status };
}

/**
 * Applies the request itself (with full rights, as the server would have) and then drops the
 * connection: the bot never learns that it succeeded. Reads are simply dropped.
 */
async function applyThenDrop(world: World, request: SentRequest, partly = false): Promise<Fault> {
  const body = request.body as Resource | undefined;
  if (request.method === 'POST' && body?.resourceType === 'Bundle') {
    const writes = (body.entry ?? []).some((e) => e.request?.method !== 'GET');
    await world.admin.executeBatch(partly && writes ? { ...body, entry: body.entry?.slice(0, -1) } : body);
  } else if (request.method === 'POST' && body?.resourceType === 'Basic') {
    const identifier = body.identifier?.[0];
    await world.admin.createResourceIfNoneExist(
      body,
      `identifier=${encodeURIComponent(`${identifier?.system ?? ''}|${identifier?.value ?? ''}`)}`
    );
  } else if (request.method !== 'GET' && !(request.method === 'POST' && request.url.endsWith('/fhir/R4'))) {
    throw new Error(`applyThenDrop does not know how to apply ${request.method} ${request.url}`);
  }
  return 'drop';
}

function injector(world: World, kind: Kind, fails: (r: SentRequest) => boolean): FaultInjector {
  return async (request) => {
    if (!fails(request)) return undefined;
    if (kind === 'lost' || kind === 'partial') return applyThenDrop(world, request, kind === 'partial');
    return kind;
  };
}

const TYPED_FAILURE = /^FHIR (read|write|marker) failed: [a-z_]+( \(HTTP \d{3}\))?; nothing was marked applied/;

/** Delivers with faults, checks what the bot answered, redelivers when it failed, and compares with the fault-free state. */
async function runFaulty(
  scenario: Scenario,
  options: WorldOptions,
  reference: Reference,
  kind: Kind,
  fails: (r: SentRequest) => boolean,
  mustFail: boolean,
  label: string
): Promise<void> {
  const world = await prepared(scenario, options);
  const bot = world.bot(botForEvent(scenario.target), { faults: injector(world, kind, fails) });
  const outcome = await bot.deliver(scenario.target).then(
    (answer) => ({ ok: true as const, answer }),
    (err: unknown) => ({ ok: false as const, err })
  );
  if (mustFail) {
    expect(outcome.ok, `${label}: the delivery must be answered with an error`).toBe(false);
  }
  if (outcome.ok) {
    expect(outcome.answer.status, label).toBe(reference.status);
  } else {
    expect(outcome.err, label).toBeInstanceOf(Error);
    expect((outcome.err as Error).message, label).toMatch(TYPED_FAILURE);
    expect(bot.logs.at(-1), label).toMatch(
      new RegExp(`^medblocks evt=${scenario.target.id} type=\\S+ outcome=failed:`)
    );
    if (kind !== 'lost' && kind !== 'partial') {
      // A lost response may have committed the marker itself; every other fault leaves it unwritten.
      expect(await markedEventIds(world), `${label}: not marked applied`).not.toContain(scenario.target.id);
    }
    expect(await duplicatedKeys(world), label).toEqual([]);
    // Medblocks redelivers the same event later (re-signed), to a healthy server.
    const retry = await world.bot(botForEvent(scenario.target)).deliver(scenario.target);
    expect(['processed', 'duplicate', 'stale'], label).toContain(retry.status);
  }
  expect(await canonicalState(world), `${label}: ends in the fault-free state`).toEqual(reference.state);
}

describe.each(MODES)('faults at every request ($name)', ({ world: options }) => {
  describe.each(SCENARIOS)('$name', (scenario) => {
    it('from the k-th request on, the server answers 409 or drops the connection: error, no marker, redelivery converges', async () => {
      const reference = await faultFree(scenario, options);
      expect(reference.requests.length).toBeGreaterThanOrEqual(2);
      for (let k = 0; k < reference.requests.length; k++) {
        for (const kind of [{ status: 409 }, 'drop'] as const) {
          const label = `${describeKind(kind)} from request ${k} (${reference.requests[k]?.method ?? ''} ${reference.requests[k]?.url ?? ''})`;
          await runFaulty(scenario, options, reference, kind, (r) => r.index >= k, true, label);
        }
      }
    });

    it('only the k-th request fails once (409, dropped, applied with its answer lost, or partly applied): the store converges', async () => {
      const reference = await faultFree(scenario, options);
      for (let k = 0; k < reference.requests.length; k++) {
        for (const kind of [{ status: 409 }, 'drop', 'lost', 'partial'] as const) {
          const label = `${describeKind(kind)} once at request ${k}`;
          await runFaulty(scenario, options, reference, kind, (r) => r.index === k, false, label);
        }
      }
    });
  });

  it('from the k-th request on, the server answers 503 (after MedplumClient’s own retries): error, no marker, redelivery converges', async () => {
    // MedplumClient waits 500 + 750 ms before giving up on a 5xx: run every k at once.
    const scenario = SCENARIOS[1];
    if (!scenario) throw new Error('missing scenario');
    const reference = await faultFree(scenario, options);
    await Promise.all(
      reference.requests.map((_, k) =>
        runFaulty(scenario, options, reference, { status: 503 }, (r) => r.index >= k, true, `503 from request ${k}`)
      )
    );
  });
});

/**
 * Quarantining is FHIR work too: the dead-letter must be stored before the 2xx, or the event would be
 * answered as handled and then be nowhere. Two poison deliveries: a payload this package cannot read
 * (search, then create the dead-letter) and an unknown patient with creation off (the read batch,
 * then create the dead-letter).
 */
describe('faults while quarantining', () => {
  const poisonEvent = recordsSyncCompleted({ patient_id: 'user_q' }, { created_at: T(14) });
  const POISONS: readonly { name: string; options: DeliverOptions }[] = [
    {
      name: 'a payload this package cannot read',
      options: {
        rawBody: JSON.stringify({ ...poisonEvent, data: { object: { ...poisonEvent.data.object, total: 'x' } } }),
      },
    },
    {
      name: 'an unknown patient with creation off',
      options: { secrets: { MEDBLOCKS_CREATE_MISSING_PATIENTS: 'false' } },
    },
  ];
  const deadLettersOf = async (world: World) =>
    (await world.tasks()).filter((t) => t.code?.coding?.[0]?.code === 'webhook-dead-letter');

  describe.each(POISONS)('$name', ({ options }) => {
    it('a fault at any request: a 2xx only with the dead-letter stored; otherwise non-2xx, unmarked, and the redelivery quarantines it once', async () => {
      const clean = new World();
      const reference = clean.bot('medblocks-records-sync-completed');
      expect((await reference.deliver(poisonEvent, options)).status).toBe('quarantined');
      expect(reference.requests).toHaveLength(2);
      for (let k = 0; k < reference.requests.length; k++) {
        for (const kind of [{ status: 409 }, { status: 503 }, 'drop', 'lost'] as const) {
          for (const from of [true, false]) {
            const label = `${describeKind(kind)} ${from ? 'from' : 'only at'} request ${String(k)}`;
            const world = new World();
            const fails = (r: SentRequest) => (from ? r.index >= k : r.index === k);
            const bot = world.bot('medblocks-records-sync-completed', { faults: injector(world, kind, fails) });
            const outcome = await bot.deliver(poisonEvent, options).then(
              (answer) => answer.status,
              (err: unknown) => (err as Error).message
            );
            if (outcome === 'quarantined') {
              expect(await deadLettersOf(world), label).toHaveLength(1);
            } else {
              expect(outcome, label).toMatch(TYPED_FAILURE_OR_DEAD_LETTER);
            }
            expect(await markedEventIds(world), label).toEqual([]);
            const retry = await world.bot('medblocks-records-sync-completed').deliver(poisonEvent, options);
            expect(retry.status, label).toBe('quarantined');
            expect(await deadLettersOf(world), label).toHaveLength(1);
            expect(await duplicatedKeys(world), label).toEqual([]);
          }
        }
      }
    }, 60_000);
  });
});

const TYPED_FAILURE_OR_DEAD_LETTER =
  /^FHIR (read|dead-letter) failed: [a-z_]+( \(HTTP \d{3}\))?; nothing was marked applied/;
