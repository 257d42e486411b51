// The sweeper's I/O: find a page of expired dedupe markers, delete a page in one batch. Plain I/O
// like the rest of the store; what to delete and when to stop is decided in src/runtime/sweeper/.
import type { MedplumClient } from '@medplum/core';
import type { Basic, Bundle, BundleEntry } from '@medplum/fhirtypes';
import { CODE, SYSTEM, token } from '../fhir/systems';
import { parseEntryStatus } from './errors';
import type { RequestCounter } from './write';

/** One page of markers created before `cutoff`, oldest first; confined to the marker code like the sweeper's policy. */
export async function findExpiredMarkers(
  medplum: MedplumClient,
  cutoff: string,
  count: number,
  counter: RequestCounter
): Promise<Basic[]> {
  counter.requests++;
  const search = {
    code: token(SYSTEM.code, CODE.webhookEvent),
    created: `lt${cutoff}`,
    _sort: 'created',
    _count: String(count),
  };
  return medplum.searchResources('Basic', search, { cache: 'no-cache' });
}

/** Deletes markers in one batch (one round trip per page); 404/410 count as deleted (already gone). */
export async function deleteMarkers(
  medplum: MedplumClient,
  ids: readonly string[],
  counter: RequestCounter
): Promise<{ deleted: number; failed: number; failedStatus: number | undefined }> {
  counter.requests++;
  const batch: Bundle = {
    resourceType: 'Bundle',
    type: 'batch',
    entry: ids.map((id) => ({ request: { method: 'DELETE', url: `Basic/${id}` } })),
  };
  const response = await medplum.executeBatch(batch);
  let deleted = 0;
  let failed = 0;
  let failedStatus: number | undefined;
  for (const entry of response.entry ?? ([] as BundleEntry[])) {
    const status = parseEntryStatus(entry.response?.status);
    if (status !== undefined && ((status >= 200 && status < 300) || status === 404 || status === 410)) {
      deleted++;
    } else {
      failed++;
      failedStatus ??= status;
    }
  }
  return { deleted, failed, failedStatus };
}
