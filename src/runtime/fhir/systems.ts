// Every identifier system, code and extension URL the bots write, in one place: the access
// policies, the README and the tests all refer to these, so they can never drift apart.
import type { CodeableConcept, Coding } from '@medplum/fhirtypes';

export const SYSTEM = {
  /** Medblocks' own convention, so that Medblocks' FHIR exports line up with what the bots write. */
  patientId: 'urn:medblocks:patient-id',
  /**
   * A patient id HL7's R4 `string` cannot carry as it is (one with Unicode whitespace other than
   * space, tab, CR and LF, such as U+00A0 or U+2028), percent-encoded: see `patientIdentifier`.
   */
  patientIdEncoded: 'urn:medblocks:patient-id-encoded',
  connectionId: 'urn:medblocks:connection-id',
  /** A failed authorization has no `conn_` id; its key is `<flow id>/<fhirsrc id>/<attempt created_at>`. */
  connectionAttempt: 'urn:medblocks:connection-attempt',
  fhirSourceId: 'urn:medblocks:fhir-source-id',
  patientFlowId: 'urn:medblocks:patient-flow-id',
  eventId: 'urn:medblocks:event-id',
  taskKey: 'urn:medblocks:task-key',
  code: 'urn:medblocks:code',
  /** A quarantined event's dead-letter Task: the value is the event id, or `sha256-<hex>` of a body without a usable id. */
  deadLetter: 'urn:medblocks:dead-letter',
  /**
   * A dead-letter's owner (`Task.groupIdentifier`, the value a bot name): each bot's policy confines
   * its dead-letter searches and writes to its own, so one bot's dead-letters never reach another.
   */
  deadLetterOwner: 'urn:medblocks:dead-letter-owner',
} as const;

/** Absolute base of the extensions this package defines; listed in the README. */
export const EXTENSION_BASE = 'https://medblocks.com/fhir/medplum-bots/StructureDefinition/';

export const EXTENSION = {
  /** Time and id of the newest event applied to a resource: "newest event wins" compares against it. */
  lastEvent: `${EXTENSION_BASE}last-applied-event`,
  /** On a Consent: the newest event that reported the connection active (reconnect logic reads it). */
  lastActiveEvent: `${EXTENSION_BASE}last-active-event`,
  /** On a reconnect Task: the newest event that reported the connection's refresh failure. */
  lastRefreshFailedEvent: `${EXTENSION_BASE}last-refresh-failed-event`,
  /** On a follow-up Task: the flow event that had no active connection. */
  triggerEvent: `${EXTENSION_BASE}trigger-event`,
  /** Medblocks' `failure_code`, kept verbatim (an opaque code) when Medblocks gives one. */
  failureCode: `${EXTENSION_BASE}failure-code`,
  /** On an imported record: the EHR's `meta.lastUpdated`, so an older version never overwrites a newer one. */
  sourceLastUpdated: `${EXTENSION_BASE}source-last-updated`,
} as const;

export const CODE = {
  reconnectEhr: 'reconnect-ehr',
  connectionFollowUp: 'connection-follow-up',
  recordsSync: 'records-sync',
  /** The records import's own Task, one per patient: its watermark, progress and outcome. */
  recordsImport: 'records-import',
  /** An ops Task: Medblocks disabled one of this package's webhook endpoints. */
  endpointDisabled: 'medblocks-endpoint-disabled',
  webhookEvent: 'webhook-event',
  webhookDeadLetter: 'webhook-dead-letter',
  /** Dead-letter businessStatus codes. */
  quarantined: 'quarantined',
  appliedAfterRedelivery: 'applied-after-redelivery',
  /** A Consent category: this package's Consent of one connection or failed attempt (what its policies confine by). */
  ehrConnection: 'ehr-connection',
} as const;
export type TaskCode = typeof CODE.reconnectEhr | typeof CODE.connectionFollowUp | typeof CODE.recordsSync;

export const CODE_DISPLAY: Record<(typeof CODE)[keyof typeof CODE], string> = {
  'reconnect-ehr': 'Reconnect EHR',
  'connection-follow-up': 'Connection follow-up',
  'records-sync': 'Records sync',
  'records-import': 'Records import',
  'medblocks-endpoint-disabled': 'Medblocks endpoint disabled',
  'webhook-event': 'Medblocks webhook event',
  'webhook-dead-letter': 'Quarantined webhook event',
  quarantined: 'Quarantined',
  'applied-after-redelivery': 'Applied after redelivery',
  'ehr-connection': 'EHR connection',
};

/**
 * The Task `businessStatus` codes of `urn:medblocks:code`, with the displays the Medplum app shows
 * (provision's CodeSystem uses the same table). Failure codes from Medblocks are opaque and get a
 * generated display (`failureCodeDisplay`).
 */
export const BUSINESS_STATUS_DISPLAY = {
  'awaiting-patient': 'Waiting for the patient to reconnect',
  reconnected: 'Reconnected by the patient',
  'no-connection': 'No EHR connected',
  connected: 'EHR connected in a later flow',
  synced: 'Records synced',
  'synced-with-errors': 'Records synced with errors',
  'sync-failed': 'Records sync failed',
  importing: 'Importing records',
  imported: 'Records imported',
  'imported-with-refusals': 'Records imported; Medplum refused some',
  'import-failed': 'Records import failed',
  'endpoint-disabled': 'Medblocks stopped delivering to this endpoint',
  'endpoint-re-enabled': 'Endpoint delivering again',
} as const;
export type BusinessStatusCode = keyof typeof BUSINESS_STATUS_DISPLAY;

/** The display of an opaque Medblocks failure code used as a businessStatus coding. */
export function failureCodeDisplay(code: string): string {
  return `Connection failed (${code})`;
}

export function packageCode(code: (typeof CODE)[keyof typeof CODE], text?: string): CodeableConcept {
  const coding: Coding = { system: SYSTEM.code, code, display: CODE_DISPLAY[code] };
  return { coding: [coding], text: text ?? CODE_DISPLAY[code] };
}

export const CONSENT_SCOPE: CodeableConcept = {
  coding: [
    {
      system: 'http://terminology.hl7.org/CodeSystem/consentscope',
      code: 'patient-privacy',
      display: 'Privacy Consent',
    },
  ],
};

/**
 * The category that marks a Consent as this package's: its own code, which nobody else writes, is
 * what the bots' AccessPolicies confine Consents by. Confining by the key's identifier system
 * instead put a key every one of our Consents shares into each conditional create's identifier
 * index scan, and concurrent flows then failed to serialise (docs/fidelity-ledger.md TX-10).
 */
export const CONSENT_OWN_CATEGORY: CodeableConcept = {
  coding: [{ system: SYSTEM.code, code: CODE.ehrConnection, display: CODE_DISPLAY[CODE.ehrConnection] }],
};

export const CONSENT_CATEGORY: CodeableConcept[] = [
  { coding: [{ system: 'http://loinc.org', code: '59284-0', display: 'Patient Consent' }] },
  {
    coding: [
      { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IDSCL', display: 'information disclosure' },
    ],
  },
  CONSENT_OWN_CATEGORY,
];

export const CONSENT_POLICY_RULE: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN', display: 'opt-in' }],
};

export const CUSTODIAN_ROLE: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'CST', display: 'custodian' }],
};

export const COLLECT_ACTION: CodeableConcept = {
  coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'collect', display: 'Collect' }],
};

/**
 * The whitespace HL7's R4 JSON schema refuses in every `string` (its pattern `^[ \r\n\t\S]+$`): all
 * of JavaScript's `\s` but space, tab, CR and LF. Medplum stores such text, other FHIR tools do not.
 */
export const NON_FHIR_WHITESPACE = /[^\S \r\n\t]/u;

/**
 * The identifier a Patient gets for a Medblocks patient id. Every id valid as a FHIR string keeps
 * `urn:medblocks:patient-id` and its exact value, so every Patient written before is found again. An
 * id that is not (it holds U+00A0, U+2028 and the like) goes under `urn:medblocks:patient-id-encoded`,
 * with `%` and those characters percent-encoded (UTF-8). Two systems keep the mapping one-to-one: no
 * encoded value can be mistaken for a raw one, and `decodePatientIdentifier` gives the id back.
 */
export function patientIdentifier(patientId: string): { system: string; value: string } {
  if (!NON_FHIR_WHITESPACE.test(patientId)) return { system: SYSTEM.patientId, value: patientId };
  const value = patientId.replace(new RegExp(`%|${NON_FHIR_WHITESPACE.source}`, 'gu'), (c) => encodeURIComponent(c));
  return { system: SYSTEM.patientIdEncoded, value };
}

/** The Medblocks patient id a Patient identifier stands for; undefined for any other identifier. */
export function decodePatientIdentifier(identifier: { system?: string; value?: string }): string | undefined {
  if (identifier.value === undefined) return undefined;
  if (identifier.system === SYSTEM.patientId) return identifier.value;
  if (identifier.system === SYSTEM.patientIdEncoded) return decodeURIComponent(identifier.value);
  return undefined;
}

/** Free text from outside (Medblocks' messages) as a FHIR string: refused whitespace becomes a space. */
export function asFhirText(text: string): string {
  return text.replace(new RegExp(NON_FHIR_WHITESPACE.source, 'gu'), ' ');
}

/**
 * One component of a business key (task keys, connection-attempt keys), made collision-free:
 * `%`, the `/` that separates components, whitespace, control characters and the characters FHIR
 * search treats specially (`,` `|` `$` `\`) are percent-encoded (UTF-8). Everything else is kept,
 * so the Medblocks ids of earlier releases (letters, digits, `_`, `-`) give the same keys as before.
 */
export function keyPart(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[%/\s,|$\\\u0000-\u001f\u007f-\u009f]/gu, (c) => encodeURIComponent(c));
}

/** Task keys, the business identifiers that make every Task write idempotent. */
export const TASK_KEY = {
  /** `connectionId` is a `conn_` id, or an attempt key value when Medblocks gave none. */
  reconnect: (connectionId: string) => `reconnect/${keyPart(connectionId)}`,
  followUp: (flowId: string) => `flow-follow-up/${keyPart(flowId)}`,
  recordsSync: (patientId: string, sourceId: string) => `records-sync/${keyPart(patientId)}/${keyPart(sourceId)}`,
  recordsImport: (patientId: string) => `records-import/${keyPart(patientId)}`,
  endpointDisabled: (endpointId: string) => `medblocks-endpoint/${keyPart(endpointId)}`,
} as const;

/** A connection reported without a `conn_` id: `<flow id>/<fhirsrc id>/<attempt created_at>`, each part encoded. */
export function attemptKey(flowId: string, sourceId: string, createdAt: string): string {
  return [flowId, sourceId, createdAt].map(keyPart).join('/');
}

/**
 * Escapes a value for a FHIR token search (FHIR search "Escaping search parameters"): `\` `,` `|`
 * and `$` are preceded by `\`. Medplum's server unescapes them (splitSearchOnComma) and splits
 * `system|value` on the first `|` only, so an escaped value matches exactly what was stored.
 */
export function escapeSearchValue(value: string): string {
  return value.replace(/[\\,|$]/g, (c) => `\\${c}`);
}

/**
 * `system|value` with the value escaped: the only way the bots ever search identifiers (a bare
 * value could match anyone's). Callers URL-encode the result as a whole.
 */
export function token(system: string, value: string): string {
  return `${system}|${escapeSearchValue(value)}`;
}

/** The inverse of keyPart (a stored key that is not one of ours decodes to itself). */
export function decodeKeyPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * An opaque Medblocks code (`failure_code`) as a FHIR `code`: whitespace runs become one space and
 * the ends are trimmed, because Medplum's validator refuses any other whitespace in a code;
 * undefined when nothing is left. Codes differing only in whitespace are the same code.
 */
export function asCode(text: string | null | undefined): string | undefined {
  const code = (text ?? '').replace(/\s+/g, ' ').trim();
  return code === '' ? undefined : code;
}
