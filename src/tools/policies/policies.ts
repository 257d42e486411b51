// The bots' AccessPolicies, built from code (issue 21): each bot's policy is the same few grants —
// its markers, Patient ids, the Patients it may create, the EHR-source Organizations, its Consents,
// its Tasks and its own dead-letters — specialised by the registry entry (name, event types) and by
// its event type's policy shape (which Consent and Task grants it needs). Every system, code and extension URL comes
// from runtime/fhir/systems.ts. `npm run policies` writes access-policies/*.json from here;
// test/policies.test.ts fails when a checked-in file differs, so the JSON users provision is always
// this module's output and four near-copies are never edited by hand again.
import type { AccessPolicy, AccessPolicyResource } from '@medplum/fhirtypes';
import { CODE, EXTENSION, SYSTEM } from '../../runtime/fhir/systems';
import type { TaskCode } from '../../runtime/fhir/systems';
import type { EventType } from '../../runtime/events';
import { IMPORT_RUN_SYSTEM, RECORD_SYSTEM } from '../../runtime/import/identity';
import { DEFAULT_IMPORT_TYPES } from '../../runtime/import/settings';
import { EVENT_DEFINITIONS } from '../../runtime/events';
import type { PolicyShape } from '../../runtime/events/define';
import { REGISTRY } from '../../runtime/registry';
import type { WebhookBotName } from '../../runtime/registry';

type Constraint = NonNullable<AccessPolicyResource['writeConstraint']>[number];

/**
 * What each webhook bot writes beyond what every bot does, from its event type's definition
 * (src/runtime/events/<event-type>.ts `policy`): keyed by bot name, so every webhook bot has one.
 */
export const POLICY_SHAPES = Object.fromEntries(EVENT_DEFINITIONS.map((d) => [d.bot, d.policy])) as Readonly<
  Record<WebhookBotName, PolicyShape>
>;

/** The statuses each Task kind is written with (fhir/tasks/*.ts): nothing else, never entered-in-error. */
const TASK_STATUSES: Readonly<Record<TaskCode, readonly string[]>> = {
  [CODE.reconnectEhr]: ['requested', 'completed'],
  [CODE.connectionFollowUp]: ['requested', 'completed'],
  [CODE.recordsSync]: ['completed', 'failed'],
};

/** MEDBLOCKS_TASK_OWNER's shape (runtime/settings.ts): a bare reference to one of these types. */
const OWNER_REFERENCE_PATTERN =
  '^(Organization|Practitioner|PractitionerRole|CareTeam|Group|Device|HealthcareService|RelatedPerson|Patient)/[A-Za-z0-9\\\\-.]{1,64}$';

const PATIENT_HIDDEN_FIELDS = [
  'implicitRules',
  'language',
  'text',
  'contained',
  'extension',
  'modifierExtension',
  'identifier',
  'active',
  'name',
  'telecom',
  'gender',
  'birthDate',
  'deceased[x]',
  'address',
  'maritalStatus',
  'multipleBirth[x]',
  'photo',
  'contact',
  'communication',
  'generalPractitioner',
  'managingOrganization',
  'link',
  '_implicitRules',
  '_language',
  '_active',
  '_gender',
  '_birthDate',
  '_deceased[x]',
  '_multipleBirth[x]',
];

const META = ['meta.tag', 'meta.security', 'meta.profile', 'meta.source', 'meta.extension'];

function rule(expression: string, description?: string): Constraint {
  return description
    ? { language: 'text/fhirpath', description, expression }
    : { language: 'text/fhirpath', expression };
}

const quoted = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(' | ');
const anyOf = (field: string, values: readonly string[]): string => values.map((v) => `${field} = '${v}'`).join(' or ');

/** Empty, or exactly what the stored version carried: what others added is kept, never added by a bot. */
const kept = (field: string): string => `(%after.${field}.empty() or %after.${field} = %before.${field})`;
const allKept = (fields: readonly string[]): string => fields.map(kept).join(' and ');
const allEmpty = (fields: readonly string[]): string => fields.map((f) => `%after.${f}.empty()`).join(' and ');

/**
 * Task fields a bot never writes but staff may: each kept as the stored version had it (or absent),
 * on reconnect, follow-up and records-sync Tasks and on dead-letters alike.
 */
const TASK_FIELDS_OTHERS_OWN = [
  'implicitRules',
  'language',
  'text',
  'contained',
  'modifierExtension',
  'note',
  'basedOn',
  'partOf',
  'encounter',
  'requester',
  'performerType',
  'location',
  'reasonCode',
  'reasonReference',
  'insurance',
  'relevantHistory',
  'restriction',
  'instantiatesCanonical',
  'instantiatesUri',
  ...META,
];

/** An identifier of ours: system and value only, no id or primitive extension on either. */
const bare = (identifiers: string): string =>
  `${identifiers}.all(id.empty() and extension.empty() and use.empty() and type.empty() and period.empty() and assigner.empty() and system.id.empty() and system.extension.empty() and value.id.empty() and value.extension.empty())`;

/** Elements of `collection` outside `own` are as stored (or absent). */
function foreignKept(collection: string, own: string): string {
  const after = `%after.${collection}.exclude(%after.${collection}.where(${own}))`;
  const before = `%before.${collection}.exclude(%before.${collection}.where(${own}))`;
  return `(${after}.empty() or ${after} = ${before})`;
}

/** A stamp extension (fhir/stamp.ts): an eventId string and a createdAt instant, nothing else. */
const STAMP_SHAPE =
  "(value.empty() and extension.count() = 2 and extension.where(url = 'eventId').value is string and extension.where(url = 'createdAt').value is instant and extension.all(extension.empty() and value.extension.empty() and value.id.empty()))";

function markerGrant(eventTypes: readonly EventType[]): AccessPolicyResource {
  const own =
    eventTypes.length === 1
      ? `%after.code.text = '${eventTypes[0] ?? ''}'`
      : `%after.code.text in (${quoted(eventTypes)})`;
  return {
    resourceType: 'Basic',
    criteria: `Basic?code=${SYSTEM.code}|${CODE.webhookEvent}`,
    interaction: ['search', 'create'],
    writeConstraint: [
      rule(
        `%after.code.coding.count() = 1 and %after.code.coding.system = '${SYSTEM.code}' and %after.code.coding.code = '${CODE.webhookEvent}'`,
        `A marker carries one coding, ${SYSTEM.code}|${CODE.webhookEvent}.`
      ),
      rule(own, "A marker names only this bot's own event type(s), so it cannot mark another bot's events as applied."),
      rule(
        `%after.identifier.count() = 1 and %after.identifier.system = '${SYSTEM.eventId}' and %after.identifier.value.exists() and (%after.subject.empty() or %after.subject.reference.startsWith('Patient/'))`,
        'One event-id identifier; the subject, when present, is a Patient.'
      ),
      rule(
        `${allEmpty(['implicitRules', 'language', 'text', 'contained', 'extension', 'modifierExtension', 'author'])} and %after.code.coding.all(id.empty() and extension.empty() and version.empty() and userSelected.empty() and code.extension.empty() and system.extension.empty()) and %after.code.text.extension.empty() and ${bare('%after.identifier')} and %after.subject.all(display.empty() and identifier.empty() and type.empty() and extension.empty()) and %after.created.exists() and %after.created <= today() and %after.created.extension.empty() and ${allEmpty(META)}`,
        'Nothing else on a marker, and a date no later than today: no marker escapes the sweeper.'
      ),
    ],
  };
}

const PATIENT_READ: AccessPolicyResource = {
  resourceType: 'Patient',
  interaction: ['search', 'read'],
  hiddenFields: PATIENT_HIDDEN_FIELDS,
};

function patientCreateGrant(): AccessPolicyResource {
  const systems = [SYSTEM.patientId, SYSTEM.patientIdEncoded];
  return {
    resourceType: 'Patient',
    criteria: `Patient?identifier=${systems.map((s) => `${s}|`).join(',')}`,
    interaction: ['create'],
    writeConstraint: [
      rule(
        `%after.identifier.count() = 1 and %after.identifier.system.all(${anyOf('$this', systems)}) and %after.identifier.value.exists() and ${allEmpty(['identifier.use', 'identifier.type', 'identifier.period', 'identifier.assigner', 'identifier.extension'])}`,
        'Exactly one identifier: ours, with a value and nothing else (no MRN, no type, period or assigner).'
      ),
      rule(
        allEmpty([
          'implicitRules',
          'language',
          'text',
          'contained',
          'extension',
          'modifierExtension',
          'active',
          'name',
          'telecom',
          'gender',
          'birthDate',
          'deceased',
          'address',
          'maritalStatus',
          'multipleBirth',
          'photo',
          'contact',
          'communication',
          'generalPractitioner',
          'managingOrganization',
          'link',
        ]),
        'No demographics, links or any other element: the bots only ever create a Patient carrying our identifier.'
      ),
      rule(
        `${bare('%after.identifier')} and ${allEmpty(META)}`,
        'No text in primitive extensions of the identifier, and no meta tags, labels, profiles or source.'
      ),
    ],
  };
}

const ORGANIZATION_SEARCH: AccessPolicyResource = {
  resourceType: 'Organization',
  criteria: `Organization?identifier=${SYSTEM.fhirSourceId}|`,
  interaction: ['search'],
};

function consentGrant(): AccessPolicyResource {
  const keys = `system = '${SYSTEM.connectionId}' or system = '${SYSTEM.connectionAttempt}'`;
  const ownExtensions = [EXTENSION.lastEvent, EXTENSION.lastActiveEvent, EXTENSION.failureCode];
  const stamps = [EXTENSION.lastEvent, EXTENSION.lastActiveEvent];
  return {
    resourceType: 'Consent',
    criteria: `Consent?identifier=${SYSTEM.connectionId}|,${SYSTEM.connectionAttempt}|&scope=http://terminology.hl7.org/CodeSystem/consentscope|patient-privacy&category=http://loinc.org|59284-0`,
    interaction: ['search', 'read', 'create', 'update'],
    writeConstraint: [
      rule(
        `%after.identifier.where(${keys}).count() = 1 and (%before.empty() or %after.identifier.where(${keys}).value = %before.identifier.where(${keys}).value)`,
        'One connection key (id or attempt), and an update keeps it.'
      ),
      rule(
        "%after.scope.coding.count() = 1 and %after.scope.coding.system = 'http://terminology.hl7.org/CodeSystem/consentscope' and %after.scope.coding.code = 'patient-privacy' and %after.scope.text.empty()",
        'Our scope only: patient-privacy.'
      ),
      rule(
        "%after.category.count() = 2 and %after.category.coding.count() = 2 and %after.category.coding.where(system = 'http://loinc.org' and code = '59284-0').exists() and %after.category.coding.where(system = 'http://terminology.hl7.org/CodeSystem/v3-ActCode' and code = 'IDSCL').exists()",
        'Our two categories only: LOINC 59284-0 and v3-ActCode IDSCL.'
      ),
      rule(
        "%after.status in ('active' | 'rejected' | 'inactive') and %after.policyRule.coding.count() = 1 and %after.policyRule.coding.system = 'http://terminology.hl7.org/CodeSystem/v3-ActCode' and %after.policyRule.coding.code = 'OPTIN' and %after.policy.empty() and %after.source.empty() and %after.performer.empty() and %after.organization.empty()",
        'Our status values and policy rule (opt-in) only.'
      ),
      rule(
        "%after.provision.type = 'permit' and %after.provision.action.count() = 1 and %after.provision.action.coding.count() = 1 and %after.provision.action.coding.system = 'http://terminology.hl7.org/CodeSystem/consentaction' and %after.provision.action.coding.code = 'collect' and %after.provision.provision.empty() and %after.provision.data.empty() and %after.provision.class.empty() and %after.provision.code.empty() and %after.provision.purpose.empty() and %after.provision.securityLabel.empty() and %after.provision.dataPeriod.empty()",
        'Our provision only: permit, collect, no nested provisions, data, classes, codes, purposes or labels.'
      ),
      rule(
        `%after.provision.actor.count() = 1 and %after.provision.actor.role.coding.count() = 1 and %after.provision.actor.role.coding.system = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType' and %after.provision.actor.role.coding.code = 'CST' and %after.provision.actor.reference.reference.empty() and %after.provision.actor.reference.type = 'Organization' and %after.provision.actor.reference.identifier.system = '${SYSTEM.fhirSourceId}' and %after.provision.actor.reference.identifier.value.exists() and (%before.empty() or %after.provision.actor.reference.identifier.value = %before.provision.actor.reference.identifier.value)`,
        'Our actor shape only: one custodian, the EHR source referred to logically by its fhirsrc identifier; an update keeps the source.'
      ),
      rule(
        "(%after.patient.reference.startsWith('Patient/') or (%after.patient.reference.empty() and %after.patient.display = 'Patient not yet identified by Medblocks')) and (%before.patient.reference.empty() or %after.patient.reference = %before.patient.reference)",
        'The patient is a Patient reference or the fixed not-yet-identified display; once known it never changes.'
      ),
      rule(
        allKept([
          'implicitRules',
          'language',
          'text',
          'contained',
          'modifierExtension',
          'verification',
          'provision.modifierExtension',
          'provision.extension',
          'provision.actor.modifierExtension',
          'provision.actor.extension',
          ...META,
        ]),
        'No narrative, contained resource, modifierExtension, verification or meta label a bot adds: only what the stored version carried.'
      ),
      rule(
        `${foreignKept('extension', anyOf('url', ownExtensions))} and %after.extension.where(${anyOf('url', stamps)}).all${STAMP_SHAPE} and %after.extension.where(url = '${EXTENSION.failureCode}').all(value is code and extension.empty() and value.extension.empty()) and ${foreignKept('identifier', keys)} and ${bare(`%after.identifier.where(${keys})`)}`,
        "Only this package's extensions, each of its shape; other extensions and identifiers only as stored; our key bare."
      ),
    ],
  };
}

function taskGrant(codes: readonly TaskCode[]): AccessPolicyResource {
  const statuses = [...new Set(codes.flatMap((c) => TASK_STATUSES[c]))];
  const focusesConsent = codes.includes(CODE.reconnectEhr);
  const focus = focusesConsent
    ? "(%after.focus.empty() or (%after.focus.reference.startsWith('Consent/') and %after.focus.display.empty() and %after.focus.identifier.empty() and %after.focus.type.empty() and %after.focus.extension.empty()))"
    : '%after.focus.empty()';
  const ownExtensions = [EXTENSION.lastEvent, EXTENSION.lastRefreshFailedEvent, EXTENSION.triggerEvent];
  const key = `system = '${SYSTEM.taskKey}'`;
  return {
    resourceType: 'Task',
    criteria: `Task?identifier=${SYSTEM.taskKey}|&code=${codes.map((c) => `${SYSTEM.code}|${c}`).join(',')}`,
    interaction: ['search', 'read', 'create', 'update'],
    writeConstraint: [
      rule(
        `%after.code.coding.count() = 1 and %after.code.coding.system = '${SYSTEM.code}' and %after.code.coding.all(${anyOf('code', codes)}) and (%before.empty() or %after.code.coding.code = %before.code.coding.code)`,
        "Exactly one coding, one of this bot's Task codes; an update keeps the kind."
      ),
      rule(
        `%after.identifier.where(${key}).count() = 1 and (%before.empty() or %after.identifier.where(${key}).value = %before.identifier.where(${key}).value)`,
        'One task key, kept by an update.'
      ),
      rule(
        "(%after.for.empty() or %after.for.reference.startsWith('Patient/')) and (%before.for.reference.empty() or %after.for.reference = %before.for.reference)",
        'The Task is for a Patient or for nobody yet; once known, the patient never changes.'
      ),
      rule(
        `%after.status in (${quoted(statuses)}) and %after.intent = 'order' and ${focus} and (${kept('owner')} or (%after.owner.reference.matches('${OWNER_REFERENCE_PATTERN}') and %after.owner.display.empty() and %after.owner.identifier.empty() and %after.owner.type.empty() and %after.owner.extension.empty())) and %after.for.all(display.empty() and identifier.empty() and type.empty() and extension.empty())`,
        focusesConsent
          ? "Only this kind's statuses (never entered-in-error); a focus only on its Consent; an owner as stored or a bare reference; for a bare reference."
          : "Only this kind's statuses (never entered-in-error); no focus; an owner as stored or a bare reference; for a bare reference."
      ),
      rule(
        allKept([...TASK_FIELDS_OTHERS_OWN, 'groupIdentifier']),
        'No note, contained resource, narrative, modifierExtension, reference or meta label a bot adds: only what the stored version (staff) carried.'
      ),
      rule(
        `${foreignKept('extension', anyOf('url', ownExtensions))} and %after.extension.where(${anyOf('url', ownExtensions)}).all${STAMP_SHAPE} and ${foreignKept('identifier', key)} and ${bare(`%after.identifier.where(${key})`)}`,
        "Only this package's stamp extensions, of their shape; other extensions and identifiers only as stored; our key bare."
      ),
    ],
  };
}

function deadLetterGrant(owner: string, eventTypes: readonly EventType[]): AccessPolicyResource {
  const types = [...eventTypes, 'unknown'];
  const typeRule = (version: '%after' | '%before'): string =>
    `${version}.input.where(type.text = 'event-type').value.count() = 1 and ${version}.input.where(type.text = 'event-type').value.all(${anyOf('$this', types)})`;
  return {
    resourceType: 'Task',
    criteria: `Task?identifier=${SYSTEM.deadLetter}|&code=${SYSTEM.code}|${CODE.webhookDeadLetter}&group-identifier=${SYSTEM.deadLetterOwner}|${owner}`,
    interaction: ['search', 'read', 'create', 'update'],
    writeConstraint: [
      rule(
        `%after.code.coding.count() = 1 and %after.code.coding.system = '${SYSTEM.code}' and %after.code.coding.all(code = '${CODE.webhookDeadLetter}')`,
        `A dead-letter: exactly one coding, ${CODE.webhookDeadLetter}.`
      ),
      rule(
        `%after.groupIdentifier.system = '${SYSTEM.deadLetterOwner}' and %after.groupIdentifier.value = '${owner}' and ${allEmpty(['groupIdentifier.use', 'groupIdentifier.type', 'groupIdentifier.period', 'groupIdentifier.assigner', 'groupIdentifier.extension'])}`,
        "Owned by this bot (the criteria's group-identifier, and nothing else in it): another bot's dead-letters are neither found nor written."
      ),
      rule(
        `%after.identifier.count() = 1 and %after.identifier.system = '${SYSTEM.deadLetter}' and (%before.empty() or %after.identifier.value = %before.identifier.value)`,
        'One dead-letter identifier (the event id), kept by an update.'
      ),
      rule(
        "%after.for.empty() and %after.focus.empty() and %after.basedOn.empty() and %after.output.empty() and %after.intent = 'order' and (%after.status = 'failed' or %after.status = 'completed')",
        'An ops record: no patient, focus, basedOn or output; an order that failed or was applied later.'
      ),
      rule(
        `%after.businessStatus.coding.count() = 1 and %after.businessStatus.coding.system = '${SYSTEM.code}' and %after.businessStatus.coding.all(code = '${CODE.quarantined}' or code = '${CODE.appliedAfterRedelivery}')`,
        'businessStatus is one of our two dead-letter states.'
      ),
      rule(
        `${typeRule('%after')} and (%before.empty() or (${typeRule('%before')}))`,
        `Only this bot's own dead-letters: one event-type input with one value, ${eventTypes.join(' or ')} (or unknown, for a body without a usable type), before and after.`
      ),
      rule(
        `${allKept([...TASK_FIELDS_OTHERS_OWN, 'owner', 'extension'])} and ${bare('%after.identifier')} and %after.groupIdentifier.id.empty() and %after.groupIdentifier.system.extension.empty() and %after.groupIdentifier.value.extension.empty()`,
        'Nothing a bot adds beyond the dead-letter itself; identifier and owner bare.'
      ),
    ],
  };
}

/** A webhook bot's AccessPolicy: exactly the grants its event types need. */
export function webhookPolicy(name: WebhookBotName): AccessPolicy {
  const bot = REGISTRY[name];
  const shape = POLICY_SHAPES[name];
  return {
    resourceType: 'AccessPolicy',
    name: `Medblocks: ${shape.title} bot`,
    resource: [
      markerGrant(bot.eventTypes),
      PATIENT_READ,
      patientCreateGrant(),
      ORGANIZATION_SEARCH,
      ...(shape.consents ? [consentGrant()] : []),
      // A bot that writes no Task kind gets no Task grant (its dead-letters have their own).
      ...(shape.taskCodes.length > 0 ? [taskGrant(shape.taskCodes)] : []),
      deadLetterGrant(name, bot.eventTypes),
    ],
  };
}

/** The sweeper's: find and delete markers, nothing else. */
export function sweeperPolicy(): AccessPolicy {
  return {
    resourceType: 'AccessPolicy',
    name: 'Medblocks: marker sweeper bot',
    resource: [
      {
        resourceType: 'Basic',
        criteria: `Basic?code=${SYSTEM.code}|${CODE.webhookEvent}`,
        interaction: ['search', 'read', 'delete'],
      },
    ],
  };
}

/** A field the same before and after (both absent, or equal). */
const unchanged = (field: string): string =>
  `((%after.${field}.empty() and %before.${field}.empty()) or %after.${field} = %before.${field})`;

/** What the import may never change on a records-sync Task: all of it but `output`. */
const IMPORT_UNCHANGED_TASK_FIELDS = [
  'status',
  'statusReason',
  'businessStatus',
  'identifier',
  'code',
  'for',
  'focus',
  'owner',
  'description',
  'input',
  'extension',
  'modifierExtension',
  'executionPeriod',
  'authoredOn',
  'lastModified',
  'note',
  'priority',
  'intent',
  'basedOn',
  'partOf',
  'groupIdentifier',
  'contained',
  'text',
];
const SYNC_OUTPUT_CODES = ['total', 'errors', 'duration-ms'];
const IMPORT_OUTPUT_CODES = [...SYNC_OUTPUT_CODES, 'import-created', 'import-updated', 'import-refused'];

/**
 * The records import's: read the records-sync Tasks it follows, keep its own Task, and create or
 * update only resources of the imported types that carry its record identifier (which it never
 * changes), plus their Provenance. No Patient access (the sync Task names the Patient), no deletes.
 */
export function importPolicy(): AccessPolicy {
  const record = `identifier.where(system = '${RECORD_SYSTEM}')`;
  return {
    resourceType: 'AccessPolicy',
    name: 'Medblocks: records import bot',
    resource: [
      {
        resourceType: 'Task',
        criteria: `Task?code=${SYSTEM.code}|${CODE.recordsSync}`,
        interaction: ['search', 'read', 'update'],
        writeConstraint: [
          rule(
            `%before.exists() and ${IMPORT_UNCHANGED_TASK_FIELDS.map(unchanged).join(' and ')}`,
            'Only an existing records-sync Task, everything on it but its outputs unchanged: the import shows its outcome there, nothing else.'
          ),
          rule(
            `%after.output.all(${anyOf('type.coding.code', IMPORT_OUTPUT_CODES)}) and ${SYNC_OUTPUT_CODES.map(
              (code) =>
                `((%after.output.where(type.coding.code = '${code}').empty() and %before.output.where(type.coding.code = '${code}').empty()) or %after.output.where(type.coding.code = '${code}') = %before.output.where(type.coding.code = '${code}'))`
            ).join(' and ')}`,
            "The sync's own outputs kept as they are; the only others, the import's three counts."
          ),
        ],
      },
      {
        resourceType: 'Task',
        criteria: `Task?code=${SYSTEM.code}|${CODE.recordsImport}`,
        interaction: ['search', 'read', 'create', 'update'],
        writeConstraint: [
          rule(
            `%after.code.coding.count() = 1 and %after.code.coding.system = '${SYSTEM.code}' and %after.code.coding.code = '${CODE.recordsImport}' and %after.identifier.count() = 1 and %after.identifier.system = '${SYSTEM.taskKey}' and %after.identifier.value.startsWith('records-import/') and (%before.empty() or %after.identifier.value = %before.identifier.value)`,
            'Only its own Task kind, keyed by patient; the key never changes.'
          ),
          rule(
            `%after.for.reference.startsWith('Patient/') and (%before.empty() or %after.for.reference = %before.for.reference) and %after.status != 'entered-in-error' and %after.status != 'cancelled'`,
            'About one Patient, never moved to another; never withdrawn.'
          ),
        ],
      },
      ...DEFAULT_IMPORT_TYPES.map((type): AccessPolicyResource => ({
        resourceType: type,
        criteria: `${type}?identifier=${RECORD_SYSTEM}|`,
        interaction: ['search', 'read', 'create', 'update'],
        writeConstraint: [
          rule(
            `%after.${record}.count() = 1 and (%before.empty() or %after.${record}.value = %before.${record}.value)`,
            'Exactly one record identifier, never changed: the import only ever writes its own copies.'
          ),
        ],
      })),
      {
        resourceType: 'Provenance',
        // search and read: to find its own records no Provenance names yet (a page stored part-way).
        interaction: ['search', 'read', 'create'],
        writeConstraint: [
          rule(
            `%after.agent.count() = 1 and %after.agent.who.identifier.system = '${SYSTEM.fhirSourceId}' and %after.entity.where(role = 'derivation').what.identifier.system = '${IMPORT_RUN_SYSTEM}'`,
            'Names the EHR source and the import run: the import writes no other Provenance.'
          ),
        ],
      },
    ],
  };
}

/**
 * The reconciler's: what a connection event's bot needs to report a connection — find and create
 * Patients, name EHR sources, write Consents, reconnect Tasks and the follow-up Tasks a newly active
 * connection resolves (as `npm run reconcile` does; without the grant the search hides them and a
 * follow-up stays `requested`), plus its ops Tasks for disabled endpoints — and nothing else: no
 * markers (it applies no event), no dead-letters, no records-sync Tasks, no deletes.
 */
export function reconcilerPolicy(): AccessPolicy {
  return {
    resourceType: 'AccessPolicy',
    name: 'Medblocks: reconciler bot',
    resource: [
      PATIENT_READ,
      patientCreateGrant(),
      ORGANIZATION_SEARCH,
      consentGrant(),
      taskGrant([CODE.reconnectEhr, CODE.connectionFollowUp]),
      {
        resourceType: 'Task',
        criteria: `Task?code=${SYSTEM.code}|${CODE.endpointDisabled}`,
        interaction: ['search', 'read', 'create', 'update'],
        writeConstraint: [
          rule(
            `%after.code.coding.count() = 1 and %after.code.coding.system = '${SYSTEM.code}' and %after.code.coding.code = '${CODE.endpointDisabled}' and %after.identifier.count() = 1 and %after.identifier.system = '${SYSTEM.taskKey}' and %after.identifier.value.startsWith('medblocks-endpoint/') and (%before.empty() or %after.identifier.value = %before.identifier.value)`,
            'Only its ops Task kind, keyed by endpoint; the key never changes.'
          ),
          rule(
            `(%after.status = 'requested' or %after.status = 'completed') and %after.for.empty() and %after.focus.empty()`,
            'Open or done, about no patient and no other resource.'
          ),
        ],
      },
    ],
  };
}

/** Every policy file and its content, by the registry's policy file names. */
export function allPolicies(): { readonly file: string; readonly policy: AccessPolicy }[] {
  return Object.values(REGISTRY).map((bot) => ({
    file: bot.policyFile,
    policy: bot.kind === 'webhook' ? webhookPolicy(bot.name) : SCHEDULED_POLICIES[bot.name](),
  }));
}

type ScheduledBotName = Extract<(typeof REGISTRY)[keyof typeof REGISTRY], { kind: 'cron' }>['name'];

/** One policy builder per scheduled bot, typed by name: a new scheduled bot does not compile without one. */
const SCHEDULED_POLICIES: Readonly<Record<ScheduledBotName, () => AccessPolicy>> = {
  'medblocks-marker-sweeper': sweeperPolicy,
  'medblocks-records-import': importPolicy,
  'medblocks-reconciler': reconcilerPolicy,
};
