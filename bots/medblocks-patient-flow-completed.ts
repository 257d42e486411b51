// Medplum bot: verifies and applies Medblocks `patient_flow.completed` (and `patient_session.completed`) deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { REGISTRY } from '../src/runtime/registry';
import { createWebhookBot, defineWebhookBot } from '../src/runtime/webhook-bot';
import { patientFlowCompleted } from '../src/runtime/handlers/patient-flow';

/** The registry entry bound to its handler; tests build the handler from it (with a test clock and log). */
export const bot = defineWebhookBot(REGISTRY['medblocks-patient-flow-completed'], patientFlowCompleted);

export const handler = createWebhookBot(bot);
