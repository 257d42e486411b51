// The bots' AccessPolicies, built from code so that no near-copy of a grant is ever edited by hand: each bot's policy is the same few grants —
// its markers, Patient ids, the Patients it may create, the EHR-source Organizations, its Consents,
// its Tasks and its own dead-letters — specialised by the registry entry (name, event types) and by
// its event type's policy shape (which Consent and Task grants it needs). Every system, code and extension URL comes
// from runtime/fhir/systems.ts. `npm run policies` writes access-policies/*.json from here;
// test/policies-generated.test.ts fails when a checked-in file differs, so the JSON users provision is always
// this module's output and four near-copies are never edited by hand again. Each grant carries its
// reasons (why the bot needs it, what an attacker holding it could do, what confines it) beside it:
// SECURITY.md's grant tables are those reasons rendered (grant-tables.ts), never the JSON's.
import { followUpTask } from '../../runtime/fhir/tasks/follow-up';
import type { AnyTaskKind } from '../../runtime/fhir/tasks/kind';
import { reconnectTask } from '../../runtime/fhir/tasks/reconnect';
import { recordsSyncTask } from '../../runtime/fhir/tasks/records-sync';
import type { AccessPolicy, AccessPolicyResource } from '@medplum/fhirtypes';
import { CODE, EXTENSION, SYSTEM } from '../../runtime/fhir/systems';
import type { TaskCode } from '../../runtime/fhir/systems';
import type { EventType } from '../../runtime/events';
import { IMPORT_RUN_SYSTEM, RECORD_SYSTEM } from '../../runtime/import/identity';
import { DEFAULT_IMPORT_TYPES } from '../../runtime/import/settings';
import { EVENT_DEFINITIONS } from '../../runtime/events';
import type { PolicyShape } from '../../runtime/events/define';
import { REGISTRY } from '../../runtime/registry';
import type { BotName, WebhookBotName } from '../../runtime/registry';

type Constraint = NonNullable<AccessPolicyResource['writeConstraint']>[number];

/** Which grant builder a grant came from: the same kind in two policies is the same grant, bar its criteria. */
export type GrantKind =
  | 'marker'
  | 'patient-read'
  | 'patient-create'
  | 'organization'
  | 'consent'
  | 'task'
  | 'dead-letter'
  | 'marker-sweep'
  | 'sync-task-outputs'
  | 'import-task'
  | 'imported-record'
  | 'provenance'
  | 'endpoint-task';

/**
 * A grant and SECURITY.md's three columns for it. The reasons are written beside the constraints
 * they describe so that a change to one shows the other; they never reach the policy files.
 */
export interface ExplainedGrant {
  readonly kind: GrantKind;
  readonly grant: AccessPolicyResource;
  /** Why the bot needs it. */
  readonly why: string;
  /** What an attacker holding it could do. */
  readonly abuse: string;
  /** What confines it. */
  readonly confinement: string;
}

/** A bot's AccessPolicy before its reasons are dropped: what SECURITY.md's table of that bot shows. */
export interface ExplainedPolicy {
  readonly name: string;
  readonly grants: readonly ExplainedGrant[];
}

/**
 * What each webhook bot writes beyond what every bot does, from its event type's definition
 * (src/runtime/events/<event-type>.ts `policy`): keyed by bot name, so every webhook bot has one.
 */
export const POLICY_SHAPES = Object.fromEntries(EVENT_DEFINITIONS.map((d) => [d.bot, d.policy])) as Readonly<
  Record<WebhookBotName, PolicyShape>
>;

/** Every Task kind by its code (a kind this table misses does not compile): their statuses bound the Task grants. */
const TASK_KINDS: Readonly<Record<TaskCode, AnyTaskKind>> = {
  [CODE.reconnectEhr]: reconnectTask,
  [CODE.connectionFollowUp]: followUpTask,
  [CODE.recordsSync]: recordsSyncTask,
};

/** MEDBLOCKS_TASK_OWNER's shape (runtime/settings.ts): a bare reference to one of these types. */
const OWNER_TYPES = [
  'Organization',
  'Practitioner',
  'PractitionerRole',
  'CareTeam',
  'Group',
  'Device',
  'HealthcareService',
  'RelatedPerson',
  'Patient',
];
const OWNER_REFERENCE_PATTERN = `^(${OWNER_TYPES.join('|')})/[A-Za-z0-9\\\\-.]{1,64}$`;

/** Why a bot writes each Task kind: its Task grant's reason is the kinds' it writes. */
const TASK_WHY: Readonly<Record<TaskCode, string>> = {
  [CODE.reconnectEhr]:
    "the reconnect Task: opened when a connection's token refresh fails, completed when a newer flow reports the connection active",
  [CODE.connectionFollowUp]:
    'the follow-up Task: opened when a flow ends with no active connection, completed when a newer flow connects an EHR',
  [CODE.recordsSync]: "one records-sync Task per patient and source, its status the last sync's outcome",
};

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

/** Reason text: a code span, and a list read as prose (`a`, `b` or `c`). */
const codeSpan = (text: string): string => `\`${text}\``;
function prose(items: readonly string[], last: 'or' | 'and' = 'or'): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} ${last} ${items.at(-1) ?? ''}`;
}
const codeList = (names: readonly string[], last: 'or' | 'and' = 'or'): string => prose(names.map(codeSpan), last);

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

/** What a marker carries nothing of (besides META): it is a code, an event id, a subject and a date. */
const MARKER_EMPTY = ['implicitRules', 'language', 'text', 'contained', 'extension', 'modifierExtension', 'author'];

function markerGrant(
  eventTypes: readonly EventType[],
  why = "the dedupe marker: find the event's marker first, write it last"
): ExplainedGrant {
  const own =
    eventTypes.length === 1
      ? `%after.code.text = '${eventTypes[0] ?? ''}'`
      : `%after.code.text in (${quoted(eventTypes)})`;
  return {
    kind: 'marker',
    grant: {
      resourceType: 'Basic',
      criteria: `Basic?code=${SYSTEM.code}|${CODE.webhookEvent}`,
      interaction: ['search', 'create'],
      writeConstraint: [
        rule(
          `%after.code.coding.count() = 1 and %after.code.coding.system = '${SYSTEM.code}' and %after.code.coding.code = '${CODE.webhookEvent}'`,
          `A marker carries one coding, ${SYSTEM.code}|${CODE.webhookEvent}.`
        ),
        rule(
          own,
          "A marker names only this bot's own event type(s), so it cannot mark another bot's events as applied."
        ),
        rule(
          `%after.identifier.count() = 1 and %after.identifier.system = '${SYSTEM.eventId}' and %after.identifier.value.exists() and (%after.subject.empty() or %after.subject.reference.startsWith('Patient/'))`,
          'One event-id identifier; the subject, when present, is a Patient.'
        ),
        rule(
          `${allEmpty(MARKER_EMPTY)} and %after.code.coding.all(id.empty() and extension.empty() and version.empty() and userSelected.empty() and code.extension.empty() and system.extension.empty()) and %after.code.text.extension.empty() and ${bare('%after.identifier')} and %after.subject.all(display.empty() and identifier.empty() and type.empty() and extension.empty()) and %after.created.exists() and %after.created <= today() and %after.created.extension.empty() and ${allEmpty(META)}`,
          'Nothing else on a marker, and a date no later than today: no marker escapes the sweeper.'
        ),
      ],
    },
    why,
    abuse:
      'list applied events (ids, types, dates, Patient ids); mark one of its own events applied before it is, so that its redelivery answers `duplicate`',
    confinement: `criteria; constraints: one coding ${codeSpan(CODE.webhookEvent)}, ${codeSpan('code.text')} = ${codeList(eventTypes)}, one ${codeSpan(SYSTEM.eventId)} identifier, the subject (when present) a Patient; the other bots count only markers of their own type (\`src/runtime/webhook-bot.ts\`); no read, update or delete; nothing else on the marker: no ${codeList([...MARKER_EMPTY, ...META])}, no text in primitive extensions of its code or identifier, \`subject\` a bare \`Patient/\` reference, and \`created\` present and not after the server's today (so no marker escapes the sweeper by a far-future date; the bot dates a marker by the event, never after the day it applies it)`,
  };
}

function patientReadGrant(
  why = "find the customer's Patient by `urn:medblocks:patient-id` (or `-encoded`) or by Medplum id; `_revinclude` its Consents and Tasks. `read` is what makes the server hide the fields of search results (AC-8)"
): ExplainedGrant {
  return {
    kind: 'patient-read',
    grant: { resourceType: 'Patient', interaction: ['search', 'read'], hiddenFields: PATIENT_HIDDEN_FIELDS },
    why,
    abuse: "see every Patient's id; use search parameters as an oracle (above)",
    confinement: `\`hiddenFields\`, every field but \`id\` and \`meta\`: ${codeList(PATIENT_HIDDEN_FIELDS, 'and')}; no update or delete`,
  };
}

/** Every Patient element but the identifier: a Patient the bots create has none of them. */
const PATIENT_CREATE_EMPTY = [
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
];

function patientCreateGrant(
  why = '`MEDBLOCKS_CREATE_MISSING_PATIENTS` (default true): create the Patient a `patient_id` names when none exists'
): ExplainedGrant {
  const systems = [SYSTEM.patientId, SYSTEM.patientIdEncoded];
  return {
    kind: 'patient-create',
    grant: {
      resourceType: 'Patient',
      criteria: `Patient?identifier=${systems.map((s) => `${s}|`).join(',')}`,
      interaction: ['create'],
      writeConstraint: [
        rule(
          `%after.identifier.count() = 1 and %after.identifier.system.all(${anyOf('$this', systems)}) and %after.identifier.value.exists() and ${allEmpty(['identifier.use', 'identifier.type', 'identifier.period', 'identifier.assigner', 'identifier.extension'])}`,
          'Exactly one identifier: ours, with a value and nothing else (no MRN, no type, period or assigner).'
        ),
        rule(
          allEmpty(PATIENT_CREATE_EMPTY),
          'No demographics, links or any other element: the bots only ever create a Patient carrying our identifier.'
        ),
        rule(
          `${bare('%after.identifier')} and ${allEmpty(META)}`,
          'No text in primitive extensions of the identifier, and no meta tags, labels, profiles or source.'
        ),
      ],
    },
    why,
    abuse: `create empty Patients, each carrying one chosen ${codeSpan(SYSTEM.patientId)} (or \`-encoded\`) identifier — no more than the bot itself creates (it cannot add an MRN, demographics or a \`link\`: no identity poisoning)`,
    confinement: `criteria; constraints: exactly one identifier, ${codeList(systems)} (a patient id HL7's string type refuses, percent-encoded: \`docs/parsing-and-normalisation.md\`), with a value and no type, use, period, assigner or extension, carrying nothing but system and value — no \`id\` or extension on it or on its \`_system\`/\`_value\`; every other Patient element empty (${codeList(PATIENT_CREATE_EMPTY, 'and')}); no ${codeList(META)}; a forbidden field sent only as its primitive extension (\`_birthDate\`) is refused too`,
  };
}

function organizationSearchGrant(
  why = "the EHR's name (Medblocks' events carry only the source id): one more search in the delivery's read batch, `Organization?identifier=urn:medblocks:fhir-source-id|<source ids>`, so that Consent actors and Task texts say \"Epic\" instead of a `fhirsrc_` id; the Organizations themselves are kept by the provisioning tool's sources sync, never by a bot"
): ExplainedGrant {
  return {
    kind: 'organization',
    grant: {
      resourceType: 'Organization',
      criteria: `Organization?identifier=${SYSTEM.fhirSourceId}|`,
      interaction: ['search'],
    },
    why,
    abuse: `list every Organization carrying a ${codeSpan(SYSTEM.fhirSourceId)} identifier and see it **whole** (a \`search\`-only grant hides nothing, AC-8): the EHR names and whatever else those Organizations hold; use search parameters on them as an oracle`,
    confinement:
      "criteria: an Organization without that identifier is left out of every search; `search` only — read by id, vread, history, create, update and delete are refused (403 on 5.1.29 for each, the bot's own sources included), so a bot cannot rename an EHR or write an Organization",
  };
}

/** What a bot never adds to a Consent: kept as the stored version had it (or absent). */
const CONSENT_FIELDS_OTHERS_OWN = [
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
];

function consentGrant(
  why = "one Consent per connection or failed attempt: its status is the connection's"
): ExplainedGrant {
  const keys = `system = '${SYSTEM.connectionId}' or system = '${SYSTEM.connectionAttempt}'`;
  const ownExtensions = [EXTENSION.lastEvent, EXTENSION.lastActiveEvent, EXTENSION.failureCode];
  const stamps = [EXTENSION.lastEvent, EXTENSION.lastActiveEvent];
  const grant: AccessPolicyResource = {
    resourceType: 'Consent',
    // This package's own category alone: no criterion on the key's identifier system, which every
    // Consent of ours carries and which would join each conditional create's own key in the
    // identifier index scan, making concurrent creates conflict (ledger TX-10).
    criteria: `Consent?category=${SYSTEM.code}|${CODE.ehrConnection}`,
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
        "%before.empty() or (%before.scope.coding.where(system = 'http://terminology.hl7.org/CodeSystem/consentscope' and code = 'patient-privacy').exists() and %before.category.coding.where(system = 'http://loinc.org' and code = '59284-0').exists())",
        'An update only of a Consent stored with our scope and LOINC category: one someone else wrote, given our category, is never rewritten into ours.'
      ),
      rule(
        `%after.category.count() = 3 and %after.category.coding.count() = 3 and %after.category.coding.where(system = 'http://loinc.org' and code = '59284-0').exists() and %after.category.coding.where(system = 'http://terminology.hl7.org/CodeSystem/v3-ActCode' and code = 'IDSCL').exists() and %after.category.coding.where(system = '${SYSTEM.code}' and code = '${CODE.ehrConnection}').exists()`,
        `Our three categories only: LOINC 59284-0, v3-ActCode IDSCL and this package's ${CODE.ehrConnection}.`
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
        allKept(CONSENT_FIELDS_OTHERS_OWN),
        'No narrative, contained resource, modifierExtension, verification or meta label a bot adds: only what the stored version carried.'
      ),
      rule(
        `${foreignKept('extension', anyOf('url', ownExtensions))} and %after.extension.where(${anyOf('url', stamps)}).all${STAMP_SHAPE} and %after.extension.where(url = '${EXTENSION.failureCode}').all(value is code and extension.empty() and value.extension.empty()) and ${foreignKept('identifier', keys)} and ${bare(`%after.identifier.where(${keys})`)}`,
        "Only this package's extensions, each of its shape; other extensions and identifiers only as stored; our key bare."
      ),
    ],
  };
  return {
    kind: 'consent',
    grant,
    why,
    abuse: "read this package's Consents; create one for any Patient, or flip a connection's status",
    confinement: `criteria: this package's own category (${codeSpan(`${SYSTEM.code}|${CODE.ehrConnection}`)}; not the key's system, which would make concurrent creates conflict: ledger TX-10); constraints: one key (${codeList([SYSTEM.connectionId, SYSTEM.connectionAttempt])}), kept by updates; scope \`patient-privacy\` only, and an update only of a Consent stored with it and LOINC 59284-0; exactly the categories LOINC 59284-0, v3-ActCode IDSCL and ${codeSpan(CODE.ehrConnection)}; status active, rejected or inactive; policy rule OPTIN; no policy, source, performer or organization; provision \`permit\`/\`collect\` with nothing nested and no data, class, code, purpose, security label or data period; one custodian actor referring to the EHR source logically (${codeSpan(SYSTEM.fhirSourceId)}), the source kept by updates; patient a Patient (or the fixed "not yet identified" display), never re-pointed once known; no ${codeList(CONSENT_FIELDS_OTHERS_OWN)} that the stored version did not already carry (what others added is kept, never added by a bot); extensions only this package's three, each of its shape (a stamp: an \`eventId\` string and a \`createdAt\` instant; a failure code: a \`code\`); foreign identifiers only as stored; our key identifier bare`,
  };
}

function taskGrant(codes: readonly TaskCode[], why = codes.map((c) => TASK_WHY[c]).join('; ')): ExplainedGrant {
  // The statuses each kind's codec writes (fhir/tasks/*.ts): nothing else, never entered-in-error.
  const statuses = [...new Set(codes.flatMap((c) => TASK_KINDS[c].statuses))];
  const focusesConsent = codes.includes(CODE.reconnectEhr);
  const focus = focusesConsent
    ? "(%after.focus.empty() or (%after.focus.reference.startsWith('Consent/') and %after.focus.display.empty() and %after.focus.identifier.empty() and %after.focus.type.empty() and %after.focus.extension.empty()))"
    : '%after.focus.empty()';
  const ownExtensions = [EXTENSION.lastEvent, EXTENSION.lastRefreshFailedEvent, EXTENSION.triggerEvent];
  const key = `system = '${SYSTEM.taskKey}'`;
  const grant: AccessPolicyResource = {
    resourceType: 'Task',
    // Confined by our code alone: a criterion on the key's system would join every conditional
    // create's own key in one GIN index condition, a key all of these Tasks share, so that any two
    // concurrent creates conflict (ledger TX-10). The key is still required of every write.
    criteria: `Task?code=${codes.map((c) => `${SYSTEM.code}|${c}`).join(',')}`,
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
  return {
    kind: 'task',
    grant,
    why,
    abuse: `read and rewrite ${codeList(codes, 'and')} Tasks: status, description, owner${codes.includes(CODE.recordsSync) ? ' (e.g. report a failed sync as completed, or stamp a sync event it has not applied so that its delivery answers `duplicate`)' : ''}`,
    confinement: `criteria (our code; not the key's system, which would make concurrent creates conflict: ledger TX-10); constraints: one coding, ours, ${codeList(codes)}, the kind kept by updates; one ${codeSpan(SYSTEM.taskKey)} key, kept; \`for\` a Patient or nobody yet, never re-pointed once known, and a bare reference; status ${codeList(statuses)} only — never \`entered-in-error\` or \`cancelled\`; intent \`order\`; ${focusesConsent ? '`focus` none or a bare `Consent/` reference' : 'no `focus`'}; \`owner\` as stored, or a bare reference of type ${prose(OWNER_TYPES)} (\`MEDBLOCKS_TASK_OWNER\`); no ${codeList([...TASK_FIELDS_OTHERS_OWN, 'groupIdentifier'])} that the stored version did not already carry (staff's notes and reassignments are kept); extensions only this package's stamps, of their shape; foreign identifiers only as stored; our key identifier bare`,
  };
}

/** What a bot never adds to a dead-letter: kept as the stored version had it (or absent). */
const DEAD_LETTER_FIELDS_OTHERS_OWN = [...TASK_FIELDS_OTHERS_OWN, 'owner', 'extension'];

function deadLetterGrant(
  owner: string,
  eventTypes: readonly EventType[],
  why = 'the dead-letter of a quarantined event (answered 200 so that Medblocks keeps the endpoint enabled): one ops Task per event id (`src/runtime/fhir/dead-letter.ts`, written by `src/runtime/store/dead-letter.ts`); a later successful delivery of that event resolves it (`completed`, `applied-after-redelivery`), a later quarantine re-opens it; the same grant in every webhook policy, as any bot may quarantine'
): ExplainedGrant {
  const types = [...eventTypes, 'unknown'];
  const typeRule = (version: '%after' | '%before'): string =>
    `${version}.input.where(type.text = 'event-type').value.count() = 1 and ${version}.input.where(type.text = 'event-type').value.all(${anyOf('$this', types)})`;
  const grant: AccessPolicyResource = {
    resourceType: 'Task',
    // Our code and the owning bot, without the identifier's system: see taskGrant (ledger TX-10).
    criteria: `Task?code=${SYSTEM.code}|${CODE.webhookDeadLetter}&group-identifier=${SYSTEM.deadLetterOwner}|${owner}`,
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
        `${allKept(DEAD_LETTER_FIELDS_OTHERS_OWN)} and ${bare('%after.identifier')} and %after.groupIdentifier.id.empty() and %after.groupIdentifier.system.extension.empty() and %after.groupIdentifier.value.extension.empty()`,
        'Nothing a bot adds beyond the dead-letter itself; identifier and owner bare.'
      ),
    ],
  };
  return {
    kind: 'dead-letter',
    grant,
    why,
    abuse: `read its own dead-letters (event id, type, failure reason, field path — never a payload value); create its own dead-letters for made-up event ids (ops noise), but never one another bot finds (another bot searches and writes only dead-letters owned by it, so a forged one cannot make that bot's genuine event fail); resolve or re-open its own dead-letters, so that a real quarantine of its own event type drops out of the ops search \`Task?code=…|${CODE.webhookDeadLetter}&status=failed\` (the event itself stays unapplied); put free text in \`description\` or \`statusReason\`, or in an \`input\`; create one whose identifier has no value`,
    confinement: `criteria; constraints: exactly one coding, ${codeSpan(CODE.webhookDeadLetter)}; exactly one identifier, ${codeSpan(SYSTEM.deadLetter)}, its value kept by updates; no \`for\`, \`focus\`, \`basedOn\` or \`output\`; intent \`order\`; status \`failed\` or \`completed\` only; \`businessStatus\` exactly one coding, ${codeList([CODE.quarantined, CODE.appliedAfterRedelivery])}; owned by this bot (\`groupIdentifier\` ${codeSpan(SYSTEM.deadLetterOwner)} and the bot's name, nothing else in it; another bot's dead-letter is not found: 404); exactly one \`event-type\` input value, the bot's own event type or \`unknown\`, on the stored version too; no delete (403); no other Task (a reconnect, follow-up or records-sync Task does not match the criteria); no ${codeList(DEAD_LETTER_FIELDS_OTHERS_OWN)} that the stored version did not already carry; its identifier and \`groupIdentifier\` bare (no \`id\` or primitive extension)`,
  };
}

/** The grants every webhook bot's policy is made of. */
type WebhookGrantKind = Extract<
  GrantKind,
  'marker' | 'patient-read' | 'patient-create' | 'organization' | 'consent' | 'task' | 'dead-letter'
>;

const RECORDS_SYNC_WHY: Partial<Record<WebhookGrantKind, string>> = {
  'patient-read': 'find the patient the sync names',
  'patient-create': 'a sync for a patient not seen yet',
  organization: "the EHR's name in the records-sync Task's text",
  'dead-letter': 'the dead-letter of a quarantined sync event',
};

/**
 * Why a webhook bot needs a grant, where its event makes the reason its own; a bot not named here
 * (a new event type's) gives each grant's general reason, which holds for every webhook bot.
 */
const WEBHOOK_WHY: { readonly [N in WebhookBotName]?: Partial<Record<WebhookGrantKind, string>> } = {
  'medblocks-connection-token-refresh-failed': {
    'patient-read':
      "the event carries no `patient_id`: the patient comes from the connection's Consent, `Consent?…&_include=Consent:patient&_revinclude:iterate=Consent:patient&_revinclude:iterate=Task:patient`, and the included Patient (and so every Consent and Task of that patient) is filtered by Patient search permission; and a `patient_id`, if Medblocks ever sends one (an open point of its docs), is resolved like the other bots'",
    'patient-create':
      'that `patient_id`, when it names no Patient yet (`bots/medblocks-connection-token-refresh-failed.test.ts`, "a refresh failure that carries a patient_id")',
    organization: "the EHR's name in the reconnect Task's text",
    consent:
      "the connection's Consent becomes inactive (created as a placeholder when the refresh failure comes first)",
    'dead-letter': 'the dead-letter of a quarantined refresh-failure event',
  },
  'medblocks-records-sync-completed': RECORDS_SYNC_WHY,
  'medblocks-records-sync-failed': RECORDS_SYNC_WHY,
};

/** The policy without its reasons: what the policy file holds and Medplum evaluates. */
function policyOf(explained: ExplainedPolicy): AccessPolicy {
  return { resourceType: 'AccessPolicy', name: explained.name, resource: explained.grants.map((g) => g.grant) };
}

/** A webhook bot's grants, with their reasons: exactly the grants its event types need. */
function explainedWebhookPolicy(name: WebhookBotName): ExplainedPolicy {
  const bot = REGISTRY[name];
  const shape = POLICY_SHAPES[name];
  const why = WEBHOOK_WHY[name] ?? {};
  return {
    name: `Medblocks: ${shape.title} bot`,
    grants: [
      // A bot whose writes carry its event's stamp as the marker (handlers/plan.ts `appliedIn`) has no Basic grant.
      ...(shape.marker ? [markerGrant(bot.eventTypes, why.marker)] : []),
      patientReadGrant(why['patient-read']),
      patientCreateGrant(why['patient-create']),
      organizationSearchGrant(why.organization),
      ...(shape.consents ? [consentGrant(why.consent)] : []),
      // A bot that writes no Task kind gets no Task grant (its dead-letters have their own).
      ...(shape.taskCodes.length > 0 ? [taskGrant(shape.taskCodes, why.task)] : []),
      deadLetterGrant(name, bot.eventTypes, why['dead-letter']),
    ],
  };
}

/** A webhook bot's AccessPolicy: exactly the grants its event types need. */
export function webhookPolicy(name: WebhookBotName): AccessPolicy {
  return policyOf(explainedWebhookPolicy(name));
}

function explainedSweeperPolicy(): ExplainedPolicy {
  return {
    name: 'Medblocks: marker sweeper bot',
    grants: [
      {
        kind: 'marker-sweep',
        grant: {
          resourceType: 'Basic',
          criteria: `Basic?code=${SYSTEM.code}|${CODE.webhookEvent}`,
          interaction: ['search', 'read', 'delete'],
        },
        why: 'delete markers older than `MEDBLOCKS_MARKER_RETENTION_DAYS` (a delete reads first, AC-5)',
        abuse:
          'delete every marker: redeliveries are then applied again, which is harmless (every write is conditional, "newest event wins" is decided by stamps on the resources)',
        confinement: 'criteria; no create or update; no other type; it is not a webhook (cron only)',
      },
    ],
  };
}

/** The sweeper's: find and delete markers, nothing else. */
export function sweeperPolicy(): AccessPolicy {
  return policyOf(explainedSweeperPolicy());
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
 * A scheduled bot's own Task kind (the import's progress, the reconciler's ops Tasks): found by its
 * code, one coding and one task key under its prefix, the key never changed, and one rule of its own.
 */
function ownTaskGrant(
  taskCode: string,
  keyPrefix: string,
  keyDescription: string,
  own: Constraint
): AccessPolicyResource {
  return {
    resourceType: 'Task',
    criteria: `Task?code=${SYSTEM.code}|${taskCode}`,
    interaction: ['search', 'read', 'create', 'update'],
    writeConstraint: [
      rule(
        `%after.code.coding.count() = 1 and %after.code.coding.system = '${SYSTEM.code}' and %after.code.coding.code = '${taskCode}' and %after.identifier.count() = 1 and %after.identifier.system = '${SYSTEM.taskKey}' and %after.identifier.value.startsWith('${keyPrefix}') and (%before.empty() or %after.identifier.value = %before.identifier.value)`,
        keyDescription
      ),
      own,
    ],
  };
}

function explainedImportPolicy(): ExplainedPolicy {
  const record = `identifier.where(system = '${RECORD_SYSTEM}')`;
  const importCounts = IMPORT_OUTPUT_CODES.filter((c) => !SYNC_OUTPUT_CODES.includes(c));
  const recordWhy = 'the imported records';
  const recordAbuse = 'read every imported record (PHI); create or rewrite imported records with false content';
  const recordConfinement =
    'criteria: only resources carrying the record identifier, so records your team wrote are invisible and untouchable; constraint: exactly one record identifier, never changed (an imported record cannot be turned into another); no delete; every write it makes is named by a Provenance';
  return {
    name: 'Medblocks: records import bot',
    grants: [
      {
        kind: 'sync-task-outputs',
        grant: {
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
        why: "find the patients whose records were synced, and show the import's counts on their sync Tasks",
        abuse:
          'read every records-sync Task (Patient references, EHR ids, sync counts and failure reasons); write false import counts on one',
        confinement: `criteria; no create; constraints: everything but \`output\` unchanged, the sync's own outputs (${codeList(SYNC_OUTPUT_CODES, 'and')}) kept as they are, no other output but ${codeList(importCounts, 'and')}`,
      },
      {
        kind: 'import-task',
        grant: ownTaskGrant(
          CODE.recordsImport,
          'records-import/',
          'Only its own Task kind, keyed by patient; the key never changes.',
          rule(
            `%after.for.reference.startsWith('Patient/') and (%before.empty() or %after.for.reference = %before.for.reference) and %after.status != 'entered-in-error' and %after.status != 'cancelled'`,
            'About one Patient, never moved to another; never withdrawn.'
          )
        ),
        why: 'its own progress, watermark and outcome per patient',
        abuse:
          'mark an import completed that is not (records then wait for the next sync), or reset one (records are imported again, unchanged ones not written)',
        confinement: `constraints: one coding ${codeSpan(CODE.recordsImport)}, one identifier, a \`records-import/\` ${codeSpan(SYSTEM.taskKey)} key never changed, \`for\` a Patient never re-pointed, never \`cancelled\` or \`entered-in-error\``,
      },
      ...DEFAULT_IMPORT_TYPES.map((type): ExplainedGrant => ({
        kind: 'imported-record',
        grant: {
          resourceType: type,
          criteria: `${type}?identifier=${RECORD_SYSTEM}|`,
          interaction: ['search', 'read', 'create', 'update'],
          writeConstraint: [
            rule(
              `%after.${record}.count() = 1 and (%before.empty() or %after.${record}.value = %before.${record}.value)`,
              'Exactly one record identifier, never changed: the import only ever writes its own copies.'
            ),
          ],
        },
        why: recordWhy,
        abuse: recordAbuse,
        confinement: recordConfinement,
      })),
      {
        kind: 'provenance',
        grant: {
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
        why: 'trace every imported record to its EHR, event and run; find its own records no Provenance names yet (a batch refused part-way)',
        abuse: "create misleading Provenance; read the project's Provenance (references and agents, no record content)",
        confinement: `constraint on create: one agent naming an EHR source (${codeSpan(SYSTEM.fhirSourceId)}), an entity naming an import run (${codeSpan(IMPORT_RUN_SYSTEM)}); no update or delete`,
      },
    ],
  };
}

/**
 * The records import's: read the records-sync Tasks it follows, keep its own Task, and create or
 * update only resources of the imported types that carry its record identifier (which it never
 * changes), plus their Provenance. No Patient access (the sync Task names the Patient), no deletes.
 */
export function importPolicy(): AccessPolicy {
  return policyOf(explainedImportPolicy());
}

function explainedReconcilerPolicy(): ExplainedPolicy {
  return {
    name: 'Medblocks: reconciler bot',
    grants: [
      patientReadGrant('find the patient of a connection Medblocks reports'),
      patientCreateGrant('create that patient when the project creates missing patients (the backfill)'),
      organizationSearchGrant("the EHR's name for the Consent"),
      consentGrant("a connection's state: expired or disconnected → inactive"),
      taskGrant(
        [CODE.reconnectEhr, CODE.connectionFollowUp],
        "a refresh-failed connection's reconnect Task, resolved when it is active again, and the follow-up Tasks a newly active connection resolves (as `npm run reconcile` does; without the grant the search hides them and a follow-up stays `requested`)"
      ),
      {
        kind: 'endpoint-task',
        grant: ownTaskGrant(
          CODE.endpointDisabled,
          'medblocks-endpoint/',
          'Only its ops Task kind, keyed by endpoint; the key never changes.',
          rule(
            `(%after.status = 'requested' or %after.status = 'completed') and %after.for.empty() and %after.focus.empty()`,
            'Open or done, about no patient and no other resource.'
          )
        ),
        why: 'one ops Task per endpoint Medblocks disabled, completed once it delivers again',
        abuse: 'open false alarms, or close a real one (the next run reopens it while the endpoint stays disabled)',
        confinement: `constraints: that code only, one identifier, a \`medblocks-endpoint/\` ${codeSpan(SYSTEM.taskKey)} key never changed, status \`requested\` or \`completed\`, no \`for\` or \`focus\``,
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
  return policyOf(explainedReconcilerPolicy());
}

type ScheduledBotName = Extract<(typeof REGISTRY)[keyof typeof REGISTRY], { kind: 'cron' }>['name'];

/** One policy builder per scheduled bot, typed by name: a new scheduled bot does not compile without one. */
const SCHEDULED_POLICIES: Readonly<Record<ScheduledBotName, () => ExplainedPolicy>> = {
  'medblocks-marker-sweeper': explainedSweeperPolicy,
  'medblocks-records-import': explainedImportPolicy,
  'medblocks-reconciler': explainedReconcilerPolicy,
};

/**
 * Every bot's policy with its reasons, in the registry's order: SECURITY.md's grant tables are
 * rendered from these, so a table cannot describe a grant the policy file does not hold.
 */
export function explainedPolicies(): {
  readonly bot: BotName;
  readonly file: string;
  readonly policy: ExplainedPolicy;
}[] {
  return Object.values(REGISTRY).map((bot) => ({
    bot: bot.name,
    file: bot.policyFile,
    policy: bot.kind === 'webhook' ? explainedWebhookPolicy(bot.name) : SCHEDULED_POLICIES[bot.name](),
  }));
}

/** Every policy file and its content, by the registry's policy file names. */
export function allPolicies(): { readonly file: string; readonly policy: AccessPolicy }[] {
  return explainedPolicies().map(({ file, policy }) => ({ file, policy: policyOf(policy) }));
}
