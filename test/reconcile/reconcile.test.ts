// `npm run reconcile` end to end: the bots' state in the emulator, Medblocks'
// state in the local Medblocks (`GET /patients/{id}`), the command in-process over HTTP. What
// Medblocks never pushes — a connection that expires or is disconnected — reaches the Consent; a
// second run writes nothing; a snapshot older than what the bots applied changes nothing; a patient
// Medplum has never seen is backfilled as the bots would have written it.
import type { Consent, Patient, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReconcile } from '../../src/tools/cli/reconcile';
import { startEmulator, type RunningEmulator } from '../../src/tools/emulator/server';
import { connection, patientFlowCompleted } from '../../src/tools/fixtures/events';
import { startLocalMedblocks, type RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { snapshotStamp } from '../../src/tools/reconcile/reconcile';
import { buildIntoTempRoot, sendSigned, type BuiltRoot } from '../emulator/support';

const FLOW_BOT = 'medblocks-patient-flow-completed';
const SOURCE = 'fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc';

let built: BuiltRoot;
let emulator: RunningEmulator;
let medblocks: RunningLocalMedblocks;

beforeAll(async () => {
  built = await buildIntoTempRoot();
  emulator = await startEmulator({ root: built.root });
  medblocks = await startLocalMedblocks();
}, 120_000);

afterAll(async () => {
  await medblocks.close();
  await emulator.close();
  built.cleanup();
});

async function run(args: string[] = []): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await runReconcile(args, {
    print: (l) => lines.push(l),
    root: built.root,
    env: {
      MEDPLUM_BASE_URL: `${emulator.url}/`,
      MEDPLUM_CLIENT_ID: emulator.adminClient.clientId,
      MEDPLUM_CLIENT_SECRET: emulator.adminClient.clientSecret,
      MEDBLOCKS_API_KEY: medblocks.apiKey,
      MEDBLOCKS_API_BASE_URL: medblocks.url,
    },
  });
  return { code, text: lines.join('\n') };
}

async function consentOf(connectionId: string): Promise<Consent | undefined> {
  return (await emulator.store.all<Consent>('Consent', `identifier=urn:medblocks:connection-id|${connectionId}`))[0];
}

describe('npm run reconcile', () => {
  it('an expired connection Medblocks never pushed: planned by --dry-run, written by a run, then nothing to do', async () => {
    const flow = patientFlowCompleted(
      {
        patient_id: 'user_rec1',
        connections: [connection({ id: 'conn_REC1', connection_id: SOURCE, status: 'active' })],
      },
      { id: 'evt_01RECONCILE00000000000001', created_at: '2026-04-25T14:35:00.000Z' }
    );
    expect((await sendSigned(emulator.bot(FLOW_BOT), flow)).status).toBe(200);
    expect((await consentOf('conn_REC1'))?.status).toBe('active');

    medblocks.setPatient('user_rec1', [
      {
        id: 'conn_REC1',
        connection_id: SOURCE,
        status: 'expired',
        created_at: '2026-04-25T14:33:10.000Z',
        updated_at: '2026-05-10T08:00:00.000Z',
      },
    ]);
    const planned = await run(['--dry-run', '--patient', 'user_rec1']);
    expect(planned.code).toBe(0);
    expect(planned.text).toMatch(/plan {2}conn_REC1 \(expired, updated 2026-05-10T08:00:00\.000Z\): update Consent/);
    expect(planned.text).toMatch(/Dry run: 1 patient\(s\), 1 connection\(s\): 1 connection\(s\) would change/);
    expect((await consentOf('conn_REC1'))?.status).toBe('active');

    const applied = await run(['--patient', 'user_rec1']);
    expect(applied.code).toBe(0);
    expect(applied.text).toMatch(/wrote conn_REC1 \(expired/);
    const consent = await consentOf('conn_REC1');
    expect(consent?.status).toBe('inactive');
    expect(consent?.provision?.period?.end).toBe('2026-05-10T08:00:00.000Z');
    // No patient id in what the operator's terminal keeps.
    expect(planned.text + applied.text).not.toContain('user_rec1');

    const again = await run(['--patient', 'user_rec1']);
    expect(again.text).toMatch(/nothing to change: Medplum already says what Medblocks says/);
  });

  it('a snapshot older than what the bots applied does not undo it (newest wins), as a late event would not', async () => {
    const flow = patientFlowCompleted(
      {
        patient_id: 'user_rec2',
        connections: [connection({ id: 'conn_REC2', connection_id: SOURCE, status: 'refresh_failed' })],
      },
      { id: 'evt_01RECONCILE00000000000002', created_at: '2026-06-01T00:00:00.000Z' }
    );
    expect((await sendSigned(emulator.bot(FLOW_BOT), flow)).status).toBe(200);
    medblocks.setPatient('user_rec2', [
      {
        id: 'conn_REC2',
        connection_id: SOURCE,
        status: 'active',
        created_at: '2026-04-25T14:33:10.000Z',
        updated_at: '2026-05-01T00:00:00.000Z',
      },
    ]);
    await run(['--patient', 'user_rec2']);
    // The Consent stays inactive and the reconnect Task open: the refresh failure is newer. (The older
    // activation is recorded, as the bots record a late active event, but resolves nothing.)
    expect((await consentOf('conn_REC2'))?.status).toBe('inactive');
    const reconnect = await emulator.store.all<Task>('Task', 'identifier=urn:medblocks:task-key|reconnect/conn_REC2');
    expect(reconnect.map((t) => t.status)).toEqual(['requested']);
    expect((await run(['--patient', 'user_rec2'])).text).toMatch(/nothing to change/);
  });

  it('backfills a patient Medplum has never seen: the Patient, a Consent per connection, a reconnect Task', async () => {
    medblocks.setPatient('user_rec3', [
      {
        id: 'conn_REC3',
        connection_id: SOURCE,
        status: 'disconnected',
        created_at: '2026-03-01T00:00:00.000Z',
        updated_at: '2026-03-05T00:00:00.000Z',
      },
      {
        id: 'conn_REC4',
        connection_id: SOURCE,
        status: 'refresh_failed',
        created_at: '2026-03-02T00:00:00.000Z',
        updated_at: '2026-03-06T00:00:00.000Z',
      },
    ]);
    const result = await run(['--patient', 'user_rec3']);
    expect(result.code).toBe(0);
    const patients = await emulator.store.all<Patient>('Patient', 'identifier=urn:medblocks:patient-id|user_rec3');
    expect(patients).toHaveLength(1);
    expect([(await consentOf('conn_REC3'))?.status, (await consentOf('conn_REC4'))?.status]).toEqual([
      'inactive',
      'inactive',
    ]);
    const reconnect = await emulator.store.all<Task>('Task', 'identifier=urn:medblocks:task-key|reconnect/conn_REC4');
    expect(reconnect.map((t) => [t.status, t.for?.reference])).toEqual([['requested', `Patient/${patients[0]?.id}`]]);
    // Every patient of the workspace without --patient: the ones above are already in step.
    expect((await run()).text).toMatch(/3 patient\(s\), 4 connection\(s\): nothing to change/);
  });

  it('a snapshot ranks by its updated_at; ties go to the snapshot, which has seen that event', () => {
    expect(snapshotStamp({ id: 'conn_x', updated_at: '2026-05-10T10:00:00+02:00' })).toEqual({
      at: '2026-05-10T08:00:00.000Z',
      eventId: 'reconcile:conn_x',
    });
    const [first] = ['evt_01ZZZZZZZZZZZZZZZZZZZZZZZZ', 'reconcile:conn_x'].sort().reverse();
    expect(first).toBe('reconcile:conn_x'); // compareStamps breaks a tie by id: the snapshot's sorts last
    expect(snapshotStamp({ id: 'conn_x', updated_at: 'yesterday' })).toBeUndefined();
  });
});
