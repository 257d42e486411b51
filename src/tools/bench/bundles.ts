// Bot bundles built in memory, with the same esbuild options as `npm run build` (src/tools/cli/build.ts),
// so that tests and the benchmark can run the current source in the emulator's vmcontext sandbox
// without writing dist/ while other processes may be reading it.
import { build } from 'esbuild';
import { join } from 'node:path';
import type { AccessPolicy } from '@medplum/fhirtypes';
import { WEBHOOK_BOTS } from '../../runtime/registry';
import { BOT_BUNDLE_OPTIONS } from '../cli/build';
import type { EmulatedBotSpec } from '../emulator/project';
import { loadPolicyFile } from '../emulator/project';

/** Bundles one entry file to CommonJS text, exactly as the deployable bundles are built. */
export async function bundleToString(entry: string): Promise<string> {
  const result = await build({ ...BOT_BUNDLE_OPTIONS, entryPoints: [entry], write: false });
  const output = result.outputFiles[0];
  if (!output) throw new Error(`esbuild produced nothing for ${entry}`);
  return output.text;
}

/** The four catalog bots as the emulator should load them, bundled from the current source. */
export async function catalogBotSpecs(root = process.cwd()): Promise<EmulatedBotSpec[]> {
  return Promise.all(
    WEBHOOK_BOTS.map(async (bot) => ({
      name: bot.name,
      code: await bundleToString(join(root, 'bots', `${bot.name}.ts`)),
      policy: loadPolicyFile(root, bot.name) as AccessPolicy,
      publicWebhook: true,
      rawBody: true,
      secretName: bot.secretName,
    }))
  );
}
