// Medplum bot: verifies and applies Medblocks `patient_flow.completed` (and `patient_session.completed`) deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { botDescriptor } from '../src/bot/catalog';
import { createMedblocksBot } from '../src/bot/create-bot';
import { patientFlowCompleted } from '../src/handlers/patient-flow';

/** The wiring, exported so that tests build the handler exactly as deployed (with a test clock and log). */
export const spec = { ...botDescriptor('medblocks-patient-flow-completed'), handler: patientFlowCompleted };

export const handler = createMedblocksBot(spec);
