// Medplum bot: brings Consents and reconnect Tasks to what Medblocks knows (expired and
// disconnected connections, which no webhook reports), as `npm run reconcile` does. Runs daily on a
// cron schedule that provisioning sets; without the project secret MEDBLOCKS_API_KEY it does nothing.
import { createReconciler } from '../src/runtime/reconcile/bot';

export const handler = createReconciler();
