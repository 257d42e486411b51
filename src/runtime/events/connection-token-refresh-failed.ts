// connection.token_refresh_failed: the connection's Consent becomes inactive and a reconnect Task
// asks the patient to link the source again. The event carries no patient_id: the patient comes
// from the Consent written when the flow reported the connection, or stays unknown until it does.
import * as v from 'valibot';
import { asCode, SYSTEM, TASK_KEY, token } from '../fhir/systems';
import { consentStatusFor } from '../handlers/connection-status';
import type { EventHandler } from '../handlers/plan';
import { WorkingSet } from '../handlers/working-set';
import { reconnectTask } from '../fhir/tasks/reconnect';
import { connectionId, connectionShape, patientId } from '../medblocks/events';
import { defineEventType } from './define';
import type { EnvelopeOf } from './define';
import { defineSamples, SAMPLE_SOURCE_A, sampleEnvelope } from './samples';
import type { EnvelopeOverrides } from './samples';

export const CONNECTION_TOKEN_REFRESH_FAILED = ['connection.token_refresh_failed'] as const;

/** A refresh failure always concerns an existing connection, so `id` is required; `patient_id` may come one day. */
const TokenRefreshFailedSchema = v.looseObject({
  id: connectionId,
  ...connectionShape,
  patient_id: v.optional(patientId),
});

export type TokenRefreshFailedEvent = EnvelopeOf<
  (typeof CONNECTION_TOKEN_REFRESH_FAILED)[number],
  typeof TokenRefreshFailedSchema
>;

const TASK_KINDS = [reconnectTask];

const handler: EventHandler<TokenRefreshFailedEvent> = {
  reads(event) {
    const connection = event.data.object;
    return {
      eventId: event.id,
      patientId: connection.patient_id,
      withPatientRecords: connection.patient_id !== undefined,
      consentTokens: [token(SYSTEM.connectionId, connection.id)],
      consentsWithPatientRecords: true,
      taskKeys: [TASK_KEY.reconnect(connection.id)],
      sourceIds: [connection.connection_id],
    };
  },

  plan(event, state, context) {
    const connection = event.data.object;
    const work = new WorkingSet(state, context, TASK_KINDS);
    const key = { system: SYSTEM.connectionId, value: connection.id };
    const patient =
      work.consent(key)?.patient ??
      (connection.patient_id !== undefined ? work.resolvePatient(state, connection.patient_id) : undefined);

    work.reportConnection({
      key,
      sourceId: connection.connection_id,
      patient,
      // Medblocks sends `refresh_failed` here; whatever it says (`active`, or a status we do not
      // know), the event itself says the connection no longer works.
      status: consentStatusFor(connection.status) === 'rejected' ? 'rejected' : 'inactive',
      connectionCreatedAt: connection.created_at,
      periodEnd: connection.failure_at ?? event.created_at,
      failureCodes: [asCode(connection.failure_code)].filter((c): c is string => c !== undefined),
      isActivation: false,
    });
    work.report(reconnectTask, {
      connectionId: connection.id,
      sourceId: connection.connection_id,
      consent: work.consentReference(key),
      patient,
    });
    work.reconcile();
    return work.toPlan(patient);
  },
};

export const connectionTokenRefreshFailed = /* @__PURE__ */ defineEventType({
  names: CONNECTION_TOKEN_REFRESH_FAILED,
  payload: TokenRefreshFailedSchema,
  bot: 'medblocks-connection-token-refresh-failed',
  secretName: 'MEDBLOCKS_WEBHOOK_SECRET_CONNECTION_TOKEN_REFRESH_FAILED',
  policy: { title: 'connection token refresh failed', consents: true },
  taskKinds: TASK_KINDS,
  handler,
  connectionStatuses: (event) => [event.data.object.status],
});

/** A connection.token_refresh_failed as Medblocks sends it (the connection id required), for tests, the sender and the demo. */
export function sampleTokenRefreshFailed(
  connection: Partial<TokenRefreshFailedEvent['data']['object']> & { id: string },
  envelope: EnvelopeOverrides = {}
): TokenRefreshFailedEvent {
  const createdAt = envelope.created_at ?? '2026-05-20T03:12:45.000Z';
  return sampleEnvelope(
    'connection.token_refresh_failed',
    createdAt,
    {
      connection_id: SAMPLE_SOURCE_A,
      status: 'refresh_failed',
      failure_code: null,
      failure_at: null,
      created_at: '2026-04-25T14:33:10.000Z',
      ...connection,
    },
    envelope.id
  );
}

export const tokenRefreshFailedSamples = /* @__PURE__ */ defineSamples({
  'connection.token_refresh_failed': {
    default: (s) => sampleTokenRefreshFailed({ id: s.connectionId, connection_id: s.sourceId }, { created_at: s.at }),
    'with-patient-id': (s) =>
      sampleTokenRefreshFailed(
        { id: s.connectionId, connection_id: s.sourceId, patient_id: s.patientId },
        { created_at: s.at }
      ),
  },
});
