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
import { reportMedblocksConnection } from '../handlers/medblocks-connection';
import { WorkingSet } from '../handlers/working-set';
import { followUpTask } from '../fhir/tasks/follow-up';
import { reconnectTask } from '../fhir/tasks/reconnect';
import {
  connectionId,
  connectionShape,
  flowId,
  MAX_CONNECTIONS_PER_FLOW,
  openEnum,
  patientId,
} from '../medblocks/events';
import type { KnownConnectionStatus } from '../medblocks/events';
import { defineEventType } from './define';
import type { EnvelopeOf } from './define';
import {
  defineSamples,
  nextEntropy,
  SAMPLE_PATIENT_ID,
  SAMPLE_SOURCE_A,
  SAMPLE_SOURCE_B,
  sampleConnection,
  sampleEnvelope,
  sampleFailedAttempt,
  ulidAt,
} from './samples';
import type { EnvelopeOverrides, SampleShape } from './samples';

/** Both names of the flow event: the guides' older one first, then the published API's (contract MB-D2). */
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

/** The Task kinds the flow's bot writes: reconnects for refresh_failed connections, a follow-up when none connected. */
const TASK_KINDS = [reconnectTask, followUpTask];

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
          c.id || c.status === ('refresh_failed' satisfies KnownConnectionStatus)
            ? [TASK_KEY.reconnect(reconnectId(flow.id, c))]
            : []
        ),
      ],
      sourceIds: sortedUnique(connections.map((c) => c.connection_id)),
    };
  },

  plan(event, state, context) {
    const flow = event.data.object;
    const work = new WorkingSet(state, context, TASK_KINDS);
    const patient = work.resolvePatient(state, flow.patient_id);
    const connections = distinctConnections(event);

    for (const { connection, failureCodes } of connections) {
      reportMedblocksConnection(
        work,
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

    if (!connections.some((c) => c.connection.status === ('active' satisfies KnownConnectionStatus))) {
      work.report(followUpTask, {
        flowId: flow.id,
        patient,
        sources: sortedUnique(connections.map((c) => c.connection.connection_id)),
        failureCodes: sortedUnique(connections.flatMap((c) => c.failureCodes)),
      });
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
  policy: { title: 'patient flow completed', consents: true },
  taskKinds: TASK_KINDS,
  handler,
  connectionStatuses: (event) => event.data.object.connections.map((c) => c.status),
});

/** A flow event as Medblocks sends it (the older name unless `type` says otherwise), every field overridable. */
export function samplePatientFlowCompleted(
  flow: Partial<PatientFlowCompletedEvent['data']['object']> = {},
  envelope: EnvelopeOverrides & { readonly type?: PatientFlowCompletedEvent['type'] } = {}
): PatientFlowCompletedEvent {
  const createdAt = envelope.created_at ?? '2026-04-25T14:35:00.000Z';
  const type = envelope.type ?? 'patient_flow.completed';
  return sampleEnvelope(
    type,
    createdAt,
    {
      id: `pf_${ulidAt(createdAt, nextEntropy())}`,
      resource_type: type === 'patient_session.completed' ? 'patient_session' : 'patient_flow',
      status: 'complete',
      url: 'https://app.medblocks.com/c/9c9b6f7a8e4f4a3b9c1e6f3a2d8b7c4d',
      patient_id: SAMPLE_PATIENT_ID,
      connection_id: null,
      recommended_connection_ids: [SAMPLE_SOURCE_A, SAMPLE_SOURCE_B],
      return_url: 'https://app.example.com/connected',
      return_button_label: 'Acme Health',
      connections: [sampleConnection(), sampleFailedAttempt()],
      expires_at: '2026-04-25T15:00:00.000Z',
      metadata: { signup_source: 'checkout' },
      created_at: '2026-04-25T14:30:00.000Z',
      ...flow,
    },
    envelope.id
  );
}

const sampleFlow = (s: SampleShape, connections: PatientFlowConnection[]): PatientFlowCompletedEvent =>
  samplePatientFlowCompleted({ patient_id: s.patientId, connections }, { created_at: s.at });

const activeConnection = (s: SampleShape, status: 'active' | 'refresh_failed' = 'active'): PatientFlowConnection =>
  sampleConnection({ id: s.connectionId, connection_id: s.sourceId, status, created_at: s.at });

export const patientSessionCompletedSamples = /* @__PURE__ */ defineSamples({
  'patient_flow.completed': {
    mixed: (s) => sampleFlow(s, [activeConnection(s), sampleFailedAttempt({ created_at: s.at, failure_at: s.at })]),
    'all-active': (s) => sampleFlow(s, [activeConnection(s)]),
    'all-failed': (s) =>
      sampleFlow(s, [sampleFailedAttempt({ connection_id: s.sourceId, created_at: s.at, failure_at: s.at })]),
    'no-connections': (s) => sampleFlow(s, []),
    'refresh-failed': (s) => sampleFlow(s, [activeConnection(s, 'refresh_failed')]),
  },
  'patient_session.completed': {
    mixed: (s) =>
      samplePatientFlowCompleted(
        {
          id: `ps_${ulidAt(s.at, 7)}`,
          patient_id: s.patientId,
          connections: [activeConnection(s), sampleFailedAttempt({ created_at: s.at })],
        },
        { created_at: s.at, type: 'patient_session.completed' }
      ),
  },
});
