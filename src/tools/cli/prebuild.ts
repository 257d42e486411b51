// The step every command that runs bots takes first (`demo`, `dev`, `provision`, `bench`,
// `verify`): build dist/ from bots/ now, so what runs or is deployed is what the sources say. A
// stale dist/ used to run silently (a handler changed to throw still "passed" the demo). The build
// takes about a second and writes only the bundles that changed (src/tools/bundling.ts).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BOTS_DIR, buildBots } from '../bundling';
import type { BuiltBundle } from '../bundling';

export interface PrebuildResult {
  /** False when the root has no bots/ sources (a directory of prebuilt bundles): dist/ is used as it is. */
  readonly built: boolean;
  readonly bundles: readonly BuiltBundle[];
  readonly ms: number;
}

/** Builds dist/ from bots/ when the root has sources; see the file comment for why always. */
export async function buildBeforeRun(root = process.cwd()): Promise<PrebuildResult> {
  const started = performance.now();
  if (!existsSync(join(root, BOTS_DIR))) {
    return { built: false, bundles: [], ms: 0 };
  }
  const bundles = await buildBots(root);
  return { built: true, bundles, ms: Math.round(performance.now() - started) };
}

/** One line saying what the build did, for the commands' first line of output. */
export function describePrebuild(result: PrebuildResult): string {
  if (!result.built) return 'no bots/ sources here: using the bundles in dist/ as they are';
  const changed = result.bundles.filter((b) => b.changed).map((b) => b.name);
  const took = `${String(result.ms)} ms`;
  return changed.length === 0
    ? `dist/ is up to date with bots/ (checked by a build, ${took})`
    : `built dist/ from bots/ (${took}): ${changed.join(', ')} changed`;
}
