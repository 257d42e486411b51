// Genuine events at the edges of what Medblocks may send — opaque ids with spaces, `|`, `,`, `$`,
// `\`, any script and emoji, ids at their length bounds, timestamps with offsets, sub-millisecond
// digits and leap seconds, counts far beyond int32, null ids, unknown statuses, free text with
// control characters — delivered in sequences to the four bots in an emulated project whose store
// validates every write as Medplum's server does (VAL-1) and searches identifiers as it does (SRCH-1).
// Properties: no genuine event is refused (the schema accepts it, the bot answers 2xx), and every
// resource written passes `validateResource` from @medplum/core.
//
// Runs: FUZZ_EDGE_RUNS sequences (default 60) of 1–6 events each.
import { validateResource } from '@medplum/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SYSTEM } from '../../src/runtime/fhir/systems';
import { CONNECTION_STATUSES, isCleanText } from '../../src/runtime/medblocks/events';
import { parseMedblocksEvent } from '../../src/runtime/events';
import type { MedblocksEvent } from '../../src/runtime/events';
import { World } from '../../src/tools/harness/world';
import { STATE_TYPES, botForEvent } from './support';

const RUNS = Number(process.env.FUZZ_EDGE_RUNS ?? 60);
const NOW = Date.parse('2026-04-25T14:36:12.000Z');

/** Opaque text as Medblocks documents it: bounded, clean, not blank, anything else allowed. */
function opaque(maxLength: number): fc.Arbitrary<string> {
  const edgy = fc.constantFrom(
    'John Doe',
    'MRN|12345',
    'a,b',
    'cost$1',
    'back\\slash',
    ' padded ',
    'josé',
    '患者-42',
    '\u{1F600}\u{1F469}\u200D\u{1F4BB}',
    'x'.repeat(maxLength),
    `${'é'.repeat(maxLength - 1)}|`,
    'access  denied',
    '\u00a0nbsp\u2028sep',
    '%2F/slash%'
  );
  const random = fc
    .string({
      unit: fc.oneof(fc.constantFrom(' ', '|', ',', '$', '\\', '/', '%'), fc.string({ unit: 'binary', maxLength: 1 })),
      minLength: 1,
      maxLength,
    })
    .filter((s) => s.length <= maxLength && isCleanText(s) && s.trim().length > 0);
  return fc.oneof(edgy, random);
}

/** A Medblocks-issued id: prefix, then a bounded run of characters that need no escaping. */
function prefixed(prefix: string, pool?: readonly string[]): fc.Arbitrary<string> {
  const random = fc.stringMatching(/^[A-Za-z0-9_.~:é%/-]{1,40}$/).map((s) => `${prefix}${s}`);
  const bound = fc.constant(`${prefix}${'Z'.repeat(128 - prefix.length)}`);
  return pool ? fc.oneof(fc.constantFrom(...pool), random, bound) : fc.oneof(random, bound);
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** An ISO 8601 instant written with a random offset, precision, case and (rarely) a leap second. */
const timestamp: fc.Arbitrary<string> = fc
  .record({
    ms: fc.integer({ min: Date.parse('1000-01-01T00:00:00Z'), max: Date.parse('9000-12-31T00:00:00Z') }),
    offset: fc.oneof(fc.constant(0), fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 })),
    precision: fc.constantFrom('minutes', 'seconds', 'ms', 'micro', 'nano'),
    zulu: fc.constantFrom('Z', 'z', '+00:00'),
    leap: fc.boolean(),
  })
  .map(({ ms, offset, precision, zulu, leap }) => {
    const local = new Date(ms + offset * 60_000);
    const date = `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}`;
    const seconds = leap && local.getUTCSeconds() === 59 ? 60 : local.getUTCSeconds();
    const fraction = pad(local.getUTCMilliseconds(), 3);
    const time =
      precision === 'minutes'
        ? `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}`
        : `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(seconds)}${
            precision === 'seconds'
              ? ''
              : precision === 'ms'
                ? `.${fraction}`
                : precision === 'micro'
                  ? `.${fraction}123`
                  : `.${fraction}987654`
          }`;
    const zone =
      offset === 0
        ? zulu
        : `${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
    return `${date}T${time}${zone}`;
  });

const count = fc.oneof(
  fc.nat(),
  fc.constantFrom(0, 2 ** 31 - 1, 2 ** 31, 3_000_000_000, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 1e308)
);

const status = fc.oneof(
  fc.constantFrom(...CONNECTION_STATUSES),
  fc.constantFrom('revoked', 'pending', 'Some Future Status'),
  fc.string({ maxLength: 64 })
);

const SOURCES = ['fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc', 'fhirsrc_0a9Ea55aR4u7HaWMyFBN8wcc'] as const;
const CONNS = ['conn_01J9YR9N3X4VZ6P2K5RH7M3LMP', 'conn_01J9YR9N3X4VZ6P2K5RH7M3LMQ'] as const;
const PATIENTS = ['user_42', 'MRN|12345', 'John Doe'] as const;
const TIMES = ['2026-04-25T14:33:10.000Z', '2026-04-25T16:33:10+02:00'] as const;

const patientId = fc.oneof(fc.constantFrom(...PATIENTS), opaque(200));
const sourceId = prefixed('fhirsrc_', SOURCES);
const time = fc.oneof(fc.constantFrom(...TIMES), timestamp);
const failureCode = fc.option(fc.oneof(fc.constantFrom('a', 'b', 'access_denied'), opaque(100), fc.constant('   ')));

const flowEntry = fc.record({
  id: fc.option(prefixed('conn_', CONNS)),
  connection_id: sourceId,
  status,
  failure_code: failureCode,
  failure_at: fc.option(time),
  created_at: time,
});

const envelope = {
  id: fc.stringMatching(/^[0-9A-Za-z]{1,60}$/).map((s) => `evt_${s}`),
  object: fc.constant('event' as const),
  api_version: fc.constant('2026-04-25'),
  created_at: time,
};

const flowEvent = fc.record({
  ...envelope,
  type: fc.constantFrom('patient_flow.completed' as const, 'patient_session.completed' as const),
  data: fc.record({
    object: fc.record({
      id: prefixed('pf_', ['pf_01J9YQ8M2X4VZ6P2K5RH7M3KQT']),
      resource_type: fc.constantFrom('patient_flow', 'patient_session', 'patient_journey'),
      status: fc.constantFrom('open', 'complete', 'expired', 'abandoned'),
      patient_id: patientId,
      connections: fc.array(flowEntry, { maxLength: 6 }),
    }),
  }),
});

const refreshEvent = fc.record({
  ...envelope,
  type: fc.constant('connection.token_refresh_failed' as const),
  data: fc.record({
    object: fc.record(
      {
        id: prefixed('conn_', CONNS),
        connection_id: sourceId,
        status,
        failure_code: failureCode,
        failure_at: fc.option(time),
        created_at: time,
        patient_id: patientId,
      },
      { requiredKeys: ['id', 'connection_id', 'status', 'failure_code', 'failure_at', 'created_at'] }
    ),
  }),
});

const syncCompleted = fc.record({
  ...envelope,
  type: fc.constant('records.sync.completed' as const),
  data: fc.record({
    object: fc.record({
      resource_type: fc.constantFrom('records_sync', 'records_sync_v2'),
      patient_id: patientId,
      connection_id: sourceId,
      total: count,
      errors: count,
      duration_ms: fc.option(count),
    }),
  }),
});

const syncFailed = fc.record({
  ...envelope,
  type: fc.constant('records.sync.failed' as const),
  data: fc.record({
    object: fc.record({
      resource_type: fc.constant('records_sync'),
      patient_id: patientId,
      connection_id: sourceId,
      error_message: fc.option(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 1200 }),
          fc.string({
            unit: fc.constantFrom('\u0000', '\u001b', '\ud800', '\udc00', 'x', '\u{1F600}', ' '),
            maxLength: 700,
          })
        )
      ),
    }),
  }),
});

const edgeEvent = fc.oneof(flowEvent, refreshEvent, syncCompleted, syncFailed) as fc.Arbitrary<MedblocksEvent>;

/** The EHR names `npm run sources` may write, edgy too. */
const ehrName = fc.oneof(fc.constantFrom('Epic MyChart', 'Cerner | Oracle Health', 'Ünï  cödé 🏥'), opaque(120));

describe('genuine events at the edges', () => {
  it(`are never refused, and every resource written passes validateResource (${RUNS} sequences)`, async () => {
    let delivered = 0;
    let validated = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(edgeEvent, { minLength: 1, maxLength: 6 }),
        fc.option(ehrName),
        async (events, name) => {
          const world = new World();
          if (name !== null) {
            await world.admin.createResource({
              resourceType: 'Organization',
              name,
              identifier: [{ system: SYSTEM.fhirSourceId, value: SOURCES[0] }],
            });
          }
          for (const event of events) {
            const parsed = parseMedblocksEvent(JSON.parse(JSON.stringify(event)));
            expect(parsed.ok ? [] : parsed.problems).toEqual([]);
            const answer = await world.bot(botForEvent(event)).deliver(event, { signedAt: NOW, now: NOW });
            expect(['processed', 'duplicate', 'stale']).toContain(answer.status);
            delivered++;
          }
          for (const type of STATE_TYPES) {
            for (const resource of await world.all(type)) {
              expect(validateResource(resource)).toEqual([]);
              validated++;
            }
          }
        }
      ),
      { numRuns: RUNS }
    );
    expect(delivered).toBeGreaterThanOrEqual(RUNS);
    if (process.env.FUZZ_EDGE_REPORT) {
      console.log(
        `edge fuzz: ${RUNS} sequences, ${delivered} deliveries all accepted, ${validated} resources passed validateResource`
      );
    }
  }, 600_000);
});
