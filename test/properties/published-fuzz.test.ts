// The published-schema fuzzer: genuine events generated from Medblocks'
// published payload schemas (its OpenAPI/AsyncAPI description, version 2026-04-25: the envelope, the
// full 13-field PatientSession with its session-connection items, the token-refresh connection
// item, the records-sync summary and failure), every field at its edges — nulls where the schema
// says nullable, enum values it does not list yet, long and odd strings in the fields it leaves open,
// counts far beyond int32, timestamps with offsets and sub-millisecond digits, up to 50 connections —
// delivered signed to the SHIPPED bundles (dist/, built into a temporary root) through the emulator's
// public webhook endpoint, as Medplum's vmcontext runtime runs them.
// Properties: every delivery is answered 2xx and applied (`processed`, or `stale`/`duplicate` for a
// repeat), never quarantined; every resource in the project afterwards passes Medplum's validator
// (`validateResource`) and HL7's R4 JSON schema.
//
// Where our documented bounds are narrower than the published schema (docs/parsing-and-normalisation.md:
// opaque ids up to 200 characters without control characters, at most 50 connections per session), the
// generator stays inside them: such events are quarantined by design, which the quarantine tests pin.
//
// Count: PUBLISHED_FUZZ_EVENTS (default 600 in `npm test`, ~40 s; the issue-18 run took 5,000:
// `PUBLISHED_FUZZ_EVENTS=5000 npx vitest run test/properties/published-fuzz.test.ts`), seed
// PUBLISHED_FUZZ_SEED (default fixed, printed with the counts).
import { validateResource } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCleanText } from '../../src/runtime/medblocks/events';
import { botForEvent } from '../../src/runtime/registry';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { buildIntoTempRoot, sendSigned } from '../emulator/support';
import type { BuiltRoot } from '../emulator/support';
import { hl7SchemaErrors } from '../support/hl7-schema';

const EVENTS = Number(process.env.PUBLISHED_FUZZ_EVENTS ?? 600);
const SEED = Number(process.env.PUBLISHED_FUZZ_SEED ?? 20261203);
const APPLIED = new Set(['processed', 'stale', 'duplicate']);

/** Events per emulated project: the in-memory store searches by scanning, so each batch starts empty. */
const BATCH = 250;

let built: BuiltRoot;

beforeAll(async () => {
  built = await buildIntoTempRoot();
}, 120_000);

afterAll(() => {
  built.cleanup();
});

/** Every resource in the project that Medplum's validator or HL7's schema refuses, as one line each. */
async function invalidResources(emulator: RunningEmulator): Promise<string[]> {
  const invalid: string[] = [];
  for (const type of ['Patient', 'Consent', 'Task', 'Basic', 'Organization'] as const) {
    for (const resource of await emulator.store.all<Resource>(type)) {
      const problems = [...hl7SchemaErrors(resource)];
      try {
        validateResource(resource);
      } catch (err) {
        problems.push(`Medplum: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (problems.length > 0) invalid.push(`${type}/${resource.id}: ${problems.slice(0, 3).join('; ')}`);
    }
  }
  return invalid;
}

// ---- strings the published schema leaves open ------------------------------------------------

/** Unicode whitespace HL7's `string` refuses, and other characters that trip naive code. */
const ODD = ['\u00a0', '\u2028', '\u2029', '\u3000', '\ufeff', '\u1680', '\u2009', '\u202e', '\u2066', '\u200d'];

/** An opaque customer string (patient ids): anything but control characters, at most `max` long. */
function opaque(max: number): fc.Arbitrary<string> {
  const unit = fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
    { weight: 2, arbitrary: fc.constantFrom(' ', '|', ',', '$', '\\', '/', '%', '"', "'", '<', '&', '#', '?', '*') },
    { weight: 1, arbitrary: fc.constantFrom(...ODD) }
  );
  const edges = fc.constantFrom(
    'user_42',
    'x'.repeat(max),
    `${'é'.repeat(max - 1)}|`,
    '\u{1F469}\u200D\u{1F4BB}',
    '  padded  ',
    `a${'\u00a0'.repeat(max - 2)}b`,
    'line\u2028sep'
  );
  const random = fc
    .array(unit, { minLength: 1, maxLength: 40 })
    .map((parts) => parts.join(''))
    .filter((s) => s.length <= max && s.trim().length > 0 && isCleanText(s));
  return fc.oneof(edges, random);
}

/** A Medblocks-issued id: its prefix and a ULID-like run, or the longest our bounds take. */
function issued(prefix: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/).map((s) => `${prefix}${s}`),
    fc.stringMatching(/^[A-Za-z0-9_.~:-]{1,40}$/).map((s) => `${prefix}${s}`),
    fc.constant(`${prefix}${'Z'.repeat(128 - prefix.length)}`)
  );
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** ISO 8601 as the schema's `string` (format date-time): any offset and precision. */
const isoTime: fc.Arbitrary<string> = fc
  .record({
    ms: fc.integer({ min: Date.parse('1900-01-01T00:00:00Z'), max: Date.parse('2200-12-31T00:00:00Z') }),
    offset: fc.oneof(fc.constant(0), fc.integer({ min: -(14 * 60), max: 14 * 60 })),
    digits: fc.constantFrom(0, 3, 6, 9),
  })
  .map(({ ms, offset, digits }) => {
    const local = new Date(ms + offset * 60_000);
    const date = `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}`;
    const fraction = digits === 0 ? '' : `.${pad(local.getUTCMilliseconds(), 3)}${'7'.repeat(digits - 3)}`;
    const time = `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}${fraction}`;
    const zone =
      offset === 0
        ? 'Z'
        : `${offset < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
    return `${date}T${time}${zone}`;
  });

/** The 5 connection statuses the schema lists, and values it may list one day. */
const connectionStatus = fc.oneof(
  fc.constantFrom('active', 'refresh_failed', 'failed', 'expired', 'revoked'),
  fc.constantFrom('pending', 'Active', '', 'disconnected', 'a status with spaces'),
  fc.string({ maxLength: 64 })
);

const count = fc.oneof(fc.nat(1000), fc.constantFrom(0, 2 ** 31 - 1, 2 ** 31, 2 ** 53 - 1, 1e21));
const nullable = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.option(a, { nil: null, freq: 3 });

const metadata = fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });

// ---- the published payloads -------------------------------------------------------------------

/** Session connection item: all six fields required; `id` null for a failed authorization. */
const sessionConnection = fc.record({
  id: nullable(issued('conn_')),
  connection_id: issued('fhirsrc_'),
  status: connectionStatus,
  failure_code: nullable(fc.oneof(fc.constantFrom('user_denied', 'oauth_callback_failed'), opaque(100))),
  failure_at: nullable(isoTime),
  created_at: isoTime,
});

/** PatientSession: all 13 fields required. */
const patientSession = fc.record({
  id: issued('ps_'),
  resource_type: fc.constantFrom('patient_session', 'patient_session_v2'),
  status: fc.constantFrom('open', 'complete', 'expired', 'abandoned'),
  url: fc.constant('https://connect.medblocks.com/s/ps_x'),
  patient_id: opaque(200),
  connection_id: nullable(issued('fhirsrc_')),
  recommended_connection_ids: nullable(fc.array(issued('fhirsrc_'), { maxLength: 3 })),
  return_url: fc.constant('https://clinic.example/return'),
  return_button_label: nullable(fc.string({ minLength: 1, maxLength: 60 })),
  connections: fc.oneof(
    { weight: 6, arbitrary: fc.array(sessionConnection, { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.array(sessionConnection, { minLength: 40, maxLength: 50 }) }
  ),
  expires_at: isoTime,
  metadata,
  created_at: isoTime,
});

/** The refresh failure: one session-connection item (no patient_id); at fire time `id` is set. */
const refreshConnection = fc.record({
  id: issued('conn_'),
  connection_id: issued('fhirsrc_'),
  status: connectionStatus,
  failure_code: nullable(opaque(100)),
  failure_at: nullable(isoTime),
  created_at: isoTime,
});

const syncSummary = fc.record({
  resource_type: fc.constantFrom('records_sync', 'records_sync_v2'),
  patient_id: opaque(200),
  connection_id: issued('fhirsrc_'),
  total: count,
  errors: count,
  duration_ms: nullable(fc.oneof(count, fc.double({ min: 0, max: 1e9, noNaN: true }))),
});

const syncFailure = fc.record({
  resource_type: fc.constantFrom('records_sync', 'records_sync_v2'),
  patient_id: opaque(200),
  connection_id: issued('fhirsrc_'),
  error_message: nullable(
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 2000 }),
      fc.string({ unit: fc.constantFrom(...ODD, '\u0000', '\u001b[2J', '\ud800', 'x', ' '), maxLength: 600 })
    )
  ),
});

const published = fc.oneof(
  fc.record({ type: fc.constant('patient_session.completed' as const), object: patientSession }),
  fc.record({ type: fc.constant('connection.token_refresh_failed' as const), object: refreshConnection }),
  fc.record({ type: fc.constant('records.sync.completed' as const), object: syncSummary }),
  fc.record({ type: fc.constant('records.sync.failed' as const), object: syncFailure })
);

/** The envelope, with an id unique per event (Medblocks' ids are). */
function envelope(i: number, body: { type: string; object: unknown }, createdAt: string): Record<string, unknown> {
  return {
    id: `evt_FUZZ${String(i).padStart(8, '0')}`,
    object: 'event',
    type: body.type,
    api_version: '2026-04-25',
    created_at: createdAt,
    data: { object: body.object },
  };
}

describe('the published-schema fuzzer against the shipped bundles', () => {
  it(
    `${EVENTS} genuine events: all answered 2xx and applied, every resource valid (Medplum's validator and HL7's schema)`,
    async () => {
      const bodies = fc.sample(fc.tuple(published, isoTime), { numRuns: EVENTS, seed: SEED });
      const refused: string[] = [];
      const invalid: string[] = [];
      const counts = new Map<string, number>();
      for (let start = 0; start < bodies.length; start += BATCH) {
        const emulator = await startEmulator({ root: built.root });
        try {
          for (const [offset, [body, createdAt]] of bodies.slice(start, start + BATCH).entries()) {
            const i = start + offset;
            const event = envelope(i, body, createdAt);
            const answer = await sendSigned(emulator.bot(botForEvent(body)), JSON.stringify(event));
            const status =
              answer.status === 200 ? ((JSON.parse(answer.text) as { status?: string }).status ?? '?') : '';
            const key = `${body.type} ${answer.status} ${status}`;
            counts.set(key, (counts.get(key) ?? 0) + 1);
            if (answer.status !== 200 || !APPLIED.has(status)) {
              refused.push(
                `#${i} ${answer.status} ${answer.text.slice(0, 300)}\n  ${JSON.stringify(event).slice(0, 600)}`
              );
            }
          }
          invalid.push(...(await invalidResources(emulator)));
        } finally {
          await emulator.close();
        }
      }
      console.log(`published fuzz (seed ${SEED}):`, Object.fromEntries([...counts].sort()));
      expect(refused.slice(0, 5), `${refused.length} of ${EVENTS} not applied (seed ${SEED})`).toEqual([]);
      expect(invalid.slice(0, 5), `${invalid.length} invalid resources (seed ${SEED})`).toEqual([]);
    },
    30 * 60_000
  );
});
