// How bot bundles are built, in one place: `npm run build` writes them to dist/, the emulator, the
// bench and provision build the same way. One CommonJS bundle per bot, as Medplum runs them.
// @medplum/core and node: builtins stay external (Lambda's bot layer and the vmcontext sandbox
// provide them); everything else is bundled. The footer copies module.exports onto the `exports`
// object that Medplum's vmcontext wrapper reads `handler` from.
import { mkdirSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import type { BuildOptions, Metafile } from 'esbuild';

export const BOTS_DIR = 'bots';
export const DIST_DIR = 'dist';

export interface BuiltBundle {
  readonly name: string;
  readonly file: string;
  readonly bytes: number;
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

export async function buildBots(root = process.cwd()): Promise<BuiltBundle[]> {
  mkdirSync(join(root, DIST_DIR), { recursive: true });
  const result = await build({
    ...BOT_BUNDLE_OPTIONS,
    entryPoints: botEntryFiles(root),
    outdir: join(root, DIST_DIR),
    metafile: true,
  });
  return bundlesOf(result.metafile, root);
}

function bundlesOf(metafile: Metafile, root: string): BuiltBundle[] {
  return Object.entries(metafile.outputs)
    .map(([file, output]) => ({ name: basename(file, '.js'), file: join(root, file), bytes: output.bytes }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Bundles one entry file to CommonJS text, exactly as the deployable bundles are built (nothing written). */
export async function bundleToString(entry: string): Promise<string> {
  const result = await build({ ...BOT_BUNDLE_OPTIONS, entryPoints: [entry], write: false });
  const output = result.outputFiles[0];
  if (!output) throw new Error(`esbuild produced nothing for ${entry}`);
  return output.text;
}
