// One Consent per Medblocks connection (or failed authorization attempt). The model holds exactly
// what the bots own; encodeConsent writes it onto the stored resource, keeping everything else
// intact, and decodeConsent reads it back. FHIR only: how Medblocks' statuses map onto it is the
// handlers' business (src/runtime/handlers/connection-status.ts).
//
// Invariant: last-applied-event is the newest event applied to the Consent; last-active-event the
// newest that reported the connection active (reconnect and follow-up Tasks resolve on it); a
// Consent whose patient is unknown carries UNKNOWN_PATIENT until a flow event names the patient.
import type { Consent, Extension, Identifier, Organization, Patient, Reference } from '@medplum/fhirtypes';
import {
  COLLECT_ACTION,
  CONSENT_CATEGORY,
  CONSENT_POLICY_RULE,
  CONSENT_SCOPE,
  CUSTODIAN_ROLE,
  EXTENSION,
  SYSTEM,
} from './systems';
import { readStamp, stampExtension } from './stamp';
import type { EventStamp } from './stamp';

export type ConsentStatus = 'active' | 'rejected' | 'inactive';

/**
 * Consent's invariant ppc-2 requires a patient on a privacy consent. When a refresh failure arrives
 * before (or without) the flow event, the patient is unknown: a display-only reference says so
 * honestly, keeps scope and category stable for every consumer, and is replaced by a real reference
 * as soon as a flow event names the patient.
 */
export const UNKNOWN_PATIENT: Reference<Patient> = { display: 'Patient not yet identified by Medblocks' };

export interface ConsentModel {
  readonly key: Identifier & { system: string; value: string };
  readonly sourceId: string;
  readonly patient: Reference<Patient> | undefined;
  readonly status: ConsentStatus;
  readonly connectionCreatedAt: string;
  readonly periodEnd: string | undefined;
  /** Medblocks' failure codes for this connection, sorted and unique (one extension each). */
  readonly failureCodes: readonly string[];
  /** The EHR's name when an Organization names the source (events carry only its id); shown as the actor. */
  readonly sourceName: string | undefined;
  readonly lastEvent: EventStamp;
  /** Newest event that reported this connection active; reconnect and follow-up Tasks resolve on it. */
  readonly lastActiveEvent: EventStamp | undefined;
}

export function hasKnownPatient(patient: Reference | undefined): patient is Reference<Patient> & { reference: string } {
  return typeof patient?.reference === 'string' && patient.reference.length > 0;
}

const OWN_EXTENSIONS: readonly string[] = [EXTENSION.lastEvent, EXTENSION.lastActiveEvent, EXTENSION.failureCode];

export function encodeConsent(model: ConsentModel, existing?: Consent): Consent {
  const foreignIdentifiers = (existing?.identifier ?? []).filter(
    (i) => !(i.system === model.key.system && i.value === model.key.value)
  );
  const foreignExtensions = (existing?.extension ?? []).filter((e) => !OWN_EXTENSIONS.includes(e.url));
  const ownExtensions: Extension[] = [stampExtension(EXTENSION.lastEvent, model.lastEvent)];
  if (model.lastActiveEvent) {
    ownExtensions.push(stampExtension(EXTENSION.lastActiveEvent, model.lastActiveEvent));
  }
  for (const code of model.failureCodes) {
    ownExtensions.push({ url: EXTENSION.failureCode, valueCode: code });
  }
  return {
    ...existing,
    resourceType: 'Consent',
    extension: [...foreignExtensions, ...ownExtensions],
    identifier: [{ system: model.key.system, value: model.key.value }, ...foreignIdentifiers],
    status: model.status,
    scope: CONSENT_SCOPE,
    category: CONSENT_CATEGORY,
    patient: hasKnownPatient(model.patient) ? model.patient : UNKNOWN_PATIENT,
    dateTime: model.connectionCreatedAt,
    policyRule: CONSENT_POLICY_RULE,
    provision: {
      type: 'permit',
      period: model.periodEnd
        ? { start: model.connectionCreatedAt, end: model.periodEnd }
        : { start: model.connectionCreatedAt },
      actor: [{ role: CUSTODIAN_ROLE, reference: sourceReference(model.sourceId, model.sourceName) }],
      action: [COLLECT_ACTION],
    },
  };
}

/** Reads back what encodeConsent wrote; undefined when the resource is not one of ours. */
export function decodeConsent(consent: Consent): ConsentModel | undefined {
  const key = consent.identifier?.find(
    (i) => (i.system === SYSTEM.connectionId || i.system === SYSTEM.connectionAttempt) && i.value
  );
  const sourceId = consent.provision?.actor?.[0]?.reference.identifier?.value;
  const lastEvent = readStamp(consent, EXTENSION.lastEvent);
  const status = consent.status;
  const createdAt = consent.provision?.period?.start ?? consent.dateTime;
  if (!key?.system || !key.value || !sourceId || !lastEvent || !createdAt) {
    return undefined;
  }
  if (status !== 'active' && status !== 'rejected' && status !== 'inactive') {
    return undefined;
  }
  return {
    key: { system: key.system, value: key.value },
    sourceId,
    patient: hasKnownPatient(consent.patient) ? { reference: consent.patient.reference } : undefined,
    status,
    connectionCreatedAt: createdAt,
    periodEnd: consent.provision?.period?.end,
    failureCodes: (consent.extension ?? []).flatMap((e) =>
      e.url === EXTENSION.failureCode && e.valueCode ? [e.valueCode] : []
    ),
    sourceName: sourceNameOf(consent.provision?.actor?.[0]?.reference.display),
    lastEvent,
    lastActiveEvent: readStamp(consent, EXTENSION.lastActiveEvent),
  };
}

/** What an EHR source is called while no Organization names it: plain words, never the raw `fhirsrc_` id. */
export const UNNAMED_SOURCE = 'EHR portal (name not known yet)';

/**
 * EHR sources are referred to logically, by identifier (an Organization naming the source may or
 * may not exist); the display is the EHR's name when known.
 */
export function sourceReference(sourceId: string, sourceName?: string): Reference<Organization> {
  return {
    type: 'Organization',
    identifier: { system: SYSTEM.fhirSourceId, value: sourceId },
    display: sourceName ?? UNNAMED_SOURCE,
  };
}

/** The EHR name a stored display carries; earlier releases wrote the source id there, which is no name. */
function sourceNameOf(display: string | undefined): string | undefined {
  return display && display !== UNNAMED_SOURCE && !display.startsWith('fhirsrc_') ? display : undefined;
}
