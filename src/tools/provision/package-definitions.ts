// What makes the package's own codes and extensions readable in the Medplum app:
// a CodeSystem for `urn:medblocks:code` — every code the bots write, with a display and a
// definition — and one StructureDefinition per extension of EXTENSION, each saying what value it
// carries. Provisioning installs them like everything else it owns (create, or update when they
// differ; nothing on a second run). Built from src/runtime/fhir/systems.ts, so a code or an
// extension added there cannot be forgotten here: the Records below are keyed by systems.ts'
// own constants (the compiler refuses a missing entry), and test/provision/definitions.test.ts
// checks every code literal the runtime writes against the CodeSystem.
import type { CodeSystem, CodeSystemConcept, ElementDefinition, StructureDefinition } from '@medplum/fhirtypes';
import type { BusinessStatusCode } from '../../runtime/fhir/systems';
import {
  BUSINESS_STATUS_DISPLAY,
  CODE,
  CODE_DISPLAY,
  EXTENSION,
  failureCodeDisplay,
  SYSTEM,
} from '../../runtime/fhir/systems';

/** The definition of one code: what a person reading it in the app should understand. */
export interface CodeDefinition {
  readonly display: string;
  readonly definition: string;
}

type RecordCode = Exclude<
  (typeof CODE)[keyof typeof CODE],
  typeof CODE.quarantined | typeof CODE.appliedAfterRedelivery
>;
type StatusCode = BusinessStatusCode | typeof CODE.quarantined | typeof CODE.appliedAfterRedelivery;

/** Task.code (and the marker's Basic.code, and the Consents' own category): what kind of record it is. */
const RECORD_CODES: Readonly<Record<RecordCode, string>> = {
  'reconnect-ehr':
    'Ask the patient to reconnect an EHR: Medblocks could not refresh the connection, so no new records arrive from it until the patient signs in to the EHR portal again.',
  'connection-follow-up':
    'The patient finished a Medblocks flow without connecting any EHR: follow up with them so that they connect one.',
  'records-sync': 'The outcome of the newest records sync from one EHR for a patient.',
  'medblocks-endpoint-disabled':
    "Medblocks disabled one of this package's webhook endpoints after its deliveries kept failing: nothing it sends reaches Medplum until it is re-enabled (npm run redeliver -- --reenable). Opened and closed by medblocks-reconciler.",
  'records-import':
    'The import of the records Medblocks synced for a patient into Medplum: its progress, what it imported, updated and what Medplum refused.',
  'webhook-event':
    'Marks a Medblocks event as applied, so that a repeated delivery of the same event changes nothing (removed by the marker sweeper after the retention period).',
  'ehr-connection':
    "A Consent category: the Consent this package keeps for one Medblocks EHR connection (or failed connection attempt), its status the connection's. The bots' access policies confine Consents by it.",
  'webhook-dead-letter':
    'A verified Medblocks event that could not be applied as it was (quarantined). It is resolved (status completed) when a later delivery of the same event applies it; search Task?code=urn:medblocks:code|webhook-dead-letter&status=failed.',
};

/** What each Task.businessStatus means for a care team member; the displays are the runtime's own. */
const STATUS_DEFINITIONS: Readonly<Record<StatusCode, string>> = {
  'awaiting-patient':
    'The EHR connection stopped refreshing and the patient has not reconnected it yet: contact the patient.',
  reconnected: 'The patient connected the EHR again after the refresh failure; nothing left to do.',
  'no-connection': 'The patient finished the flow without connecting any EHR: follow up with them.',
  connected: 'An EHR was connected after the flow ended without one; nothing left to do.',
  synced: 'The newest records sync from this EHR completed without errors.',
  'synced-with-errors':
    'The newest records sync completed, but some records could not be fetched; see the Task output.',
  'sync-failed': 'The newest records sync from this EHR failed: check the EHR connection in Medblocks.',
  importing: 'The records import is running or paused between scheduled runs; the next run continues it.',
  imported: 'Every record of the newest sync is in Medplum; nothing to do.',
  'imported-with-refusals':
    'The records are in Medplum except some that Medplum refused as invalid (counted in the output "refused").',
  'import-failed': 'The records import stopped (see the reason); it is tried again after the next records sync.',
  'endpoint-disabled':
    'Medblocks stopped delivering to this endpoint: find the cause with npm run monitor, fix it, then npm run redeliver -- --reenable.',
  'endpoint-re-enabled': 'The endpoint is active again; nothing left to do.',
  quarantined:
    'The event was verified but could not be applied as it was; it stays quarantined until a redelivery applies it (npm run redeliver).',
  'applied-after-redelivery': 'A later delivery of the quarantined event applied it; nothing left to do.',
};

function statusDisplay(code: StatusCode): string {
  return code === CODE.quarantined || code === CODE.appliedAfterRedelivery
    ? CODE_DISPLAY[code]
    : BUSINESS_STATUS_DISPLAY[code];
}

/** Task.businessStatus: where the work stands, in words a care team member acts on. */
export const BUSINESS_STATUS: Readonly<Record<string, CodeDefinition>> = Object.fromEntries(
  (Object.entries(STATUS_DEFINITIONS) as [StatusCode, string][]).map(([code, definition]) => [
    code,
    { display: statusDisplay(code), definition },
  ])
);

/** Task.input / Task.output types. */
export const PARAMETER_CODES: Readonly<Record<string, CodeDefinition>> = {
  'ehr-name': {
    display: 'EHR name',
    definition: 'The name of the EHR, from the Organization carrying its fhirsrc identifier, as the Task texts use it.',
  },
  'fhir-source': { display: 'EHR', definition: 'The Medblocks EHR source (fhirsrc_…) the Task is about.' },
  'patient-flow': { display: 'Patient flow', definition: 'The Medblocks patient flow (pf_…) that ended.' },
  'failure-code': {
    display: 'Failure code',
    definition: "Medblocks' failure_code of a failed EHR authorization, kept verbatim.",
  },
  total: { display: 'Records', definition: 'How many records the sync fetched.' },
  errors: { display: 'Records with errors', definition: 'How many records the sync could not fetch.' },
  'duration-ms': { display: 'Sync duration (ms)', definition: 'How long the sync took, in milliseconds.' },
  'new-consent': { display: 'New consent', definition: 'The Consent of the connection that replaced the failed one.' },
  'event-type': { display: 'Event type', definition: 'The Medblocks event type of the quarantined event.' },
  reason: {
    display: 'Reason',
    definition: 'Why the event was quarantined (invalid_payload, patient_not_found, invalid_resource).',
  },
  'field-path': { display: 'Field', definition: 'The path of the field that made the event unusable, when known.' },
  'import-created': {
    display: 'Imported records',
    definition: "On a records-sync Task: the records this sync's import created in Medplum.",
  },
  'import-updated': {
    display: 'Updated records',
    definition: "On a records-sync Task: the records this sync's import updated (changed at the EHR).",
  },
  'import-refused': {
    display: 'Refused records',
    definition: 'On a records-sync Task: the records of this sync Medplum refused to store (see the import Task).',
  },
  'endpoint-id': {
    display: 'Medblocks endpoint',
    definition: 'The Medblocks webhook endpoint (wh_…) the Task is about.',
  },
  'endpoint-url': {
    display: 'Endpoint URL',
    definition: "Where that endpoint delivers (the bot's Medplum webhook URL).",
  },
  'patient-id': {
    display: 'Medblocks patient',
    definition: 'The Medblocks patient id whose records the import brings in.',
  },
  'covered-through': {
    display: 'Imported through',
    definition:
      'The time of the newest records sync whose records are all in Medplum: the import resumes from shortly before it.',
  },
  'run-id': {
    display: 'Import run',
    definition: 'The import run that last worked on the Task; each Provenance names it.',
  },
  'run-target': { display: 'Run covers', definition: 'The records sync time the run in progress covers once done.' },
  since: { display: 'Changed since', definition: 'The run asks Medblocks for records changed after this time.' },
  'event-id': { display: 'Sync event', definition: 'The records.sync.completed event the run follows.' },
  'type-pass': { display: 'Type pass', definition: 'Which resource type of the import order the run is at.' },
  cursor: { display: 'Cursor', definition: "Medblocks' cursor of the next page of the current type (valid 7 days)." },
  'cursor-issued': {
    display: 'Cursor issued',
    definition: 'When the cursor was received: older than 7 days, the pass restarts.',
  },
  created: { display: 'Imported', definition: 'Records the run created in Medplum.' },
  updated: {
    display: 'Updated',
    definition: 'Records changed at the source since the last import, updated in Medplum.',
  },
  unchanged: { display: 'Unchanged', definition: 'Records served again that Medplum already held as they are.' },
  stale: {
    display: 'Older than ours',
    definition: 'Records served in an older version than Medplum holds: not written (newest wins).',
  },
  refused: {
    display: 'Refused',
    definition: "Records Medplum refused (its validator or the bot's AccessPolicy): counted, never retried.",
  },
  'unresolved-references': {
    display: 'Unresolved references',
    definition:
      'Imported records that still name a target only by its record identifier (the target was not imported).',
  },
  'ehr-patient-records': {
    display: "EHR's Patient records",
    definition: "The EHR's own Patient resources, not written: the import writes no demographics.",
  },
  malformed: {
    display: 'Malformed',
    definition: 'Items that were not a FHIR resource with a usable id, or of a type not imported.',
  },
};

/**
 * Medblocks `failure_code`s seen so far. They are Medblocks' own and unbounded (no list is
 * published); the follow-up Task carries them verbatim under this system, so the CodeSystem is a
 * `fragment`: these are listed for their displays, others may appear.
 */
export const KNOWN_FAILURE_CODES: Readonly<Record<string, CodeDefinition>> = {
  access_denied: {
    display: failureCodeDisplay('access_denied'),
    definition: 'Medblocks failure_code: the EHR refused the authorization.',
  },
  user_denied: {
    display: failureCodeDisplay('user_denied'),
    definition: 'Medblocks failure_code: the patient declined to share their records.',
  },
  oauth_callback_failed: {
    display: failureCodeDisplay('oauth_callback_failed'),
    definition: 'Medblocks failure_code: the sign-in with the EHR did not complete.',
  },
};

function recordConcepts(): CodeSystemConcept[] {
  return Object.entries(RECORD_CODES).map(([code, definition]) => ({
    code,
    display: CODE_DISPLAY[code as RecordCode],
    definition,
  }));
}

function concepts(table: Readonly<Record<string, CodeDefinition>>): CodeSystemConcept[] {
  return Object.entries(table).map(([code, { display, definition }]) => ({ code, display, definition }));
}

/** The CodeSystem for `urn:medblocks:code`. */
export function medblocksCodeSystem(): CodeSystem {
  return {
    resourceType: 'CodeSystem',
    url: SYSTEM.code,
    name: 'MedblocksMedplumBotsCodes',
    title: 'Medblocks Connect bots: codes',
    status: 'active',
    description:
      'Codes the Medblocks Connect bots write: Task kinds, Task business statuses, Task input and output types. Medblocks failure codes pass through verbatim under this system; the known ones are listed.',
    caseSensitive: true,
    content: 'fragment',
    concept: [
      ...recordConcepts(),
      ...concepts(BUSINESS_STATUS),
      ...concepts(PARAMETER_CODES),
      ...concepts(KNOWN_FAILURE_CODES),
    ],
  };
}

/** Every code the CodeSystem defines. */
export function definedCodes(): Set<string> {
  return new Set((medblocksCodeSystem().concept ?? []).map((c) => c.code));
}

type ExtensionKey = keyof typeof EXTENSION;

interface ExtensionSpec {
  readonly name: string;
  readonly title: string;
  readonly description: string;
  /** Where it appears (StructureDefinition.context). */
  readonly context: readonly string[];
  /** `stamp`: the event id (string) and its created_at (instant), as stamp.ts writes them; else a value type. */
  readonly value: 'stamp' | 'code' | 'instant';
}

/** One entry per extension of systems.ts (the Record type makes a missing one a compile error). */
const EXTENSIONS: Readonly<Record<ExtensionKey, ExtensionSpec>> = {
  lastEvent: {
    name: 'LastAppliedEvent',
    title: 'Last applied Medblocks event',
    description:
      'The newest Medblocks event applied to this resource (event id and its created_at): an older event arriving later changes nothing.',
    context: ['Consent', 'Task'],
    value: 'stamp',
  },
  lastActiveEvent: {
    name: 'LastActiveEvent',
    title: 'Last event reporting the connection active',
    description: 'The newest Medblocks event that reported this connection active (used to tell a reconnect).',
    context: ['Consent'],
    value: 'stamp',
  },
  lastRefreshFailedEvent: {
    name: 'LastRefreshFailedEvent',
    title: 'Last token refresh failure',
    description: "The newest Medblocks event that reported this connection's token refresh failure.",
    context: ['Task'],
    value: 'stamp',
  },
  triggerEvent: {
    name: 'TriggerEvent',
    title: 'Flow event without a connection',
    description: 'The Medblocks flow event that ended without an active connection and opened this follow-up.',
    context: ['Task'],
    value: 'stamp',
  },
  failureCode: {
    name: 'FailureCode',
    title: 'Medblocks failure code',
    description: "Medblocks' failure_code for this connection, verbatim (an opaque code).",
    context: ['Consent'],
    value: 'code',
  },
  sourceLastUpdated: {
    name: 'SourceLastUpdated',
    title: "The EHR's last change of this record",
    description:
      "The source EHR's meta.lastUpdated of an imported record: a record served in an older version later never overwrites it (newest wins).",
    context: ['Resource'],
    value: 'instant',
  },
};

function element(path: string, rest: Omit<ElementDefinition, 'id' | 'path'> = {}, id = path): ElementDefinition {
  return { id, path, ...rest };
}

function stampElements(): ElementDefinition[] {
  const part = (slice: string, type: string, short: string): ElementDefinition[] => [
    element('Extension.extension', { sliceName: slice, min: 1, max: '1', short }, `Extension.extension:${slice}`),
    element('Extension.extension.url', { fixedUri: slice }, `Extension.extension:${slice}.url`),
    element(
      'Extension.extension.value[x]',
      { min: 1, type: [{ code: type }] },
      `Extension.extension:${slice}.value[x]`
    ),
  ];
  return [
    element('Extension.extension', {
      min: 2,
      slicing: { discriminator: [{ type: 'value', path: 'url' }], rules: 'open' },
    }),
    ...part('eventId', 'string', 'Medblocks event id (evt_…)'),
    ...part('createdAt', 'instant', "The event's created_at"),
  ];
}

/** The StructureDefinition of one extension: a simple extension profile with the value it carries. */
export function extensionDefinition(key: ExtensionKey): StructureDefinition {
  const spec = EXTENSIONS[key];
  const url = EXTENSION[key];
  const value =
    spec.value === 'stamp'
      ? [...stampElements(), element('Extension.url', { fixedUri: url }), element('Extension.value[x]', { max: '0' })]
      : [
          element('Extension.extension', { max: '0' }),
          element('Extension.url', { fixedUri: url }),
          element('Extension.value[x]', { min: 1, type: [{ code: spec.value }] }),
        ];
  return {
    resourceType: 'StructureDefinition',
    url,
    name: spec.name,
    title: spec.title,
    status: 'active',
    description: spec.description,
    fhirVersion: '4.0.1',
    kind: 'complex-type',
    abstract: false,
    context: spec.context.map((expression) => ({ type: 'element', expression })),
    type: 'Extension',
    baseDefinition: 'http://hl7.org/fhir/StructureDefinition/Extension',
    derivation: 'constraint',
    differential: {
      element: [element('Extension', { short: spec.title, definition: spec.description, max: '1' }), ...value],
    },
  };
}

/** Every definition provisioning installs, CodeSystem first. */
export function packageDefinitions(): (CodeSystem | StructureDefinition)[] {
  return [medblocksCodeSystem(), ...(Object.keys(EXTENSIONS) as ExtensionKey[]).map(extensionDefinition)];
}
