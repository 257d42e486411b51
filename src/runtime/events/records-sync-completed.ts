// records.sync.completed: the patient's Task for that source shows the newest pull as completed,
// with its counts; a later success flips a failed Task back to completed.
import * as v from 'valibot';
import type { EventHandler } from '../handlers/plan';
import { recordsSyncApplied, recordsSyncReads } from '../handlers/records-sync';
import { WorkingSet } from '../handlers/working-set';
import { recordsSyncTask } from '../fhir/tasks/records-sync';
import { count, milliseconds, openEnum, patientId, sourceId } from '../medblocks/events';
import { defineEventType } from './define';
import type { EnvelopeOf } from './define';
import { defineSamples, SAMPLE_PATIENT_ID, SAMPLE_SOURCE_A, sampleEnvelope } from './samples';
import type { EnvelopeOverrides } from './samples';

export const RECORDS_SYNC_COMPLETED = ['records.sync.completed'] as const;

const RecordsSyncCompletedSchema = v.looseObject({
  resource_type: v.optional(openEnum),
  patient_id: patientId,
  connection_id: sourceId,
  total: count,
  errors: count,
  duration_ms: v.nullish(milliseconds),
});

export type RecordsSyncCompletedEvent = EnvelopeOf<
  (typeof RECORDS_SYNC_COMPLETED)[number],
  typeof RecordsSyncCompletedSchema
>;

const handler: EventHandler<RecordsSyncCompletedEvent> = {
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
        kind: 'completed',
        total: sync.total,
        errors: sync.errors,
        durationMs: sync.duration_ms ?? undefined,
      },
    });
    return work.toPlan(patient);
  },
};

export const recordsSyncCompleted = /* @__PURE__ */ defineEventType({
  names: RECORDS_SYNC_COMPLETED,
  payload: RecordsSyncCompletedSchema,
  bot: 'medblocks-records-sync-completed',
  secretName: 'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_COMPLETED',
  policy: { title: 'records sync completed', consents: false },
  taskKinds: [recordsSyncTask],
  handler,
});

/** A records.sync.completed as Medblocks sends it, every field overridable: for tests, the sender and the demo. */
export function sampleRecordsSyncCompleted(
  sync: Partial<RecordsSyncCompletedEvent['data']['object']> = {},
  envelope: EnvelopeOverrides = {}
): RecordsSyncCompletedEvent {
  const createdAt = envelope.created_at ?? '2026-04-25T14:36:12.000Z';
  return sampleEnvelope(
    'records.sync.completed',
    createdAt,
    {
      resource_type: 'records_sync',
      patient_id: SAMPLE_PATIENT_ID,
      connection_id: SAMPLE_SOURCE_A,
      total: 1342,
      errors: 0,
      duration_ms: 48211,
      ...sync,
    },
    envelope.id
  );
}

export const recordsSyncCompletedSamples = /* @__PURE__ */ defineSamples({
  'records.sync.completed': {
    default: (s) =>
      sampleRecordsSyncCompleted({ patient_id: s.patientId, connection_id: s.sourceId }, { created_at: s.at }),
    'with-errors': (s) =>
      sampleRecordsSyncCompleted(
        { patient_id: s.patientId, connection_id: s.sourceId, errors: 3 },
        { created_at: s.at }
      ),
  },
});
