// The writes of one delivery, and its marker: plain I/O, no decisions. What came back is reported
// as data — what was created, and every conflict typed by its cause — for the pipeline to act on.
import type { MedplumClient } from '@medplum/core';
import type { Bundle, BundleEntry, Reference, Resource } from '@medplum/fhirtypes';
import { buildMarker } from '../fhir/marker';
import type { PlannedWrite } from './contract';
import type { EventEnvelope } from '../medblocks/events';
import { FhirFailureError, parseEntryStatus, statusOfError } from './errors';

/** Counts FHIR requests as they are sent, so that a failed delivery still reports how many it made. */
export interface RequestCounter {
  requests: number;
}

/**
 * Why a write did not land as planned. Each is an optimistic-concurrency loss: the pipeline
 * re-reads and re-plans, and what did commit is then simply found.
 * - `serialization`: the server could not serialise a conditional write with a concurrent one
 *   (409 after its own retries; ledger TX-4).
 * - `stale-version`: an `If-Match` update lost to a newer version (412).
 * - `racing-create`: a conditional create found a resource someone created after our read (200
 *   where 201 was due), so our content is not in it.
 */
export type WriteConflict =
  { readonly cause: 'serialization' | 'stale-version'; readonly status: number } | { readonly cause: 'racing-create' };

export interface WriteOutcome {
  /** fullUrl → `Type/id` of what the bundle created (or found, for conditional creates). */
  readonly created: ReadonlyMap<string, string>;
  readonly conflicts: readonly WriteConflict[];
  /**
   * The writes whose entries answered 409 (`serialization`), in bundle order: the same writes sent
   * again either commit or, being conditional, find what a racing delivery committed. Empty when
   * the whole bundle was refused (then only a re-read tells what is stored).
   */
  readonly unserialised: readonly PlannedWrite[];
}

function conflictOfStatus(status: number | undefined): WriteConflict | undefined {
  if (status === 409) return { cause: 'serialization', status };
  if (status === 412) return { cause: 'stale-version', status };
  return undefined;
}

/**
 * Sends the planned writes as one `batch` bundle (one request) and checks every entry's status;
 * any other failure throws FhirFailureError.
 *
 * A batch, not a transaction: Medplum runs a `transaction` atomically only when the project has the
 * `transaction-bundles` feature, which a bot cannot see and a project admin cannot set; without it
 * the server quietly runs the bundle as a batch. With it, any conditional entry makes the
 * transaction SERIALIZABLE and caps it at 8 entries, and one large serialisable transaction
 * conflicts with every concurrent delivery (docs/fidelity-ledger.md TX-1…TX-4). A batch behaves the
 * same on every project: each entry commits on its own (a conditional create in its own small
 * serialisable transaction), `urn:uuid` references are still resolved (TX-6), and the per-entry
 * statuses tell exactly what committed. Atomicity is not needed for correctness: every write is
 * idempotent by its business key and the marker is written only after every entry succeeded.
 */
export async function writePlan(
  medplum: MedplumClient,
  writes: readonly PlannedWrite[],
  counter: RequestCounter
): Promise<WriteOutcome> {
  const created = new Map<string, string>();
  if (writes.length === 0) {
    return { created, conflicts: [], unserialised: [] };
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'batch', entry: writes.map(toEntry) };
  let response: Bundle;
  counter.requests++;
  try {
    response = await medplum.executeBatch(bundle);
  } catch (err) {
    const status = statusOfError(err);
    const conflict = conflictOfStatus(status);
    if (conflict) return { created, conflicts: [conflict], unserialised: [] };
    throw FhirFailureError.of(status, 'write');
  }

  const conflicts: WriteConflict[] = [];
  const unserialised: PlannedWrite[] = [];
  writes.forEach((write, index) => {
    const entry = response.entry?.[index];
    const status = parseEntryStatus(entry?.response?.status);
    const conflict = conflictOfStatus(status);
    if (conflict) {
      conflicts.push(conflict);
      if (conflict.cause === 'serialization') unserialised.push(write);
      return;
    }
    if (status === undefined || status >= 300) {
      throw FhirFailureError.of(status, 'write');
    }
    if (write.kind === 'create') {
      if (status === 200 && write.existingIsConflict) conflicts.push({ cause: 'racing-create' });
      const location = entry?.response?.location ?? '';
      const id = entry?.resource?.id ?? /([^/]+?)(?:\/_history\/.*)?$/.exec(location)?.[1];
      if (id) {
        created.set(write.fullUrl, `${write.resource.resourceType}/${id}`);
      }
    }
  });
  return { created, conflicts, unserialised };
}

/**
 * The writes to send again after serialisation failures, or undefined when sending them again is
 * not enough: when another conflict (a stale version, a racing create) needs a re-read, or when a
 * write that did commit points at a create that did not. The server gave the failed create's
 * placeholder an id before it ran the bundle (fhir-router `BatchProcessor.assignId`), so that
 * committed write names an id a second create would not reuse; `dependencyStages` keeps such
 * pairs in separate bundles, so this is a guard, not a path.
 */
export function writesToResend(sent: readonly PlannedWrite[], outcome: WriteOutcome): PlannedWrite[] | undefined {
  if (outcome.unserialised.length === 0 || outcome.unserialised.length !== outcome.conflicts.length) return undefined;
  const failed = new Set(outcome.unserialised.flatMap((w) => (w.kind === 'create' ? [w.fullUrl] : [])));
  const committed = sent.filter((w) => !outcome.unserialised.includes(w));
  if (committed.some((w) => placeholdersIn(w.resource).some((url) => failed.has(url)))) return undefined;
  return [...outcome.unserialised];
}

/**
 * The planned writes as bundles the server can take one after the other: a write that points at a
 * planned Patient create joins a bundle only after that create committed in an earlier one. The
 * server assigns every create's id before it runs a batch (fhir-router `BatchProcessor.assignId`),
 * so when a Patient create fails to serialise, a Consent or Task that committed beside it names a
 * Patient that never exists — and the policies pin a resource's patient once it is set
 * (SECURITY.md), so no later delivery could re-point it. A reference to any other planned create (a
 * reconnect Task's focus on its new Consent) may share the bundle: the next plan re-points it.
 * One bundle in the usual case, where the read batch created the Patient.
 */
export function dependencyStages(writes: readonly PlannedWrite[]): PlannedWrite[][] {
  const patientCreates = new Set(
    writes.flatMap((w) => (w.kind === 'create' && w.resource.resourceType === 'Patient' ? [w.fullUrl] : []))
  );
  const first = writes.filter((w) => !placeholdersIn(w.resource).some((url) => patientCreates.has(url)));
  return first.length === writes.length ? [[...writes]] : [first, writes.filter((w) => !first.includes(w))];
}

/** The writes with every `urn:uuid:` reference to a resource this delivery created rewritten to its `Type/id`. */
export function withCreatedReferences(
  writes: readonly PlannedWrite[],
  created: ReadonlyMap<string, string>
): PlannedWrite[] {
  if (created.size === 0) return [...writes];
  return writes.map((write) =>
    write.kind === 'create'
      ? { ...write, resource: withResolvedReferences(write.resource, created) }
      : { ...write, resource: withResolvedReferences(write.resource, created) }
  );
}

function placeholdersIn(resource: Resource): string[] {
  const found: string[] = [];
  JSON.stringify(resource, (key, value: unknown) => {
    if (key === 'reference' && typeof value === 'string' && value.startsWith('urn:uuid:')) found.push(value);
    return value;
  });
  return found;
}

function withResolvedReferences<T extends Resource>(resource: T, created: ReadonlyMap<string, string>): T {
  const text = JSON.stringify(resource, (key, value: unknown) =>
    key === 'reference' && typeof value === 'string' ? (created.get(value) ?? value) : value
  );
  return JSON.parse(text) as T;
}

function toEntry(write: PlannedWrite): BundleEntry {
  if (write.kind === 'create') {
    return {
      fullUrl: write.fullUrl,
      resource: write.resource,
      request: { method: 'POST', url: write.resource.resourceType, ifNoneExist: write.ifNoneExist },
    };
  }
  const url = `${write.resource.resourceType}/${write.resource.id}`;
  return {
    resource: write.resource,
    request: write.versionId ? { method: 'PUT', url, ifMatch: `W/"${write.versionId}"` } : { method: 'PUT', url },
  };
}

/** The marker's subject: a reference as planned, or the Patient this delivery's bundle created. */
export function resolveSubject(
  subject: Reference | undefined,
  created: ReadonlyMap<string, string>
): Reference | undefined {
  const ref = subject?.reference;
  if (!ref) return undefined;
  if (ref.startsWith('urn:uuid:')) {
    const resolved = created.get(ref);
    return resolved ? { reference: resolved } : undefined;
  }
  return { reference: ref };
}

/**
 * Writes the "event applied" marker as a plain create, never a conditional one. A conditional create
 * runs its search and insert in one SERIALIZABLE transaction (ledger TX-4), and on a real server
 * those collide between deliveries of different patients; a plain create never fails to serialise
 * (TX-5). Nothing needs the marker to be unique: two deliveries of one event that finish at the same
 * moment leave two markers, either of which says "applied", and the sweeper deletes both by date.
 */
export async function markApplied(
  medplum: MedplumClient,
  event: EventEnvelope,
  subject: Reference | undefined,
  counter: RequestCounter,
  appliedAt: string
): Promise<WriteConflict | undefined> {
  counter.requests++;
  try {
    await medplum.createResource(buildMarker(event.id, event.type, event.created_at, subject, appliedAt));
    return undefined;
  } catch (err) {
    const status = statusOfError(err);
    const conflict = conflictOfStatus(status);
    if (conflict) return conflict;
    throw FhirFailureError.of(status, 'marker');
  }
}
