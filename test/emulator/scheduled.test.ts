// Scheduled runs (CRON-1 … CRON-6 in docs/fidelity-ledger.md): `RunningEmulator.runScheduled` fires a
// bot's cron job the way Medplum's cron worker (packages/server/src/workers/cron.ts) does — the
// shipped sweeper bundle in the vmcontext sandbox, and probe bundles that show what a scheduled
// run receives and when Medplum would have no job at all.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AuditEvent, Basic, Bot, Patient, ProjectMembership } from '@medplum/fhirtypes';
import { botIdFor, membershipIdFor } from '../../src/tools/emulator/identity';
import { SCHEDULED_MESSAGES } from '../../src/tools/emulator/scheduled';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { buildMarker } from '../../src/runtime/fhir/marker';
import { SETTING_NAMES } from '../../src/runtime/settings';
import { retentionCutoff } from '../../src/runtime/sweeper/plan';
import { buildIntoTempRoot, post } from './support';
import type { BuiltRoot } from './support';

const SWEEPER = 'medblocks-marker-sweeper';
const FLOW_BOT = 'medblocks-patient-flow-completed';
const DAY_MS = 24 * 60 * 60 * 1000;

let built: BuiltRoot;

beforeAll(async () => {
  built = await buildIntoTempRoot();
}, 120_000);

afterAll(() => {
  built.cleanup();
});

/** Markers `ages` days old (by `Basic.created`), for one patient; returns their ids. */
async function seedMarkers(emulator: RunningEmulator, ages: readonly number[]): Promise<string[]> {
  const patient = await emulator.store.repo.createResource<Patient>({ resourceType: 'Patient' });
  const ids: string[] = [];
  for (const [i, age] of ages.entries()) {
    const at = new Date(Date.now() - age * DAY_MS).toISOString();
    const marker = await emulator.store.repo.createResource<Basic>(
      buildMarker(`evt_01J9YR9N3X4VZ6P2K5RH7M${String(i).padStart(4, '0')}`, 'records.sync.completed', at, {
        reference: `Patient/${patient.id}`,
      })
    );
    ids.push(marker.id);
  }
  return ids;
}

async function markerIds(emulator: RunningEmulator): Promise<string[]> {
  return (await emulator.store.all<Basic>('Basic')).map((b) => b.id).sort();
}

async function auditsOf(emulator: RunningEmulator, botName: string): Promise<AuditEvent[]> {
  return emulator.store.all<AuditEvent>('AuditEvent', `entity=Bot/${botIdFor(botName)}`);
}

describe('the shipped sweeper bundle, fired as its cron job', () => {
  let emulator: RunningEmulator;

  beforeAll(async () => {
    emulator = await startEmulator({ root: built.root, secrets: { [SETTING_NAMES.markerRetentionDays]: '30' } });
  });

  afterAll(async () => {
    await emulator.close();
  });

  test('deletes the markers older than the retention secret, keeps the rest, and audits its summary line', async () => {
    const [old1, old2, recent1, recent2] = await seedMarkers(emulator, [100, 31, 29, 1]);
    const run = await emulator.runScheduled(SWEEPER);
    if (!run.ran) throw new Error(`not run: ${run.message}`);
    expect(run.result.success, run.result.logResult).toBe(true);
    expect(run.result.returnValue).toMatchObject({ status: 'swept', deleted: 2, failed: 0, retentionDays: 30 });
    const remaining = await markerIds(emulator);
    expect(remaining).toEqual([recent1, recent2].sort());
    expect(remaining).not.toContain(old1);
    expect(remaining).not.toContain(old2);

    const audits = await auditsOf(emulator, SWEEPER);
    expect(audits).toHaveLength(1);
    const audit = audits[0];
    expect(audit?.id).toBe(run.auditEvent?.id);
    expect(audit?.outcome).toBe('0');
    const cutoff = retentionCutoff(Date.now(), 30);
    expect(audit?.outcomeDesc).toMatch(
      new RegExp(`^medblocks-sweeper cutoff=${cutoff} outcome=swept deleted=2 failed=0 more=false `, 'm')
    );
  });

  test("the AuditEvent is the cron worker's: no requester, the bot as actor, the Bot named twice (bot and input)", async () => {
    const run = await emulator.runScheduled(SWEEPER);
    if (!run.ran) throw new Error(`not run: ${run.message}`);
    const botRef = `Bot/${botIdFor(SWEEPER)}`;
    expect(run.auditEvent?.agent).toEqual([{ requestor: true }, { who: { reference: botRef }, requestor: false }]);
    expect(run.auditEvent?.entity?.map((e) => e.what?.reference)).toEqual([botRef, botRef]);
    expect(run.auditEvent?.source.observer.reference).toBe(botRef);
  });

  test("runs under its membership's AccessPolicy: a search-and-read grant on Basic deletes nothing and audits a failure", async () => {
    const narrow = await startEmulator({
      root: built.root,
      policies: {
        [SWEEPER]: {
          resourceType: 'AccessPolicy',
          resource: [{ resourceType: 'Basic', interaction: ['search', 'read'] }],
        },
      },
    });
    try {
      const ids = await seedMarkers(narrow, [200]);
      const run = await narrow.runScheduled(SWEEPER);
      if (!run.ran) throw new Error(`not run: ${run.message}`);
      expect(run.result.success).toBe(false);
      expect(run.auditEvent?.outcome).toBe('4');
      expect(run.auditEvent?.outcomeDesc).toMatch(/^medblocks-sweeper .*outcome=failed:/m);
      expect(await markerIds(narrow)).toEqual(ids);
    } finally {
      await narrow.close();
    }
  });

  test('a webhook bot (no cronString) has no cron job: nothing runs, nothing is audited', async () => {
    const before = (await auditsOf(emulator, FLOW_BOT)).length;
    const run = await emulator.runScheduled(FLOW_BOT);
    expect(run).toEqual({ ran: false, reason: 'not-scheduled', message: SCHEDULED_MESSAGES.notScheduled });
    expect(await auditsOf(emulator, FLOW_BOT)).toHaveLength(before);
  });

  test('an unknown bot name throws', async () => {
    await expect(emulator.runScheduled('no-such-bot')).rejects.toThrow(/not loaded/);
  });

  test('POST /emulator/run-scheduled/<bot> fires the job for npm run dev: 200 with the run, 409 for a bot without a job, 404 unknown', async () => {
    await seedMarkers(emulator, [400]);
    const ran = await post(`${emulator.url}/emulator/run-scheduled/${SWEEPER}`, '');
    expect(ran.status, ran.text).toBe(200);
    expect(JSON.parse(ran.text)).toMatchObject({
      bot: SWEEPER,
      ran: true,
      success: true,
      returnValue: { deleted: 1 },
      auditEvent: expect.stringMatching(/^AuditEvent\//) as unknown,
    });
    const refused = await post(`${emulator.url}/emulator/run-scheduled/${FLOW_BOT}`, '');
    expect(refused.status).toBe(409);
    expect(JSON.parse(refused.text)).toMatchObject({ ran: false, reason: 'not-scheduled' });
    expect((await post(`${emulator.url}/emulator/run-scheduled/nobody`, '')).status).toBe(404);
  });
});

describe('a project without the cron feature', () => {
  test('Medplum creates no cron job: the sweeper does not run, its markers stay, nothing is audited', async () => {
    const emulator = await startEmulator({ root: built.root, features: ['bots'] });
    try {
      const ids = await seedMarkers(emulator, [365]);
      const run = await emulator.runScheduled(SWEEPER);
      expect(run).toEqual({ ran: false, reason: 'cron-not-enabled', message: SCHEDULED_MESSAGES.cronDisabled });
      expect(await markerIds(emulator)).toEqual(ids);
      expect(await auditsOf(emulator, SWEEPER)).toHaveLength(0);
    } finally {
      await emulator.close();
    }
  });

  test('with cron but without bots the job fires and executeBot refuses it: Bots not enabled, audited as a failure', async () => {
    const emulator = await startEmulator({ root: built.root, features: ['cron'] });
    try {
      const run = await emulator.runScheduled(SWEEPER);
      if (!run.ran) throw new Error(`not run: ${run.message}`);
      expect(run.result).toMatchObject({ success: false, logResult: 'Bots not enabled' });
      expect(run.auditEvent).toMatchObject({ outcome: '4', outcomeDesc: 'Bots not enabled' });
    } finally {
      await emulator.close();
    }
  });
});

/** Logs a marker line and answers with what the handler was given. */
const PROBE = `exports.handler = async (medplum, event) => {
  console.log('probe ran');
  const patients = await medplum.searchResources('Patient', { _count: '1' });
  return {
    input: event.input,
    contentType: event.contentType,
    requester: event.requester === undefined ? 'none' : event.requester,
    headers: event.headers === undefined ? 'none' : event.headers,
    traceId: event.traceId === undefined ? 'none' : event.traceId,
    secret: event.secrets.PROBE_SETTING ? event.secrets.PROBE_SETTING.valueString : 'none',
    patients: patients.length,
  };
};`;

describe('what a scheduled run receives, and which bots have a job (probe bundles)', () => {
  let emulator: RunningEmulator;

  beforeAll(async () => {
    emulator = await startEmulator({
      bots: [
        // A public-webhook bot with a schedule: Medplum's cron worker does not look at publicWebhook.
        { name: 'probe-cron', code: PROBE, cronString: '*/5 * * * *', publicWebhook: true, policy: null },
        { name: 'probe-bad-cron', code: PROBE, cronString: '61 * * * *', policy: null },
        { name: 'probe-timing', code: PROBE, policy: null },
        { name: 'probe-orphan', code: PROBE, cronString: '0 3 * * *', policy: null },
      ],
      secrets: { PROBE_SETTING: 'from-the-project' },
    });
    await emulator.store.repo.createResource<Patient>({ resourceType: 'Patient' });
  });

  afterAll(async () => {
    await emulator.close();
  });

  test('the input is the Bot resource itself as application/fhir+json, with the project secrets and no requester, headers or trace id', async () => {
    const run = await emulator.runScheduled('probe-cron');
    if (!run.ran) throw new Error(`not run: ${run.message}`);
    expect(run.result.success, run.result.logResult).toBe(true);
    const value = run.result.returnValue as Record<string, unknown>;
    expect(value.input).toMatchObject({
      resourceType: 'Bot',
      id: botIdFor('probe-cron'),
      name: 'probe-cron',
      cronString: '*/5 * * * *',
    });
    expect(value).toMatchObject({
      contentType: 'application/fhir+json',
      requester: 'none',
      headers: 'none',
      traceId: 'none',
      secret: 'from-the-project',
    });
    expect(run.auditEvent?.outcomeDesc).toContain('probe ran');
  });

  test('a membership without an AccessPolicy still runs (no webhook-style 403), with the legacy all-resources grant', async () => {
    const run = await emulator.runScheduled('probe-cron');
    if (!run.ran) throw new Error(`not run: ${run.message}`);
    expect((run.result.returnValue as { patients: number }).patients).toBe(1);
  });

  test('a cronString cron-validator refuses gives no job', async () => {
    expect(await emulator.runScheduled('probe-bad-cron')).toMatchObject({ ran: false, reason: 'not-scheduled' });
  });

  test('a cronTiming with a repeat gives a job even without a cronString', async () => {
    const id = botIdFor('probe-timing');
    expect(await emulator.runScheduled('probe-timing')).toMatchObject({ ran: false, reason: 'not-scheduled' });
    const stored = await emulator.store.repo.readResource<Bot>('Bot', id);
    await emulator.store.repo.updateResource<Bot>({
      ...stored,
      cronTiming: { repeat: { period: 1, periodUnit: 'd' } },
    });
    const run = await emulator.runScheduled('probe-timing');
    expect(run.ran).toBe(true);
  });

  // Ledger CRON-3.
  test('a bot whose membership is gone: the worker throws before running, so no AuditEvent', async () => {
    await emulator.store.repo.deleteResource('ProjectMembership', membershipIdFor('probe-orphan'));
    const run = await emulator.runScheduled('probe-orphan');
    expect(run).toEqual({ ran: false, reason: 'no-membership', message: SCHEDULED_MESSAGES.noMembership });
    expect(await auditsOf(emulator, 'probe-orphan')).toHaveLength(0);
    const memberships = await emulator.store.all<ProjectMembership>('ProjectMembership');
    expect(memberships.some((m) => m.id === membershipIdFor('probe-orphan'))).toBe(false);
  });
});
