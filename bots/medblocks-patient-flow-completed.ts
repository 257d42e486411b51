// Medplum bot: verifies and applies Medblocks `patient_session.completed` (and `patient_flow.completed`) deliveries.
// What it knows of its event is src/runtime/events/patient-session-completed.ts; `bot` is for tests (they build
// its handler with a test clock and log). Deploy with publicWebhook and rawBody on: README "Going live".
import { bindEventType } from '../src/runtime/webhook-bot';
import { patientSessionCompleted } from '../src/runtime/events/patient-session-completed';

export const { bot, handler } = bindEventType(patientSessionCompleted);
