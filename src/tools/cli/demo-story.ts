// The story `npm run demo` plays, as data: what Medblocks sends, how, and what must come back.
// Times are fixed (the events' `created_at`); signatures use the real clock, as Medblocks' do.
import type { WebhookBotName } from '../../runtime/registry';
import {
  connection,
  failedAttempt,
  patientFlowCompleted,
  recordsSyncCompleted,
  recordsSyncFailed,
  tokenRefreshFailed,
  ulidAt,
} from '../fixtures/events';
import type { MedblocksEvent } from '../../runtime/medblocks/events';

export const DEMO_PATIENT_ID = 'demo_patient_0001';
export const DEMO_SOURCE_A = 'fhirsrc_demoEhrA000000000000001';
export const DEMO_SOURCE_B = 'fhirsrc_demoEhrB000000000000002';
export const DEMO_CONNECTION_A = `conn_${ulidAt('2026-04-25T14:33:10.000Z', 101)}`;

/** The ids the story is about; `npm run verify` passes fresh ones so that every run starts from nothing. */
export interface DemoIds {
  readonly patientId: string;
  readonly sourceA: string;
  readonly sourceB: string;
  /** EHR A's `conn_…` id: its Consent's business identifier. */
  readonly connectionA: string;
}

export const DEMO_IDS: DemoIds = {
  patientId: DEMO_PATIENT_ID,
  sourceA: DEMO_SOURCE_A,
  sourceB: DEMO_SOURCE_B,
  connectionA: DEMO_CONNECTION_A,
};

export interface DemoStep {
  readonly title: string;
  readonly bot: WebhookBotName;
  readonly event: MedblocksEvent;
  /** How the sender misbehaves, when it does. */
  readonly send?: { readonly wrongSecret?: boolean; readonly skewSeconds?: number };
  readonly expectedStatus: number;
  /** `processed` | `duplicate` | `stale` | `rejected:<reason>` | `failed:<class>`. */
  readonly expectedOutcome: string;
}

/** Builds the story; fresh event ids on every call so that two runs never collide. */
export function demoStory(ids: DemoIds = DEMO_IDS): DemoStep[] {
  const { patientId, sourceA, sourceB, connectionA } = ids;
  const flow = patientFlowCompleted(
    {
      patient_id: patientId,
      connections: [
        connection({ id: connectionA, connection_id: sourceA, created_at: '2026-04-25T14:33:10.000Z' }),
        failedAttempt({ connection_id: sourceB }),
      ],
    },
    { created_at: '2026-04-25T14:35:00.000Z' }
  );
  const sync = (at: string): MedblocksEvent =>
    recordsSyncCompleted({ patient_id: patientId, connection_id: sourceA }, { created_at: at });
  const forged = sync('2026-04-25T14:36:00.000Z');
  const lateFlow = patientFlowCompleted(
    {
      patient_id: patientId,
      connections: [connection({ id: connectionA, connection_id: sourceA, created_at: '2026-04-25T14:33:10.000Z' })],
    },
    { created_at: '2026-04-25T14:50:00.000Z' }
  );
  return [
    {
      title: 'patient connects EHR A; EHR B fails',
      bot: 'medblocks-patient-flow-completed',
      event: flow,
      expectedStatus: 200,
      expectedOutcome: 'processed',
    },
    {
      title: 'Medblocks redelivers the same event',
      bot: 'medblocks-patient-flow-completed',
      event: flow,
      expectedStatus: 200,
      expectedOutcome: 'duplicate',
    },
    {
      title: 'forged signature (wrong secret)',
      bot: 'medblocks-records-sync-completed',
      event: forged,
      send: { wrongSecret: true },
      expectedStatus: 400,
      expectedOutcome: 'rejected:signature_mismatch',
    },
    {
      title: 'replay with an expired timestamp (10 min old)',
      bot: 'medblocks-records-sync-completed',
      event: forged,
      send: { skewSeconds: -600 },
      expectedStatus: 400,
      expectedOutcome: 'rejected:timestamp_out_of_tolerance',
    },
    {
      title: 'records sync from EHR A completes',
      bot: 'medblocks-records-sync-completed',
      event: sync('2026-04-25T14:40:00.000Z'),
      expectedStatus: 200,
      expectedOutcome: 'processed',
    },
    {
      title: 'EHR A token refresh fails',
      bot: 'medblocks-connection-token-refresh-failed',
      event: tokenRefreshFailed(
        { id: connectionA, connection_id: sourceA },
        { created_at: '2026-05-20T03:12:45.000Z' }
      ),
      expectedStatus: 200,
      expectedOutcome: 'processed',
    },
    {
      title: 'an older flow event arrives late',
      bot: 'medblocks-patient-flow-completed',
      event: lateFlow,
      expectedStatus: 200,
      expectedOutcome: 'stale',
    },
    {
      title: 'records sync from EHR A fails',
      bot: 'medblocks-records-sync-failed',
      event: recordsSyncFailed(
        { patient_id: patientId, connection_id: sourceA },
        { created_at: '2026-05-21T08:00:00.000Z' }
      ),
      expectedStatus: 200,
      expectedOutcome: 'processed',
    },
    {
      title: 'the next sync recovers',
      bot: 'medblocks-records-sync-completed',
      event: sync('2026-05-22T08:00:00.000Z'),
      expectedStatus: 200,
      expectedOutcome: 'processed',
    },
  ];
}
