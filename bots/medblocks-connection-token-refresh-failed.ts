// Medplum bot: verifies and applies Medblocks `connection.token_refresh_failed` deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { REGISTRY } from '../src/runtime/registry';
import { createWebhookBot, defineWebhookBot } from '../src/runtime/webhook-bot';
import { tokenRefreshFailed } from '../src/runtime/handlers/token-refresh';

/** The registry entry bound to its handler; tests build the handler from it (with a test clock and log). */
export const bot = defineWebhookBot(REGISTRY['medblocks-connection-token-refresh-failed'], tokenRefreshFailed);

export const handler = createWebhookBot(bot);
