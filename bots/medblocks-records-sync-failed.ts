// Medplum bot: verifies and applies Medblocks `records.sync.failed` deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { botDescriptor } from '../src/bot/catalog';
import { createMedblocksBot } from '../src/bot/create-bot';
import { recordsSyncFailed } from '../src/handlers/records-sync';

/** The wiring, exported so that tests build the handler exactly as deployed (with a test clock and log). */
export const spec = { ...botDescriptor('medblocks-records-sync-failed'), handler: recordsSyncFailed };

export const handler = createMedblocksBot(spec);
