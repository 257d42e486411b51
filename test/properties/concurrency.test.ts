// Concurrency through the emulator (HTTP on loopback, bundles in the vm sandbox, writes serialised
// like the server's SERIALIZABLE transactions): racing copies of one delivery, and racing
// deliveries for one patient, end with one resource per business key. A delivery that lost every
// conflict retry is answered 400 and Medblocks would retry it; the test does that too.
import type { Resource, Task } from '@medplum/fhirtypes';
import { readStamp } from '../../src/runtime/fhir/stamp';
import { EXTENSION } from '../../src/runtime/fhir/systems';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookBotSpecs } from '../../src/tools/bench/bundles';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import {
  connection,
  failedAttempt,
  patientFlowCompleted,
  recordsSyncCompleted,
  recordsSyncFailed,
  serialise,
} from '../../src/tools/fixtures/events';
import type { MedblocksEvent } from '../../src/runtime/events';
import { signatureHeader } from '../../src/runtime/medblocks/signature';
import { botForEvent } from './support';

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({ bots: await webhookBotSpecs() });
});
afterAll(async () => {
  await emulator.close();
});

async function post(event: MedblocksEvent): Promise<{ status: number; body: string }> {
  const bot = emulator.bot(botForEvent(event));
  const body = serialise(event);
  const response = await fetch(bot.webhookUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'medblocks-signature': signatureHeader(bot.secret ?? '', Math.floor(Date.now() / 1000), body),
    },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, body: await response.text() };
}

/** Delivers, then redelivers what failed (as Medblocks would), a bounded number of rounds. */
async function deliverConcurrently(events: readonly MedblocksEvent[]): Promise<number[]> {
  const first = await Promise.all(events.map(post));
  for (const answer of first) expect([200, 400]).toContain(answer.status);
  let pending = events.filter((_, i) => first[i]?.status !== 200);
  for (let round = 0; round < 3 && pending.length > 0; round++) {
    const answers = await Promise.all(pending.map(post));
    pending = pending.filter((_, i) => answers[i]?.status !== 200);
  }
  expect(pending, 'every delivery succeeds after at most 3 redeliveries').toEqual([]);
  return first.map((a) => a.status);
}

/** Business keys (urn:medblocks identifiers) held by more than one resource in the emulator's store. */
async function duplicatedKeys(): Promise<string[]> {
  const counts = new Map<string, number>();
  for (const type of ['Patient', 'Consent', 'Task', 'Basic'] as const) {
    for (const resource of await emulator.store.all<Resource>(type)) {
      const identifiers = 'identifier' in resource && Array.isArray(resource.identifier) ? resource.identifier : [];
      for (const i of identifiers as { system?: string; value?: string }[]) {
        if (i.system?.startsWith('urn:medblocks:')) {
          const key = `${type}|${i.system}|${i.value ?? ''}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
      }
    }
  }
  return [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k} ×${n}`);
}

async function countByIdentifier(
  type: 'Patient' | 'Consent' | 'Task' | 'Basic',
  system: string,
  value: string
): Promise<number> {
  const found = await emulator.store.all(type, `identifier=${encodeURIComponent(`${system}|${value}`)}`);
  return found.length;
}

describe('concurrency through the emulator', () => {
  it('50 concurrent copies of one delivery: applied once, one resource per business key', async () => {
    const event = patientFlowCompleted({
      id: 'pf_race_copies',
      patient_id: 'user_copies',
      connections: [connection({ id: 'conn_copies' }), failedAttempt()],
    });
    const statuses = await deliverConcurrently(Array.from({ length: 50 }, () => event));
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(await duplicatedKeys()).toEqual([]);
    expect(await countByIdentifier('Patient', 'urn:medblocks:patient-id', 'user_copies')).toBe(1);
    expect(await countByIdentifier('Consent', 'urn:medblocks:connection-id', 'conn_copies')).toBe(1);
    expect(await countByIdentifier('Basic', 'urn:medblocks:event-id', event.id)).toBe(1);
  });

  it('50 concurrent deliveries for one patient: one Patient, one resource per business key', async () => {
    const patient = 'user_busy';
    const events: MedblocksEvent[] = [];
    for (let i = 0; i < 30; i++) {
      const at = new Date(Date.parse('2026-05-01T00:00:00.000Z') + i * 60_000).toISOString();
      events.push(
        patientFlowCompleted(
          {
            id: `pf_busy_${i}`,
            patient_id: patient,
            connections: [connection({ id: `conn_busy_${i}`, connection_id: i % 2 ? 'fhirsrc_A1' : 'fhirsrc_B2' })],
          },
          { created_at: at }
        )
      );
    }
    for (let i = 0; i < 20; i++) {
      const at = new Date(Date.parse('2026-05-02T00:00:00.000Z') + i * 60_000).toISOString();
      const sync = { patient_id: patient, connection_id: i % 2 ? 'fhirsrc_A1' : 'fhirsrc_B2' };
      events.push(i % 3 ? recordsSyncCompleted(sync, { created_at: at }) : recordsSyncFailed(sync, { created_at: at }));
    }
    await deliverConcurrently(events);
    expect(await duplicatedKeys()).toEqual([]);
    expect(await countByIdentifier('Patient', 'urn:medblocks:patient-id', patient)).toBe(1);
    for (let i = 0; i < 30; i++) {
      expect(await countByIdentifier('Consent', 'urn:medblocks:connection-id', `conn_busy_${i}`)).toBe(1);
    }
    // The newest sync per source wins: i = 19 (source A1, completed) and i = 18 (source B2, failed: 18 % 3 === 0).
    const tasks = await emulator.store.all<Task>(
      'Task',
      `identifier=${encodeURIComponent(`urn:medblocks:task-key|records-sync/${patient}/fhirsrc_A1`)}`
    );
    expect(tasks.map((t) => t.status)).toEqual(['completed']);
    const failed = await emulator.store.all<Task>(
      'Task',
      `identifier=${encodeURIComponent(`urn:medblocks:task-key|records-sync/${patient}/fhirsrc_B2`)}`
    );
    expect(failed.map((t) => t.status)).toEqual(['failed']);
    // Each flow applied once, with one marker; a sync's marker is its stamp, so the Tasks bear the newest.
    for (const event of events) {
      const isSync = event.type !== 'patient_flow.completed';
      expect(await countByIdentifier('Basic', 'urn:medblocks:event-id', event.id)).toBe(isSync ? 0 : 1);
    }
    expect([...tasks, ...failed].map((t) => readStamp(t, EXTENSION.lastEvent)?.eventId)).toEqual([
      events[49]?.id,
      events[48]?.id,
    ]);
  });
});
