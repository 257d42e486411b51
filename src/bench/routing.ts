// Which catalog bot takes an event type (one Medblocks endpoint per event type, one bot each).
import type { WebhookBotName } from '../bot/registry';
import type { MedblocksEvent } from '../medblocks/events';

export function botForEvent(event: Pick<MedblocksEvent, 'type'>): WebhookBotName {
  switch (event.type) {
    case 'patient_flow.completed':
    case 'patient_session.completed':
      return 'medblocks-patient-flow-completed';
    case 'connection.token_refresh_failed':
      return 'medblocks-connection-token-refresh-failed';
    case 'records.sync.completed':
      return 'medblocks-records-sync-completed';
    case 'records.sync.failed':
      return 'medblocks-records-sync-failed';
  }
}
