// FHIR failures, classified (src/runtime/failures.ts) so that the one log line and the answer can
// say what happened without echoing anything the server said (an OperationOutcome can quote
// resource content).
import { getStatus, isOperationOutcome } from '@medplum/core';
import { ClassifiedFailure, reasonOfFhirStatus } from '../failures';
import type { FhirPhase, TransientReason } from '../failures';
import { fhirFailedMessage } from '../summary';

/** What a FHIR request's failure means for the delivery: transient, or a refused write of what the event produced. */
export type FhirFailureReason = TransientReason | 'invalid_resource';

export class FhirFailureError extends ClassifiedFailure {
  readonly reason: FhirFailureReason;
  readonly status: number | undefined;
  readonly phase: FhirPhase;
  constructor(reason: FhirFailureReason, status: number | undefined, phase: FhirPhase) {
    super(fhirFailedMessage(phase, reason, status));
    this.name = 'FhirFailureError';
    this.reason = reason;
    this.status = status;
    this.phase = phase;
  }

  /** The error for a FHIR answer with this status in this phase, classified by the failure table. */
  static of(status: number | undefined, phase: FhirPhase): FhirFailureError {
    return new FhirFailureError(reasonOfFhirStatus(status, phase), status, phase);
  }
}

/** The reason for a status outside any delivery (the sweeper's deletes): a 400 there is no event's fault. */
export function classifyStatus(status: number | undefined): FhirFailureReason {
  return reasonOfFhirStatus(status, 'read');
}

/** The HTTP status behind whatever MedplumClient threw; undefined for network-level failures. */
export function statusOfError(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'outcome' in err && isOperationOutcome(err.outcome)) {
    return getStatus(err.outcome);
  }
  if (isOperationOutcome(err)) {
    return getStatus(err);
  }
  return undefined;
}

/** Bundle entry statuses look like "201" or "201 Created". */
export function parseEntryStatus(status: string | undefined): number | undefined {
  const match = /^\s*(\d{3})/.exec(status ?? '');
  return match ? Number(match[1]) : undefined;
}
