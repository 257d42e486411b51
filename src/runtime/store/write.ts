// The writes of one delivery, and its marker: plain I/O, no decisions. What came back is reported
// as data — what was created, and every conflict typed by its cause — for the pipeline to act on.
import type { MedplumClient } from '@medplum/core';
import type { Bundle, BundleEntry, Reference } from '@medplum/fhirtypes';
import { buildMarker, markerQuery } from '../fhir/marker';
import type { PlannedWrite } from './contract';
import type { MedblocksEvent } from '../medblocks/events';
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
    return { created, conflicts: [] };
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'batch', entry: writes.map(toEntry) };
  let response: Bundle;
  counter.requests++;
  try {
    response = await medplum.executeBatch(bundle);
  } catch (err) {
    const status = statusOfError(err);
    const conflict = conflictOfStatus(status);
    if (conflict) return { created, conflicts: [conflict] };
    throw FhirFailureError.of(status, 'write');
  }

  const conflicts: WriteConflict[] = [];
  writes.forEach((write, index) => {
    const entry = response.entry?.[index];
    const status = parseEntryStatus(entry?.response?.status);
    const conflict = conflictOfStatus(status);
    if (conflict) {
      conflicts.push(conflict);
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
  return { created, conflicts };
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
 * Writes the "event applied" marker (a conditional create on the event id). A conflict here (a
 * duplicate delivery marking the same event at the same moment) is returned like any other: the
 * re-read then finds the marker, or re-plans nothing and marks again.
 */
export async function markApplied(
  medplum: MedplumClient,
  event: MedblocksEvent,
  subject: Reference | undefined,
  counter: RequestCounter,
  appliedAt: string
): Promise<WriteConflict | undefined> {
  counter.requests++;
  try {
    await medplum.createResourceIfNoneExist(
      buildMarker(event.id, event.type, event.created_at, subject, appliedAt),
      markerQuery(event.id)
    );
    return undefined;
  } catch (err) {
    const status = statusOfError(err);
    const conflict = conflictOfStatus(status);
    if (conflict) return conflict;
    throw FhirFailureError.of(status, 'marker');
  }
}
