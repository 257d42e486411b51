// One connection as Medblocks reports it — a flow's entry, or a patient's connection read by the
// reconciliation — applied to the working set by the mapping contract, in one place: its Consent
// with the status it maps to, and for `refresh_failed` a reconnect Task. Its own module so that only
// the bundles that report connections carry the reconnect kind.
import type { Reference } from '@medplum/fhirtypes';
import { TASK_KEY } from '../fhir/systems';
import { reconnectTask } from '../fhir/tasks/reconnect';
import type { ConnectionStatus, KnownConnectionStatus } from '../medblocks/events';
import { consentStatusFor } from './connection-status';
import type { WorkingSet } from './working-set';

export interface MedblocksConnectionReport {
  readonly key: { readonly system: string; readonly value: string };
  /** Its `conn_` id, when it has one: a reconnect Task of that id gets the patient. */
  readonly connectionId: string | null | undefined;
  /** What its reconnect Task is keyed by: the `conn_` id, or the attempt key when there is none. */
  readonly reconnectId: string;
  readonly sourceId: string;
  readonly status: ConnectionStatus;
  readonly createdAt: string;
  /** When an inactive connection ended: `failure_at`, else the report's own time. */
  readonly endedAt: string;
  readonly failureCodes: readonly string[];
}

/**
 * Reports a connection with the status Medblocks gives it (handlers/connection-status.ts); an
 * unknown status changes nothing. Returns whether the status was one this package knows, so the
 * caller can log the ones it does not.
 */
export function reportMedblocksConnection(
  work: WorkingSet,
  report: MedblocksConnectionReport,
  patient: Reference
): boolean {
  if (report.connectionId) work.linkPatient(TASK_KEY.reconnect(report.connectionId), patient);
  const status = consentStatusFor(report.status);
  if (status === undefined) return false;
  const active = status === 'active';
  work.reportConnection({
    key: report.key,
    sourceId: report.sourceId,
    patient,
    status,
    connectionCreatedAt: report.createdAt,
    periodEnd: active ? undefined : report.endedAt,
    failureCodes: report.failureCodes,
    isActivation: active,
  });
  if (report.status === ('refresh_failed' satisfies KnownConnectionStatus)) {
    work.report(reconnectTask, {
      connectionId: report.reconnectId,
      sourceId: report.sourceId,
      consent: work.consentReference(report.key),
      patient,
    });
  }
  return true;
}
