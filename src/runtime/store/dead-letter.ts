// Writing a quarantined event's dead-letter: find it by its identifier, then a conditional create
// (If-None-Exist) or a version-checked update of `lastModified`. Two deliveries of the same poison
// event racing each other converge on one Task: the loser of the create finds the winner's Task and
// updates it; the loser of an update re-reads and updates again. Any other failure throws, and the
// pipeline then answers non-2xx so that Medblocks retries — a quarantine is never lost silently.
import type { MedplumClient, WithId } from '@medplum/core';
import type { Bundle, BundleEntry, Task } from '@medplum/fhirtypes';
import { buildDeadLetter, deadLetterQuery, isOpenDeadLetter, isOwnedBy, resolveDeadLetter } from '../fhir/dead-letter';
import type { DeadLetterReport } from '../fhir/dead-letter';
import { FhirFailureError, parseEntryStatus, statusOfError } from './errors';
import type { PlannedWrite } from './contract';
import type { RequestCounter } from './write';

/**
 * A captured delivery can be replayed only while its signature is fresh (300 s by default), and
 * Medblocks' own retries repeat what the dead-letter already says: an open dead-letter with the same
 * reason last written within this window is left as it is.
 */
const REPLAY_WINDOW_MS = 300_000;
/** Three rounds cover a create lost to a racer followed by an update lost to another. */
const MAX_ROUNDS = 3;

/**
 * Records the quarantine. `known` is what the delivery's read batch found (the existing dead-letter
 * or `undefined` for none); pass `'unknown'` when no read was made, and it is searched first.
 */
export async function recordDeadLetter(
  medplum: MedplumClient,
  report: DeadLetterReport,
  known: WithId<Task> | undefined | 'unknown',
  counter: RequestCounter
): Promise<void> {
  let existing = known === 'unknown' ? await findDeadLetter(medplum, report, counter) : known;
  // A replay (or retry) that changes nothing writes nothing: a captured poison delivery replayed
  // inside the signature window must not rewrite its dead-letter once per replay.
  if (existing && unchangedBy(report, existing)) return;
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const task = buildDeadLetter(report, existing);
    const entry: BundleEntry = existing
      ? {
          resource: task,
          request: {
            method: 'PUT',
            url: `Task/${existing.id}`,
            ifMatch: existing.meta?.versionId ? `W/"${existing.meta.versionId}"` : undefined,
          },
        }
      : {
          resource: task,
          request: { method: 'POST', url: 'Task', ifNoneExist: deadLetterQuery(report.key, report.owner) },
        };
    const { status, resource } = await sendOne(medplum, entry, counter);
    if (status === 201 || (existing && status === 200)) return;
    if (status === 200 && resource?.id) {
      existing = resource as WithId<Task>; // a racing delivery created it first: update that one
    } else if (status === 200 || status === 409 || status === 412) {
      existing = await findDeadLetter(medplum, report, counter); // lost a race: re-read
    } else {
      throw FhirFailureError.of(status, 'dead-letter');
    }
  }
  throw new FhirFailureError('conflict', 409, 'dead-letter');
}

/** Whether the dead-letter is open, already says what this quarantine would write, and was written just now. */
function unchangedBy(report: DeadLetterReport, existing: WithId<Task>): boolean {
  const next = buildDeadLetter(report, existing);
  const sinceWritten = Date.parse(report.seenAt) - Date.parse(existing.lastModified ?? '');
  return (
    existing.status === 'failed' &&
    sinceWritten >= 0 &&
    sinceWritten < REPLAY_WINDOW_MS &&
    existing.statusReason?.text === next.statusReason?.text &&
    JSON.stringify(existing.input) === JSON.stringify(next.input)
  );
}

/** This bot's dead-letter of one event, if any. */
export async function findDeadLetter(
  medplum: MedplumClient,
  { key, owner }: Pick<DeadLetterReport, 'key' | 'owner'>,
  counter: RequestCounter
): Promise<WithId<Task> | undefined> {
  counter.requests++;
  try {
    const found = await medplum.searchResources('Task', `${deadLetterQuery(key, owner)}&_count=1`, {
      cache: 'no-cache',
    });
    return found.find((task) => isOwnedBy(task, owner));
  } catch (err) {
    throw FhirFailureError.of(statusOfError(err), 'dead-letter');
  }
}

/** One write as a one-entry batch, so that the entry status tells a create (201) from a match (200). */
async function sendOne(
  medplum: MedplumClient,
  entry: BundleEntry,
  counter: RequestCounter
): Promise<{ status: number | undefined; resource: BundleEntry['resource'] }> {
  counter.requests++;
  let response: Bundle;
  try {
    response = await medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry: [entry] });
  } catch (err) {
    const status = statusOfError(err);
    if (status === 409 || status === 412) return { status, resource: undefined };
    throw FhirFailureError.of(status, 'dead-letter');
  }
  const answered = response.entry?.[0];
  return { status: parseEntryStatus(answered?.response?.status), resource: answered?.resource };
}

/**
 * The write that closes a quarantined event's dead-letter, when the delivery found one open: part
 * of the plan that applies the event (in its write batch), and all a duplicate delivery writes.
 */
export function deadLetterResolution(deadLetter: WithId<Task> | undefined, appliedAt: string): PlannedWrite[] {
  if (!isOpenDeadLetter(deadLetter)) return [];
  return [
    { kind: 'update', resource: resolveDeadLetter(deadLetter, appliedAt), versionId: deadLetter.meta?.versionId },
  ];
}
