// The four Medblocks Connect webhook events, as runtime schemas and the types inferred from them.
// Objects are "loose": Medblocks may add fields at any time and we must keep accepting deliveries.
// Ids are bounded and restricted to characters that are safe inside FHIR token searches
// (no `,` `|` `$` `\` or whitespace), because they become identifier values we search on.
import * as v from 'valibot';

/** The event types a bot can be wired to; `patient_session.completed` is the newer name of the flow event. */
export const EVENT_TYPES = [
  'patient_flow.completed',
  'patient_session.completed',
  'connection.token_refresh_failed',
  'records.sync.completed',
  'records.sync.failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const CONNECTION_STATUSES = ['active', 'failed', 'expired', 'refresh_failed', 'disconnected'] as const;
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number];

/** A flow with more attempts than this is refused rather than planned: it bounds every read and write. */
export const MAX_CONNECTIONS_PER_FLOW = 50;

const SAFE_TOKEN = /^[^\s,|$\\]+$/;

function prefixedId(prefixes: readonly string[], maxLength: number) {
  const pattern = new RegExp(`^(?:${prefixes.join('|')})[^\\s,|$\\\\]+$`);
  return v.pipe(v.string(), v.maxLength(maxLength), v.regex(pattern));
}

const isoDateTime = v.pipe(
  v.string(),
  v.maxLength(40),
  v.isoTimestamp(),
  v.check((s) => !Number.isNaN(Date.parse(s)))
);

/** The customer's own patient id: opaque, up to 200 characters. */
const patientId = v.pipe(v.string(), v.minLength(1), v.maxLength(200), v.regex(SAFE_TOKEN));
const eventId = prefixedId(['evt_'], 64);
const connectionId = prefixedId(['conn_'], 128);
const sourceId = prefixedId(['fhirsrc_'], 128);
const flowId = prefixedId(['pf_', 'ps_'], 128);
const failureCode = v.nullish(v.pipe(v.string(), v.maxLength(100), v.regex(SAFE_TOKEN)));

const connectionShape = {
  connection_id: sourceId,
  status: v.picklist(CONNECTION_STATUSES),
  failure_code: failureCode,
  failure_at: v.nullish(isoDateTime),
  created_at: isoDateTime,
};

/** One authorization attempt in a flow; `id` is null for a failed attempt. */
const PatientFlowConnectionSchema = v.looseObject({ id: v.nullable(connectionId), ...connectionShape });

const PatientFlowSchema = v.looseObject({
  id: flowId,
  resource_type: v.optional(v.picklist(['patient_flow', 'patient_session'])),
  patient_id: patientId,
  connections: v.pipe(v.array(PatientFlowConnectionSchema), v.maxLength(MAX_CONNECTIONS_PER_FLOW)),
});

/** A refresh failure always concerns an existing connection, so `id` is required; `patient_id` may come one day. */
const TokenRefreshFailedSchema = v.looseObject({
  id: connectionId,
  ...connectionShape,
  patient_id: v.optional(patientId),
});

const RecordsSyncCompletedSchema = v.looseObject({
  resource_type: v.optional(v.literal('records_sync')),
  patient_id: patientId,
  connection_id: sourceId,
  total: v.pipe(v.number(), v.integer(), v.minValue(0)),
  errors: v.pipe(v.number(), v.integer(), v.minValue(0)),
  duration_ms: v.nullish(v.pipe(v.number(), v.integer(), v.minValue(0))),
});

const RecordsSyncFailedSchema = v.looseObject({
  resource_type: v.optional(v.literal('records_sync')),
  patient_id: patientId,
  connection_id: sourceId,
  // Long and free-text: kept, but only ever copied cut to a bound (see the Task builder).
  error_message: v.nullish(v.string()),
});

function envelope<TType extends v.GenericSchema<string>, TPayload extends v.GenericSchema>(
  type: TType,
  payload: TPayload
) {
  return v.looseObject({
    id: eventId,
    object: v.literal('event'),
    type,
    api_version: v.pipe(v.string(), v.maxLength(40)),
    created_at: isoDateTime,
    data: v.looseObject({ object: payload }),
  });
}

export const MedblocksEventSchema = v.variant('type', [
  envelope(v.picklist(['patient_flow.completed', 'patient_session.completed']), PatientFlowSchema),
  envelope(v.literal('connection.token_refresh_failed'), TokenRefreshFailedSchema),
  envelope(v.literal('records.sync.completed'), RecordsSyncCompletedSchema),
  envelope(v.literal('records.sync.failed'), RecordsSyncFailedSchema),
]);

export type MedblocksEvent = v.InferOutput<typeof MedblocksEventSchema>;
export type PatientFlowCompletedEvent = Extract<
  MedblocksEvent,
  { type: 'patient_flow.completed' | 'patient_session.completed' }
>;
export type TokenRefreshFailedEvent = Extract<MedblocksEvent, { type: 'connection.token_refresh_failed' }>;
export type RecordsSyncCompletedEvent = Extract<MedblocksEvent, { type: 'records.sync.completed' }>;
export type RecordsSyncFailedEvent = Extract<MedblocksEvent, { type: 'records.sync.failed' }>;
export type PatientFlowConnection = PatientFlowCompletedEvent['data']['object']['connections'][number];

export type EventParseResult =
  | { readonly ok: true; readonly event: MedblocksEvent }
  | {
      readonly ok: false;
      readonly problems: readonly string[];
      /** The field path of the first problem (`data.object.total`), `(root)` for the whole body; never a value. */
      readonly path: string;
    };

/**
 * Validates a parsed JSON value as a Medblocks event. Problems name the field path and what was
 * expected, never the value received: they end up in answers to unauthenticated callers.
 */
export function parseMedblocksEvent(value: unknown): EventParseResult {
  const result = v.safeParse(MedblocksEventSchema, value, { abortPipeEarly: true });
  if (result.success) {
    return { ok: true, event: result.output };
  }
  return {
    ok: false,
    problems: result.issues.slice(0, 5).map(describeIssue),
    path: formatPath(result.issues[0].path) || '(root)',
  };
}

/**
 * The envelope's `id` when it is a well-formed Medblocks event id, else undefined. A quarantined
 * event is keyed by it (so that its redelivery finds its dead-letter) only when it is one: anything
 * else could carry arbitrary text into a FHIR identifier and a log line.
 */
export function usableEventId(value: unknown): string | undefined {
  return v.is(eventId, value) ? value : undefined;
}

/** Whether a string is one of the event types this package knows (and so is safe to log and answer). */
export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

function describeIssue(issue: v.BaseIssue<unknown>): string {
  const path = formatPath(issue.path);
  // `expected` is derived from the schema (a type, a literal, a bound), never from the input.
  const expected = issue.expected === null ? 'a valid value' : issue.expected;
  if (issue.type === 'variant' && path === 'type') {
    return `type: not a Medblocks event type this package knows`;
  }
  return `${path || '(root)'}: expected ${expected}`;
}

function formatPath(path: readonly v.IssuePathItem[] | undefined): string {
  let out = '';
  for (const item of path ?? []) {
    const key: unknown = item.key;
    if (typeof key === 'number') {
      out += `[${key}]`;
    } else if (typeof key === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(key)) {
      out += out ? `.${key}` : key;
    } else {
      out += out ? '.?' : '?'; // an attacker-chosen key is not echoed
    }
  }
  return out;
}
