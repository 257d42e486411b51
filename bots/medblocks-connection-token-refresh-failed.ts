// Medplum bot: verifies and applies Medblocks `connection.token_refresh_failed` deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { botDescriptor } from '../src/bot/catalog';
import { createMedblocksBot } from '../src/bot/create-bot';
import { tokenRefreshFailed } from '../src/handlers/token-refresh';

export const handler = createMedblocksBot({
  ...botDescriptor('medblocks-connection-token-refresh-failed'),
  handler: tokenRefreshFailed,
});
