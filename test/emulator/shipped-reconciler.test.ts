// Test what ships, for the reconciler: the built bundle dist/medblocks-reconciler.js fired as
// Medplum's cron worker fires it (the emulator's runScheduled) in the vmcontext sandbox, reading
// the local Medblocks' patients over loopback. What no webhook reports — a connection that expired
// or was disconnected at Medblocks — ends as an inactive Consent; the next run writes nothing.
import type { Consent, Task } from '@medplum/fhirtypes';
import { MedblocksApi } from '../../src/tools/provision/medblocks-api';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { connection, failedAttempt, patientFlowCompleted } from '../../src/tools/fixtures/events';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import type { RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { buildIntoTempRoot, sendSigned } from './support';
import type { BuiltRoot } from './support';

const BOT = 'medblocks-reconciler';
const SOURCE = 'fhirsrc_reconcile_source';

let built: BuiltRoot;
let mb: RunningLocalMedblocks;
let emulator: RunningEmulator;

beforeAll(async () => {
  built = await buildIntoTempRoot();
  mb = await startLocalMedblocks();
  emulator = await startEmulator({
    root: built.root,
    secrets: { MEDBLOCKS_API_KEY: mb.apiKey, MEDBLOCKS_API_BASE_URL: mb.url },
  });
}, 120_000);

afterAll(async () => {
  await emulator.close();
  await mb.close();
  built.cleanup();
});

async function consentOf(connectionId: string): Promise<Consent | undefined> {
  return (await emulator.store.all<Consent>('Consent', `identifier=urn:medblocks:connection-id|${connectionId}`))[0];
}

describe('the shipped reconciler bundle, fired as a cron job', () => {
  test('an expired and a disconnected connection end inactive; the next run writes nothing', async () => {
    const flow = patientFlowCompleted(
      {
        patient_id: 'pt_reconciled',
        connections: [
          connection({ id: 'conn_01RECONCILEEXPIRED0000000A', connection_id: SOURCE, status: 'active' }),
          connection({ id: 'conn_01RECONCILEDISCONN000000B', connection_id: SOURCE, status: 'active' }),
        ],
      },
      { created_at: '2026-11-20T10:00:00.000Z', type: 'patient_session.completed' }
    );
    const answer = await sendSigned(emulator.bot('medblocks-patient-flow-completed'), flow);
    expect(answer.status, answer.text).toBe(200);
    expect((await consentOf('conn_01RECONCILEEXPIRED0000000A'))?.status).toBe('active');

    mb.setPatient('pt_reconciled', [
      {
        id: 'conn_01RECONCILEEXPIRED0000000A',
        connection_id: SOURCE,
        status: 'expired',
        created_at: '2026-11-20T09:58:00.000Z',
        updated_at: '2026-11-25T08:00:00.000Z',
      },
      {
        id: 'conn_01RECONCILEDISCONN000000B',
        connection_id: SOURCE,
        status: 'disconnected',
        created_at: '2026-11-20T09:58:00.000Z',
        updated_at: '2026-11-26T08:00:00.000Z',
      },
    ]);
    const first = await emulator.runScheduled(BOT);
    expect(first.ran).toBe(true);
    if (!first.ran) return;
    expect(first.result.success, first.result.logResult).toBe(true);
    expect(first.result.logResult).toMatch(
      /medblocks-reconcile status=done endpoints_disabled=0 ops_tasks_opened=0 ops_tasks_closed=0 patients=1 not_reached=0 connections=2 changed=2 /
    );
    expect((await consentOf('conn_01RECONCILEEXPIRED0000000A'))?.status).toBe('inactive');
    expect((await consentOf('conn_01RECONCILEDISCONN000000B'))?.status).toBe('inactive');
    // The AuditEvent's text names counts, never a patient or a connection.
    expect(first.result.logResult).not.toMatch(/pt_reconciled|conn_01/);

    const second = await emulator.runScheduled(BOT);
    expect(second.ran && second.result.logResult).toMatch(/status=done .*changed=0 unknown_status=0 writes=0 /);
  });

  test('an endpoint Medblocks disabled opens one urgent ops Task; re-enabled, the Task is completed', async () => {
    const api = new MedblocksApi(mb.url, mb.apiKey);
    const endpoint = await api.createEndpoint({
      url: emulator.bot('medblocks-records-sync-failed').webhookUrl,
      events: ['records.sync.failed'],
      description: 'Medplum bot medblocks-records-sync-failed',
    });
    // Someone else's endpoint in the same workspace: not this package's, no Task.
    await api.createEndpoint({
      url: 'https://elsewhere.example/hook',
      events: ['*'],
      description: 'another integration',
    });
    await api.updateEndpoint(endpoint.id, { status: 'disabled' });
    const opsTasks = () => emulator.store.all<Task>('Task', 'code=urn:medblocks:code|medblocks-endpoint-disabled');

    const run = await emulator.runScheduled(BOT);
    expect(run.ran && run.result.logResult).toMatch(/endpoints_disabled=1 ops_tasks_opened=1 ops_tasks_closed=0/);
    const [task] = await opsTasks();
    expect(task).toMatchObject({ status: 'requested', priority: 'urgent' });
    expect(task?.description).toContain(endpoint.id);
    expect(task?.description).toContain('npm run redeliver -- --reenable');

    const again = await emulator.runScheduled(BOT);
    expect(again.ran && again.result.logResult).toMatch(/ops_tasks_opened=0 ops_tasks_closed=0/);
    expect(await opsTasks()).toHaveLength(1);

    await api.updateEndpoint(endpoint.id, { status: 'active' });
    const healed = await emulator.runScheduled(BOT);
    expect(healed.ran && healed.result.logResult).toMatch(/endpoints_disabled=0 ops_tasks_opened=0 ops_tasks_closed=1/);
    expect((await opsTasks())[0]?.status).toBe('completed');
  });

  test('a connection that became active at Medblocks completes the flow’s follow-up Task, as npm run reconcile does', async () => {
    // Found on a real 5.1.31 server: the policy granted reconnect Tasks only, so the follow-up was
    // hidden from the run's search and stayed `requested`, while `npm run reconcile` completed it.
    const flow = patientFlowCompleted(
      {
        patient_id: 'pt_followed_up',
        connections: [failedAttempt({ connection_id: SOURCE })],
      },
      { created_at: '2026-11-20T10:00:00.000Z', type: 'patient_session.completed' }
    );
    const answer = await sendSigned(emulator.bot('medblocks-patient-flow-completed'), flow);
    expect(answer.status, answer.text).toBe(200);
    const followUpKey = `identifier=urn:medblocks:task-key|flow-follow-up/${flow.data.object.id}`;
    expect((await emulator.store.all<Task>('Task', followUpKey)).map((t) => t.status)).toEqual(['requested']);

    mb.setPatient('pt_followed_up', [
      {
        id: 'conn_01RECONCILEFOLLOWUP00000C',
        connection_id: SOURCE,
        status: 'active',
        created_at: '2026-11-21T09:00:00.000Z',
        updated_at: '2026-11-21T09:00:00.000Z',
      },
    ]);
    const run = await emulator.runScheduled(BOT);
    expect(run.ran).toBe(true);
    if (!run.ran) return;
    expect(run.result.success, run.result.logResult).toBe(true);
    expect((await consentOf('conn_01RECONCILEFOLLOWUP00000C'))?.status).toBe('active');
    expect((await emulator.store.all<Task>('Task', followUpKey)).map((t) => t.status)).toEqual(['completed']);
  });

  test('without MEDBLOCKS_API_KEY it is off and says why', async () => {
    const off = await startEmulator({ root: built.root });
    try {
      const run = await off.runScheduled(BOT);
      expect(run.ran && run.result.logResult).toMatch(
        /medblocks-reconcile status=off why="MEDBLOCKS_API_KEY is not set"/
      );
    } finally {
      await off.close();
    }
  });
});
