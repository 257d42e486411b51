// Medplum bot: verifies and applies Medblocks `records.sync.failed` deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { botDescriptor } from '../src/bot/catalog';
import { createMedblocksBot } from '../src/bot/create-bot';
import { recordsSyncFailed } from '../src/handlers/records-sync';

export const handler = createMedblocksBot({
  ...botDescriptor('medblocks-records-sync-failed'),
  handler: recordsSyncFailed,
});
