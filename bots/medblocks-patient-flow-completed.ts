// Medplum bot: verifies and applies Medblocks `patient_flow.completed` deliveries.
// Deploy with publicWebhook and rawBody on; see README "Going live".
import { botDescriptor } from '../src/bot/catalog';
import { createMedblocksBot } from '../src/bot/create-bot';
import { patientFlowCompleted } from '../src/handlers/patient-flow';

export const handler = createMedblocksBot({
  ...botDescriptor('medblocks-patient-flow-completed'),
  handler: patientFlowCompleted,
});
