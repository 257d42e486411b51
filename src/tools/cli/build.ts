// `npm run build`: one CommonJS bundle per bot in dist/, as Medplum runs them. @medplum/core and
// node: builtins stay external (Lambda's bot layer and the vmcontext sandbox provide them);
// everything else is bundled. The footer copies module.exports onto the `exports` object that
// Medplum's vmcontext wrapper reads `handler` from.
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

async function main(): Promise<void> {
  const bundles = await buildBots();
  for (const bundle of bundles) {
    console.log(`${bundle.name.padEnd(44)} ${(bundle.bytes / 1024).toFixed(1).padStart(7)} KB  dist/${bundle.name}.js`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
