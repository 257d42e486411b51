// `npm run verify` checks the records import (issue 22, item 4): against the emulator with the
// import on (MEDBLOCKS_API_KEY of a local Medblocks over loopback), verify runs the import bot once
// through Bot/$execute after the story and checks what it left for its patient. Its patient with
// records at Medblocks, unknown there, or known with none passes and says which; a key Medblocks
// refuses, or a record no Provenance names, fails with the reason.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../../src/tools/cli/dev';
import { runVerifyCommand } from '../../src/tools/cli/verify';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { generatePatientRecords } from '../../src/tools/fixtures/patient-records';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import type { RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { connectMedplum } from '../../src/tools/provision/medplum';
import { checkImport, importHint, importSetting } from '../../src/tools/verify/import-check';
import type { ImportState, VerifyImport } from '../../src/tools/verify/import-check';
import { freshStory } from '../../src/tools/verify/story';
import { findTarget } from '../../src/tools/verify/target';
import { runVerify } from '../../src/tools/verify/verify';
import type { VerifyResult } from '../../src/tools/verify/verify';

let mb: RunningLocalMedblocks;

beforeAll(async () => {
  await ensureBuilt();
  mb = await startLocalMedblocks();
}, 120_000);

afterAll(async () => {
  await mb.close();
});

async function withEmulator(secrets: Record<string, string>, body: (emulator: RunningEmulator) => Promise<void>) {
  const emulator = await startEmulator({ secrets });
  try {
    await body(emulator);
  } finally {
    await emulator.close();
  }
}

/** verify as the command runs it (findTarget reads the project's secrets), with the story given. */
async function verifyWith(
  emulator: RunningEmulator,
  story = freshStory()
): Promise<{ result: VerifyResult; lines: string[] }> {
  const session = await connectMedplum(
    {
      medplumBaseUrl: `${emulator.url}/`,
      clientId: emulator.adminClient.clientId,
      clientSecret: emulator.adminClient.clientSecret,
    },
    undefined
  );
  const { target, problems } = await findTarget(session, () => undefined);
  expect(problems).toEqual([]);
  const lines: string[] = [];
  const result = await runVerify({ target, story, log: (l) => lines.push(l), auditWaitMs: 2000 });
  return { result, lines };
}

const importRows = (result: VerifyResult): string[] =>
  result.checks.slice(10).map((c) => `${c.check}: ${c.expected} | ${c.actual} | ${c.ok ? 'pass' : 'FAIL'}`);

describe('npm run verify with the records import on', () => {
  const on = (): Record<string, string> => ({ MEDBLOCKS_API_KEY: mb.apiKey, MEDBLOCKS_API_BASE_URL: mb.url });

  it('runs the import after the story and checks its Task, the sync Task and every record’s Provenance', async () => {
    await withEmulator(on(), async (emulator) => {
      const story = freshStory();
      const records = generatePatientRecords({ patientId: story.ids.patientId, source: story.ids.sourceA, count: 30 });
      mb.putRecords(story.ids.patientId, records);
      const { result, lines } = await verifyWith(emulator, story);
      // One Patient record of the EHR is not imported (ehr_patient_records): 29 records.
      expect(importRows(result)).toEqual([
        'records import bot run (Bot/$execute): done, idle or paused | done | pass',
        'records-import Task of the patient: completed, or failed: patient unknown at Medblocks | completed | pass',
        'import-* outputs on the records-sync Task: created=29 | created=29 updated=0 refused=0 | pass',
        'imported records of the patient: 29 | 29 | pass',
        'imported records no Provenance names: 0 | 0 | pass',
      ]);
      expect(result.ok).toBe(true);
      expect(lines.at(-1)).toMatch(/^verify: PASS — 9 deliveries and 15 checks as expected/);
      expect(lines.join('\n')).toMatch(/^note: verify ran the records import once \(Bot\/[^/]+\/\$execute\)/m);
      const output = lines.join('\n');
      expect(output).not.toContain(mb.apiKey);
      // No record's content in the output: the generated records' ids never appear.
      for (const item of records.slice(0, 5)) expect(output).not.toContain(item.resource.id ?? '-');
    });
  });

  it('passes and says so when Medblocks does not know the synthetic patient, or knows it with no records', async () => {
    await withEmulator(on(), async (emulator) => {
      const unknown = await verifyWith(emulator);
      expect(unknown.result.ok).toBe(true);
      expect(importRows(unknown.result)).toEqual([
        'records import bot run (Bot/$execute): done, idle or paused | done | pass',
        'records-import Task of the patient: completed, or failed: patient unknown at Medblocks | failed: medblocks_patient_unknown (Medblocks does not know the synthetic patient: parked, as it should be) | pass',
        'import-* outputs on the records-sync Task: none (nothing imported) | none | pass',
        'imported records of the patient: 0 | 0 | pass',
        'imported records no Provenance names: 0 | 0 | pass',
      ]);

      const story = freshStory();
      mb.putRecords(story.ids.patientId, []);
      const empty = await verifyWith(emulator, story);
      expect(empty.result.ok).toBe(true);
      expect(importRows(empty.result).slice(1, 3)).toEqual([
        'records-import Task of the patient: completed, or failed: patient unknown at Medblocks | completed (0 records at Medblocks for the synthetic patient) | pass',
        'import-* outputs on the records-sync Task: created=0 | created=0 updated=0 refused=0 | pass',
      ]);
    });
  });

  it('fails, naming the reason and the fix, when Medblocks refuses the API key', async () => {
    await withEmulator({ ...on(), MEDBLOCKS_API_KEY: 'mb_sk_sbx_not_the_key' }, async (emulator) => {
      const story = freshStory();
      mb.putRecords(
        story.ids.patientId,
        generatePatientRecords({ patientId: story.ids.patientId, source: story.ids.sourceA, count: 30 })
      );
      const { result, lines } = await verifyWith(emulator, story);
      expect(result.ok).toBe(false);
      // The story itself passed: only the import's rows fail.
      expect(result.steps.filter((s) => !s.ok)).toEqual([]);
      expect(result.checks.slice(0, 10).filter((c) => !c.ok)).toEqual([]);
      expect(importRows(result).slice(0, 2)).toEqual([
        'records import bot run (Bot/$execute): done, idle or paused | failed:medblocks_unauthorized | FAIL',
        'records-import Task of the patient: completed, or failed: patient unknown at Medblocks | in-progress | FAIL',
      ]);
      expect(lines.join('\n')).toMatch(/^hint: Medblocks refused the project secret MEDBLOCKS_API_KEY \(401\/403\)/m);
      expect(lines.join('\n')).not.toContain('mb_sk_sbx_not_the_key');
      expect(lines.at(-1)).toMatch(/^verify: FAIL — 3 mismatch\(es\)/);
    });
  });

  it('the command runs the import too (exit 0)', async () => {
    await withEmulator(on(), async (emulator) => {
      const lines: string[] = [];
      const code = await runVerifyCommand([], {
        env: {
          MEDPLUM_BASE_URL: `${emulator.url}/`,
          MEDPLUM_CLIENT_ID: emulator.adminClient.clientId,
          MEDPLUM_CLIENT_SECRET: emulator.adminClient.clientSecret,
        },
        print: (l) => lines.push(l),
      });
      expect(lines.join('\n')).toMatch(
        /^records import bot run \(Bot\/\$execute\) +done, idle or paused +done +pass$/m
      );
      expect(code).toBe(0);
    });
  });
});

describe('verify’s import checks', () => {
  const done: ImportState = {
    task: {
      status: 'completed',
      counts: {
        created: 3,
        updated: 0,
        unchanged: 0,
        stale: 0,
        refused: 0,
        unresolved: 0,
        patientRecords: 1,
        malformed: 0,
      },
    },
    syncOutputs: { created: 3, updated: 0, refused: 0 },
    imported: 3,
    untraced: 0,
  };

  it('fail on a record no Provenance names, with the fix', () => {
    const state = { ...done, untraced: 1 };
    const failed = checkImport({ status: 'done' }, state).filter((c) => !c.ok);
    expect(failed.map((c) => `${c.check}: ${c.expected} ≠ ${c.actual}`)).toEqual([
      'imported records no Provenance names: 0 ≠ 1',
    ]);
    expect(importHint({ status: 'done' }, state)).toMatch(/have no Provenance/);
  });

  it('fail when the Task’s count and the records found differ, or the sync Task lacks its outputs', () => {
    const failed = checkImport({ status: 'done' }, { ...done, syncOutputs: undefined, imported: 2 }).filter(
      (c) => !c.ok
    );
    expect(failed.map((c) => `${c.check}: ${c.expected} ≠ ${c.actual}`)).toEqual([
      'import-* outputs on the records-sync Task: created=3 ≠ none',
      'imported records of the patient: 3 ≠ 2',
    ]);
  });

  it('a run paused before the patient fails with the advice to run verify again', () => {
    const none: ImportState = { task: undefined, syncOutputs: undefined, imported: 0, untraced: 0 };
    const checks = checkImport({ status: 'paused', why: 'paced: …' }, none);
    expect(checks[0]?.ok).toBe(true);
    expect(checks[1]).toMatchObject({ actual: 'none', ok: false });
    expect(importHint({ status: 'paused' }, none)).toMatch(/run verify again/);
  });

  it('say why the import is skipped: no bot, unreadable secrets, no key', () => {
    const why = (setting: VerifyImport): string => (setting.on ? 'on' : setting.why);
    expect(why(importSetting(undefined, {}))).toMatch(/not in the project/);
    expect(why(importSetting('b1', undefined))).toMatch(/cannot be read/);
    expect(why(importSetting('b1', {}))).toMatch(/--import turns it on/);
    const on = importSetting('b1', { MEDBLOCKS_API_KEY: { name: 'MEDBLOCKS_API_KEY', valueString: 'k' } });
    expect(on.on && on.botId).toBe('b1');
    expect(on.on ? on.types : []).toEqual(expect.arrayContaining(['Condition', 'Observation']));
  });
});
