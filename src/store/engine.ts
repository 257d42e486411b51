// The engine every bot runs: read once, stop on a duplicate, plan (pure), write once, mark last.
// Conflicts (409/412, or a business key someone created between our read and our write) are
// optimistic-concurrency losses: re-read and re-plan within a deadline far below Medblocks' 5 s.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { MedplumClient } from '@medplum/core';
import type { Bundle, BundleEntry, Reference } from '@medplum/fhirtypes';
import type { BotSettings } from '../delivery/settings';
import { buildMarker, markerQuery } from '../fhir/marker';
import type { EventStamp } from '../fhir/stamp';
import type { EventHandler, PlannedWrite } from '../handlers/plan';
import type { MedblocksEvent } from '../medblocks/events';
import { classifyStatus, FhirFailureError, parseEntryStatus, statusOfError } from './errors';
import { readState } from './read';

export type AppliedOutcome = 'processed' | 'duplicate' | 'stale';

export interface EngineResult {
  readonly outcome: AppliedOutcome;
  readonly fhirRequests: number;
  readonly attempts: number;
}

export interface EngineOptions {
  /** Total time allowed for conflict retries, measured from the start of the delivery. */
  readonly deadlineMs?: number;
  readonly maxAttempts?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<unknown>;
  readonly newUuid?: () => string;
}

/** Counts FHIR requests as they are sent, so that a failed delivery still reports how many it made. */
export interface RequestCounter {
  requests: number;
}

export const DEFAULT_DEADLINE_MS = 2500;
export const DEFAULT_MAX_ATTEMPTS = 5;

/** Applies one verified event through its handler. Throws FhirFailureError when it cannot; then nothing is marked applied. */
export async function applyEvent<E extends MedblocksEvent>(
  medplum: MedplumClient,
  event: E,
  handler: EventHandler<E>,
  settings: BotSettings,
  options: EngineOptions = {},
  counter: RequestCounter = { requests: 0 }
): Promise<EngineResult> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => sleepFor(ms));
  const deadline = now() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const stamp: EventStamp = { at: event.created_at, eventId: event.id };
  const context = { stamp, settings, newUuid: options.newUuid ?? randomUUID };

  for (let attempt = 1; ; attempt++) {
    counter.requests++;
    const state = await readState(medplum, handler.reads(event));
    if (state.marker) {
      return { outcome: 'duplicate', fhirRequests: counter.requests, attempts: attempt };
    }
    const plan = handler.plan(event, state, context);
    const written = await sendWrites(medplum, plan.writes, counter);
    const conflict =
      written.conflict ||
      (await writeMarker(medplum, event, resolveSubject(plan.markerSubject, written.created), counter)) === 'conflict';
    if (!conflict) {
      return { outcome: plan.stale ? 'stale' : 'processed', fhirRequests: counter.requests, attempts: attempt };
    }
    const backoff = Math.min(400, 25 * 2 ** attempt) * (0.5 + Math.random());
    if (attempt >= maxAttempts || now() + backoff >= deadline) {
      throw new FhirFailureError('conflict', 409, 'write');
    }
    await sleep(backoff);
  }
}

interface WriteResult {
  /** fullUrl → `Type/id` of what the bundle created (or found, for conditional creates). */
  readonly created: Map<string, string>;
  /** An optimistic-concurrency loss: re-read and re-plan. */
  readonly conflict: boolean;
}

/**
 * Sends the planned writes as one `batch` bundle (one request) and checks every entry's status.
 *
 * A batch, not a transaction: Medplum runs a `transaction` atomically only when the project has the
 * `transaction-bundles` feature, which a bot cannot see and a project admin cannot set; without it
 * the server quietly runs the bundle as a batch. With it, any conditional entry makes the
 * transaction SERIALIZABLE and caps it at 8 entries, and one large serialisable transaction
 * conflicts with every concurrent delivery (docs/fidelity-ledger.md TX-1…TX-4). A batch behaves the
 * same on every project: each entry commits on its own (a conditional create in its own small
 * serialisable transaction), `urn:uuid` references are still resolved, and the per-entry statuses
 * tell exactly what committed. Atomicity is not needed for correctness: every write is idempotent
 * by its business key and the marker is written only after every entry succeeded.
 */
async function sendWrites(
  medplum: MedplumClient,
  writes: readonly PlannedWrite[],
  counter: RequestCounter
): Promise<WriteResult> {
  const created = new Map<string, string>();
  if (writes.length === 0) {
    return { created, conflict: false };
  }
  const bundle: Bundle = { resourceType: 'Bundle', type: 'batch', entry: writes.map(toEntry) };
  let response: Bundle;
  counter.requests++;
  try {
    response = await medplum.executeBatch(bundle);
  } catch (err) {
    const status = statusOfError(err);
    if (status === 409 || status === 412) {
      return { created, conflict: true };
    }
    throw new FhirFailureError(classifyStatus(status), status, 'write');
  }

  let conflict = false;
  writes.forEach((write, index) => {
    const entry = response.entry?.[index];
    const status = parseEntryStatus(entry?.response?.status);
    if (status === 409 || status === 412) {
      conflict = true;
      return;
    }
    if (status === undefined || status >= 300) {
      throw new FhirFailureError(classifyStatus(status), status, 'write');
    }
    if (write.kind === 'create') {
      // 200 instead of 201: someone created this business key after our read; our change is not in it.
      conflict ||= status === 200 && write.existingIsConflict;
      const location = entry?.response?.location ?? '';
      const id = entry?.resource?.id ?? /([^/]+?)(?:\/_history\/.*)?$/.exec(location)?.[1];
      if (id) {
        created.set(write.fullUrl, `${write.resource.resourceType}/${id}`);
      }
    }
  });
  return { created, conflict };
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

function resolveSubject(subject: Reference | undefined, created: Map<string, string>): Reference | undefined {
  const ref = subject?.reference;
  if (!ref) return undefined;
  if (ref.startsWith('urn:uuid:')) {
    const resolved = created.get(ref);
    return resolved ? { reference: resolved } : undefined;
  }
  return { reference: ref };
}

/**
 * Marker last: only after every entry above reported success. A conflict here (a duplicate
 * delivery marking the same event at the same moment) goes round the loop like any other: the
 * re-read then finds the marker, or re-plans nothing and marks again.
 */
async function writeMarker(
  medplum: MedplumClient,
  event: MedblocksEvent,
  subject: Reference | undefined,
  counter: RequestCounter
): Promise<'marked' | 'conflict'> {
  counter.requests++;
  try {
    await medplum.createResourceIfNoneExist(
      buildMarker(event.id, event.type, event.created_at, subject),
      markerQuery(event.id)
    );
    return 'marked';
  } catch (err) {
    const status = statusOfError(err);
    if (status === 409 || status === 412) {
      return 'conflict';
    }
    throw new FhirFailureError(classifyStatus(status), status, 'marker');
  }
}
