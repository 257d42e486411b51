// Medplum bot: verifies and applies Medblocks `connection.token_refresh_failed` deliveries.
// What it knows of its event is src/runtime/events/connection-token-refresh-failed.ts; `bot` is for tests (they build
// its handler with a test clock and log). Deploy with publicWebhook and rawBody on: README "Going live".
import { bindEventType } from '../src/runtime/webhook-bot';
import { connectionTokenRefreshFailed } from '../src/runtime/events/connection-token-refresh-failed';

export const { bot, handler } = bindEventType(connectionTokenRefreshFailed);
