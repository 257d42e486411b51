// `npm run verify` against the local emulator (the built bundles behind Medplum's webhook route),
// and its checks and answers on their own. Against a real server it is run by hand: see
// docs/going-live.md.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_BOTS } from '../../src/runtime/registry';
import { ensureBuilt } from '../../src/tools/cli/dev';
import { runVerifyCommand } from '../../src/tools/cli/verify';
import { EMULATOR_PROJECT_ID } from '../../src/tools/emulator/identity';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { newMedplumClient } from '../../src/tools/provision/medplum';
import { answerOutcome, hintFor } from '../../src/tools/verify/outcome';
import { freshStory } from '../../src/tools/verify/story';
import { checkState, expectedState, runVerify } from '../../src/tools/verify/verify';
import type { VerifyState, VerifyTarget } from '../../src/tools/verify/verify';
import { fakeFetch, LoopbackService } from '../support/fake-servers';
import { emulatorEnv } from '../support/emulator-project';
import { makeRoot } from '../support/provision-root';

let emulator: RunningEmulator;

function emulatorTarget(secrets: Partial<Record<string, string>> = {}): VerifyTarget {
  return {
    bots: WEBHOOK_BOTS.map((b) => {
      const bot = emulator.bot(b.name);
      return { name: b.name, botId: bot.botId, webhookUrl: bot.webhookUrl, secret: secrets[b.name] ?? bot.secret };
    }),
    // The emulator's /fhir/R4 needs no login; on a real server this client is the logged-in admin.
    medplum: newMedplumClient(`${emulator.url}/`),
    rawBodySupported: true,
    recordsImport: { on: false, why: 'not looked at here (test/verify/verify-import.test.ts checks the import)' },
  };
}

beforeAll(async () => {
  await ensureBuilt();
  emulator = await startEmulator();
});

afterAll(async () => {
  await emulator.close();
});

describe('npm run verify, against the emulator', () => {
  it('passes, and passes again with fresh ids on the same project', async () => {
    for (let run = 0; run < 2; run++) {
      const lines: string[] = [];
      const result = await runVerify({ target: emulatorTarget(), log: (l) => lines.push(l), auditWaitMs: 2000 });
      expect(result.steps.filter((s) => !s.ok)).toEqual([]);
      expect(result.checks.filter((c) => !c.ok)).toEqual([]);
      expect(result.ok).toBe(true);
      expect(lines.at(-1)).toMatch(/^verify: PASS — 9 deliveries and 10 checks as expected \(patient verify_/);
      // The forged and the replayed step: monitor will count them, and verify says so.
      expect(lines.at(-3)).toBe(
        'note: the 2 refused deliveries above were forged or replayed on purpose; npm run monitor counts them as failed runs until they leave its --since window (24h by default).'
      );
      expect(lines.join('\n')).not.toMatch(/whsec_|FHIR server returned|error_message/);
    }
  });

  it('fails, with a hint, when a bot holds another signing secret', async () => {
    const lines: string[] = [];
    const result = await runVerify({
      target: emulatorTarget({ 'medblocks-records-sync-failed': 'whsec_not_the_bots_secret_000000000000' }),
      log: (l) => lines.push(l),
      auditWaitMs: 0,
    });
    expect(result.ok).toBe(false);
    const failed = result.steps.filter((s) => !s.ok);
    expect(failed.map((s) => `${s.title}: ${String(s.status)} ${s.outcome}`)).toEqual([
      'records sync from EHR A fails: 400 rejected:signature_mismatch',
    ]);
    // The recovered sync still completes the Task, but the failed sync's event was never marked.
    expect(result.checks.filter((c) => !c.ok).map((c) => c.check)).toEqual([
      'accepted events marked applied',
      'AuditEvents naming this run’s events',
    ]);
    expect(lines.join('\n')).toMatch(/hint: The bot holds another signing secret than verify signed with/);
    expect(lines.at(-1)).toMatch(/^verify: FAIL — 3 mismatch\(es\)/);
  });
});

describe('verify checks', () => {
  let n = 0;
  const story = freshStory(Date.parse('2026-08-01T00:00:00Z'), () => ++n);
  const expectation = expectedState(story.ids, story.steps);
  const good: VerifyState = {
    patients: 1,
    consents: [
      { key: story.ids.connectionA, status: 'inactive' },
      { key: 'pf_x/fhirsrc_b/2026-04-25T14:34:05.000Z', status: 'rejected' },
    ],
    tasks: [
      { key: `reconnect/${story.ids.connectionA}`, status: 'requested' },
      { key: `records-sync/${story.ids.patientId}/${story.ids.sourceA}`, status: 'completed' },
    ],
    markedEvents: expectation.accepted,
    auditedEvents: story.steps.filter((s) => s.expectedStatus === 200).map((s) => s.event.id),
  };

  it('fresh ids keep the story’s duplicates and differ from run to run', () => {
    expect(new Set(story.steps.map((s) => s.event.id)).size).toBe(7);
    expect(story.steps[1]?.event.id).toBe(story.steps[0]?.event.id);
    expect(story.steps[3]?.event.id).toBe(story.steps[2]?.event.id);
    expect(expectation).toMatchObject({ audits: 7 });
    expect(expectation.accepted).toHaveLength(6);
    expect(expectation.refused).toHaveLength(1);
    expect(freshStory().ids.patientId).not.toBe(freshStory().ids.patientId);
    expect(story.ids.patientId).toMatch(/^verify_[0-9a-z]{26}$/);
  });

  it('pass on the expected state', () => {
    expect(checkState(good, expectation).filter((c) => !c.ok)).toEqual([]);
  });

  it('name each difference', () => {
    const bad: VerifyState = {
      ...good,
      patients: 2,
      consents: [{ key: story.ids.connectionA, status: 'active' }],
      tasks: [...good.tasks, { key: 'flow-follow-up/pf_1', status: 'requested' }],
      markedEvents: [...expectation.accepted.slice(1), ...expectation.refused],
      auditedEvents: [],
    };
    expect(
      checkState(bad, expectation)
        .filter((c) => !c.ok)
        .map((c) => `${c.check}: ${c.expected} ≠ ${c.actual}`)
    ).toEqual([
      'one Patient for the patient id: 1 ≠ 2',
      'Consents for the patient: 2 ≠ 1',
      'EHR A Consent (refresh failed; late event ignored): inactive ≠ active',
      'EHR B attempt Consent: rejected ≠ none',
      'Tasks for the patient (no follow-up): 2 ≠ 3',
      'accepted events marked applied: 6 ≠ 5',
      'refused events marked applied: 0 ≠ 1',
      'AuditEvents naming this run’s events: 7 ≠ 0',
    ]);
  });
});

describe('webhook answers', () => {
  it('read the outcome from a 200, a real server’s OperationOutcome and the emulator’s echo', () => {
    expect(answerOutcome(200, '{"status":"stale","event":"evt_1"}')).toBe('stale');
    const outcome = (text: string): string =>
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'processing', details: { text } }],
      });
    expect(answerOutcome(400, outcome('Delivery rejected: signature_mismatch: check the secret'))).toBe(
      'rejected:signature_mismatch'
    );
    expect(answerOutcome(400, outcome('FHIR write failed: conflict (HTTP 409); nothing was marked applied'))).toBe(
      'failed:conflict'
    );
    // A permanent failure is answered 200 (quarantined), with its reason.
    expect(
      answerOutcome(
        200,
        '{"status":"quarantined","event":"evt_1","type":"records.sync.completed","reason":"patient_not_found","path":"data.object.patient_id"}'
      )
    ).toBe('quarantined:patient_not_found');
    expect(
      answerOutcome(400, outcome('Delivery not applied: internal: internal error; nothing was marked applied'))
    ).toBe('failed:internal');
    // A runtime that answers with the run's console output (the emulator did, Lambda may): its summary line.
    const echo = 'medblocks evt=- type=- outcome=rejected:missing_header fhir_requests=0 ms=1\nUnhandled error: …';
    expect(answerOutcome(400, outcome(echo))).toBe('rejected:missing_header');
    expect(answerOutcome(403, 'Bot is not configured for public webhook access')).toBe('http:403');
    expect(answerOutcome(undefined, '', 'timeout')).toBe('timeout');
  });

  it('a quarantine says what happened and to run verify again, never to redeliver events Medblocks never sent', () => {
    const patient = hintFor('quarantined:patient_not_found', '200 processed', '', true);
    expect(patient).toContain('MEDBLOCKS_CREATE_MISSING_PATIENTS=false');
    expect(patient).toContain('verify creates its patient first');
    const invalid = hintFor('quarantined:invalid_resource', '200 processed', '', true);
    expect(invalid).toMatch(/^Medplum’s validator refused a resource built from the event/);
    expect(invalid).toContain('run verify again');
    for (const hint of [patient, invalid]) expect(hint).not.toContain('redeliver');
  });

  it('come with the fix when the server, not the bot, refused', () => {
    expect(hintFor('http:400', '200 processed', 'VM Context bots not enabled on this server', true)).toMatch(
      /vmContextBotsEnabled/
    );
    expect(hintFor('http:403', 'processed', 'Bot is not configured for public webhook access', true)).toMatch(
      /npm run provision/
    );
    expect(hintFor('rejected:body_not_raw', 'processed', '', false)).toMatch(/MEDBLOCKS_ALLOW_PARSED_BODY=true/);
    expect(hintFor('rejected:signature_mismatch', 'rejected:signature_mismatch', '', true)).toBeUndefined();
  });
});

describe('npm run verify (command)', () => {
  it('--help prints the usage', async () => {
    const lines: string[] = [];
    expect(await runVerifyCommand(['--help'], { print: (l) => lines.push(l) })).toBe(0);
    expect(lines.join('\n')).toMatch(/Usage: npm run verify/);
  });

  it('exits 1, naming the fix, on a project that was not provisioned', async () => {
    const { root, cleanup } = makeRoot();
    // The emulator started empty: a fresh project, no bot in it.
    const empty = await startEmulator({ root, bots: [] });
    try {
      const medplum = new LoopbackService(empty.url);
      const lines: string[] = [];
      const code = await runVerifyCommand([], {
        root,
        env: emulatorEnv(empty),
        fetchFn: fakeFetch(medplum),
        print: (l) => lines.push(l),
      });
      expect(code).toBe(1);
      expect(lines.join('\n')).toContain(
        `ERROR: Bot "medblocks-patient-flow-completed" is not in Project/${EMULATOR_PROJECT_ID}: run npm run provision first`
      );
      expect(medplum.writes()).toEqual([]);
    } finally {
      await empty.close();
      cleanup();
    }
  });
});
