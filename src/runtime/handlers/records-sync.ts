// What both records-sync events read: the one Task per patient and source that shows the newest
// pull (events/records-sync-completed.ts and events/records-sync-failed.ts plan its two outcomes).
import { TASK_KEY } from '../fhir/systems';
import type { ReadRequest } from './plan';

/** The sync Task of this patient and source, and the source's name. */
export function recordsSyncReads(event: {
  readonly id: string;
  readonly data: { readonly object: { readonly patient_id: string; readonly connection_id: string } };
}): ReadRequest {
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
