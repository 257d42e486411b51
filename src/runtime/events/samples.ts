// What every event type's sample deliveries are built from: realistic defaults taken from the
// documented sample deliveries, time-sortable ids like Medblocks' own (so "newer" events also have
// larger ids), and the shape a named sample is asked for. Each event type's module exports its
// samples beside its handler (one module per event type); the sender, the demo, the property tests
// and the emulator's bundle tests draw from them through src/tools/fixtures/. No bot reads a
// sample: every export here is side-effect free, so esbuild leaves all of it out of the bundles
// (test/emulator/bundles.test.ts fails when one carries a sample).
import { MEDBLOCKS_API_VERSION } from '../medblocks/version';
import type { PatientFlowConnection } from './patient-session-completed';

export const SAMPLE_PATIENT_ID = 'user_42';
export const SAMPLE_SOURCE_A = 'fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc';
export const SAMPLE_SOURCE_B = 'fhirsrc_0a9Ea55aR4u7HaWMyFBN8wcc';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID-shaped id (26 chars, time first) so that ids sort like the times they were made at. */
export function ulidAt(time: string | number, entropy = 0): string {
  let ms = typeof time === 'number' ? time : Date.parse(time);
  let head = '';
  for (let i = 0; i < 10; i++) {
    head = (CROCKFORD[ms % 32] ?? '0') + head;
    ms = Math.floor(ms / 32);
  }
  let tail = '';
  let n = entropy;
  for (let i = 0; i < 16; i++) {
    tail = (CROCKFORD[n % 32] ?? '0') + tail;
    n = Math.floor(n / 32);
  }
  return head + tail;
}

let counter = 0;
/** A fresh entropy value, so two samples made at the same instant still get different ids. */
export function nextEntropy(): number {
  counter += 1;
  return counter;
}

/** A new event id made at `at`, sorting after every id made earlier. */
export function eventId(at: string): string {
  return `evt_${ulidAt(at, nextEntropy())}`;
}

/** What a caller may set on a sample's envelope. */
export interface EnvelopeOverrides {
  readonly id?: string;
  readonly created_at?: string;
}

/** The envelope Medblocks wraps every event in, around a payload, as its published API shows it. */
export function sampleEnvelope<T extends string, O>(
  type: T,
  createdAt: string,
  object: O,
  id: string | undefined
): { id: string; object: 'event'; type: T; api_version: string; created_at: string; data: { object: O } } {
  return {
    id: id ?? eventId(createdAt),
    object: 'event',
    type,
    api_version: MEDBLOCKS_API_VERSION,
    created_at: createdAt,
    data: { object },
  };
}

/** A connection as flows and refresh failures report it: active at the first sample source by default. */
export function sampleConnection(overrides: Partial<PatientFlowConnection> = {}): PatientFlowConnection {
  const createdAt = overrides.created_at ?? '2026-04-25T14:33:10.000Z';
  return {
    id: `conn_${ulidAt(createdAt, nextEntropy())}`,
    connection_id: SAMPLE_SOURCE_A,
    status: 'active',
    failure_code: null,
    failure_at: null,
    created_at: createdAt,
    ...overrides,
  };
}

/** A connection attempt that never became a connection: no id, a failure code, the second source. */
export function sampleFailedAttempt(overrides: Partial<PatientFlowConnection> = {}): PatientFlowConnection {
  return sampleConnection({
    id: null,
    connection_id: SAMPLE_SOURCE_B,
    status: 'failed',
    failure_code: 'access_denied',
    failure_at: '2026-04-25T14:34:40.000Z',
    created_at: '2026-04-25T14:34:05.000Z',
    ...overrides,
  });
}

/** Who and when a named sample is about, so that samples of different event types line up. */
export interface SampleShape {
  /** `created_at` of the event (ISO). */
  readonly at: string;
  readonly patientId: string;
  /** The patient's connection (`conn_…`). */
  readonly connectionId: string;
  /** The EHR source (`fhirsrc_…`). */
  readonly sourceId: string;
}

/** The named samples of each name an event type is sent under; the first of each is the default. */
export type Samples<N extends string, E> = {
  readonly [K in N]: Readonly<Record<string, (shape: SampleShape) => E>>;
};

/**
 * Types an event module's samples by its names, so that a name without samples does not compile.
 * Called as `/* @__PURE__ *\/ defineSamples(…)` so that bundles drop them.
 */
export function defineSamples<const N extends string, E>(samples: Samples<N, E>): Samples<N, E> {
  return samples;
}
