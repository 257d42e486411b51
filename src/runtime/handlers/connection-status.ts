// How Medblocks' connection statuses map onto Consent.status (docs: fhir-mapping "Consent").
import type { ConsentStatus } from '../fhir/consent';
import type { ConnectionStatus } from '../medblocks/events';

/** `active` → active; `failed` → rejected; refresh_failed, expired, disconnected → inactive. */
export function consentStatusFor(status: ConnectionStatus): ConsentStatus {
  switch (status) {
    case 'active':
      return 'active';
    case 'failed':
      return 'rejected';
    default:
      return 'inactive';
  }
}
