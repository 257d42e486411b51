// `npm run verify`: checks a provisioned Medplum project end to end — the demo story, with fresh
// patients and event ids, delivered to the real webhook URLs signed as Medblocks signs, then the
// resulting FHIR state read back. It first builds dist/ from bots/ and compares each bot's
// deployed code with it: verifying code older than the sources would pass or fail for the wrong
// reason, so it refuses with the fix (`npm run provision`) unless --deployed-as-is. Exit 0 when
// every step and check passed, 1 on a mismatch or when it could not run, 2 on a bad command line.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_BOTS } from '../../runtime/registry';
import { readSettings } from '../provision/env';
import { connectMedplum, readDeployedCode } from '../provision/medplum';
import type { MedplumSession } from '../provision/medplum';
import { findTarget } from '../verify/target';
import type { VerifyTarget } from '../verify/verify';
import { runVerify } from '../verify/verify';
import { EXIT_FAILURE, exitWith, failureLine, isEntryPoint, printToConsole, runCommand } from './args';
import type { CommandSpec } from './args';
import { buildBeforeRun, describePrebuild } from './prebuild';

export const VERIFY_SPEC = {
  name: 'verify',
  summary: `plays the demo story against the provisioned Medplum project of MEDPLUM_CLIENT_ID: nine deliveries (new connection, redelivery, forged signature, replayed timestamp, records sync, token refresh failure, a late older event, a failed and a recovered sync) to each bot's webhook URL, signed as Medblocks signs, with a fresh patient and fresh event ids on every run; checks each answer, then the patient's Consents and Tasks, the dedupe markers and the runs' AuditEvents. With the records import on (the project secret MEDBLOCKS_API_KEY), it then runs the import bot once (Bot/$execute, as its cron job would) and checks the patient's records-import Task, the import-* outputs on its records-sync Task and that every record imported for it has a Provenance; with the import off, one row says it was skipped and why. Prints a pass/fail table.

It writes what the bots write for one synthetic patient (verify_…); nothing else is changed, except that it creates that patient itself when the project's MEDBLOCKS_CREATE_MISSING_PATIENTS is false, and closes (status cancelled) the dead-letters of its own events, which Medblocks never sent: monitor and redeliver then never wait on them. First it builds dist/ from bots/ and refuses to run when a deployed bot's code differs from it (run npm run provision first).`,
  options: {
    'deadline-ms': {
      type: 'integer',
      min: 1,
      max: 600_000,
      default: 5000,
      valueName: 'MS',
      description: "per delivery (Medblocks' own deadline is 5000)",
    },
    'deployed-as-is': {
      type: 'boolean',
      description: "verify the deployed code even when it differs from the sources' build",
    },
  },
  notes: `Settings (environment or .env): MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET (a project admin, so that it can read the project's secrets and the bots' output). Each bot's signing secret is read from the project secrets, or from the environment under the same name (MEDBLOCKS_WEBHOOK_SECRET_PATIENT_FLOW_COMPLETED, …) when the project's cannot be read.`,
  examples: ['npm run verify', 'npm run verify -- --deadline-ms 10000', 'npm run verify -- --deployed-as-is'],
  exitCodes: {
    0: 'every delivery and check passed',
    1: 'a mismatch (the table says which, with a hint), or it could not run: a missing or invalid setting (the message names the variable), a bot not provisioned, deployed code older than the sources, a server failure',
    2: 'the command line was not understood (usage printed)',
  },
} as const satisfies CommandSpec;

/**
 * The bots whose deployed code is not the fresh build in dist/, each with the fix; empty when all
 * match. Unreadable deployed code is not counted as stale (it is reported as a note instead).
 */
export async function staleDeployments(
  session: MedplumSession,
  target: VerifyTarget,
  root: string
): Promise<{ stale: string[]; unreadable: string[] }> {
  const stale: string[] = [];
  const unreadable: string[] = [];
  for (const bot of target.bots) {
    const dist = ALL_BOTS.find((b) => b.name === bot.name)?.dist ?? `dist/${bot.name}.js`;
    const file = join(root, dist);
    if (!existsSync(file)) continue;
    const resource = await session.medplum.readResource('Bot', bot.botId).catch(() => undefined);
    const deployed = resource ? await readDeployedCode(session.medplum, resource) : undefined;
    if (deployed === undefined) unreadable.push(bot.name);
    else if (deployed !== readFileSync(file, 'utf8')) stale.push(bot.name);
  }
  return { stale, unreadable };
}

/** Runs the command and returns its exit code; output goes through `print`. */
export function runVerifyCommand(
  argv: readonly string[],
  io: { print: (line: string) => void; root?: string; env?: NodeJS.ProcessEnv; fetchFn?: typeof fetch }
): Promise<number> {
  return runCommand(
    VERIFY_SPEC,
    argv,
    async (values) => {
      try {
        const root = io.root ?? process.cwd();
        io.print(describePrebuild(await buildBeforeRun(root)));
        const settings = readSettings(io.env, root);
        const session = await connectMedplum(settings, io.fetchFn);
        const { target, problems, notes } = await findTarget(session, settings.lookup);
        for (const note of notes) io.print(note);
        if (problems.length > 0) {
          for (const problem of problems) io.print(`ERROR: ${problem}`);
          io.print('verify did not run: fix the above first.');
          return EXIT_FAILURE;
        }
        const { stale, unreadable } = await staleDeployments(session, target, root);
        if (unreadable.length > 0) {
          io.print(`note: the deployed code of ${unreadable.join(', ')} could not be read; verifying it as deployed`);
        }
        if (stale.length > 0 && !values['deployed-as-is']) {
          io.print(
            `ERROR: the deployed code of ${stale.join(', ')} differs from the build of your sources (dist/): run npm run provision first, or npm run verify -- --deployed-as-is to verify what is deployed`
          );
          io.print('verify did not run: fix the above first.');
          return EXIT_FAILURE;
        }
        if (stale.length > 0) io.print(`note: verifying deployed code that differs from dist/: ${stale.join(', ')}`);
        io.print('');
        const result = await runVerify({
          target,
          log: io.print,
          ...(io.fetchFn ? { fetch: io.fetchFn } : {}),
          deadlineMs: values['deadline-ms'],
        });
        return result.ok ? 0 : EXIT_FAILURE;
      } catch (err) {
        io.print(failureLine('verify', err));
        return EXIT_FAILURE;
      }
    },
    { print: io.print, printError: io.print }
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runVerifyCommand(process.argv.slice(2), { print: printToConsole }));
}
