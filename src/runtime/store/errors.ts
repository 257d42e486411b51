// FHIR failures, classified so that the one log line and the answer can say what happened without
// echoing anything the server said (an OperationOutcome can quote resource content).
import { getStatus, isOperationOutcome } from '@medplum/core';
import { fhirFailedMessage } from '../summary';

export type FhirFailureClass =
  'conflict' | 'access_denied' | 'rate_limited' | 'server_error' | 'bad_request' | 'not_found' | 'network' | 'deadline';

export class FhirFailureError extends Error {
  readonly failureClass: FhirFailureClass;
  readonly status: number | undefined;
  constructor(failureClass: FhirFailureClass, status: number | undefined, phase: 'read' | 'write' | 'marker') {
    super(fhirFailedMessage(phase, failureClass, status));
    this.name = 'FhirFailureError';
    this.failureClass = failureClass;
    this.status = status;
  }
}

export function classifyStatus(status: number | undefined): FhirFailureClass {
  if (status === undefined) return 'network';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 401 || status === 403) return 'access_denied';
  if (status === 404 || status === 410) return 'not_found';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server_error';
  return 'bad_request';
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
