// The webhook route's contract, status by status, with the real built bundles.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AccessPolicy, AuditEvent, Basic, Bot, Task } from '@medplum/fhirtypes';
import { botIdFor } from '../../src/tools/emulator/identity';
import { loadPolicyFile } from '../../src/tools/emulator/project';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { MESSAGES } from '../../src/tools/emulator/webhook';
import { patientFlowCompleted, recordsSyncCompleted, serialise } from '../../src/tools/fixtures/events';
import { outcomeOfAnswer } from '../../src/runtime/summary';
import { buildIntoTempRoot, outcomeText, post, sendSigned } from './support';
import type { BuiltRoot } from './support';

const SYNC_BOT = 'medblocks-records-sync-completed';
const FLOW_BOT = 'medblocks-patient-flow-completed';

let built: BuiltRoot;
let emulator: RunningEmulator;

beforeAll(async () => {
  built = await buildIntoTempRoot();
  emulator = await startEmulator({ root: built.root });
});

afterAll(async () => {
  await emulator.close();
  built.cleanup();
});

async function auditEventsOf(botName: string): Promise<AuditEvent[]> {
  return emulator.store.all<AuditEvent>('AuditEvent', `entity=Bot/${botIdFor(botName)}`);
}

async function setBot(botName: string, change: Partial<Bot>): Promise<void> {
  const bot = await emulator.store.repo.readResource<Bot>('Bot', botIdFor(botName));
  await emulator.store.repo.updateResource<Bot>({ ...bot, ...change });
}

describe('POST /webhook/:membershipId', () => {
  test('a signed delivery runs the bot synchronously: 200 with its answer, one AuditEvent with outcome 0', async () => {
    const before = (await auditEventsOf(SYNC_BOT)).length;
    const event = recordsSyncCompleted();
    const answer = await sendSigned(emulator.bot(SYNC_BOT), event);
    expect(answer.status).toBe(200);
    expect(answer.contentType).toContain('application/json');
    expect(JSON.parse(answer.text)).toEqual({ status: 'processed', event: event.id, type: 'records.sync.completed' });
    expect(await emulator.store.all<Task>('Task')).toHaveLength(1);

    const audits = await auditEventsOf(SYNC_BOT);
    expect(audits).toHaveLength(before + 1);
    const audit = audits.at(-1) as AuditEvent;
    expect(audit.type).toEqual({ system: 'https://medplum.com/CodeSystem/audit-event', code: 'execute' });
    expect(audit.outcome).toBe('0');
    expect(audit.source.observer.reference).toBe(`Bot/${botIdFor(SYNC_BOT)}`);
    expect(audit.entity?.[0]?.what?.reference).toBe(`Bot/${botIdFor(SYNC_BOT)}`);
    expect(Date.parse(audit.period?.end ?? '')).toBeGreaterThanOrEqual(Date.parse(audit.period?.start ?? ''));
    expect(audit.outcomeDesc).toMatch(
      new RegExp(`^medblocks evt=${event.id} type=records.sync.completed outcome=processed `)
    );
  });

  test('a genuine event that cannot be applied is answered 200 with the bot’s quarantined answer, AuditEvent outcome 0, one dead-letter Task', async () => {
    const before = (await auditEventsOf(SYNC_BOT)).length;
    const event = recordsSyncCompleted();
    const poison = serialise({ ...event, data: { object: { ...event.data.object, total: 'many' } } });
    for (const attempt of [1, 2]) {
      const answer = await sendSigned(emulator.bot(SYNC_BOT), poison);
      expect(answer.status, `attempt ${String(attempt)}`).toBe(200);
      expect(answer.contentType).toContain('application/json');
      expect(JSON.parse(answer.text)).toEqual({
        status: 'quarantined',
        event: event.id,
        type: 'records.sync.completed',
        reason: 'invalid_payload',
        path: 'data.object.total',
      });
      expect(outcomeOfAnswer(answer.status, answer.text)).toBe('quarantined:invalid_payload');
      expect(answer.text).not.toContain('many');
    }
    const audits = await auditEventsOf(SYNC_BOT);
    expect(audits).toHaveLength(before + 2);
    expect(audits.at(-1)?.outcome).toBe('0');
    expect(audits.at(-1)?.outcomeDesc).toMatch(
      new RegExp(`^medblocks evt=${event.id} type=records.sync.completed outcome=quarantined:invalid_payload `)
    );
    const deadLetters = await emulator.store.all<Task>(
      'Task',
      `code=urn:medblocks:code|webhook-dead-letter&identifier=urn:medblocks:dead-letter|${event.id}`
    );
    expect(deadLetters.map((t) => [t.status, t.statusReason?.text])).toEqual([
      ['failed', 'invalid_payload at data.object.total'],
    ]);
    const marked = await emulator.store.all<Basic>('Basic', `identifier=urn:medblocks:event-id|${event.id}`);
    expect(marked).toEqual([]);
  });

  test('the /api and project-scoped routes reach the same bot', async () => {
    const bot = emulator.bot(SYNC_BOT);
    const scoped = { ...bot, webhookUrl: `${emulator.url}/api/projects/any/webhook/${bot.membershipId}` };
    expect((await sendSigned(scoped, recordsSyncCompleted())).status).toBe(200);
  });

  test('a throwing bot gives 400 with the thrown message only, as a real server answers; its console output goes to the AuditEvent', async () => {
    const answer = await sendSigned(emulator.bot(SYNC_BOT), recordsSyncCompleted(), { secret: 'whsec_not_the_secret' });
    expect(answer.status).toBe(400);
    expect(answer.contentType).toBe('application/fhir+json');
    expect(JSON.parse(answer.text)).toEqual({
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'invalid',
          details: { text: 'Delivery rejected: signature_mismatch: signature does not match any configured secret' },
        },
      ],
    });
    expect(answer.text).not.toContain('medblocks evt=');
    const audit = (await auditEventsOf(SYNC_BOT)).at(-1);
    expect(audit?.outcome).toBe('4');
    expect(audit?.outcomeDesc?.split('\n')[0]).toMatch(
      /^medblocks evt=- type=- outcome=rejected:signature_mismatch fhir_requests=0 ms=\d+$/
    );
  });

  test('an unknown membership id is 404', async () => {
    const answer = await post(`${emulator.url}/webhook/00000000-0000-4000-a000-000000000000`, '{}', {
      'Content-Type': 'application/json',
    });
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.text)).toMatchObject({ resourceType: 'OperationOutcome', id: 'not-found' });
  });

  test('a membership that is not a bot is 403', async () => {
    const answer = await post(`${emulator.url}/webhook/${emulator.adminMembershipId}`, '{}');
    expect(answer).toMatchObject({ status: 403, text: MESSAGES.notBot });
    expect(MESSAGES.notBot).toBe('ProjectMembership must be for a Bot resource');
  });

  test('a bot without publicWebhook is 403 and does not run', async () => {
    const before = (await auditEventsOf(SYNC_BOT)).length;
    await setBot(SYNC_BOT, { publicWebhook: false });
    try {
      const answer = await sendSigned(emulator.bot(SYNC_BOT), recordsSyncCompleted());
      expect(answer).toMatchObject({ status: 403, text: 'Bot is not configured for public webhook access' });
      expect(await auditEventsOf(SYNC_BOT)).toHaveLength(before);
    } finally {
      await setBot(SYNC_BOT, { publicWebhook: true });
    }
  });

  test('rawBody off hands the bot a parsed object, which it refuses (fail closed)', async () => {
    await setBot(SYNC_BOT, { rawBody: false });
    try {
      const answer = await sendSigned(emulator.bot(SYNC_BOT), recordsSyncCompleted());
      expect(answer.status).toBe(400);
      expect(outcomeOfAnswer(answer.status, answer.text)).toBe('rejected:body_not_raw');
    } finally {
      await setBot(SYNC_BOT, { rawBody: true });
    }
  });

  test('malformed JSON is refused with 400 before the bot runs, rawBody on or off', async () => {
    for (const rawBody of [true, false]) {
      await setBot(FLOW_BOT, { rawBody });
      const before = (await auditEventsOf(FLOW_BOT)).length;
      const answer = await sendSigned(emulator.bot(FLOW_BOT), '{"id":"evt_1",');
      expect(answer.status).toBe(400);
      expect(outcomeText(answer.text)).toBe('Content could not be parsed');
      expect(await auditEventsOf(FLOW_BOT)).toHaveLength(before);
    }
    await setBot(FLOW_BOT, { rawBody: true });
  });

  test('GET on a webhook URL is not routed', async () => {
    const response = await fetch(emulator.bot(SYNC_BOT).webhookUrl);
    expect(response.status).toBe(404);
  });
});

describe('membership policies', () => {
  let narrow: RunningEmulator;

  beforeAll(async () => {
    const full = loadPolicyFile(built.root, SYNC_BOT) as AccessPolicy;
    // The same grants minus Task create/update: the bot can read but not write its Task.
    const withoutTaskWrites: AccessPolicy = {
      ...full,
      resource: (full.resource ?? []).map((r) =>
        r.resourceType === 'Task' ? { ...r, interaction: ['search', 'read'] } : r
      ),
    };
    narrow = await startEmulator({
      root: built.root,
      policies: { [SYNC_BOT]: withoutTaskWrites, [FLOW_BOT]: null },
    });
  });

  afterAll(async () => {
    await narrow.close();
  });

  test('a bot given a narrower policy is denied: 400 failed:access_denied, nothing written', async () => {
    const answer = await sendSigned(narrow.bot(SYNC_BOT), recordsSyncCompleted());
    expect(answer.status).toBe(400);
    expect(outcomeOfAnswer(answer.status, answer.text)).toBe('failed:access_denied');
    expect(await narrow.store.all<Task>('Task')).toEqual([]);
    expect(await narrow.store.all<Basic>('Basic')).toEqual([]);
  });

  test('a membership without a policy is 403', async () => {
    const answer = await sendSigned(narrow.bot(FLOW_BOT), patientFlowCompleted());
    expect(answer).toMatchObject({ status: 403, text: 'ProjectMembership must have an Access Policy' });
  });
});

describe('a bot that throws an OperationOutcomeError', () => {
  test('is answered with that outcome and its own status, as the server normalises it (a conflict stays 409)', async () => {
    const thrower = await startEmulator({
      bots: [
        {
          name: 'probe-conflict',
          code: "const { OperationOutcomeError, conflict } = require('@medplum/core');\nexports.handler = async () => { throw new OperationOutcomeError(conflict('could not serialize access')); };",
          policy: { resourceType: 'AccessPolicy', resource: [{ resourceType: 'Basic' }] },
          publicWebhook: true,
          rawBody: true,
        },
      ],
    });
    try {
      const answer = await post(thrower.bot('probe-conflict').webhookUrl, '{}', { 'Content-Type': 'application/json' });
      expect(answer.status).toBe(409);
      expect(answer.contentType).toBe('application/fhir+json');
      expect(outcomeText(answer.text)).toBe('could not serialize access');
    } finally {
      await thrower.close();
    }
  });
});

describe('a project without the bots feature', () => {
  // Ledger WH-2.
  test('answers 400 Bots not enabled, and the bot does not run', async () => {
    const withoutBots = await startEmulator({ root: built.root, features: [] });
    try {
      const answer = await sendSigned(withoutBots.bot(SYNC_BOT), recordsSyncCompleted());
      expect(answer.status).toBe(400);
      expect(outcomeText(answer.text)).toBe('Bots not enabled');
      expect(await withoutBots.store.all<Basic>('Basic')).toEqual([]);
    } finally {
      await withoutBots.close();
    }
  });
});

describe('/fhir/R4 on loopback', () => {
  test('reads without authentication, including Bot and ProjectMembership resources', async () => {
    const bot = emulator.bot(SYNC_BOT);
    const response = await fetch(`${emulator.fhirUrl}/ProjectMembership?profile=Bot/${bot.botId}`);
    expect(response.status).toBe(200);
    const bundle = (await response.json()) as { entry?: { resource: { id: string } }[] };
    expect(bundle.entry?.map((e) => e.resource.id)).toEqual([bot.membershipId]);
    const read = await fetch(`${emulator.fhirUrl}/Bot/${bot.botId}`);
    expect(((await read.json()) as Bot).publicWebhook).toBe(true);
  });

  test('refuses writes unless started with fhirWrites', async () => {
    const body = serialise({ resourceType: 'Patient' });
    const answer = await post(`${emulator.fhirUrl}/Patient`, body, { 'Content-Type': 'application/fhir+json' });
    expect(answer.status).toBe(405);
  });
});
