// connection.token_refresh_failed: the connection's Consent becomes inactive and a reconnect Task
// asks the patient to link the source again. The event carries no patient_id: the patient comes
// from the Consent written when the flow reported the connection, or stays unknown until it does.
import * as v from 'valibot';
import { asCode, SYSTEM, TASK_KEY, token } from '../fhir/systems';
import { consentStatusFor } from '../handlers/connection-status';
import type { EventHandler } from '../handlers/plan';
import { WorkingSet } from '../handlers/working-set';
import { connectionId, connectionShape, patientId } from '../medblocks/events';
import { defineEventType } from './define';
import type { EnvelopeOf } from './define';

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
    const work = new WorkingSet(state, context);
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
    work.reportRefreshFailure(connection.id, connection.connection_id, work.consentReference(key), patient);
    work.reconcile();
    return work.toPlan(patient);
  },
};

export const connectionTokenRefreshFailed = /* @__PURE__ */ defineEventType({
  names: CONNECTION_TOKEN_REFRESH_FAILED,
  payload: TokenRefreshFailedSchema,
  bot: 'medblocks-connection-token-refresh-failed',
  secretName: 'MEDBLOCKS_WEBHOOK_SECRET_CONNECTION_TOKEN_REFRESH_FAILED',
  policy: { title: 'connection token refresh failed', consents: true, taskCodes: ['reconnect-ehr'] },
  handler,
  connectionStatuses: (event) => [event.data.object.status],
});
