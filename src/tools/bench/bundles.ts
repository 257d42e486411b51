// Bot bundles built in memory, with the same esbuild options as `npm run build` (src/tools/cli/build.ts),
// so that tests and the benchmark can run the current source in the emulator's vmcontext sandbox
// without writing dist/ while other processes may be reading it.
import { join } from 'node:path';
import type { AccessPolicy } from '@medplum/fhirtypes';
import { WEBHOOK_BOTS } from '../../runtime/registry';
import { bundleToString } from '../bundling';
import type { EmulatedBotSpec } from '../emulator/project';
import { loadPolicyFile } from '../emulator/project';

/** The registry's webhook bots as the emulator should load them, bundled from the current source. */
export async function webhookBotSpecs(root = process.cwd()): Promise<EmulatedBotSpec[]> {
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
