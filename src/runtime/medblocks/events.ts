// The building blocks of Medblocks Connect's webhook schemas (each event type's payload schema is
// in its module, src/runtime/events/), the envelope around every payload, and parsing with answers
// safe to echo. Objects are "loose": Medblocks may add fields at any time and we must keep
// accepting deliveries.
//
// Parsing rules (the README lists them):
// - Forward compatible: enum-like fields (connection `status`, `resource_type`, the flow's `status`)
//   accept any bounded string; what an unknown value means is decided by the handlers
//   (handlers/connection-status.ts). Required fields and their types stay strict.
// - Opaque ids and codes (`patient_id`, `failure_code`) are accepted as Medblocks documents them:
//   bounded length, no control characters (C0, DEL, C1), well-formed Unicode (no lone surrogate),
//   some non-whitespace content. `,` `|` `$` `\` and spaces are allowed: every search value is
//   escaped (fhir/systems.ts `token()`) and every key encoded (`TASK_KEY`, `connectionKey`).
// - Medblocks-issued ids (`evt_`, `conn_`, `fhirsrc_`, `pf_`/`ps_`) keep a prefix and a bounded
//   run of safe characters; event ids are exactly what Medblocks issues (`evt_` + ASCII
//   alphanumerics), because they are echoed into answers, AuditEvents and terminals.
// - Timestamps are normalised to UTC `Z` with milliseconds (`2026-04-25T14:35:00.000Z`), their
//   instant kept to the millisecond (sub-millisecond digits truncated); impossible calendar dates
//   (`2026-02-30`) are refused; a leap second (`:60`) is read as `:59.999` of the same minute.
import * as v from 'valibot';

/** The connection statuses Medblocks documents today; any other bounded string is accepted as unknown. */
export const CONNECTION_STATUSES = ['active', 'failed', 'expired', 'refresh_failed', 'disconnected'] as const;
export type KnownConnectionStatus = (typeof CONNECTION_STATUSES)[number];
/**
 * A documented status, or one Medblocks added later (see handlers/connection-status.ts for its
 * meaning). Open, so comparing one with a literal checks nothing: code that branches on a status
 * narrows it with isKnownConnectionStatus first (handlers/connection-status.ts), and a single
 * equality test writes its literal `satisfies KnownConnectionStatus` (no runtime cost, as the bundles
 * are sized), so that the compiler refuses a misspelt status either way.
 */
export type ConnectionStatus = KnownConnectionStatus | (string & {});

export function isKnownConnectionStatus(status: string): status is KnownConnectionStatus {
  return (CONNECTION_STATUSES as readonly string[]).includes(status);
}

/** A flow with more attempts than this is refused rather than planned: it bounds every read and write. */
export const MAX_CONNECTIONS_PER_FLOW = 50;

/** Longest `patient_id` Medblocks documents. */
export const MAX_PATIENT_ID_LENGTH = 200;
/** Longest `failure_code` accepted: an opaque code, not a message. */
export const MAX_FAILURE_CODE_LENGTH = 100;

// C0 controls, DEL and C1 controls: never written to FHIR, never echoed.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True for text that can be stored and searched as a FHIR string: no control character, well-formed Unicode. */
export function isCleanText(s: string): boolean {
  return !CONTROL_CHARACTERS.test(s) && !LONE_SURROGATE.test(s);
}

/** Opaque text as Medblocks documents ids and codes: bounded, clean, and not blank. */
function opaqueText(maxLength: number) {
  return v.pipe(
    v.string(),
    v.minLength(1),
    v.maxLength(maxLength),
    v.check(isCleanText, 'text without control characters or lone surrogates'),
    v.check((s) => s.trim().length > 0, 'some non-whitespace content')
  );
}

/** A Medblocks-issued id: its prefix, then up to `maxLength` characters that need no escaping anywhere. */
function prefixedId(prefixes: readonly string[], maxLength: number) {
  const pattern = new RegExp(`^(?:${prefixes.join('|')})[^\\s,|$\\\\\\u0000-\\u001f\\u007f-\\u009f]+$`);
  return v.pipe(v.string(), v.maxLength(maxLength), v.regex(pattern), v.check(isCleanText, 'well-formed Unicode'));
}

const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * Normalises an ISO 8601 timestamp to UTC `Z` with its instant kept; undefined when it is not one
 * or names an impossible date or time (`2026-02-30`, `24:00`, an offset beyond ±23:59, a year the
 * result cannot be written in FHIR). Always three fraction digits: sub-millisecond digits are
 * truncated (JavaScript compares milliseconds, and FHIRPath compares instants of one precision
 * reliably), never rounded, so two events' order never flips.
 */
export function normaliseTimestamp(text: string): string | undefined {
  const m = ISO_TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const second = m[6] === undefined ? 0 : Number(m[6]);
  const fraction = m[7] ?? '';
  const zone = (m[8] ?? 'Z').toUpperCase();
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 60) {
    return undefined;
  }
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const leap = second === 60;
  const local = new Date(Date.UTC(2000, 0, 1, hour, minute, leap ? 59 : second));
  local.setUTCFullYear(year, month - 1, day); // Date.UTC alone would map years 0–99 to 1900–1999
  const date = new Date(local.getTime() - offsetMinutes * 60_000);
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() < 1 || date.getUTCFullYear() > 9999) return undefined;
  const base = date.toISOString().slice(0, 19);
  if (leap) return `${base}.999Z`;
  return `${base}.${fraction.slice(0, 3).padEnd(3, '0')}Z`;
}

export const isoDateTime = v.pipe(
  v.string(),
  v.maxLength(40),
  v.check((s) => normaliseTimestamp(s) !== undefined),
  v.transform((s) => normaliseTimestamp(s) ?? s)
);

/** An enum-like field: any short string, so that a value Medblocks adds later is not refused. */
export const openEnum = v.pipe(v.string(), v.maxLength(64));

/** The customer's own patient id: opaque, up to 200 characters. */
export const patientId = opaqueText(MAX_PATIENT_ID_LENGTH);
/** `evt_` + a ULID-style run of ASCII letters and digits: nothing exotic is ever echoed. */
const eventId = v.pipe(v.string(), v.regex(/^evt_[A-Za-z0-9]{1,60}$/));
export const connectionId = prefixedId(['conn_'], 128);
export const sourceId = prefixedId(['fhirsrc_'], 128);
export const flowId = prefixedId(['pf_', 'ps_'], 128);
export const failureCode = v.nullish(v.pipe(v.string(), v.maxLength(MAX_FAILURE_CODE_LENGTH), v.check(isCleanText)));
/** A count: any non-negative integer (the Task builder keeps values beyond FHIR's int32 as decimals). */
export const count = v.pipe(v.number(), v.integer(), v.minValue(0));
/** A duration: the published schema says `number`, so a fractional millisecond count is genuine. */
export const milliseconds = v.pipe(v.number(), v.finite(), v.minValue(0));

/** What a connection item says in every event that carries one (a flow's entries, a refresh failure: contract MB-D4). */
export const connectionShape = {
  connection_id: sourceId,
  status: openEnum,
  failure_code: failureCode,
  failure_at: v.nullish(isoDateTime),
  created_at: isoDateTime,
};

/** The envelope around every payload: Medblocks' event object, with its type and payload schemas (contract MB-D3). */
export function envelope<TType extends v.GenericSchema<string>, TPayload extends v.GenericSchema>(
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

/** What the pipeline and the store read of any event, whatever its type. */
export interface EventEnvelope {
  readonly id: string;
  readonly type: string;
  readonly created_at: string;
}

export type EventParseResult<E> =
  | { readonly ok: true; readonly event: E }
  | {
      readonly ok: false;
      readonly problems: readonly string[];
      /** The field path of the first problem (`data.object.total`), `(root)` for the whole body; never a value. */
      readonly path: string;
    };

/**
 * Validates a parsed JSON value against a variant of event schemas (a bot's own, or every event
 * type's for the tools). Problems name the field path and what was expected, never the value
 * received: they end up in answers to unauthenticated callers.
 */
export function parseEvent<E>(schema: v.GenericSchema<unknown, E>, value: unknown): EventParseResult<E> {
  const result = v.safeParse(schema, withEventDiscriminator(value), { abortPipeEarly: true });
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
 * Deliveries say `object: "event"`; Medblocks' REST records and its API-wide convention say
 * `resource_type: "event"` (reference §3.2). An envelope carrying only the latter is read as the
 * former, so a delivery that follows the convention is not refused; one that says anything else in
 * `object` still is.
 */
function withEventDiscriminator(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const envelope = value as Record<string, unknown>;
  return envelope['object'] === undefined && envelope['resource_type'] === 'event'
    ? { ...envelope, object: 'event' }
    : value;
}

/**
 * The envelope's `id` when it is a well-formed Medblocks event id, else undefined. A quarantined
 * event is keyed by it (so that its redelivery finds its dead-letter) only when it is one: anything
 * else could carry arbitrary text into a FHIR identifier and a log line.
 */
export function usableEventId(value: unknown): string | undefined {
  return v.is(eventId, value) ? value : undefined;
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

/** A value Medblocks sent that this package does not know is named in logs only when it is this tame. */
const SAFE_NAME = /^[a-z][a-z0-9_]{0,31}$/;

/**
 * One log line per unknown connection status in a verified event, so that a status Medblocks adds
 * is noticed and the mapping extended. The status is named only when it is a short lower-case
 * token; anything else is reported as `(not shown)`: log lines become AuditEvent text.
 */
export function unknownStatusNotes(eventId: string, statuses: readonly string[]): string[] {
  const unknown = [...new Set(statuses.filter((s) => !isKnownConnectionStatus(s)))];
  return unknown.map(
    (s) => `medblocks evt=${eventId} note=unknown_connection_status status=${SAFE_NAME.test(s) ? s : '(not shown)'}`
  );
}
