// Medplum bot: verifies and applies Medblocks `records.sync.failed` deliveries.
// What it knows of its event is src/runtime/events/records-sync-failed.ts; `bot` is for tests (they build
// its handler with a test clock and log). Deploy with publicWebhook and rawBody on: README "Going live".
import { bindEventType } from '../src/runtime/webhook-bot';
import { recordsSyncFailed } from '../src/runtime/events/records-sync-failed';

export const { bot, handler } = bindEventType(recordsSyncFailed);
