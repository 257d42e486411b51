// Medblocks delivers at least once and may retry while a first attempt is still running: 50
// concurrent copies of one delivery must end with exactly one resource per business key, as on a
// Medplum server whose conditional writes run in serialisable transactions.
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Basic, Bundle, Consent, Patient, Task } from '@medplum/fhirtypes';
import { startEmulator } from '../../src/tools/emulator/server';
import { EmulatorStore } from '../../src/tools/emulator/store';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { connection, failedAttempt, patientFlowCompleted } from '../../src/tools/fixtures/events';
import { buildIntoTempRoot, sendSigned } from './support';
import type { BuiltRoot } from './support';

let built: BuiltRoot;
let emulator: RunningEmulator;

beforeAll(async () => {
  built = await buildIntoTempRoot();
  // A little latency per FHIR request makes the copies' reads and writes overlap.
  emulator = await startEmulator({ root: built.root, latencyMs: 5 });
});

afterAll(async () => {
  await emulator.close();
  built.cleanup();
});

function keysOf(resources: { identifier?: { system?: string; value?: string }[] }[]): string[] {
  return resources.map((r) => (r.identifier ?? []).map((i) => `${i.system ?? ''}|${i.value ?? ''}`).join(',')).sort();
}

test('50 concurrent copies of one flow delivery make one Patient, one Consent per connection, and markers of that event only', async () => {
  // All failed: the flow also creates a follow-up Task, so every kind of business key is raced.
  const event = patientFlowCompleted({
    patient_id: 'race_patient_1',
    connections: [
      connection({ status: 'active' }),
      failedAttempt(),
      failedAttempt({ created_at: '2026-04-25T14:34:30.000Z' }),
    ],
  });
  const bot = emulator.bot('medblocks-patient-flow-completed');
  const answers = await Promise.all(Array.from({ length: 50 }, () => sendSigned(bot, event)));

  expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
  const outcomes = answers.map((a) => (JSON.parse(a.text) as { status: string }).status);
  expect(outcomes.filter((o) => o === 'processed').length).toBeGreaterThanOrEqual(1);
  expect(outcomes.every((o) => o === 'processed' || o === 'duplicate')).toBe(true);

  const patients = await emulator.store.all<Patient>('Patient');
  const consents = await emulator.store.all<Consent>('Consent');
  const markers = await emulator.store.all<Basic>('Basic');
  expect(keysOf(patients)).toEqual(['urn:medblocks:patient-id|race_patient_1']);
  expect(consents).toHaveLength(3);
  expect(new Set(keysOf(consents)).size).toBe(3);
  // Markers are plain creates (no SERIALIZABLE search, ledger TX-5): copies that finish together
  // each leave one, and every one of them says the same thing.
  expect(new Set(keysOf(markers))).toEqual(new Set([`urn:medblocks:event-id|${event.id}`]));
  expect(markers.length).toBeLessThanOrEqual(outcomes.filter((o) => o === 'processed').length);
  expect(await emulator.store.all<Task>('Task')).toEqual([]);
});

test('50 concurrent copies of a flow with no active connection make one follow-up Task', async () => {
  const event = patientFlowCompleted({ patient_id: 'race_patient_2', connections: [failedAttempt()] });
  const bot = emulator.bot('medblocks-patient-flow-completed');
  const answers = await Promise.all(Array.from({ length: 50 }, () => sendSigned(bot, event)));
  expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
  const tasks = await emulator.store.all<Task>('Task');
  expect(tasks).toHaveLength(1);
  const patients = await emulator.store.all<Patient>('Patient', 'identifier=urn:medblocks:patient-id|race_patient_2');
  expect(patients).toHaveLength(1);
});

test('concurrent bundles with conditional writes create each business key once, as the server does', async () => {
  // MemoryRepository alone lets these ten bundles interleave and the conditional PUT creates ten
  // Tasks; the server runs each conditional write in a SERIALIZABLE transaction and creates one
  // (ledger TX-4; here without the feature, so each entry is its own transaction, TX-1).
  const store = new EmulatorStore();
  const bundle: Bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      {
        fullUrl: 'urn:uuid:3f1c6a52-8d1e-4b7a-9f0e-2a6c5d4b3e21',
        resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test', value: 'p' }] },
        request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:test|p' },
      },
      {
        resource: {
          resourceType: 'Task',
          status: 'requested',
          intent: 'order',
          identifier: [{ system: 'urn:test', value: 't' }],
        },
        request: { method: 'PUT', url: 'Task?identifier=urn:test|t' },
      },
    ],
  };
  const answers = await Promise.all(
    Array.from({ length: 10 }, () => store.handle({ method: 'POST', path: '', body: structuredClone(bundle) }))
  );
  expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
  expect(await store.all<Patient>('Patient')).toHaveLength(1);
  expect(await store.all<Task>('Task')).toHaveLength(1);
});
