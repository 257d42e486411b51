// How Medblocks' connection statuses map onto Consent.status (docs: fhir-mapping "Consent").
import type { ConsentStatus } from '../fhir/consent';
import { isKnownConnectionStatus } from '../medblocks/events';
import type { ConnectionStatus } from '../medblocks/events';

/**
 * `active` → active; `failed` → rejected; refresh_failed, expired, disconnected → inactive.
 *
 * A status Medblocks adds later (`revoked`, `pending`, …) maps to undefined: we cannot tell whether
 * it means working or not, so a flow entry with it changes nothing — an existing Consent stays as
 * it is, and a connection we have never seen gets no Consent (inventing an active one would let a
 * `pending` authorization resolve reconnect and follow-up Tasks; inventing an inactive one would
 * claim a stop that may not have happened). The bot logs the status by name when it is a short
 * safe token (medblocks/events.ts `unknownStatusNotes`), so the mapping can be extended.
 */
export function consentStatusFor(status: ConnectionStatus): ConsentStatus | undefined {
  if (!isKnownConnectionStatus(status)) {
    return undefined;
  }
  switch (status) {
    case 'active':
      return 'active';
    case 'failed':
      return 'rejected';
    default:
      return 'inactive';
  }
}
