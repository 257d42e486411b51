// The quarantine story end to end: the local Medblocks delivers a poison event to
// the real bots in the emulator → 200 quarantined, an open dead-letter Task; the operator fixes the
// cause; `npm run redeliver -- --quarantined` (the command, over HTTP, logged in with the emulator's
// admin client) → Medblocks delivers it again → applied, dead-letter completed. The retry clock is
// scaled and the redelivery limit's minute skipped, so that the whole story runs in well under 5 s;
// signatures stay within the bots' 5-minute tolerance of the real clock.
import type { Patient, Project, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM } from '../../src/runtime/fhir/systems';
import { runMonitor } from '../../src/tools/cli/monitor';
import { runRedeliver } from '../../src/tools/cli/redeliver';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { recordsSyncCompleted } from '../../src/tools/fixtures/events';
import type { RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { startLocalMedblocksFor, subscribeEmulatorBots } from '../../src/tools/medblocks-local/wire';
import { MedblocksApi } from '../../src/tools/provision/medblocks-api';
import { buildIntoTempRoot } from '../emulator/support';
import type { BuiltRoot } from '../emulator/support';

const BOT = 'medblocks-records-sync-completed';
let built: BuiltRoot;

beforeAll(async () => {
  built = await buildIntoTempRoot();
});

afterAll(() => {
  built.cleanup();
});

interface Setup {
  readonly emulator: RunningEmulator;
  readonly medblocks: RunningLocalMedblocks;
  readonly api: MedblocksApi;
  readonly endpointId: string;
  readonly env: NodeJS.ProcessEnv;
  /** Moves the local Medblocks' clock on (its one-redelivery-a-minute limit), within the signature tolerance. */
  readonly advance: (ms: number) => void;
  readonly close: () => Promise<void>;
}

async function setup(): Promise<Setup> {
  const emulator = await startEmulator({ root: built.root, secrets: { MEDBLOCKS_CREATE_MISSING_PATIENTS: 'false' } });
  let offset = 0;
  const medblocks = await startLocalMedblocksFor(emulator, { timeScale: 1e6, now: () => Date.now() + offset });
  const endpoints = await subscribeEmulatorBots(medblocks, emulator);
  const endpointId = endpoints.find((e) => e.description === BOT)?.id ?? '';
  return {
    emulator,
    medblocks,
    api: new MedblocksApi(medblocks.url, medblocks.apiKey),
    endpointId,
    advance: (ms) => {
      offset += ms;
    },
    env: {
      MEDPLUM_BASE_URL: `${emulator.url}/`,
      MEDPLUM_CLIENT_ID: emulator.adminClient.clientId,
      MEDPLUM_CLIENT_SECRET: emulator.adminClient.clientSecret,
      MEDBLOCKS_API_BASE_URL: medblocks.url,
      MEDBLOCKS_API_KEY: medblocks.apiKey,
    },
    close: async () => {
      await medblocks.close();
      await emulator.close();
    },
  };
}

async function deadLetters(emulator: RunningEmulator): Promise<Task[]> {
  return emulator.store.all<Task>('Task', `identifier=${SYSTEM.deadLetter}|`);
}

const FIXES = {
  'the Patient is created by hand': async (emulator: RunningEmulator, patientId: string): Promise<void> => {
    await emulator.store.client().createResource<Patient>({
      resourceType: 'Patient',
      identifier: [{ system: SYSTEM.patientId, value: patientId }],
    });
  },
  'MEDBLOCKS_CREATE_MISSING_PATIENTS is turned on': async (emulator: RunningEmulator): Promise<void> => {
    const client = emulator.store.client();
    const [project] = await emulator.store.all<Project>('Project');
    if (!project) throw new Error('the emulator has no Project');
    const secret = (project.secret ?? []).filter((s) => s.name !== 'MEDBLOCKS_CREATE_MISSING_PATIENTS');
    await client.updateResource<Project>({
      ...project,
      secret: [...secret, { name: 'MEDBLOCKS_CREATE_MISSING_PATIENTS', valueString: 'true' }],
    });
  },
} as const;

describe('poison event → quarantined → fix → redeliver --quarantined → applied', () => {
  it.each(Object.keys(FIXES) as (keyof typeof FIXES)[])('the fix: %s', async (fixName) => {
    const started = Date.now();
    const s = await setup();
    try {
      const patientId = `user_unknown_${String(started)}`;
      const event = recordsSyncCompleted({ patient_id: patientId });

      // 1. Medblocks delivers; the bot cannot apply it (no such Patient, creation off): 200 quarantined.
      s.medblocks.emit(event);
      await s.medblocks.idle();
      const [first] = await s.api.listEvents(s.endpointId, true);
      expect(first).toMatchObject({ id: event.id, attempts: 1, last_status_code: 200 });
      expect(JSON.parse(first?.last_response_body ?? '{}') as unknown).toEqual({
        status: 'quarantined',
        event: event.id,
        type: event.type,
        reason: 'patient_not_found',
        path: 'data.object.patient_id',
      });
      expect(s.medblocks.endpoint(s.endpointId)?.status, 'a quarantine never gets the endpoint disabled').toBe(
        'active'
      );
      expect((await deadLetters(s.emulator)).map((t) => t.status)).toEqual(['failed']);

      // The monitor sees it.
      const report: string[] = [];
      expect(await runMonitor([], { print: (l) => report.push(l), env: s.env, root: built.root })).toBe(1);
      expect(report.join('\n')).toContain(
        '! 1 quarantined event: fix the cause (README "When something goes wrong"), then npm run redeliver -- --quarantined'
      );

      // Redelivered before the fix: quarantined again, and the command says so (exit 1).
      const early: string[] = [];
      expect(await runRedeliver(['--quarantined'], s.env, (l) => early.push(l))).toBe(1);
      expect(early).toEqual([
        'found 1 open dead-letter(s) in Medplum',
        `[1/1] ${event.id} records.sync.completed: quarantined again, the cause is not fixed yet (200)`,
        'Redelivered 1, delivered now 0, quarantined again 1, still failing 0, skipped 0.',
      ]);
      expect((await deadLetters(s.emulator)).map((t) => t.status)).toEqual(['failed']);

      // 2. The fix, then 3. the command an operator runs (a minute later: one redelivery a minute).
      await FIXES[fixName](s.emulator, patientId);
      s.advance(61_000);
      const lines: string[] = [];
      const code = await runRedeliver(['--quarantined'], s.env, (l) => lines.push(l));
      expect(lines).toEqual([
        'found 1 open dead-letter(s) in Medplum',
        `[1/1] ${event.id} records.sync.completed: delivered (200)`,
        'Redelivered 1, delivered now 1, still failing 0, skipped 0.',
      ]);
      expect(code).toBe(0);

      // 4. Applied: the dead-letter completed, the Patient there, the sync Task written.
      const [deadLetter, ...others] = await deadLetters(s.emulator);
      expect(others).toEqual([]);
      expect(deadLetter).toMatchObject({
        status: 'completed',
        businessStatus: { coding: [{ system: 'urn:medblocks:code', code: 'applied-after-redelivery' }] },
      });
      expect(
        await s.emulator.store.all<Patient>('Patient', `identifier=${SYSTEM.patientId}|${patientId}`)
      ).toHaveLength(1);
      const record = (await s.api.listEvents(s.endpointId, true))[0];
      expect(record).toMatchObject({ attempts: 3, last_status_code: 200 });
      expect(JSON.parse(record?.last_response_body ?? '{}') as unknown).toMatchObject({
        status: 'processed',
        event: event.id,
      });

      // Nothing left to redeliver; the monitor is quiet about quarantines again.
      const after: string[] = [];
      await runMonitor([], { print: (l) => after.push(l), env: s.env, root: built.root });
      expect(after.join('\n')).toContain('Quarantined events (open dead-letter Tasks): none.');
      // Only ids and types in what the operator reads: never the patient id from the payload.
      expect([...lines, ...report, ...after].join('\n')).not.toContain(patientId);
    } finally {
      await s.close();
    }
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
