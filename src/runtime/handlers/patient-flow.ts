// patient_flow.completed (and its newer name patient_session.completed): one Consent per
// authorization attempt, reconnect Tasks for connections reported as refresh_failed, and a
// follow-up Task when the patient ended the flow without any active connection.
import { consentStatusFor } from './connection-status';
import { SYSTEM, TASK_KEY, token } from '../fhir/systems';
import { sortedUnique } from '../fhir/tasks/parts';
import type { PatientFlowCompletedEvent, PatientFlowConnection } from '../medblocks/events';
import type { EventHandler } from './plan';
import { WorkingSet } from './working-set';

/** Failed attempts have no `conn_` id; their key is stable across redeliveries of the same flow. */
export function connectionKey(flowId: string, connection: PatientFlowConnection): { system: string; value: string } {
  return connection.id
    ? { system: SYSTEM.connectionId, value: connection.id }
    : { system: SYSTEM.connectionAttempt, value: `${flowId}/${connection.connection_id}/${connection.created_at}` };
}

/** The same attempt listed twice in one flow is planned once (the last listing wins). */
function distinctConnections(event: PatientFlowCompletedEvent): PatientFlowConnection[] {
  const flowId = event.data.object.id;
  const byKey = new Map<string, PatientFlowConnection>();
  for (const connection of event.data.object.connections) {
    const key = connectionKey(flowId, connection);
    byKey.set(token(key.system, key.value), connection);
  }
  return [...byKey.values()];
}

export const patientFlowCompleted: EventHandler<PatientFlowCompletedEvent> = {
  reads(event) {
    const flow = event.data.object;
    const connections = distinctConnections(event);
    return {
      eventId: event.id,
      patientId: flow.patient_id,
      withPatientRecords: true,
      consentTokens: connections.map((c) => {
        const key = connectionKey(flow.id, c);
        return token(key.system, key.value);
      }),
      consentsWithPatientRecords: false,
      taskKeys: [TASK_KEY.followUp(flow.id), ...connections.flatMap((c) => (c.id ? [TASK_KEY.reconnect(c.id)] : []))],
    };
  },

  plan(event, state, context) {
    const flow = event.data.object;
    const work = new WorkingSet(state, context);
    const patient = work.resolvePatient(state, flow.patient_id);
    const connections = distinctConnections(event);

    for (const connection of connections) {
      const key = connectionKey(flow.id, connection);
      const active = connection.status === 'active';
      work.reportConnection({
        key,
        sourceId: connection.connection_id,
        patient,
        status: consentStatusFor(connection.status),
        connectionCreatedAt: connection.created_at,
        periodEnd: active ? undefined : (connection.failure_at ?? event.created_at),
        failureCode: connection.failure_code ?? undefined,
        isActivation: active,
      });
      if (connection.id) {
        work.linkReconnectTask(connection.id, patient);
        if (connection.status === 'refresh_failed') {
          work.reportRefreshFailure(connection.id, connection.connection_id, work.consentReference(key), patient);
        }
      }
    }

    if (!connections.some((c) => c.status === 'active')) {
      work.reportFlowWithoutConnection(
        flow.id,
        patient,
        sortedUnique(connections.map((c) => c.connection_id)),
        sortedUnique(connections.map((c) => c.failure_code))
      );
    }

    work.reconcile();
    return work.toPlan(patient);
  },
};
