// How the sweeper counts one batch of marker deletes: an entry status is read as every other batch
// answer is ("204" or "204 No Content"); a marker already gone (404, 410) counts as deleted, and
// the first refusal's status is what the run is named by.
import type { MedplumClient } from '@medplum/core';
import type { Bundle } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { deleteMarkers } from './markers';

function answering(statuses: (string | undefined)[]): MedplumClient {
  const response: Bundle = {
    resourceType: 'Bundle',
    type: 'batch-response',
    entry: statuses.map((status) => ({ response: status === undefined ? undefined : { status } })),
  };
  return { executeBatch: () => Promise.resolve(response) } as unknown as MedplumClient;
}

describe('deleteMarkers', () => {
  it('counts 2xx, 404 and 410 as deleted, in either status form', async () => {
    const counter = { requests: 0 };
    const ids = ['a', 'b', 'c', 'd'];
    const counts = await deleteMarkers(answering(['200', '204 No Content', '404 Not Found', '410']), ids, counter);
    expect(counts).toEqual({ deleted: 4, failed: 0, failedStatus: undefined });
    expect(counter.requests).toBe(1);
  });

  it('names the first refusal; an entry without a status is a failure with none', async () => {
    const counter = { requests: 0 };
    expect(await deleteMarkers(answering([undefined, '403 Forbidden', '500']), ['a', 'b', 'c'], counter)).toEqual({
      deleted: 0,
      failed: 3,
      failedStatus: 403,
    });
  });
});
