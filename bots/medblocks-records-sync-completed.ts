// Medplum bot: verifies and applies Medblocks `records.sync.completed` deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { REGISTRY } from '../src/bot/registry';
import { createWebhookBot, defineWebhookBot } from '../src/bot/webhook-bot';
import { recordsSyncCompleted } from '../src/handlers/records-sync';

/** The registry entry bound to its handler; tests build the handler from it (with a test clock and log). */
export const bot = defineWebhookBot(REGISTRY['medblocks-records-sync-completed'], recordsSyncCompleted);

export const handler = createWebhookBot(bot);
