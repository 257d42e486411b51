// Medplum bot: verifies and applies Medblocks `records.sync.failed` deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { REGISTRY } from '../src/runtime/registry';
import { createWebhookBot, defineWebhookBot } from '../src/runtime/webhook-bot';
import { recordsSyncFailed } from '../src/runtime/handlers/records-sync';

/** The registry entry bound to its handler; tests build the handler from it (with a test clock and log). */
export const bot = defineWebhookBot(REGISTRY['medblocks-records-sync-failed'], recordsSyncFailed);

export const handler = createWebhookBot(bot);
