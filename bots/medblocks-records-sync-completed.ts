// Medplum bot: verifies and applies Medblocks `records.sync.completed` deliveries.
// What it knows of its event is src/runtime/events/records-sync-completed.ts; `bot` is for tests (they build
// its handler with a test clock and log). Deploy with publicWebhook and rawBody on: README "Going live".
import { bindEventType } from '../src/runtime/webhook-bot';
import { recordsSyncCompleted } from '../src/runtime/events/records-sync-completed';

export const { bot, handler } = bindEventType(recordsSyncCompleted);
