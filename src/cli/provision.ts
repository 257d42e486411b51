// `npm run provision [-- --dry-run] [--runtime awslambda|vmcontext]`: wires a Medplum project (and,
// with MEDBLOCKS_API_KEY, Medblocks endpoints) for the bots. See docs/going-live.md.
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import type { Runtime } from '../provision/catalog';
import { readSettings } from '../provision/env';
import { formatReport, provision } from '../provision/provision';

const RUNTIMES: readonly Runtime[] = ['awslambda', 'vmcontext'];

/** Parses the command line; exported so that tests can run the command in-process. */
export function parseProvisionArgs(argv: readonly string[]): { dryRun: boolean; runtime: Runtime | undefined } {
  const { values } = parseArgs({
    args: [...argv],
    options: { 'dry-run': { type: 'boolean', default: false }, runtime: { type: 'string' } },
    strict: true,
  });
  const runtime = values.runtime;
  if (runtime !== undefined && !RUNTIMES.includes(runtime as Runtime)) {
    throw new Error(`--runtime must be one of ${RUNTIMES.join(', ')}`);
  }
  return { dryRun: values['dry-run'], runtime: runtime as Runtime | undefined };
}

/** Runs the command and returns its exit code; output goes through `print`. */
export async function runProvision(
  argv: readonly string[],
  io: { print: (line: string) => void; root?: string; env?: NodeJS.ProcessEnv; fetchFn?: typeof fetch }
): Promise<number> {
  try {
    const root = io.root ?? process.cwd();
    const args = parseProvisionArgs(argv);
    const report = await provision({ root, settings: readSettings(io.env, root), fetchFn: io.fetchFn, ...args });
    for (const line of formatReport(report)) io.print(line);
    return 0;
  } catch (err) {
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
