// The import's FHIR I/O, each step one batch: find the patients whose records wait, read our copies
// of a page's records, write a page, and record the page's Provenance with the import Task's progress.
// A batch that fails as a whole throws a classified FhirFailureError (the failure table decides
// what is transient); entries are judged one by one, so one invalid record never stops the rest.
import type { MedplumClient } from '@medplum/core';
import type { Bundle, BundleEntry, Provenance, Reference, Resource, Task } from '@medplum/fhirtypes';
import { readStamp } from '../fhir/stamp';
import { CODE, decodeKeyPart, EXTENSION, SYSTEM, TASK_KEY, token } from '../fhir/systems';
import type { EventStamp } from '../fhir/stamp';
import { FhirFailureError, parseEntryStatus, statusOfError } from '../store/errors';
import type { RequestCounter } from '../store/write';
import { IMPORT_RUN_SYSTEM, recordKeyOf, recordToken, sourceOrganization } from './identity';
import type { RecordKey } from './identity';
import type { PlannedImportWrite, StoredCopy } from './plan';
import { withImportOutcome } from './import-task';
import type { ImportCounts } from './import-task';

/** Identifier values per search: keeps each GET line well under common URL limits. */
const KEYS_PER_SEARCH = 40;
/** Records-sync Tasks looked at per run (newest first); older ones wait for a later run. */
export const SYNC_TASKS_PER_RUN = 200;
/** How far back a completed sync still triggers an import (Medblocks' cursors live as long). */
export const SYNC_LOOKBACK_MS = 7 * 24 * 3600 * 1000;

export interface PendingSync {
  readonly patientId: string;
  readonly patient: Reference;
  /** The newest completed records sync of the patient (any source). */
  readonly newest: EventStamp;
  readonly syncTasks: readonly Reference[];
  /** Those Tasks as read (with their versions): the import reports its outcome on them. */
  readonly syncTaskResources: readonly Task[];
}

async function batch(
  medplum: MedplumClient,
  entries: BundleEntry[],
  counter: RequestCounter,
  phase: 'read' | 'write'
): Promise<BundleEntry[]> {
  if (entries.length === 0) return [];
  counter.requests++;
  let response: Bundle;
  try {
    response = await medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: entries });
  } catch (err) {
    throw FhirFailureError.of(statusOfError(err), phase);
  }
  return response.entry ?? [];
}

function resourcesOf<T extends Resource>(entry: BundleEntry | undefined, phase: 'read'): T[] {
  const status = parseEntryStatus(entry?.response?.status);
  if (status !== 200) throw FhirFailureError.of(status, phase);
  const bundle = entry?.resource as Bundle<T> | undefined;
  return (bundle?.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
}

/** The Medblocks patient id a records-sync Task key names (`records-sync/<patient>/<source>`). */
export function patientIdOfSyncKey(key: string | undefined): string | undefined {
  const parts = key?.split('/');
  return parts?.length === 3 && parts[0] === 'records-sync' && parts[1] ? decodeKeyPart(parts[1]) : undefined;
}

/**
 * The patients with a completed records sync in the look-back window, with our import Tasks for
 * them: one search each way. The caller compares the two (the newest sync against the watermark).
 */
export async function readPendingWork(
  medplum: MedplumClient,
  now: number,
  counter: RequestCounter
): Promise<{ syncs: PendingSync[]; importTasks: Task[] }> {
  const since = new Date(now - SYNC_LOOKBACK_MS).toISOString();
  const [syncEntry] = await batch(
    medplum,
    [
      {
        request: {
          method: 'GET',
          url: `Task?code=${encodeURIComponent(`${SYSTEM.code}|${CODE.recordsSync}`)}&status=completed&_lastUpdated=ge${encodeURIComponent(since)}&_sort=-_lastUpdated&_count=${String(SYNC_TASKS_PER_RUN)}`,
        },
      },
    ],
    counter,
    'read'
  );
  const byPatient = new Map<
    string,
    { patient: Reference; newest: EventStamp; syncTasks: Reference[]; syncTaskResources: Task[] }
  >();
  for (const task of resourcesOf<Task>(syncEntry, 'read')) {
    const patientId = patientIdOfSyncKey(task.identifier?.find((i) => i.system === SYSTEM.taskKey)?.value);
    const stamp = readStamp(task, EXTENSION.lastEvent);
    if (!patientId || !stamp || !task.for?.reference || !task.id) continue;
    const seen = byPatient.get(patientId);
    const reference = { reference: `Task/${task.id}` };
    if (!seen) {
      byPatient.set(patientId, {
        patient: { reference: task.for.reference },
        newest: stamp,
        syncTasks: [reference],
        syncTaskResources: [task],
      });
    } else {
      seen.syncTasks.push(reference);
      seen.syncTaskResources.push(task);
      if (Date.parse(stamp.at) > Date.parse(seen.newest.at)) seen.newest = stamp;
    }
  }
  const syncs = [...byPatient.entries()].map(([patientId, s]) => ({ patientId, ...s }));
  const importTasks: Task[] = [];
  const keys = syncs.map((s) => TASK_KEY.recordsImport(s.patientId));
  const reads: BundleEntry[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_SEARCH) {
    const tokens = keys.slice(i, i + KEYS_PER_SEARCH).map((k) => encodeURIComponent(token(SYSTEM.taskKey, k)));
    reads.push({
      request: {
        method: 'GET',
        url: `Task?code=${encodeURIComponent(`${SYSTEM.code}|${CODE.recordsImport}`)}&identifier=${tokens.join(',')}&_count=${String(KEYS_PER_SEARCH)}`,
      },
    });
  }
  for (const entry of await batch(medplum, reads, counter, 'read'))
    importTasks.push(...resourcesOf<Task>(entry, 'read'));
  return { syncs, importTasks };
}

/** Our copies of these records (and of the records they point at), by record key value. */
export async function readCopies(
  medplum: MedplumClient,
  keys: readonly RecordKey[],
  counter: RequestCounter
): Promise<Map<string, StoredCopy>> {
  const byType = new Map<string, Set<string>>();
  for (const key of keys) {
    const set = byType.get(key.resourceType) ?? new Set<string>();
    set.add(recordToken(key));
    byType.set(key.resourceType, set);
  }
  const reads: BundleEntry[] = [];
  for (const [type, tokens] of byType) {
    const all = [...tokens];
    for (let i = 0; i < all.length; i += KEYS_PER_SEARCH) {
      const chunk = all.slice(i, i + KEYS_PER_SEARCH).map(encodeURIComponent);
      reads.push({
        request: { method: 'GET', url: `${type}?identifier=${chunk.join(',')}&_count=${String(KEYS_PER_SEARCH)}` },
      });
    }
  }
  const copies = new Map<string, StoredCopy>();
  for (const entry of await batch(medplum, reads, counter, 'read')) {
    for (const resource of resourcesOf<StoredCopy>(entry, 'read')) {
      const value = recordKeyOf(resource);
      if (value && resource.id) copies.set(value, resource);
    }
  }
  return copies;
}

export type WriteResult =
  | { readonly kind: 'written'; readonly write: PlannedImportWrite; readonly stored: StoredCopy }
  /** Refused by Medplum (400/422: its validator; 403: outside the bot's policy): counted, never retried. */
  | { readonly kind: 'refused'; readonly write: PlannedImportWrite; readonly status: number }
  /** Lost a race (a conditional create found a copy, or If-Match failed): re-read and plan again. */
  | { readonly kind: 'raced'; readonly write: PlannedImportWrite }
  | { readonly kind: 'transient'; readonly write: PlannedImportWrite; readonly status: number | undefined };

function writeEntry(write: PlannedImportWrite): BundleEntry {
  if (write.kind === 'create') {
    return {
      resource: write.resource,
      request: {
        method: 'POST',
        url: write.key.resourceType,
        ifNoneExist: `identifier=${encodeURIComponent(recordToken(write.key))}`,
      },
    };
  }
  return {
    resource: write.resource,
    request: {
      method: 'PUT',
      url: `${write.key.resourceType}/${write.resource.id ?? ''}`,
      ...(write.ifMatch ? { ifMatch: `W/"${write.ifMatch}"` } : {}),
    },
  };
}

/** One batch of a page's writes, each entry's answer classified. */
export async function writeRecords(
  medplum: MedplumClient,
  writes: readonly PlannedImportWrite[],
  counter: RequestCounter
): Promise<WriteResult[]> {
  const answers = await batch(medplum, writes.map(writeEntry), counter, 'write');
  return writes.map((write, i): WriteResult => {
    const answer = answers[i];
    const status = parseEntryStatus(answer?.response?.status);
    const stored = answer?.resource as StoredCopy | undefined;
    if (status === 201 || (status === 200 && write.kind === 'update')) {
      return stored?.id ? { kind: 'written', write, stored } : { kind: 'transient', write, status };
    }
    if (status === 200 || status === 412) return { kind: 'raced', write };
    if (status === 400 || status === 403 || status === 422) return { kind: 'refused', write, status };
    return { kind: 'transient', write, status };
  });
}

/** Which import run wrote what, from which EHR, following which Medblocks event. */
export function buildProvenance(
  source: string,
  targets: readonly StoredCopy[],
  run: { readonly id: string; readonly eventId: string; readonly task: Reference },
  recorded: string
): Provenance {
  return {
    resourceType: 'Provenance',
    target: targets.map((t) => ({
      reference: versionedReference(t),
    })),
    recorded,
    agent: [
      {
        type: {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
              code: 'author',
              display: 'Author',
            },
          ],
        },
        who: sourceOrganization(source),
      },
    ],
    entity: [
      { role: 'source', what: { type: 'Basic', identifier: { system: SYSTEM.eventId, value: run.eventId } } },
      { role: 'derivation', what: { ...run.task, identifier: { system: IMPORT_RUN_SYSTEM, value: run.id } } },
    ],
  };
}

/**
 * The page's Provenance and the import Task's new progress in one batch. The Task is written
 * If-Match: a concurrent run of the same patient loses here and stops.
 */
export async function recordProgress(
  medplum: MedplumClient,
  provenances: readonly Provenance[],
  task: Task,
  counter: RequestCounter
): Promise<{ task: Task | undefined; provenanceFailed: boolean }> {
  const taskEntry: BundleEntry = task.id
    ? {
        resource: task,
        request: {
          method: 'PUT',
          url: `Task/${task.id}`,
          ...(task.meta?.versionId ? { ifMatch: `W/"${task.meta.versionId}"` } : {}),
        },
      }
    : {
        resource: task,
        request: {
          method: 'POST',
          url: 'Task',
          ifNoneExist: `identifier=${encodeURIComponent(token(SYSTEM.taskKey, task.identifier?.[0]?.value ?? ''))}`,
        },
      };
  const entries: BundleEntry[] = [
    ...provenances.map((p): BundleEntry => ({ resource: p, request: { method: 'POST', url: 'Provenance' } })),
    taskEntry,
  ];
  const answers = await batch(medplum, entries, counter, 'write');
  const provenanceFailed = answers
    .slice(0, provenances.length)
    .some((a) => parseEntryStatus(a.response?.status) !== 201);
  const taskAnswer = answers[provenances.length];
  const status = parseEntryStatus(taskAnswer?.response?.status);
  if (status === 200 || status === 201) return { task: taskAnswer?.resource as Task, provenanceFailed };
  if (status === 412 || status === 409) return { task: undefined, provenanceFailed };
  throw FhirFailureError.of(status, 'write');
}

/**
 * Shows the finished import on the records-sync Tasks it covered (those whose sync is not newer
 * than the run's target), If-Match the version read: a Task a newer sync rewrote meanwhile is left
 * to that sync's import. Best effort: the records are in whatever this answers.
 */
export async function reportOnSyncTasks(
  medplum: MedplumClient,
  tasks: readonly Task[],
  counts: ImportCounts,
  through: string,
  counter: RequestCounter
): Promise<number> {
  const covered = tasks.filter((t) => {
    const stamp = readStamp(t, EXTENSION.lastEvent);
    return t.id && stamp && Date.parse(stamp.at) <= Date.parse(through);
  });
  if (covered.length === 0) return 0;
  const entries: BundleEntry[] = covered.map((task) => ({
    resource: withImportOutcome(task, counts),
    request: {
      method: 'PUT',
      url: `Task/${task.id ?? ''}`,
      ...(task.meta?.versionId ? { ifMatch: `W/"${task.meta.versionId}"` } : {}),
    },
  }));
  try {
    const answers = await batch(medplum, entries, counter, 'write');
    return answers.filter((a) => parseEntryStatus(a.response?.status) === 200).length;
  } catch {
    return 0;
  }
}

/**
 * The version a Provenance names: the one the import wrote, so that a later change by anyone else
 * is not covered by it. Searches match it exactly (`Provenance?target=Type/id` finds no Provenance
 * naming `Type/id/_history/v`, on a real server as in the emulator).
 */
function versionedReference(copy: StoredCopy): string {
  return `${copy.resourceType}/${copy.id}${copy.meta?.versionId ? `/_history/${copy.meta.versionId}` : ''}`;
}

/**
 * Of these copies of ours, the ones no Provenance names (their stored version): written by an import whose Provenance
 * never landed (a batch refused part-way, e.g. by Medplum's FHIR quota, after its first entries
 * had been stored). The page that finds them names them in its own Provenance, so every record
 * the import wrote is traced, however the earlier run ended.
 */
export async function untracedCopies(
  medplum: MedplumClient,
  copies: readonly StoredCopy[],
  counter: RequestCounter
): Promise<StoredCopy[]> {
  if (copies.length === 0) return [];
  const reads: BundleEntry[] = [];
  for (let i = 0; i < copies.length; i += KEYS_PER_SEARCH) {
    const targets = copies
      .slice(i, i + KEYS_PER_SEARCH)
      .map((c) => encodeURIComponent(versionedReference(c)))
      .join(',');
    reads.push({ request: { method: 'GET', url: `Provenance?target=${targets}&_count=1000&_elements=target` } });
  }
  const traced = new Set<string>();
  for (const entry of await batch(medplum, reads, counter, 'read')) {
    for (const provenance of resourcesOf<Provenance>(entry, 'read')) {
      for (const target of provenance.target) traced.add(target.reference ?? '');
    }
  }
  return copies.filter((c) => !traced.has(versionedReference(c)));
}
