// records.sync.completed / records.sync.failed: one Task per patient and source shows the newest
// pull and heals itself — a later success flips a failed Task back to completed.
import { TASK_KEY } from '../fhir/systems';
import type { RecordsSyncCompletedEvent, RecordsSyncFailedEvent } from '../medblocks/events';
import type { EventHandler, ReadRequest } from './plan';
import { WorkingSet } from './working-set';

function syncReads(event: RecordsSyncCompletedEvent | RecordsSyncFailedEvent): ReadRequest {
  const sync = event.data.object;
  return {
    eventId: event.id,
    patientId: sync.patient_id,
    withPatientRecords: false,
    consentTokens: [],
    consentsWithPatientRecords: false,
    taskKeys: [TASK_KEY.recordsSync(sync.patient_id, sync.connection_id)],
    sourceIds: [sync.connection_id],
  };
}

export const recordsSyncCompleted: EventHandler<RecordsSyncCompletedEvent> = {
  reads: syncReads,
  plan(event, state, context) {
    const sync = event.data.object;
    const work = new WorkingSet(state, context);
    const patient = work.resolvePatient(state, sync.patient_id);
    work.reportSync(sync.patient_id, sync.connection_id, patient, {
      kind: 'completed',
      total: sync.total,
      errors: sync.errors,
      durationMs: sync.duration_ms ?? undefined,
    });
    return work.toPlan(patient);
  },
};

export const recordsSyncFailed: EventHandler<RecordsSyncFailedEvent> = {
  reads: syncReads,
  plan(event, state, context) {
    const sync = event.data.object;
    const work = new WorkingSet(state, context);
    const patient = work.resolvePatient(state, sync.patient_id);
    work.reportSync(sync.patient_id, sync.connection_id, patient, {
      kind: 'failed',
      message: sync.error_message ?? undefined,
    });
    return work.toPlan(patient);
  },
};
