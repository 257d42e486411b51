// The sweep: find a page of expired markers, delete them in one batch (both through the store),
// repeat until none are left or a limit is hit. Deleting is safe to repeat and to interrupt.
import type { MedplumClient } from '@medplum/core';
import type { Basic } from '@medplum/fhirtypes';
import { DEFAULT_MARKER_RETENTION_DAYS, readPositiveInteger, SETTING_NAMES } from '../settings';
import type { Secrets } from '../settings';
import { classifyStatus, statusOfError } from '../store/errors';
import { deleteMarkers, findExpiredMarkers } from '../store/markers';
import { DEFAULT_SWEEP_LIMITS, isExpiredMarker, retentionCutoff } from './plan';
import type { SweepLimits } from './plan';
import type { SweepOutcome, SweepSummary } from '../summary';

export interface SweepOptions {
  readonly now?: () => number;
  readonly limits?: Partial<SweepLimits>;
}

export interface SweepResult {
  readonly summary: SweepSummary;
  readonly fhirRequests: number;
}

/**
 * Deletes markers older than the retention (project secret MEDBLOCKS_MARKER_RETENTION_DAYS,
 * default 90) with bounded work. Never throws for a FHIR failure: the run reports it in its
 * summary and the next day's run picks up where this one stopped.
 */
export async function sweepMarkers(
  medplum: MedplumClient,
  secrets: Secrets,
  options: SweepOptions = {}
): Promise<SweepResult> {
  const now = options.now ?? Date.now;
  const limits = { ...DEFAULT_SWEEP_LIMITS, ...options.limits };
  const started = now();
  const retentionDays =
    readPositiveInteger(secrets, SETTING_NAMES.markerRetentionDays) ?? DEFAULT_MARKER_RETENTION_DAYS;
  const cutoff = retentionCutoff(started, retentionDays);
  let deleted = 0;
  let failed = 0;
  const counter = { requests: 0 };
  const result = (status: SweepOutcome, more: boolean): SweepResult => ({
    summary: { status, cutoff, retentionDays, deleted, failed, more },
    fhirRequests: counter.requests,
  });

  try {
    // Bounded by maxDeletions: every productive round deletes at least one marker, and a round
    // that deletes nothing ends the run.
    while (deleted < limits.maxDeletions) {
      if (now() - started >= limits.budgetMs) return result('swept', true);
      const count = Math.min(limits.pageSize, limits.maxDeletions - deleted);
      const page = await findExpiredMarkers(medplum, cutoff, count, counter);
      const ids = page.filter((r: Basic) => isExpiredMarker(r, cutoff)).map((r) => r.id);
      if (ids.length === 0) return result('swept', false);
      const counts = await deleteMarkers(medplum, ids, counter);
      deleted += counts.deleted;
      failed += counts.failed;
      // Named like any other FHIR failure (the failure table's reason for the first refused delete),
      // so that monitor counts it with the others instead of as a reason no table lists.
      if (counts.failed > 0) return result(`failed:${classifyStatus(counts.failedStatus)}`, true);
      if (ids.length < count) return result('swept', false);
    }
    return result('swept', true);
  } catch (err) {
    return result(`failed:${classifyStatus(statusOfError(err))}`, true);
  }
}
