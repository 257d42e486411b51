// `npm run policies`: writes access-policies/*.json from src/tools/policies/policies.ts, formatted as
// the repository formats JSON. The files are checked in (provision and users read them);
// test/policies-generated.test.ts fails when one differs from what this writes.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { allPolicies } from '../policies/policies';
import { exitWith, isEntryPoint, printToConsole, runCommand } from './args';
import type { CommandSpec } from './args';

export const POLICIES_SPEC = {
  name: 'policies',
  summary:
    'writes access-policies/*.json from src/tools/policies/policies.ts (the grants each bot needs, built from the registry and the systems the bots write); the files are never edited by hand',
  options: {},
  examples: ['npm run policies'],
  exitCodes: { 0: 'written (a file already equal is left untouched)', 1: 'a file could not be written' },
} as const satisfies CommandSpec;

/** The file text of a policy, formatted with the repository's Prettier settings. */
export async function policyFileText(root: string, file: string, policy: unknown): Promise<string> {
  const path = join(root, file);
  const options = (await resolveConfig(path)) ?? {};
  return format(JSON.stringify(policy), { ...options, filepath: path });
}

/** Writes every policy file that differs; returns the files written. */
export async function writePolicies(root: string): Promise<string[]> {
  const written: string[] = [];
  for (const { file, policy } of allPolicies()) {
    const text = await policyFileText(root, file, policy);
    const path = join(root, file);
    let current: string | undefined;
    try {
      current = readFileSync(path, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== text) {
      writeFileSync(path, text, 'utf8');
      written.push(file);
    }
  }
  return written;
}

export function runPolicies(
  argv: readonly string[],
  io: { print: (line: string) => void; root?: string }
): Promise<number> {
  return runCommand(
    POLICIES_SPEC,
    argv,
    async () => {
      const written = await writePolicies(io.root ?? process.cwd());
      io.print(written.length === 0 ? 'access-policies/ already up to date.' : `wrote ${written.join(', ')}`);
      return 0;
    },
    { print: io.print, printError: io.print }
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runPolicies(process.argv.slice(2), { print: printToConsole }));
}
