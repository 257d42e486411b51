// The two texts a run leaves behind, in one place because tools read them back:
//  - the summary line, one per run, which Medplum stores as the run's AuditEvent.outcomeDesc
//    (`npm run monitor` parses it);
//  - the failure message a bot throws, which a real Medplum server answers with as the 400 body's
//    only text (ledger ANS-1), so it is all a caller learns (the demo, `npm run verify` and the
//    sender parse it back into an outcome).
// Both carry ids, types, outcomes and counts only: they reach AuditEvents, an unauthenticated
// caller, and Medblocks' dashboard.
import type { FailureOutcome, TransientReason } from './failures';
import type { FhirFailureReason } from './store/errors';

/**
 * What a run says it ended as, in its summary line: `processed` | `duplicate` | `stale` |
 * `rejected:<reason>` | `failed:<reason>` | `quarantined:<reason>` (the reasons are the failure
 * table's, src/runtime/failures.ts, so an outcome no row explains does not compile) — for a
 * delivery quarantined after a day of retries also the recurring cause; the sweeper's `swept` or
 * `failed:<reason>`. Parsers of a line someone else wrote return plain strings.
 */
export type Outcome =
  | 'processed'
  | 'duplicate'
  | 'stale'
  | FailureOutcome
  | `${FailureOutcome<'retries_exhausted'>} cause=${TransientReason}`
  | SweepOutcome;

/** The sweeper's: done (`swept`), or stopped by a FHIR failure, named by its failure-table reason. */
export type SweepOutcome = 'swept' | `failed:${FhirFailureReason}`;

export interface DeliverySummary {
  readonly eventId: string;
  readonly type: string;
  readonly outcome: Outcome;
  readonly fhirRequests: number;
  readonly ms: number;
}

/** `medblocks evt=… type=… outcome=… fhir_requests=… ms=…` — the one line per delivery. */
export function formatDeliverySummary(s: DeliverySummary): string {
  return `medblocks evt=${s.eventId} type=${s.type} outcome=${s.outcome} fhir_requests=${String(s.fhirRequests)} ms=${String(Math.round(s.ms))}`;
}

/** What a marker sweep ended as: the sweeper bot's answer, and the counts its summary line shows. */
export interface SweepSummary {
  /** `swept` when the run finished cleanly (even with work left), `failed:<reason>` otherwise. */
  readonly status: SweepOutcome;
  readonly cutoff: string;
  readonly retentionDays: number;
  readonly deleted: number;
  readonly failed: number;
  /** True when the run stopped on a limit with expired markers possibly left: the next run continues. */
  readonly more: boolean;
}

/**
 * The sweeper's line, counts only: `medblocks-sweeper cutoff=… outcome=… deleted=… failed=… more=…
 * fhir_requests=… ms=…` (the outcome is the sweep's `status`).
 */
export function formatSweepSummary(s: SweepSummary, fhirRequests: number, ms: number): string {
  return (
    `medblocks-sweeper cutoff=${s.cutoff} outcome=${s.status} deleted=${String(s.deleted)} ` +
    `failed=${String(s.failed)} more=${String(s.more)} fhir_requests=${String(fhirRequests)} ms=${String(Math.round(ms))}`
  );
}

const SUMMARY_OUTCOME = /^medblocks(?:-sweeper)? .*?\boutcome=(\S+)/gm;

/** The outcome of the last summary line in a run's console output (AuditEvent.outcomeDesc). */
export function outcomeOfConsole(outcomeDesc: string | undefined): string | undefined {
  const matches = [...(outcomeDesc ?? '').matchAll(SUMMARY_OUTCOME)];
  return matches.at(-1)?.[1];
}

/** Thrown when a delivery is refused before any FHIR request. */
export function rejectedMessage(reason: string, detail?: string): string {
  return detail ? `Delivery rejected: ${reason}: ${detail}` : `Delivery rejected: ${reason}`;
}

/** The text of a verified event that cannot be applied as it is (quarantined), or of an internal error. */
export function notAppliedMessage(reason: string, detail: string): string {
  return `Delivery not applied: ${reason}: ${detail}`;
}

/** Thrown when the FHIR server failed; nothing was marked applied. */
export function fhirFailedMessage(phase: string, reason: string, status: number | undefined): string {
  return `FHIR ${phase} failed: ${reason}${status ? ` (HTTP ${String(status)})` : ''}; nothing was marked applied, so a Medblocks retry will complete it`;
}

const FAILURE_OUTCOMES: readonly [RegExp, (m: RegExpExecArray) => string][] = [
  [/^Delivery rejected: ([a-z_]+)/, (m) => `rejected:${m[1] ?? ''}`],
  [/^Delivery not applied: ([a-z_]+):/, (m) => `failed:${m[1] ?? ''}`],
  [/^FHIR (?:read|write|marker|dead-letter) failed: ([a-z_]+)/, (m) => `failed:${m[1] ?? ''}`],
];

/** The outcome a thrown message stands for (the inverse of the three builders above). */
export function outcomeOfFailureMessage(message: string): string | undefined {
  for (const [pattern, outcome] of FAILURE_OUTCOMES) {
    const match = pattern.exec(message);
    if (match) return outcome(match);
  }
  return undefined;
}

/**
 * The bot's outcome from a webhook answer: the `status` of a 200 JSON answer (`quarantined:<reason>`
 * for a quarantine, as the summary line says it), or, for a 400, the outcome its OperationOutcome's
 * message stands for. `unknown` when the answer is neither.
 */
export function outcomeOfAnswer(httpStatus: number | undefined, body: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return 'unknown';
  }
  if (typeof parsed !== 'object' || parsed === null) return 'unknown';
  if (httpStatus !== undefined && httpStatus >= 200 && httpStatus < 300) {
    const { status, reason } = parsed as { status?: unknown; reason?: unknown };
    if (status === 'quarantined' && typeof reason === 'string') return `quarantined:${reason}`;
    return typeof status === 'string' ? status : 'unknown';
  }
  const issues = (parsed as { issue?: { details?: { text?: unknown } }[] }).issue ?? [];
  for (const issue of issues) {
    const text = issue.details?.text;
    // Some runtimes answer with the run's console output instead (Lambda passes its own error
    // through): then the summary line in it says the outcome.
    const outcome = typeof text === 'string' ? (outcomeOfFailureMessage(text) ?? outcomeOfConsole(text)) : undefined;
    if (outcome) return outcome;
  }
  return 'unknown';
}
