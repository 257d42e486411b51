// Medplum bot: imports the records Medblocks synced into Medplum (docs/records-import.md). Runs
// every five minutes on a cron schedule that provisioning sets; opt-in: without the project secret
// MEDBLOCKS_API_KEY it does nothing.
import { createImportBot } from '../src/runtime/import/bot';

export const handler = createImportBot();
