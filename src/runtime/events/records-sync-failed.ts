// records.sync.failed: the patient's Task for that source shows the newest pull as failed, with the
// reason; it heals itself when a later sync completes.
import * as v from 'valibot';
import type { EventHandler } from '../handlers/plan';
import { recordsSyncApplied, recordsSyncReads } from '../handlers/records-sync';
import { WorkingSet } from '../handlers/working-set';
import { recordsSyncTask } from '../fhir/tasks/records-sync';
import { openEnum, patientId, sourceId } from '../medblocks/events';
import { defineEventType } from './define';
import type { EnvelopeOf } from './define';
import { defineSamples, SAMPLE_PATIENT_ID, SAMPLE_SOURCE_A, sampleEnvelope } from './samples';
import type { EnvelopeOverrides } from './samples';

export const RECORDS_SYNC_FAILED = ['records.sync.failed'] as const;

const RecordsSyncFailedSchema = v.looseObject({
  resource_type: v.optional(openEnum),
  patient_id: patientId,
  connection_id: sourceId,
  // Long and free-text: kept, but only ever copied cleaned and cut to a bound (see the Task builder).
  error_message: v.nullish(v.string()),
});

export type RecordsSyncFailedEvent = EnvelopeOf<(typeof RECORDS_SYNC_FAILED)[number], typeof RecordsSyncFailedSchema>;

const handler: EventHandler<RecordsSyncFailedEvent> = {
  reads: recordsSyncReads,
  appliedIn: recordsSyncApplied,
  plan(event, state, context) {
    const sync = event.data.object;
    const work = new WorkingSet(state, context, [recordsSyncTask]);
    const patient = work.resolvePatient(state, sync.patient_id);
    work.report(recordsSyncTask, {
      patientId: sync.patient_id,
      sourceId: sync.connection_id,
      patient,
      result: {
        kind: 'failed',
        message: sync.error_message ?? undefined,
      },
    });
    return work.toPlan(patient);
  },
};

export const recordsSyncFailed = /* @__PURE__ */ defineEventType({
  names: RECORDS_SYNC_FAILED,
  payload: RecordsSyncFailedSchema,
  bot: 'medblocks-records-sync-failed',
  secretName: 'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED',
  policy: { title: 'records sync failed', consents: false },
  taskKinds: [recordsSyncTask],
  handler,
});

/** A records.sync.failed as Medblocks sends it, every field overridable: for tests, the sender and the demo. */
export function sampleRecordsSyncFailed(
  sync: Partial<RecordsSyncFailedEvent['data']['object']> = {},
  envelope: EnvelopeOverrides = {}
): RecordsSyncFailedEvent {
  const createdAt = envelope.created_at ?? '2026-04-25T14:36:12.000Z';
  return sampleEnvelope(
    'records.sync.failed',
    createdAt,
    {
      resource_type: 'records_sync',
      patient_id: SAMPLE_PATIENT_ID,
      connection_id: SAMPLE_SOURCE_A,
      error_message: 'FHIR server returned 503 for Observation search',
      ...sync,
    },
    envelope.id
  );
}

export const recordsSyncFailedSamples = /* @__PURE__ */ defineSamples({
  'records.sync.failed': {
    default: (s) =>
      sampleRecordsSyncFailed({ patient_id: s.patientId, connection_id: s.sourceId }, { created_at: s.at }),
    'no-message': (s) =>
      sampleRecordsSyncFailed(
        { patient_id: s.patientId, connection_id: s.sourceId, error_message: null },
        { created_at: s.at }
      ),
    'long-message': (s) =>
      sampleRecordsSyncFailed(
        { patient_id: s.patientId, connection_id: s.sourceId, error_message: 'upstream timeout; '.repeat(400) },
        { created_at: s.at }
      ),
  },
});
