// The local Medblocks wired to the emulator: endpoints created for the emulator's webhook URLs get
// the bots' signing secrets (the emulator's dev secrets or those given), so that a delivery from the
// local Medblocks verifies without a provisioning run. Used by `npm run dev`, the demo and the
// end-to-end tests.
import { WEBHOOK_BOTS } from '../../runtime/registry';
import type { RunningEmulator } from '../emulator/server';
import { MedblocksApi } from '../provision/medblocks-api';
import type { MedblocksEndpoint } from '../provision/medblocks-api';
import { startLocalMedblocks } from './server';
import type { LocalMedblocksOptions, RunningLocalMedblocks } from './server';

/** The predictable key `npm run dev` gives its local Medblocks (a dev value: never reuse it). */
export const DEV_MEDBLOCKS_API_KEY = 'mb_sk_sbx_local_dev_0000000000000000';

/**
 * Starts a local Medblocks whose endpoints, when created for one of the emulator's webhook URLs,
 * carry that bot's signing secret. Without this a Medblocks endpoint gets a random `whsec_` the
 * emulator does not know until `npm run provision` copies it into the project secrets.
 */
export function startLocalMedblocksFor(
  emulator: RunningEmulator,
  options: Omit<LocalMedblocksOptions, 'secretForUrl'> = {}
): Promise<RunningLocalMedblocks> {
  const secrets = new Map(emulator.bots.flatMap((b) => (b.secret ? [[b.webhookUrl, b.secret] as const] : [])));
  return startLocalMedblocks({ ...options, secretForUrl: (url) => secrets.get(url) });
}

/** Subscribes every webhook bot the emulator runs to its event type, as provisioning would. */
export async function subscribeEmulatorBots(
  medblocks: RunningLocalMedblocks,
  emulator: RunningEmulator
): Promise<MedblocksEndpoint[]> {
  const api = new MedblocksApi(medblocks.url, medblocks.apiKey);
  const out: MedblocksEndpoint[] = [];
  for (const spec of WEBHOOK_BOTS) {
    const bot = emulator.bots.find((b) => b.name === spec.name);
    if (!bot) continue;
    out.push(await api.createEndpoint({ url: bot.webhookUrl, events: [spec.medblocksEvent], description: spec.name }));
  }
  return out;
}
