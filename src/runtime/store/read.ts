// One batch bundle of searches answers everything a delivery needs to know: the dedupe marker,
// the patient candidates, the Consents and Tasks it may change (and, where the logic needs them,
// every Consent and Task of the patient through _revinclude), and the event's dead-letter. The
// request count never grows with the number of connections in a flow.
import type { MedplumClient, WithId } from '@medplum/core';
import type { Basic, Bundle, BundleEntry, Consent, Organization, Patient, Task } from '@medplum/fhirtypes';
import { deadLetterQuery, isOwnedBy } from '../fhir/dead-letter';
import { markerQuery } from '../fhir/marker';
import { buildPatient, isFhirId } from '../fhir/patient';
import { patientIdentifier, SYSTEM, token } from '../fhir/systems';
import { isCleanText } from '../medblocks/events';
import type { DeliveryState, ReadRequest } from './contract';
import { FhirFailureError, parseEntryStatus, statusOfError } from './errors';
import type { RequestCounter } from './write';

const PATIENT_RECORDS = '_revinclude=Consent:patient&_revinclude=Task:patient';
const CONSENT_PATIENT_RECORDS =
  '_include=Consent:patient&_revinclude:iterate=Consent:patient&_revinclude:iterate=Task:patient';
const MAX_MATCHES = 200;
type Slot =
  'patientEnsured' | 'marker' | 'patientByIdentifier' | 'patientById' | 'consents' | 'tasks' | 'sources' | 'deadLetter';

/** The searches of one delivery, in a fixed order; pure so that tests can assert the exact URLs. */
export function buildReadBundle(request: ReadRequest): { bundle: Bundle; slots: Slot[] } {
  const ensured = ensuredPatientEntry(request);
  const searches: [Slot, string][] =
    request.eventId === undefined || request.withMarker === false
      ? []
      : [['marker', `Basic?${markerQuery(request.eventId)}&_count=1`]];
  const withRecords = request.withPatientRecords ? `&${PATIENT_RECORDS}` : '';
  if (request.patientId !== undefined) {
    const identifier = patientIdentifier(request.patientId);
    const patientToken = encodeURIComponent(token(identifier.system, identifier.value));
    searches.push(['patientByIdentifier', `Patient?identifier=${patientToken}&_count=1${withRecords}`]);
    if (isFhirId(request.patientId)) {
      searches.push(['patientById', `Patient?_id=${encodeURIComponent(request.patientId)}&_count=1${withRecords}`]);
    }
  }
  if (request.consentTokens.length > 0) {
    const include = request.consentsWithPatientRecords ? `&${CONSENT_PATIENT_RECORDS}` : '';
    const tokens = request.consentTokens.map(encodeURIComponent).join(',');
    searches.push(['consents', `Consent?identifier=${tokens}&_count=${MAX_MATCHES}${include}`]);
  }
  if (request.taskKeys.length > 0) {
    const tokens = request.taskKeys.map((k) => encodeURIComponent(token(SYSTEM.taskKey, k))).join(',');
    searches.push(['tasks', `Task?identifier=${tokens}&_count=${MAX_MATCHES}`]);
  }
  if (request.sourceIds?.length) {
    // The EHRs' names, which events never carry: one more search in the same batch, no extra request.
    const tokens = request.sourceIds.map((id) => encodeURIComponent(token(SYSTEM.fhirSourceId, id))).join(',');
    searches.push(['sources', `Organization?identifier=${tokens}&_count=${MAX_MATCHES}`]);
  }
  // This bot's dead-letter of the event, if an earlier delivery quarantined it: success resolves it in the write batch.
  if (request.deadLetterOwner !== undefined && request.eventId !== undefined) {
    searches.push(['deadLetter', `Task?${deadLetterQuery(request.eventId, request.deadLetterOwner)}&_count=1`]);
  }
  const gets: BundleEntry[] = searches.map(([, url]) => ({ request: { method: 'GET', url } }));
  return {
    bundle: { resourceType: 'Bundle', type: 'batch', entry: ensured ? [ensured, ...gets] : gets },
    slots: [...(ensured ? ['patientEnsured' as const] : []), ...searches.map(([slot]) => slot)],
  };
}

/**
 * The patient's conditional create, first in the batch so that the searches after it see the
 * Patient (a batch runs its entries in order, creates before searches: fhir-router BatchProcessor).
 */
function ensuredPatientEntry(request: ReadRequest): BundleEntry | undefined {
  if (!request.ensurePatient || request.patientId === undefined || isFhirId(request.patientId)) return undefined;
  const identifier = patientIdentifier(request.patientId);
  return {
    resource: buildPatient(request.patientId),
    request: {
      method: 'POST',
      url: 'Patient',
      ifNoneExist: `identifier=${encodeURIComponent(token(identifier.system, identifier.value))}`,
    },
  };
}

/** Sends the read bundle (one request) and sorts what came back into a DeliveryState. */
export async function readState(
  medplum: MedplumClient,
  request: ReadRequest,
  counter: RequestCounter = { requests: 0 }
): Promise<DeliveryState> {
  const { bundle, slots } = buildReadBundle(request);
  let response: Bundle;
  counter.requests++;
  try {
    response = await medplum.executeBatch(bundle);
  } catch (err) {
    const status = statusOfError(err);
    throw FhirFailureError.of(status, 'read');
  }
  return parseReadResponse(response, slots, request.deadLetterOwner);
}

export function parseReadResponse(
  response: Bundle | null | undefined,
  slots: readonly Slot[],
  deadLetterOwner?: string
): DeliveryState {
  // The search asks for this bot's dead-letters only; a server that answers others anyway is not believed.
  const isOwnDeadLetter = (task: Task): boolean => deadLetterOwner !== undefined && isOwnedBy(task, deadLetterOwner);
  if (response?.resourceType !== 'Bundle') {
    // A proxy page or an empty body where a batch-response was due: a server-side failure.
    throw new FhirFailureError('server_error', undefined, 'read');
  }
  const consents = new Map<string, WithId<Consent>>();
  const tasks = new Map<string, WithId<Task>>();
  let marker: WithId<Basic> | undefined;
  let patientByIdentifier: WithId<Patient> | undefined;
  let patientById: WithId<Patient> | undefined;
  const sourceNames = new Map<string, string>();
  let deadLetter: WithId<Task> | undefined;

  slots.forEach((slot, index) => {
    const entry: BundleEntry | undefined = response.entry?.[index];
    const status = parseEntryStatus(entry?.response?.status);
    if (status === undefined || status >= 300) {
      // A 409 here is the Patient create failing to serialise: FhirFailureError 'conflict', which
      // the pipeline treats as a lost race (back off, read again), like a 409 on a write.
      throw FhirFailureError.of(status, slot === 'patientEnsured' ? 'write' : 'read');
    }
    if (slot === 'patientEnsured') {
      const created = entry?.resource;
      if (created?.resourceType === 'Patient' && created.id) patientByIdentifier ??= created as WithId<Patient>;
      return;
    }
    const searchset = entry?.resource as Bundle | undefined;
    for (const item of searchset?.entry ?? []) {
      const resource = item.resource;
      if (!resource?.id) continue;
      const isMatch = item.search?.mode !== 'include';
      switch (resource.resourceType) {
        case 'Basic':
          if (slot === 'marker' && isMatch) marker ??= resource as WithId<Basic>;
          break;
        case 'Patient':
          if (slot === 'patientByIdentifier' && isMatch) patientByIdentifier ??= resource as WithId<Patient>;
          if (slot === 'patientById' && isMatch) patientById ??= resource as WithId<Patient>;
          break;
        case 'Consent':
          consents.set(resource.id, resource as WithId<Consent>);
          break;
        case 'Task':
          if (slot === 'deadLetter') {
            if (isMatch && isOwnDeadLetter(resource)) deadLetter ??= resource as WithId<Task>;
            break;
          }
          tasks.set(resource.id, resource as WithId<Task>);
          break;
        case 'Organization':
          if (slot === 'sources') addSourceNames(sourceNames, resource);
          break;
        default:
          break;
      }
    }
  });
  return {
    marker,
    patientByIdentifier,
    patientById,
    consents: [...consents.values()],
    tasks: [...tasks.values()],
    sourceNames,
    deadLetter,
  };
}

/** An Organization's name for each source id it carries; a blank or unclean name is no name. */
function addSourceNames(names: Map<string, string>, organization: Organization): void {
  const name = organization.name?.replace(/\s+/g, ' ').trim().slice(0, 120);
  if (!name || !isCleanText(name)) return;
  for (const identifier of organization.identifier ?? []) {
    if (identifier.system === SYSTEM.fhirSourceId && identifier.value && !names.has(identifier.value)) {
      names.set(identifier.value, name);
    }
  }
}
