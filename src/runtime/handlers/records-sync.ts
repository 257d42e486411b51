// What both records-sync events read: the one Task per patient and source that shows the newest
// pull (events/records-sync-completed.ts and events/records-sync-failed.ts plan its two outcomes),
// and how a delivery knows it was applied: that Task bears its event's stamp.
import { readStamp } from '../fhir/stamp';
import { EXTENSION, SYSTEM, TASK_KEY } from '../fhir/systems';
import type { DeliveryState, ReadRequest } from './plan';

interface RecordsSyncEvent {
  readonly id: string;
  readonly created_at: string;
  readonly data: { readonly object: { readonly patient_id: string; readonly connection_id: string } };
}

/** The sync Task of this patient and source, and the source's name. */
export function recordsSyncReads(event: RecordsSyncEvent): ReadRequest {
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

/**
 * A sync event was applied exactly when its Task's `last-applied-event` names it: applying it writes
 * that stamp in the same version as the outcome, so the stamp cannot say "applied" without the work,
 * nor the work stand without the stamp. Once a newer sync has been applied the stamp names that one,
 * and a redelivery of this event is then stale: planned against the newer state, it changes nothing.
 */
export function recordsSyncApplied(event: RecordsSyncEvent, state: DeliveryState): boolean {
  const key = TASK_KEY.recordsSync(event.data.object.patient_id, event.data.object.connection_id);
  return state.tasks.some((task) => {
    if (!task.identifier?.some((i) => i.system === SYSTEM.taskKey && i.value === key)) return false;
    const stamp = readStamp(task, EXTENSION.lastEvent);
    return stamp?.eventId === event.id && Date.parse(stamp.at) === Date.parse(event.created_at);
  });
}
