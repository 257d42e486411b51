// The four bots of the package: name, the event types each accepts, the project secret holding
// its Medblocks signing secret (every Medblocks endpoint has its own), and its handler. The build,
// provisioning, the emulator and the README read this one list.
import type { EventType } from '../medblocks/events';

export interface BotDescriptor {
  readonly name: string;
  readonly acceptedTypes: readonly EventType[];
  readonly secretName: string;
  /** What Medblocks calls the event when registering an endpoint for it. */
  readonly medblocksEvent: EventType;
}

export const BOTS = [
  {
    name: 'medblocks-patient-flow-completed',
    acceptedTypes: ['patient_flow.completed', 'patient_session.completed'],
    secretName: 'MEDBLOCKS_WEBHOOK_SECRET_PATIENT_FLOW_COMPLETED',
    medblocksEvent: 'patient_flow.completed',
  },
  {
    name: 'medblocks-connection-token-refresh-failed',
    acceptedTypes: ['connection.token_refresh_failed'],
    secretName: 'MEDBLOCKS_WEBHOOK_SECRET_CONNECTION_TOKEN_REFRESH_FAILED',
    medblocksEvent: 'connection.token_refresh_failed',
  },
  {
    name: 'medblocks-records-sync-completed',
    acceptedTypes: ['records.sync.completed'],
    secretName: 'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_COMPLETED',
    medblocksEvent: 'records.sync.completed',
  },
  {
    name: 'medblocks-records-sync-failed',
    acceptedTypes: ['records.sync.failed'],
    secretName: 'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED',
    medblocksEvent: 'records.sync.failed',
  },
] as const satisfies readonly BotDescriptor[];

export type BotName = (typeof BOTS)[number]['name'];

export function botDescriptor(name: BotName): BotDescriptor {
  const found = BOTS.find((b) => b.name === name);
  if (!found) throw new Error(`unknown bot ${name}`);
  return found;
}
