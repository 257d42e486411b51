// Medplum bot: verifies and applies Medblocks `connection.token_refresh_failed` deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { botDescriptor } from '../src/bot/catalog';
import { createMedblocksBot } from '../src/bot/create-bot';
import { tokenRefreshFailed } from '../src/handlers/token-refresh';

/** The wiring, exported so that tests build the handler exactly as deployed (with a test clock and log). */
export const spec = { ...botDescriptor('medblocks-connection-token-refresh-failed'), handler: tokenRefreshFailed };

export const handler = createMedblocksBot(spec);
