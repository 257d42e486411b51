// Retention planning for dedupe markers, kept pure so that the cut-off date, the search and the
// "is this really an expired marker" check can be tested without a server. Markers are an
// optimisation and an audit record: deleting one only means a very late replay is re-applied,
// which every write tolerates (conditional, newest-event-wins).
import type { WithId } from '@medplum/core';
import type { Basic } from '@medplum/fhirtypes';
import { CODE, SYSTEM } from '../fhir/systems';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface SweepLimits {
  /** At most this many deletions per run, so one run never outlives the bot's timeout. */
  readonly maxDeletions: number;
  /** Markers fetched (and deleted in one batch) per round trip. */
  readonly pageSize: number;
  /** Stop starting new pages after this much wall time. */
  readonly budgetMs: number;
}

export const DEFAULT_SWEEP_LIMITS: SweepLimits = { maxDeletions: 1000, pageSize: 100, budgetMs: 20_000 };

/**
 * The first day whose markers are kept: markers with `created` strictly before it are expired.
 * Computed in UTC on whole days because `Basic.created` is a date (the event's UTC date).
 */
export function retentionCutoff(nowMs: number, retentionDays: number): string {
  return new Date(nowMs - retentionDays * DAY_MS).toISOString().slice(0, 10);
}

/**
 * Defence in depth over the search: only a Basic that carries the marker code, an event-id
 * identifier and a `created` before the cut-off is ever deleted, whatever the server returned.
 */
export function isExpiredMarker(resource: Basic, cutoff: string): resource is WithId<Basic> {
  const isMarker = resource.code.coding?.some((c) => c.system === SYSTEM.code && c.code === CODE.webhookEvent);
  const hasEventId = resource.identifier?.some((i) => i.system === SYSTEM.eventId);
  const created = resource.created?.slice(0, 10);
  return Boolean(resource.id && isMarker && hasEventId && created !== undefined && created < cutoff);
}
