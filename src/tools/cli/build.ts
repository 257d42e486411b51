// `npm run build`: one CommonJS bundle per bot in dist/ (how they are built: src/tools/bundling.ts).
import { buildBots } from '../bundling';
import { CONSOLE_IO, exitWith, isEntryPoint, runCommand } from './args';
import type { CommandIo, CommandSpec } from './args';

export const BUILD_SPEC = {
  name: 'build',
  summary:
    'bundles every bots/*.ts into dist/<bot>.js (CommonJS, Node 22, minified; @medplum/core and node: builtins external), as Medplum runs them. Writes only the bundles that changed. demo, dev, provision, bench and verify build first on their own.',
  options: {},
  examples: ['npm run build'],
  exitCodes: { 0: 'built', 1: 'the build failed (esbuild errors printed)' },
} as const satisfies CommandSpec;

/** Runs the command in-process; returns the exit code. */
export function runBuild(argv: readonly string[], io: CommandIo = CONSOLE_IO): Promise<number> {
  return runCommand(
    BUILD_SPEC,
    argv,
    async () => {
      for (const bundle of await buildBots()) {
        const size = `${(bundle.bytes / 1024).toFixed(1).padStart(7)} KB`;
        io.print(`${bundle.name.padEnd(44)} ${size}  dist/${bundle.name}.js${bundle.changed ? '' : '  (unchanged)'}`);
      }
      return 0;
    },
    io
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runBuild(process.argv.slice(2)));
}
