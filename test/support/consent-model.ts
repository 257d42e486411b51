// One connection's Consent as the bots model it (runtime/fhir/consent.ts), for tests that need a
// Consent of ours without playing a delivery: the policy cases and provisioning's category migration.
import type { ConsentModel } from '../../src/runtime/fhir/consent';
import { SYSTEM } from '../../src/runtime/fhir/systems';

export function activeConnectionConsent(connectionId: string, sourceId: string): ConsentModel {
  return {
    key: { system: SYSTEM.connectionId, value: connectionId },
    sourceId,
    sourceName: undefined,
    patient: { reference: 'Patient/p1' },
    status: 'active',
    connectionCreatedAt: '2026-04-25T00:00:00.000Z',
    periodEnd: undefined,
    failureCodes: [],
    lastEvent: { at: '2026-04-25T00:00:00.000Z', eventId: 'evt_1' },
    lastActiveEvent: undefined,
  };
}
