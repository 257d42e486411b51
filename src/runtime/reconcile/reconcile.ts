// Reconciliation: Medplum converges on what Medblocks knows, without waiting for
// a webhook. Medblocks pushes a connection's `refresh_failed` but never its `expired` or
// `disconnected`, so a Consent would stay `active` after the patient's access ended; and a project
// that adopts the package starts with none of the patients and connections Medblocks already has.
//
// For each patient (`GET /patients`, or the ones asked for) it reads `GET /patients/{id}` and plans
// each connection exactly as the bots would (the same WorkingSet, codecs and newest-wins ordering),
// then writes with the bots' own store functions. How a snapshot ranks against events: a connection
// stands for an event stamped with its `updated_at` (the moment Medblocks changed it) and the id
// `reconcile:<conn id>`. An event applied after that moment wins; the snapshot wins over events
// before it, and over one at the very same instant (the snapshot has seen that event's effect). So
// a second run writes nothing, and an interrupted run is resumed by running it again.
import { randomUUID } from 'node:crypto';
import type { MedplumClient } from '@medplum/core';
import { asCode, SYSTEM, TASK_KEY, token } from '../fhir/systems';
import type { EventStamp } from '../fhir/stamp';
import { consentStatusFor } from '../handlers/connection-status';
import type { PlannedWrite, ReadRequest } from '../handlers/plan';
import { reportMedblocksConnection } from '../handlers/medblocks-connection';
import { WorkingSet } from '../handlers/working-set';
import { followUpTask } from '../fhir/tasks/follow-up';
import { reconnectTask } from '../fhir/tasks/reconnect';
import { normaliseTimestamp } from '../medblocks/events';
import type { MedblocksPatientConnection, PatientSource } from '../medblocks/patients';
import type { BotSettings } from '../settings';
import { readState } from '../store/read';
import { writePlan } from '../store/write';

/** What reporting a connection writes: reconnect Tasks, and the follow-ups an activation completes. */
const TASK_KINDS = [reconnectTask, followUpTask];

/** Attempts per connection when a concurrent writer (a bot, another run) changed what was read. */
const MAX_ATTEMPTS = 3;

export interface ReconcileOptions {
  readonly medplum: MedplumClient;
  /** Medblocks' patients: the tools' API client, or the scheduled bot's over `fetch`. */
  readonly api: PatientSource;
  readonly settings: BotSettings;
  readonly dryRun: boolean;
  /** Only these patients (Medblocks patient ids); every patient of the workspace by default. */
  readonly patientIds?: readonly string[];
  /** Progress: connection ids, statuses and what changes; never a patient id or other PHI. */
  readonly print: (line: string) => void;
  /** Called once the patients are known, before the first is read. */
  readonly onStart?: (total: number) => void;
  /** Called after each patient: how far the run is (the CLI turns it into a line with an estimate). */
  readonly onPatientDone?: (done: number, total: number) => void;
  /** Stop before the next patient once this returns true (the scheduled bot's time budget). */
  readonly shouldStop?: () => boolean;
}

export interface ReconcileSummary {
  readonly patients: number;
  /** Patients not reached because the run was told to stop; the next run starts again (idempotent). */
  readonly notReached: number;
  readonly connections: number;
  /** Connections whose Consent or Tasks were (or, in a dry run, would be) written. */
  readonly changed: number;
  /** Connections with a status this package does not know: left as they are (connection-status.ts). */
  readonly unknownStatus: number;
  readonly writes: number;
}

/** The stamp a snapshot of one connection carries (see the header). */
export function snapshotStamp(
  connection: Pick<MedblocksPatientConnection, 'id' | 'updated_at'>
): EventStamp | undefined {
  const at = normaliseTimestamp(connection.updated_at);
  return at ? { at, eventId: `reconcile:${connection.id}` } : undefined;
}

function describeWrites(writes: readonly PlannedWrite[]): string {
  return writes.map((w) => `${w.kind} ${w.resource.resourceType}`).join(', ');
}

/** Plans (and unless a dry run writes) one connection as the bots would; returns the writes planned. */
async function reconcileConnection(
  options: ReconcileOptions,
  patientId: string,
  connection: MedblocksPatientConnection,
  stamp: EventStamp
): Promise<readonly PlannedWrite[] | 'unknown-status'> {
  // An unknown status changes nothing (connection-status.ts): nothing to read or write.
  if (consentStatusFor(connection.status) === undefined) return 'unknown-status';
  const key = { system: SYSTEM.connectionId, value: connection.id };
  const createdAt = normaliseTimestamp(connection.created_at) ?? stamp.at;
  const failureAt = connection.failure_at ? normaliseTimestamp(connection.failure_at) : undefined;
  const reads: ReadRequest = {
    // No event is applied: no marker is read (the reconciler's policy grants none).
    eventId: undefined,
    patientId,
    withPatientRecords: true,
    consentTokens: [token(key.system, key.value)],
    consentsWithPatientRecords: false,
    taskKeys: [TASK_KEY.reconnect(connection.id)],
    sourceIds: [connection.connection_id],
  };
  const counter = { requests: 0 };
  for (let attempt = 1; ; attempt++) {
    const state = await readState(options.medplum, reads, counter);
    const work = new WorkingSet(
      state,
      { stamp, settings: options.settings, newUuid: randomUUID, appliedAt: stamp.at },
      TASK_KINDS
    );
    const patient = work.resolvePatient(state, patientId);
    reportMedblocksConnection(
      work,
      {
        key,
        connectionId: connection.id,
        reconnectId: connection.id,
        sourceId: connection.connection_id,
        status: connection.status,
        createdAt,
        endedAt: failureAt ?? stamp.at,
        failureCodes: [asCode(connection.failure_code)].filter((c): c is string => c !== undefined),
      },
      patient
    );
    work.reconcile();
    const { writes } = work.toPlan(patient);
    if (options.dryRun || writes.length === 0) return writes;
    const written = await writePlan(options.medplum, writes, counter);
    if (written.conflicts.length === 0) return writes;
    if (attempt >= MAX_ATTEMPTS) {
      throw new Error(
        `connection ${connection.id}: Medplum kept refusing the writes as conflicting (${String(attempt)} attempts); run reconcile again`
      );
    }
  }
}

/** Runs the reconciliation; one line per connection that changes, a summary at the end. */
export async function reconcile(options: ReconcileOptions): Promise<ReconcileSummary> {
  const patientIds = options.patientIds ?? (await options.api.listPatientIds());
  let connections = 0;
  let changed = 0;
  let unknownStatus = 0;
  let writes = 0;
  let reached = 0;
  options.onStart?.(patientIds.length);
  for (const [index, patientId] of patientIds.entries()) {
    if (index > 0 && options.shouldStop?.()) break;
    reached++;
    const detail = await options.api.getPatient(patientId);
    for (const connection of detail.connections) {
      connections++;
      const stamp = snapshotStamp(connection);
      if (!stamp) {
        options.print(`skip  ${connection.id}: updated_at is not a timestamp`);
        continue;
      }
      const planned = await reconcileConnection(options, patientId, connection, stamp);
      if (planned === 'unknown-status') {
        unknownStatus++;
        continue;
      }
      if (planned.length === 0) continue;
      changed++;
      writes += planned.length;
      options.print(
        `${options.dryRun ? 'plan ' : 'wrote'} ${connection.id} (${connection.status}, updated ${stamp.at}): ${describeWrites(planned)}`
      );
    }
    options.onPatientDone?.(index + 1, patientIds.length);
  }
  return {
    patients: patientIds.length,
    notReached: patientIds.length - reached,
    connections,
    changed,
    unknownStatus,
    writes,
  };
}

/** The closing line: what was (or would be) done. */
export function formatReconcileSummary(summary: ReconcileSummary, dryRun: boolean): string {
  const what =
    summary.changed === 0
      ? 'nothing to change: Medplum already says what Medblocks says'
      : `${String(summary.changed)} connection(s) ${dryRun ? 'would change' : 'changed'} (${String(summary.writes)} write(s))`;
  const unknown =
    summary.unknownStatus > 0
      ? `; ${String(summary.unknownStatus)} with a status this package does not know, left as they are`
      : '';
  const stopped =
    summary.notReached > 0 ? `; stopped before ${String(summary.notReached)} patient(s), the next run covers them` : '';
  return `${dryRun ? 'Dry run: ' : ''}${String(summary.patients)} patient(s), ${String(summary.connections)} connection(s): ${what}${unknown}${stopped}.`;
}
