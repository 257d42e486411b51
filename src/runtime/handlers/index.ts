// Every event type's handler behind one typed entry point, for tools that hold "some Medblocks
// event" (the benchmark, the fuzzer) rather than one bot's type: the switch narrows the event, so
// no caller needs to erase types to reach the right handler.
import type { MedblocksEvent } from '../medblocks/events';
import { patientFlowCompleted } from './patient-flow';
import type { EventHandler } from './plan';
import { recordsSyncCompleted, recordsSyncFailed } from './records-sync';
import { tokenRefreshFailed } from './token-refresh';

export const medblocksEventHandler: EventHandler = {
  reads(event) {
    switch (event.type) {
      case 'patient_flow.completed':
      case 'patient_session.completed':
        return patientFlowCompleted.reads(event);
      case 'connection.token_refresh_failed':
        return tokenRefreshFailed.reads(event);
      case 'records.sync.completed':
        return recordsSyncCompleted.reads(event);
      case 'records.sync.failed':
        return recordsSyncFailed.reads(event);
    }
  },
  plan(event: MedblocksEvent, state, context) {
    switch (event.type) {
      case 'patient_flow.completed':
      case 'patient_session.completed':
        return patientFlowCompleted.plan(event, state, context);
      case 'connection.token_refresh_failed':
        return tokenRefreshFailed.plan(event, state, context);
      case 'records.sync.completed':
        return recordsSyncCompleted.plan(event, state, context);
      case 'records.sync.failed':
        return recordsSyncFailed.plan(event, state, context);
    }
  },
};
