// `npm run provision [-- --dry-run] [--runtime awslambda|vmcontext]`: wires a Medplum project (and,
// with MEDBLOCKS_API_KEY, Medblocks endpoints) for the bots, after a read-only preflight. See
// docs/going-live.md.
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { Runtime } from '../provision/plan';
import { readSettings } from '../provision/env';
import { SetupError } from '../provision/medplum';
import { PreflightError } from '../provision/preflight';
import { formatPreflight, formatPreflightFailure, formatReport, provision } from '../provision/provision';

const RUNTIMES: readonly Runtime[] = ['awslambda', 'vmcontext'];

export const PROVISION_USAGE = `Usage: npm run provision [-- --dry-run] [--runtime awslambda|vmcontext]

Creates or updates, idempotently, in the Medplum project of MEDPLUM_CLIENT_ID: the bots' AccessPolicies,
the five Bots (public webhook, rawBody where the server knows it, audit events), their memberships,
medplum.config.json and the deployed code; with MEDBLOCKS_API_KEY also the Medblocks endpoints and their
signing secrets. Project secrets found in the environment under their own names (e.g.
MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED, MEDBLOCKS_ALLOW_PARSED_BODY) are stored in the project.

A read-only preflight runs first and stops with the fix before any change when: the server version is
unreadable, the client is not a project admin, or the project lacks the "bots" feature.

  --dry-run        print the plan, change nothing
  --runtime R      awslambda or vmcontext. Default: awslambda on hosted Medplum (*.medplum.com, bots run
                   on AWS Lambda); vmcontext on a self-hosted server (bots run inside the server, which
                   must set vmContextBotsEnabled: true; awslambda there needs the server's AWS setup, else
                   $deploy fails with "Could not load credentials from any providers"). Applied to
                   existing bots only when given.
  --help           this text

Settings (environment or .env): MEDPLUM_BASE_URL (default https://api.medplum.com/), MEDPLUM_CLIENT_ID,
MEDPLUM_CLIENT_SECRET (a project-admin ClientApplication), MEDBLOCKS_API_KEY, MEDBLOCKS_API_BASE_URL.`;

export interface ProvisionArgs {
  readonly dryRun: boolean;
  readonly runtime: Runtime | undefined;
  readonly help: boolean;
}

/** Parses the command line; exported so that tests can run the command in-process. */
export function parseProvisionArgs(argv: readonly string[]): ProvisionArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'dry-run': { type: 'boolean', default: false },
      runtime: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const runtime = values.runtime;
  if (runtime !== undefined && !RUNTIMES.includes(runtime as Runtime)) {
    throw new SetupError(`--runtime must be one of ${RUNTIMES.join(', ')}`);
  }
  return { dryRun: values['dry-run'], runtime: runtime as Runtime | undefined, help: values.help };
}

/** Runs the command and returns its exit code; output goes through `print`. */
export async function runProvision(
  argv: readonly string[],
  io: { print: (line: string) => void; root?: string; env?: NodeJS.ProcessEnv; fetchFn?: typeof fetch }
): Promise<number> {
  try {
    const root = io.root ?? process.cwd();
    const { help, ...args } = parseProvisionArgs(argv);
    if (help) {
      io.print(PROVISION_USAGE);
      return 0;
    }
    const report = await provision({
      root,
      settings: readSettings(io.env, root),
      fetchFn: io.fetchFn,
      onPreflight: (preflight) => {
        for (const line of formatPreflight(preflight)) io.print(line);
      },
      ...args,
    });
    for (const line of formatReport(report)) io.print(line);
    return 0;
  } catch (err) {
    if (err instanceof PreflightError) {
      for (const line of formatPreflightFailure(err.preflight)) io.print(line);
      return 1;
    }
    io.print(`provision failed: ${err instanceof Error ? err.message : 'unknown error'}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  runProvision(process.argv.slice(2), {
    print: (line) => {
      console.log(line);
    },
  }).then(
    (code) => process.exit(code),
    () => process.exit(1)
  );
}
