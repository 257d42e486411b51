// Test what ships, for the records import: the built bundle dist/medblocks-records-import.js, fired
// as Medplum's cron worker fires it (the emulator's runScheduled: the Bot as input, the project's
// secrets, its membership's AccessPolicy) in the vmcontext sandbox — which has `fetch` but no
// `setTimeout` or `AbortSignal` globals — against the local Medblocks over loopback.
import type { AuditEvent, Provenance } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { botIdFor } from '../../src/tools/emulator/identity';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { recordsSyncCompleted } from '../../src/tools/fixtures/events';
import { generatePatientRecords } from '../../src/tools/fixtures/patient-records';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import type { RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { buildIntoTempRoot, sendSigned } from './support';
import type { BuiltRoot } from './support';

const IMPORT_BOT = 'medblocks-records-import';
const PATIENT_ID = 'pt_shipped_import';
const SOURCE = 'fhirsrc_epic_sandbox';

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

async function auditsOfImport(): Promise<AuditEvent[]> {
  return emulator.store.all<AuditEvent>('AuditEvent', `entity=Bot/${botIdFor(IMPORT_BOT)}`);
}

describe('the shipped import bundle, fired as a cron job', () => {
  const records = generatePatientRecords({ patientId: PATIENT_ID, source: SOURCE, count: 60 });

  test('after records.sync.completed it brings the records in, each with Provenance, and says so in its AuditEvent', async () => {
    mb.putRecords(PATIENT_ID, records);
    const event = recordsSyncCompleted(
      { patient_id: PATIENT_ID, connection_id: SOURCE, total: records.length },
      { created_at: new Date().toISOString() }
    );
    const answer = await sendSigned(emulator.bot('medblocks-records-sync-completed'), event);
    expect(answer.status, answer.text).toBe(200);

    const run = await emulator.runScheduled(IMPORT_BOT);
    expect(run.ran).toBe(true);
    if (!run.ran) return;
    expect(run.result.success, run.result.logResult).toBe(true);
    expect(run.result.logResult).toMatch(/medblocks-import status=done patients_done=1 .*created=59 .*refused=0/);

    const conditions = await emulator.store.all('Condition');
    const observations = await emulator.store.all('Observation');
    expect(conditions.length + observations.length).toBeGreaterThan(0);
    const provenances = await emulator.store.all<Provenance>('Provenance');
    const targeted = provenances.flatMap((p) => p.target.map((t) => t.reference ?? ''));
    expect(targeted).toHaveLength(records.length - 1);
    const audits = await auditsOfImport();
    expect(audits.at(-1)?.outcome).toBe('0');
    // The AuditEvent names counts, never a record or a patient.
    expect(audits.at(-1)?.outcomeDesc ?? '').not.toContain(PATIENT_ID);
  });

  test('the next scheduled run finds nothing to do', async () => {
    const run = await emulator.runScheduled(IMPORT_BOT);
    expect(run.ran && run.result.success).toBe(true);
    if (run.ran) expect(run.result.logResult).toMatch(/medblocks-import status=idle .*created=0 /);
  });

  test('a replayed sync (a new event, the same records) writes no record and no Provenance', async () => {
    const provenances = (await emulator.store.all<Provenance>('Provenance')).length;
    const replay = recordsSyncCompleted(
      { patient_id: PATIENT_ID, connection_id: SOURCE, total: records.length },
      { created_at: new Date().toISOString() }
    );
    expect((await sendSigned(emulator.bot('medblocks-records-sync-completed'), replay)).status).toBe(200);
    const run = await emulator.runScheduled(IMPORT_BOT);
    expect(run.ran && run.result.success).toBe(true);
    if (run.ran) {
      expect(run.result.logResult).toMatch(/medblocks-import status=done .*created=0 updated=0 unchanged=59 /);
    }
    // Every copy is already named, in its stored version, by the Provenance of the run that wrote it.
    expect(await emulator.store.all<Provenance>('Provenance')).toHaveLength(provenances);
  });
});
