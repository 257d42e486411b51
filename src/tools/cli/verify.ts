// `npm run verify`: checks a provisioned Medplum project end to end — the demo story, with fresh
// patients and event ids, delivered to the real webhook URLs signed as Medblocks signs, then the
// resulting FHIR state read back. Exit 0 when every step and check passed, 1 on any mismatch, 2 when
// it could not run. See docs/going-live.md.
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { readSettings } from '../provision/env';
import { connectMedplum } from '../provision/medplum';
import { findTarget } from '../verify/target';
import { runVerify } from '../verify/verify';

export const VERIFY_USAGE = `Usage: npm run verify [-- --deadline-ms N]

Plays the demo story against the provisioned Medplum project of MEDPLUM_CLIENT_ID: nine deliveries
(new connection, redelivery, forged signature, replayed timestamp, records sync, token refresh failure,
a late older event, a failed and a recovered sync) to each bot's webhook URL, signed as Medblocks signs,
with a fresh patient and fresh event ids on every run; checks each answer, then the patient's Consents
and Tasks, the dedupe markers and the runs' AuditEvents. Prints a pass/fail table.
Exit code: 0 all passed, 1 a mismatch, 2 could not run.

It writes what the bots write for one synthetic patient (verify_…); nothing else is changed.

  --deadline-ms N   per delivery (default 5000, Medblocks' own deadline)
  --help            this text

Settings (environment or .env): MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET (a project
admin, so that it can read the project's secrets and the bots' output). Each bot's signing secret is
read from the project secrets, or from the environment under the same name
(MEDBLOCKS_WEBHOOK_SECRET_PATIENT_FLOW_COMPLETED, …) when the project's cannot be read.`;

/** Runs the command and returns its exit code; output goes through `print`. */
export async function runVerifyCommand(
  argv: readonly string[],
  io: { print: (line: string) => void; root?: string; env?: NodeJS.ProcessEnv; fetchFn?: typeof fetch }
): Promise<number> {
  try {
    const root = io.root ?? process.cwd();
    const { values } = parseArgs({
      args: [...argv],
      options: { 'deadline-ms': { type: 'string' }, help: { type: 'boolean', default: false } },
      strict: true,
    });
    if (values.help) {
      io.print(VERIFY_USAGE);
      return 0;
    }
    const deadlineMs = values['deadline-ms'] === undefined ? undefined : Number(values['deadline-ms']);
    if (deadlineMs !== undefined && (!Number.isInteger(deadlineMs) || deadlineMs <= 0)) {
      throw new Error('--deadline-ms must be a positive whole number');
    }
    const settings = readSettings(io.env, root);
    const session = await connectMedplum(settings, io.fetchFn);
    const { target, problems, notes } = await findTarget(session, settings.lookup);
    for (const note of notes) io.print(note);
    if (problems.length > 0) {
      for (const problem of problems) io.print(`ERROR: ${problem}`);
      io.print('verify did not run: fix the above first.');
      return 2;
    }
    io.print('');
    const result = await runVerify({
      target,
      log: io.print,
      ...(io.fetchFn ? { fetch: io.fetchFn } : {}),
      ...(deadlineMs ? { deadlineMs } : {}),
    });
    return result.ok ? 0 : 1;
  } catch (err) {
    io.print(`verify failed: ${err instanceof Error ? err.message : 'unknown error'}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  runVerifyCommand(process.argv.slice(2), {
    print: (line) => {
      console.log(line);
    },
  }).then(
    (code) => process.exit(code),
    () => process.exit(2)
  );
}
