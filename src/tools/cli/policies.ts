// `npm run policies`: writes what is generated from the code and checked in — access-policies/*.json
// from src/tools/policies/policies.ts, formatted as the repository formats JSON; SECURITY.md's grant
// tables from the same grants' reasons; and medplum.config.json's entry for every bot of the registry
// (a new bot gets the emulator's id, as the shipped file holds; `npm run provision` writes a server's
// ids). Provision and users read these files; test/policies-generated.test.ts, test/security.test.ts
// and test/registry.test.ts fail when one differs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { ALL_BOTS } from '../../runtime/registry';
import { botIdFor } from '../emulator/identity';
import { withGrantTables } from '../policies/grant-tables';
import { allPolicies } from '../policies/policies';
import { configWithBots } from '../provision/plan';
import type { MedplumConfig } from '../provision/plan';
import { CONFIG_FILE } from '../provision/provision';
import { exitWith, isEntryPoint, printToConsole, runCommand } from './args';
import type { CommandSpec } from './args';

export const POLICIES_SPEC = {
  name: 'policies',
  summary:
    "writes access-policies/*.json from src/tools/policies/policies.ts (the grants each bot needs, built from the registry and the systems the bots write), SECURITY.md's grant tables from the grants' reasons and medplum.config.json's entry for each bot of the registry; none of them is edited by hand",
  options: {},
  examples: ['npm run policies'],
  exitCodes: { 0: 'written (a file already equal is left untouched)', 1: 'a file could not be written' },
} as const satisfies CommandSpec;

/** A file's text as the repository's Prettier settings format it (tables padded, JSON wrapped). */
async function formatted(root: string, file: string, text: string): Promise<string> {
  const path = join(root, file);
  const options = (await resolveConfig(path)) ?? {};
  return format(text, { ...options, filepath: path });
}

/** The file text of a policy, formatted with the repository's Prettier settings. */
export function policyFileText(root: string, file: string, policy: unknown): Promise<string> {
  return formatted(root, file, JSON.stringify(policy));
}

function currentText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Writes every policy file, and SECURITY.md, that differs; returns the files written. */
export async function writePolicies(root: string): Promise<string[]> {
  const texts = await Promise.all(
    allPolicies().map(async ({ file, policy }) => ({ file, text: await policyFileText(root, file, policy) }))
  );
  // SECURITY.md is hand-written around its tables: without it there is nothing to render into.
  const security = readFileSync(join(root, 'SECURITY.md'), 'utf8');
  texts.push({ file: 'SECURITY.md', text: await formatted(root, 'SECURITY.md', withGrantTables(security)) });
  const written: string[] = [];
  for (const { file, text } of texts) {
    const path = join(root, file);
    if (currentText(path) !== text) {
      writeFileSync(path, text, 'utf8');
      written.push(file);
    }
  }
  return written;
}

/**
 * Lists every bot of the registry in medplum.config.json (`medplum bot deploy` reads it), so that a
 * new event type's bot needs no hand edit there; ids already in the file are kept. Returns the file
 * when written.
 */
export function writeBotConfig(root: string): string[] {
  const path = join(root, CONFIG_FILE);
  const config = existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as MedplumConfig) : {};
  const ids = Object.fromEntries(
    ALL_BOTS.map((bot) => [bot.name, config.bots?.find((b) => b.name === bot.name)?.id || botIdFor(bot.name)])
  );
  const next = configWithBots(config, ALL_BOTS, ids);
  if (!next) return [];
  writeFileSync(path, `${JSON.stringify(next, null, 2)}\n`, 'utf8');
  return [CONFIG_FILE];
}

export function runPolicies(
  argv: readonly string[],
  io: { print: (line: string) => void; root?: string }
): Promise<number> {
  return runCommand(
    POLICIES_SPEC,
    argv,
    async () => {
      const root = io.root ?? process.cwd();
      const written = [...(await writePolicies(root)), ...writeBotConfig(root)];
      io.print(
        written.length === 0
          ? `access-policies/, SECURITY.md and ${CONFIG_FILE} already up to date.`
          : `wrote ${written.join(', ')}`
      );
      return 0;
    },
    { print: io.print, printError: io.print }
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runPolicies(process.argv.slice(2), { print: printToConsole }));
}
