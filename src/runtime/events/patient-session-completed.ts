// patient_session.completed (and its older name patient_flow.completed): one Consent per
// authorization attempt, reconnect Tasks for connections reported as refresh_failed, and a
// follow-up Task when the patient ended the flow without any active connection.
//
// Entries without a `conn_` id are decided by their status, like any other entry; only the key
// differs (the connection-attempt key, `<flow>/<source>/<created_at>`): `failed` → a rejected
// Consent; `active` → an active Consent that counts as a connection (it resolves follow-up and
// reconnect Tasks, no follow-up is opened), though no later refresh failure can name it;
// `refresh_failed` → an inactive Consent and a reconnect Task keyed by the attempt key (a person
// still has to ask the patient to reconnect); `expired`/`disconnected` → inactive; an unknown
// status → nothing (handlers/connection-status.ts).
import * as v from 'valibot';
import { asCode, attemptKey, SYSTEM, TASK_KEY, token } from '../fhir/systems';
import { sortedUnique } from '../fhir/tasks/parts';
import type { EventHandler } from '../handlers/plan';
import { WorkingSet } from '../handlers/working-set';
import {
  connectionId,
  connectionShape,
  flowId,
  MAX_CONNECTIONS_PER_FLOW,
  openEnum,
  patientId,
} from '../medblocks/events';
import { defineEventType } from './define';
import type { EnvelopeOf } from './define';

/** Both names of the flow event: the guides' older one first, then the published API's. */
export const PATIENT_SESSION_COMPLETED = ['patient_flow.completed', 'patient_session.completed'] as const;

/** One authorization attempt in a flow; `id` is null for a failed attempt. */
const PatientFlowConnectionSchema = v.looseObject({ id: v.nullable(connectionId), ...connectionShape });

const PatientFlowSchema = v.looseObject({
  id: flowId,
  resource_type: v.optional(openEnum),
  patient_id: patientId,
  connections: v.pipe(v.array(PatientFlowConnectionSchema), v.maxLength(MAX_CONNECTIONS_PER_FLOW)),
});

export type PatientFlowCompletedEvent = EnvelopeOf<
  (typeof PATIENT_SESSION_COMPLETED)[number],
  typeof PatientFlowSchema
>;
export type PatientFlowConnection = PatientFlowCompletedEvent['data']['object']['connections'][number];

/** Failed attempts have no `conn_` id; their key is stable across redeliveries of the same flow. */
export function connectionKey(flowId: string, connection: PatientFlowConnection): { system: string; value: string } {
  return connection.id
    ? { system: SYSTEM.connectionId, value: connection.id }
    : {
        system: SYSTEM.connectionAttempt,
        value: attemptKey(flowId, connection.connection_id, connection.created_at),
      };
}

/** What the reconnect Task of an entry is keyed by: its `conn_` id, or its attempt key when it has none. */
function reconnectId(flowId: string, connection: PatientFlowConnection): string {
  return connection.id ?? connectionKey(flowId, connection).value;
}

interface DistinctConnection {
  readonly connection: PatientFlowConnection;
  /** Every failure code reported for this key in the flow, sorted and unique. */
  readonly failureCodes: readonly string[];
}

/**
 * The same attempt listed twice in one flow is planned once (the last listing wins for status and
 * dates); the failure codes of every listing are kept, so two attempts that share flow, source and
 * time but differ in code lose neither code.
 */
function distinctConnections(event: PatientFlowCompletedEvent): DistinctConnection[] {
  const flowId = event.data.object.id;
  const byKey = new Map<string, DistinctConnection>();
  for (const connection of event.data.object.connections) {
    const key = connectionKey(flowId, connection);
    const tokenKey = token(key.system, key.value);
    const codes = [...(byKey.get(tokenKey)?.failureCodes ?? []), asCode(connection.failure_code)];
    byKey.set(tokenKey, { connection, failureCodes: sortedUnique(codes) });
  }
  return [...byKey.values()];
}

const handler: EventHandler<PatientFlowCompletedEvent> = {
  reads(event) {
    const flow = event.data.object;
    const connections = distinctConnections(event).map((d) => d.connection);
    return {
      eventId: event.id,
      patientId: flow.patient_id,
      withPatientRecords: true,
      consentTokens: connections.map((c) => {
        const key = connectionKey(flow.id, c);
        return token(key.system, key.value);
      }),
      consentsWithPatientRecords: false,
      taskKeys: [
        TASK_KEY.followUp(flow.id),
        ...connections.flatMap((c) =>
          c.id || c.status === 'refresh_failed' ? [TASK_KEY.reconnect(reconnectId(flow.id, c))] : []
        ),
      ],
      sourceIds: sortedUnique(connections.map((c) => c.connection_id)),
    };
  },

  plan(event, state, context) {
    const flow = event.data.object;
    const work = new WorkingSet(state, context);
    const patient = work.resolvePatient(state, flow.patient_id);
    const connections = distinctConnections(event);

    for (const { connection, failureCodes } of connections) {
      work.reportMedblocksConnection(
        {
          key: connectionKey(flow.id, connection),
          connectionId: connection.id,
          reconnectId: reconnectId(flow.id, connection),
          sourceId: connection.connection_id,
          status: connection.status,
          createdAt: connection.created_at,
          endedAt: connection.failure_at ?? event.created_at,
          failureCodes,
        },
        patient
      );
    }

    if (!connections.some((c) => c.connection.status === 'active')) {
      work.reportFlowWithoutConnection(
        flow.id,
        patient,
        sortedUnique(connections.map((c) => c.connection.connection_id)),
        sortedUnique(connections.flatMap((c) => c.failureCodes))
      );
    }

    work.reconcile();
    return work.toPlan(patient);
  },
};

export const patientSessionCompleted = /* @__PURE__ */ defineEventType({
  names: PATIENT_SESSION_COMPLETED,
  // The published API's name; provisioning falls back to the older one for an account that refuses it.
  medblocksEvent: 'patient_session.completed',
  payload: PatientFlowSchema,
  bot: 'medblocks-patient-flow-completed',
  secretName: 'MEDBLOCKS_WEBHOOK_SECRET_PATIENT_FLOW_COMPLETED',
  policy: {
    title: 'patient flow completed',
    consents: true,
    taskCodes: ['reconnect-ehr', 'connection-follow-up'],
  },
  handler,
  connectionStatuses: (event) => event.data.object.connections.map((c) => c.status),
});
