// `npm run verify` leaves nothing that needs attention. With
// MEDBLOCKS_CREATE_MISSING_PATIENTS=false every story event for verify's unknown patient used to be
// quarantined, leaving dead-letters that `redeliver` could never clear (Medblocks never sent the
// events) and `monitor` at "Needs attention" for ever. Now verify creates its patient first when the
// project says so, and closes the dead-letters of its own events whatever made them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Task } from '@medplum/fhirtypes';
import { WEBHOOK_BOTS } from '../../src/runtime/registry';
import { ensureBuilt } from '../../src/tools/cli/dev';
import { runVerifyCommand } from '../../src/tools/cli/verify';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { connectMedplum } from '../../src/tools/provision/medplum';
import { quarantinedEvents } from '../../src/tools/redeliver/redeliver';
import { runVerify, VERIFY_CLOSED_REASON } from '../../src/tools/verify/verify';

let emulator: RunningEmulator;

beforeAll(async () => {
  await ensureBuilt();
  emulator = await startEmulator({ secrets: { MEDBLOCKS_CREATE_MISSING_PATIENTS: 'false' } });
});

afterAll(async () => {
  await emulator.close();
});

function env(): NodeJS.ProcessEnv {
  return {
    MEDPLUM_BASE_URL: `${emulator.url}/`,
    MEDPLUM_CLIENT_ID: emulator.adminClient.clientId,
    MEDPLUM_CLIENT_SECRET: emulator.adminClient.clientSecret,
  };
}

async function deadLetters(): Promise<Task[]> {
  const tasks = await emulator.store.all<Task>('Task');
  return tasks.filter((t) => t.code?.coding?.some((c) => c.code === 'webhook-dead-letter'));
}

describe('npm run verify on a project that creates no missing patients', () => {
  it('passes by creating its patient first, and leaves no dead-letter for monitor or redeliver', async () => {
    const lines: string[] = [];
    const code = await runVerifyCommand([], { env: env(), print: (l) => lines.push(l) });
    const output = lines.join('\n');
    expect(output).toContain(
      'The project has MEDBLOCKS_CREATE_MISSING_PATIENTS=false: verify created its patient first, as you would before Medblocks reports on one.'
    );
    expect(lines.at(-1)).toMatch(/^verify: PASS — 9 deliveries and 10 checks as expected/);
    // No MEDBLOCKS_API_KEY in the project: the import's one row says it was skipped and why, and
    // is not counted among the checks.
    expect(output).toMatch(
      /^records import +on, or skipped +skipped: MEDBLOCKS_API_KEY is not a project secret: the import is off \(npm run provision -- --import turns it on\) +skip$/m
    );
    expect(code).toBe(0);
    expect(await deadLetters()).toEqual([]);
  });

  it('closes the dead-letters of its own events when its patient could not be created first', async () => {
    // As when the project's secrets are unreadable: verify cannot know the setting, so the bots
    // quarantine its events as patient_not_found.
    const session = await connectMedplum(
      {
        medplumBaseUrl: `${emulator.url}/`,
        clientId: emulator.adminClient.clientId,
        clientSecret: emulator.adminClient.clientSecret,
      },
      undefined
    );
    const target = {
      bots: WEBHOOK_BOTS.map((b) => {
        const bot = emulator.bot(b.name);
        return { name: b.name, botId: bot.botId, webhookUrl: bot.webhookUrl, secret: bot.secret };
      }),
      medplum: session.medplum,
      rawBodySupported: true,
      createsMissingPatients: undefined,
      recordsImport: { on: false, why: 'the project secrets were not read' } as const,
    };
    const lines: string[] = [];
    const result = await runVerify({ target, log: (l) => lines.push(l), auditWaitMs: 0 });
    expect(result.ok).toBe(false);
    expect(result.steps.filter((s) => s.outcome === 'quarantined:patient_not_found').length).toBeGreaterThan(0);

    // Every dead-letter of the run is closed, with the reason, and redeliver finds none to wait on.
    const own = (await deadLetters()).filter((t) =>
      t.identifier?.some((i) => result.closedDeadLetters.includes(i.value ?? ''))
    );
    expect(result.closedDeadLetters.length).toBeGreaterThan(0);
    expect(own.map((t) => t.status)).toEqual(result.closedDeadLetters.map(() => 'cancelled'));
    expect(own.every((t) => t.statusReason?.text === VERIFY_CLOSED_REASON)).toBe(true);
    expect((await deadLetters()).filter((t) => t.status === 'failed')).toEqual([]);
    expect(await quarantinedEvents(session.medplum)).toEqual([]);
    expect(lines.join('\n')).toContain(
      `note: closed ${String(result.closedDeadLetters.length)} dead-letter(s) of this run's own events (status cancelled)`
    );
    // The hint does not send anyone to redeliver events Medblocks never sent.
    expect(result.hints.join('\n')).toMatch(/verify creates its patient first/);
    expect(result.hints.join('\n')).not.toContain('npm run redeliver');
  });
});
