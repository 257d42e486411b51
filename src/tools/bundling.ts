// How bot bundles are built, in one place: `npm run build` writes them to dist/, the emulator, the
// bench and provision build the same way. One CommonJS bundle per bot, as Medplum runs them.
// @medplum/core and node: builtins stay external (Lambda's bot layer and the vmcontext sandbox
// provide them); everything else is bundled. The footer copies module.exports onto the `exports`
// object that Medplum's vmcontext wrapper reads `handler` from.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import type { BuildOptions } from 'esbuild';

export const BOTS_DIR = 'bots';
export const DIST_DIR = 'dist';

export interface BuiltBundle {
  readonly name: string;
  readonly file: string;
  readonly bytes: number;
  /** False when dist/ already held exactly this bundle (the file was left untouched). */
  readonly changed: boolean;
}

/** Bot entry files: every bots/*.ts that is not a test. */
export function botEntryFiles(root = process.cwd()): string[] {
  return readdirSync(join(root, BOTS_DIR))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .sort()
    .map((f) => join(root, BOTS_DIR, f));
}

/** How every bot bundle is built, deployed or run locally: one definition, so they cannot drift. */
export const BOT_BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node22',
  minify: true,
  sourcemap: false,
  logLevel: 'warning',
  external: ['@medplum/core', 'node:*'],
  footer: { js: 'Object.assign(exports, module.exports);' },
} as const satisfies BuildOptions;

/**
 * Builds every bot into dist/. Each bundle is built in memory and written only when it differs
 * from the file already there, through a temporary file renamed into place: a running emulator
 * (it re-reads bundles on every run) or a parallel test never reads a half-written bundle, and an
 * unchanged build touches nothing. Bundles in dist/ whose source is gone are removed, so nothing
 * runs that the sources no longer say.
 */
export async function buildBots(root = process.cwd()): Promise<BuiltBundle[]> {
  const dist = join(root, DIST_DIR);
  mkdirSync(dist, { recursive: true });
  const result = await build({
    ...BOT_BUNDLE_OPTIONS,
    entryPoints: botEntryFiles(root),
    outdir: dist,
    write: false,
  });
  const bundles: BuiltBundle[] = [];
  for (const output of result.outputFiles) {
    const name = basename(output.path, '.js');
    const before = existsSync(output.path) ? readFileSync(output.path) : undefined;
    const changed = before === undefined || !before.equals(output.contents);
    if (changed) {
      const temporary = `${output.path}.${String(process.pid)}.${String(Date.now())}.tmp`;
      writeFileSync(temporary, output.contents);
      renameSync(temporary, output.path);
    }
    bundles.push({ name, file: output.path, bytes: output.contents.byteLength, changed });
  }
  const built = new Set(bundles.map((b) => basename(b.file)));
  for (const file of readdirSync(dist)) {
    if (file.endsWith('.js') && !built.has(file)) rmSync(join(dist, file), { force: true });
  }
  return bundles.sort((a, b) => a.name.localeCompare(b.name));
}

/** Bundles one entry file to CommonJS text, exactly as the deployable bundles are built (nothing written). */
export async function bundleToString(entry: string): Promise<string> {
  const result = await build({ ...BOT_BUNDLE_OPTIONS, entryPoints: [entry], write: false });
  const output = result.outputFiles[0];
  if (!output) throw new Error(`esbuild produced nothing for ${entry}`);
  return output.text;
}
