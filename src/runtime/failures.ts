// Every way a delivery can fail, in one table: its class, the HTTP answer Medblocks receives, and
// what the user does about it. The pipeline decides from this table alone (webhook-bot.ts), the
// store maps FHIR statuses to its reasons here (store/errors.ts), and the README's troubleshooting
// section is this table rendered (`failureTableMarkdown`), so a test can hold them together.
//
// The three classes follow from what Medblocks does with an answer outside 2xx: it retries the event
// 9 times over about 3.6 days and then disables the whole endpoint, silently.
//  - rejected: not from Medblocks, or this endpoint is misconfigured. Non-2xx and loud on purpose;
//    no FHIR request is made.
//  - transient: the FHIR server could not do it now. Non-2xx, nothing marked applied: Medblocks'
//    retry completes the work.
//  - permanent: a genuine event that cannot be applied as it is. Retrying would only get the endpoint
//    disabled, so it is answered 2xx `quarantined` and kept as a dead-letter Task until redelivered.
//    A transient failure of a verified event becomes permanent (`retries_exhausted`) once the event
//    is older than ESCALATE_AFTER_MS: whatever fails after verification, no event can disable it.

export type FailureClass = 'rejected' | 'transient' | 'permanent';

/**
 * When a verified event's transient failure is quarantined instead of answered non-2xx. Medblocks
 * attempts an event at 0, +1 m, +5 m, +30 m, +2 h, +12 h, +24 h, +24 h, +24 h from its creation
 * (about 3.6 days), then disables the endpoint. At 24 h the first six attempts (14.6 h of outages,
 * deploys and conflicts) have failed; the seventh (38.6 h) is quarantined, leaving two more attempts
 * (62.6 h, 86.6 h) in case the dead-letter itself cannot be written at the seventh.
 */
export const ESCALATE_AFTER_MS = 24 * 60 * 60 * 1000;

export interface FailureRow {
  readonly failureClass: FailureClass;
  /** The HTTP status Medblocks receives (Medplum answers a throwing bot with 400). */
  readonly http: 200 | 400;
  /** What happened, in the user's words. */
  readonly meaning: string;
  /** What to do about it. */
  readonly whatToDo: string;
}

const REJECTED = { failureClass: 'rejected', http: 400 } as const;
const TRANSIENT = { failureClass: 'transient', http: 400 } as const;
const PERMANENT = { failureClass: 'permanent', http: 200 } as const;

/** The one classification. Order is the README's order. */
export const FAILURES = {
  missing_header: {
    ...REJECTED,
    meaning: 'No Medblocks-Signature header: the request did not come from Medblocks.',
    whatToDo: 'Nothing if it is not Medblocks. If it is, a proxy in front of Medplum drops the header: let it through.',
  },
  malformed_header: {
    ...REJECTED,
    meaning: 'The Medblocks-Signature header is not `t=<seconds>,v1=<hex>`.',
    whatToDo: 'Nothing if it is not Medblocks; otherwise check that no proxy rewrites the header.',
  },
  timestamp_out_of_tolerance: {
    ...REJECTED,
    meaning: 'The signature is older or newer than the allowed window (300 s by default).',
    whatToDo:
      'Check the Medplum server clock (NTP). Raise MEDBLOCKS_SIGNATURE_TOLERANCE_SECONDS only if clocks cannot be fixed.',
  },
  signature_mismatch: {
    ...REJECTED,
    meaning: 'The signature matches no configured signing secret.',
    whatToDo:
      'Set the bot’s signing-secret project secret to the endpoint’s current `whsec_…` (after a rotation, list old and new, comma-separated).',
  },
  no_secret_configured: {
    ...REJECTED,
    meaning: 'The bot’s signing-secret project secret is not set.',
    whatToDo: 'Set it (Project Admin → Secrets, or `npm run provision`).',
  },
  body_not_raw: {
    ...REJECTED,
    meaning: 'The bot received parsed JSON, so the signature cannot be checked over the exact bytes.',
    whatToDo: 'Set Bot.rawBody to true (Medplum 5.2+), e.g. by re-running `npm run provision`.',
  },
  body_too_large: {
    ...REJECTED,
    meaning: 'The body is larger than any Medblocks delivery (256 KB).',
    whatToDo: 'Nothing if it is not Medblocks; otherwise report it with the event id.',
  },
  unexpected_event_type: {
    ...REJECTED,
    meaning: 'A genuine event of a type this bot does not handle: the endpoint is subscribed to the wrong events.',
    whatToDo:
      'Point each Medblocks endpoint at the bot of its event type (`npm run provision`, then `npm run monitor`), then redeliver.',
  },
  conflict: {
    ...TRANSIENT,
    meaning: 'Concurrent deliveries kept conflicting beyond the retry budget.',
    whatToDo: 'Nothing: Medblocks’ retry completes it. Persistent conflicts: report them.',
  },
  server_error: {
    ...TRANSIENT,
    meaning: 'The FHIR server answered 5xx (or an unreadable answer).',
    whatToDo: 'Check the Medplum server; Medblocks’ retry completes the work once it is healthy.',
  },
  rate_limited: {
    ...TRANSIENT,
    meaning: 'The FHIR server answered 429.',
    whatToDo: 'Nothing usually; if it persists, raise the project’s rate limits.',
  },
  network: {
    ...TRANSIENT,
    meaning: 'The FHIR server could not be reached.',
    whatToDo: 'Check the Medplum server and its network; Medblocks’ retry completes the work.',
  },
  deadline: {
    ...TRANSIENT,
    meaning: 'The delivery ran out of time before its writes were done.',
    whatToDo: 'Nothing if rare: Medblocks’ retry completes it. Often: check the FHIR server’s latency.',
  },
  access_denied: {
    ...TRANSIENT,
    meaning: 'The FHIR server refused a request (401/403): the bot’s access policy lacks a grant.',
    whatToDo: 'Re-apply access-policies/ (`npm run provision`); Medblocks’ retry then completes it.',
  },
  not_found: {
    ...TRANSIENT,
    meaning: 'The FHIR server answered 404/410 where a resource was expected.',
    whatToDo: 'Usually a concurrent deletion; Medblocks’ retry re-reads. Persistent: check the access policy.',
  },
  bad_request: {
    ...TRANSIENT,
    meaning: 'The FHIR server refused a search or answered an unexpected 4xx.',
    whatToDo: 'Check the Medplum server version (see the README requirements); redeliver after fixing.',
  },
  internal: {
    ...TRANSIENT,
    meaning: 'An unexpected error in the bot.',
    whatToDo: 'Report it with the event id (from the AuditEvent); Medblocks retries it.',
  },
  invalid_payload: {
    ...PERMANENT,
    meaning: 'A genuine event this package cannot read (a field missing or of the wrong type, or not JSON at all).',
    whatToDo:
      'Open the dead-letter Task (it names the field path); update the bots if Medblocks changed its payload, then `npm run redeliver -- --quarantined`.',
  },
  patient_not_found: {
    ...PERMANENT,
    meaning: 'No Patient matches the event’s patient_id and MEDBLOCKS_CREATE_MISSING_PATIENTS is false.',
    whatToDo:
      'Create the Patient (identifier urn:medblocks:patient-id) or set MEDBLOCKS_CREATE_MISSING_PATIENTS=true, then `npm run redeliver -- --quarantined`.',
  },
  retries_exhausted: {
    ...PERMANENT,
    meaning:
      'A genuine event kept failing (the dead-letter names the cause) for 24 h of Medblocks’ retries; quarantined before the endpoint’s last attempts could fail and disable it.',
    whatToDo:
      'Fix the cause named in the dead-letter Task (a bug: report it with the event id), then `npm run redeliver -- --quarantined`.',
  },
  invalid_resource: {
    ...PERMANENT,
    meaning: 'Medplum’s validator refused a resource built from the event (400/422 on a write).',
    whatToDo:
      'Check the project’s profiles and validation settings; report it with the event id; redeliver after the fix.',
  },
} as const satisfies Record<string, FailureRow>;

export type FailureReason = keyof typeof FAILURES;
type ReasonOfClass<C extends FailureClass> = {
  [K in FailureReason]: (typeof FAILURES)[K]['failureClass'] extends C ? K : never;
}[FailureReason];
export type RejectedReason = ReasonOfClass<'rejected'>;
export type TransientReason = ReasonOfClass<'transient'>;
export type PermanentReason = ReasonOfClass<'permanent'>;

/** Every reason, in table order. */
export const FAILURE_REASONS = Object.keys(FAILURES) as FailureReason[];

export function isFailureReason(value: string): value is FailureReason {
  return Object.hasOwn(FAILURES, value);
}

const OUTCOME_PREFIX = { rejected: 'rejected', transient: 'failed', permanent: 'quarantined' } as const;

/** The summary-line outcome of one failure reason, as a literal: `failed:conflict`, `quarantined:patient_not_found`. */
export type FailureOutcome<R extends FailureReason = FailureReason> = R extends FailureReason
  ? `${(typeof OUTCOME_PREFIX)[(typeof FAILURES)[R]['failureClass']]}:${R}`
  : never;

/**
 * The summary-line outcome of a failure: `rejected:<reason>`, `failed:<reason>` (transient) or
 * `quarantined:<reason>` (permanent). Derived from the class so that the log can never say a
 * delivery was retried when it was quarantined.
 */
export function outcomeOfFailure<R extends FailureReason>(reason: R): FailureOutcome<R> {
  // The template the type spells out, which the compiler cannot follow through the table lookup.
  return `${OUTCOME_PREFIX[FAILURES[reason].failureClass]}:${reason}` as FailureOutcome<R>;
}

/**
 * A failure the pipeline knows how to answer: its reason is a row of FAILURES. The message is what
 * a caller and Medblocks' dashboard see, so subclasses put only ids, types and field paths in it.
 */
export abstract class ClassifiedFailure extends Error {
  abstract readonly reason: FailureReason;
  /** A field path of the event (`data.object.total`), never a value. */
  readonly path: string | undefined;
  constructor(message: string, path?: string) {
    super(message);
    this.path = path;
  }
}

/** The FHIR phases a request belongs to; a refused write is a permanent failure, a refused read is not. */
export type FhirPhase = 'read' | 'write' | 'marker' | 'dead-letter';

/**
 * The failure reason for a FHIR status. Conflicts are retried by the pipeline before this applies.
 * Only a write of what the event produced can be invalid_resource: a 400 on a search or on the
 * dead-letter itself is not the event's fault, so it stays transient.
 */
export function reasonOfFhirStatus(status: number | undefined, phase: FhirPhase): TransientReason | 'invalid_resource' {
  if (status === undefined) return 'network';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 401 || status === 403) return 'access_denied';
  if (status === 404 || status === 410) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server_error';
  if ((status === 400 || status === 422) && (phase === 'write' || phase === 'marker')) return 'invalid_resource';
  return 'bad_request';
}

const CLASS_TEXT: Record<FailureClass, string> = {
  rejected: 'rejected',
  transient: 'transient (retried)',
  permanent: 'permanent (quarantined)',
};

/** The table as the README shows it: reason, class, HTTP answer, meaning, what to do. */
export function failureTableMarkdown(): string {
  const rows = FAILURE_REASONS.map((reason) => {
    const row: FailureRow = FAILURES[reason];
    const http = row.http === 200 ? '200 `quarantined`' : String(row.http);
    return `| \`${reason}\` | ${CLASS_TEXT[row.failureClass]} | ${http} | ${row.meaning} | ${row.whatToDo} |`;
  });
  return ['| reason | class | HTTP answer | what happened | what to do |', '|---|---|---|---|---|', ...rows].join('\n');
}
