// `npm run provision [-- --dry-run] [--runtime awslambda|vmcontext]`: builds the bots from bots/,
// then wires a Medplum project (and, with MEDBLOCKS_API_KEY, Medblocks endpoints) for them, after a
// read-only preflight. See docs/going-live.md.
import type { Runtime } from '../provision/plan';
import { readSettings } from '../provision/env';
import { PreflightError } from '../provision/preflight';
import { formatPreflight, formatPreflightFailure, formatReport, provision } from '../provision/provision';
import { exitWith, failureLine, isEntryPoint, printToConsole, runCommand } from './args';
import type { CommandSpec } from './args';
import { buildBeforeRun, describePrebuild } from './prebuild';

const RUNTIMES: readonly Runtime[] = ['awslambda', 'vmcontext'];

export const PROVISION_SPEC = {
  name: 'provision',
  summary: `builds dist/ from bots/ (so what is deployed is what the sources say), then creates or updates, idempotently, in the Medplum project of MEDPLUM_CLIENT_ID: the bots' AccessPolicies, the Bots (public webhook, rawBody where the server knows it, audit events), their memberships, medplum.config.json and the deployed code; with MEDBLOCKS_API_KEY also the Medblocks endpoints and their signing secrets. Project secrets found in the environment under their own names (e.g. MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED, MEDBLOCKS_ALLOW_PARSED_BODY) are stored in the project.

A read-only preflight runs first and stops with the fix before any change when: the server version is unreadable, the client is not a project admin, or the project lacks the "bots" feature.`,
  options: {
    'dry-run': {
      type: 'boolean',
      description: 'print the plan (against the fresh build), change nothing on the server',
    },
    import: {
      type: 'boolean',
      description:
        'turn on the records import: store MEDBLOCKS_API_KEY (and MEDBLOCKS_API_BASE_URL, MEDBLOCKS_IMPORT_TYPES when set) as project secrets for medblocks-records-import',
    },
    runtime: {
      type: 'string',
      choices: RUNTIMES,
      valueName: 'R',
      description: 'the bots runtime; applied to existing bots only when given (default: see below)',
    },
  },
  notes: `--runtime default: awslambda on hosted Medplum (*.medplum.com), vmcontext on a self-hosted server.
awslambda: bots run on AWS Lambda; on a self-hosted server it needs the server's AWS setup, else
$deploy fails with "Could not load credentials from any providers". vmcontext: bots run inside the
server, which must set vmContextBotsEnabled: true.

Settings (environment or .env): MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET
(a project-admin ClientApplication), MEDBLOCKS_API_KEY, MEDBLOCKS_API_BASE_URL.`,
  examples: [
    'npm run provision -- --dry-run',
    'npm run provision',
    'npm run provision -- --runtime vmcontext',
    'MEDBLOCKS_API_KEY=mb_sk_… npm run provision',
    'MEDBLOCKS_API_KEY=mb_sk_… npm run provision -- --import',
  ],
  exitCodes: {
    0: 'provisioned (or, with --dry-run, planned)',
    1: 'a missing or invalid setting (the message names the variable), the preflight stopped it before any change, or a step failed (the message says what to do)',
  },
} as const satisfies CommandSpec;

/** Runs the command and returns its exit code; output goes through `print`. */
export function runProvision(
  argv: readonly string[],
  io: { print: (line: string) => void; root?: string; env?: NodeJS.ProcessEnv; fetchFn?: typeof fetch }
): Promise<number> {
  return runCommand(
    PROVISION_SPEC,
    argv,
    async (values) => {
      try {
        const root = io.root ?? process.cwd();
        // Before the settings are read, so that a stale dist/ is never deployed nor planned against.
        io.print(describePrebuild(await buildBeforeRun(root)));
        const report = await provision({
          root,
          settings: readSettings(io.env, root),
          fetchFn: io.fetchFn,
          onPreflight: (preflight) => {
            for (const line of formatPreflight(preflight)) io.print(line);
          },
          dryRun: values['dry-run'],
          enableImport: values.import,
          runtime: values.runtime as Runtime | undefined,
        });
        for (const line of formatReport(report)) io.print(line);
        return 0;
      } catch (err) {
        if (err instanceof PreflightError) {
          for (const line of formatPreflightFailure(err.preflight)) io.print(line);
          return 1;
        }
        io.print(failureLine('provision', err));
        return 1;
      }
    },
    { print: io.print, printError: io.print }
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runProvision(process.argv.slice(2), { print: printToConsole }));
}
