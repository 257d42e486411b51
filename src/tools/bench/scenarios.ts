// The deliveries the benchmark measures: per event type a "new" delivery (from a realistic prior
// state) and its duplicate; flows with 1, 5 and 20 connections.
import {
  connection,
  failedAttempt,
  patientFlowCompleted,
  recordsSyncCompleted,
  recordsSyncFailed,
  tokenRefreshFailed,
} from '../fixtures/events';
import type { MedblocksEvent, PatientFlowConnection } from '../../runtime/events';

export interface BenchScenario {
  /** e.g. `patient_flow.completed ×5`. */
  readonly label: string;
  readonly type: MedblocksEvent['type'];
  readonly connections: number | undefined;
  /** Applied before the measured delivery (setting up what it updates). */
  readonly before: readonly MedblocksEvent[];
  readonly target: MedblocksEvent;
}

export const FLOW_SIZES = [1, 5, 20] as const;

let sequence = 0;

/** A flow for a fresh patient: active connections, a failed attempt and refresh failures, in rotation. */
export function benchFlow(connections: number, patientId = `bench_patient_${++sequence}`): MedblocksEvent {
  const entries: PatientFlowConnection[] = Array.from({ length: connections }, (_, i) => {
    const source = `fhirsrc_bench${String(i % 7)}`;
    if (i % 3 === 1) {
      return failedAttempt({ connection_id: source, created_at: `2026-04-25T14:3${String(i % 10)}:05.000Z` });
    }
    return connection({
      id: `conn_${patientId}_${String(i)}`,
      connection_id: source,
      status: i % 3 === 2 ? 'refresh_failed' : 'active',
    });
  });
  return patientFlowCompleted({ id: `pf_${patientId}`, patient_id: patientId, connections: entries });
}

export function benchScenarios(): BenchScenario[] {
  const flows: BenchScenario[] = FLOW_SIZES.map((n) => ({
    label: `patient_flow.completed ×${String(n)}`,
    type: 'patient_flow.completed',
    connections: n,
    before: [],
    target: benchFlow(n),
  }));
  const refreshPatient = `bench_patient_${++sequence}`;
  const refreshFlow = patientFlowCompleted(
    {
      id: `pf_${refreshPatient}`,
      patient_id: refreshPatient,
      connections: [connection({ id: `conn_${refreshPatient}` })],
    },
    { created_at: '2026-04-25T14:35:00.000Z' }
  );
  const syncPatient = `bench_patient_${++sequence}`;
  return [
    ...flows,
    {
      label: 'connection.token_refresh_failed',
      type: 'connection.token_refresh_failed',
      connections: undefined,
      before: [refreshFlow],
      target: tokenRefreshFailed({ id: `conn_${refreshPatient}` }, { created_at: '2026-05-20T03:12:45.000Z' }),
    },
    {
      label: 'records.sync.completed',
      type: 'records.sync.completed',
      connections: undefined,
      before: [recordsSyncFailed({ patient_id: syncPatient }, { created_at: '2026-04-25T14:30:00.000Z' })],
      target: recordsSyncCompleted({ patient_id: syncPatient }, { created_at: '2026-04-25T14:36:12.000Z' }),
    },
    {
      label: 'records.sync.failed',
      type: 'records.sync.failed',
      connections: undefined,
      before: [],
      target: recordsSyncFailed({ patient_id: `bench_patient_${++sequence}` }),
    },
  ];
}
