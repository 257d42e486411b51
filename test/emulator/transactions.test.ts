// Transactions and conflicts as a real Medplum server runs them (docs/fidelity-ledger.md TX-1…TX-4),
// through the emulator's store: the same FhirRouter the server uses, fed what the server feeds it.
import { parseSearchRequest } from '@medplum/core';
import type { Bundle, BundleEntry, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { MemoryRepository } from '@medplum/fhir-router';
import { assertMemoryRepositoryInternals, SERIALIZATION_FAILURE } from '../../src/tools/emulator/project-fhir';
import { EmulatorStore } from '../../src/tools/emulator/store';
import type { ProjectFeature } from '../../src/tools/emulator/project-fhir';

const WITH_FEATURE: ProjectFeature[] = ['bots', 'transaction-bundles'];

function taskEntry(key: string, conditional: boolean, status = 'requested'): BundleEntry {
  return {
    fullUrl: `urn:uuid:${crypto.randomUUID()}`,
    resource: {
      resourceType: 'Task',
      status,
      intent: 'order',
      identifier: [{ system: 'urn:test:key', value: key }],
    } as Task,
    request: {
      method: 'POST',
      url: 'Task',
      ifNoneExist: conditional ? `identifier=urn:test:key|${key}` : undefined,
    },
  };
}

/** An entry the router refuses: an update of a resource that does not exist. */
const FAILING_ENTRY: BundleEntry = {
  resource: { resourceType: 'Task', id: '00000000-0000-4000-8000-000000000000', status: 'draft', intent: 'order' },
  request: { method: 'PUT', url: 'Task/00000000-0000-4000-8000-000000000000', ifMatch: 'W/"1"' },
};

async function post(
  store: EmulatorStore,
  bundle: Bundle
): Promise<{ status: number; body: Bundle & { issue?: { details?: { text?: string } }[] } }> {
  const answer = await store.handle({ method: 'POST', path: '', body: bundle });
  return answer as { status: number; body: Bundle & { issue?: { details?: { text?: string } }[] } };
}

describe('TX-1/TX-3 a transaction is atomic only with the transaction-bundles feature', () => {
  it('without the feature, a `transaction` runs as a batch: 200, the good entries commit beside the failed one', async () => {
    const store = new EmulatorStore();
    const answer = await post(store, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [taskEntry('a', false), FAILING_ENTRY],
    });
    expect(answer.status).toBe(200);
    expect(answer.body.entry?.map((e) => e.response?.status.slice(0, 3))).toEqual(['201', expect.stringMatching(/^4/)]);
    expect(await store.all('Task')).toHaveLength(1);
  });

  it('with the feature, the same transaction fails whole and nothing commits', async () => {
    const store = new EmulatorStore({ features: WITH_FEATURE });
    const answer = await post(store, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [taskEntry('a', false), FAILING_ENTRY],
    });
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect(await store.all('Task')).toHaveLength(0);
  });
});

describe('TX-2 caps on transactions, with the feature', () => {
  const conditional = (n: number): Bundle => ({
    resourceType: 'Bundle',
    type: 'transaction',
    entry: Array.from({ length: n }, (_, i) => taskEntry(`k${String(i)}`, true)),
  });

  it('a transaction with a conditional entry is refused above 8 entries, with the server’s message', async () => {
    const store = new EmulatorStore({ features: WITH_FEATURE });
    expect((await post(store, conditional(8))).status).toBe(200);
    const refused = await post(store, conditional(9));
    expect(refused.status).toBe(400);
    expect(refused.body.issue?.[0]?.details?.text).toBe(
      'Transaction requires strict isolation but has too many entries'
    );
  });

  it('without the feature the same 9 entries run as a batch', async () => {
    const store = new EmulatorStore();
    expect((await post(store, conditional(9))).status).toBe(200);
    expect(await store.all('Task')).toHaveLength(9);
  });

  it('more than 50 updates in one transaction are refused', async () => {
    const store = new EmulatorStore({ features: WITH_FEATURE });
    const updates: BundleEntry[] = Array.from({ length: 51 }, (_, i) => ({
      resource: { resourceType: 'Task', status: 'draft', intent: 'order' },
      request: { method: 'PUT', url: `Task/00000000-0000-4000-8000-${String(i).padStart(12, '0')}` },
    }));
    const refused = await post(store, { resourceType: 'Bundle', type: 'transaction', entry: updates });
    expect(refused.status).toBe(400);
    expect(refused.body.issue?.[0]?.details?.text).toBe('Transaction contains more update operations than allowed');
  });

  it('a `batch` has no cap: 20 conditional creates in one request', async () => {
    const store = new EmulatorStore({ features: WITH_FEATURE });
    const answer = await post(store, { ...conditional(20), type: 'batch' });
    expect(answer.status).toBe(200);
    expect(await store.all('Task')).toHaveLength(20);
  });
});

describe('TX-4 serialisable transactions conflict under concurrency', () => {
  const createIfNone = (store: EmulatorStore, key: string, type: 'Task' | 'Basic' = 'Task') =>
    store.repo.conditionalCreate(
      type === 'Task'
        ? {
            resourceType: 'Task',
            status: 'requested',
            intent: 'order',
            identifier: [{ system: 'urn:test:key', value: key }],
          }
        : { resourceType: 'Basic', code: { text: 'x' }, identifier: [{ system: 'urn:test:key', value: key }] },
      parseSearchRequest(`${type}?identifier=urn:test:key|${key}`)
    );

  it('three overlapping conditional creates of one type, different keys: each of the server’s 2 attempts saves one, the third gets 409 (40001)', async () => {
    // Backoff jitter fixed at its middle: a wait of exactly 50 ms, so the timeline is exact.
    const store = new EmulatorStore({ transactionMs: 20, random: () => 0.5 });
    const results = await Promise.allSettled([
      createIfNone(store, 'p1'),
      createIfNone(store, 'p2'),
      createIfNone(store, 'p3'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    const [, , failure] = results;
    expect(failure.status === 'rejected' && (failure.reason as { outcome: unknown }).outcome).toEqual(
      SERIALIZATION_FAILURE
    );
    expect(SERIALIZATION_FAILURE).toMatchObject({
      id: 'conflict',
      issue: [{ code: 'conflict', details: { coding: [{ code: '40001' }] } }],
    });
    expect(await store.all('Task')).toHaveLength(2); // the refused one left nothing behind
    expect(store.conflicts.failures).toBe(1);
  });

  it('different resource types do not conflict', async () => {
    const store = new EmulatorStore({ transactionMs: 20 });
    const results = await Promise.allSettled([createIfNone(store, 'a'), createIfNone(store, 'b', 'Basic')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
  });

  it('over HTTP the conflict is a 409 entry in a batch, the other entries committed', async () => {
    const store = new EmulatorStore({ transactionMs: 20, random: () => 0.5 });
    const batch = (keys: string[]): Bundle => ({
      resourceType: 'Bundle',
      type: 'batch',
      entry: keys.map((k) => taskEntry(k, true)),
    });
    const answers = await Promise.all(['x1', 'y1', 'z1'].map((key) => post(store, batch([key]))));
    const statuses = answers.map((a) => a.body.entry?.[0]?.response?.status.slice(0, 3));
    expect(statuses.sort()).toEqual(['201', '201', '409']);
    expect(answers.every((a) => a.status === 200)).toBe(true);
  });

  it('sequential transactions never conflict', async () => {
    const store = new EmulatorStore({ transactionMs: 5 });
    for (const key of ['s1', 's2', 's3']) await createIfNone(store, key);
    expect(store.conflicts.failures).toBe(0);
  });
});

describe('TX-11 with GIN fastupdate off, conditional creates conflict per searched key', () => {
  const createIfNone = (store: EmulatorStore, key: string) =>
    store.repo.conditionalCreate(
      {
        resourceType: 'Task',
        status: 'requested',
        intent: 'order',
        identifier: [{ system: 'urn:test:key', value: key }],
      },
      parseSearchRequest(`Task?identifier=urn:test:key|${key}`)
    );

  it('overlapping creates of different keys all commit (with it on, the third of these got 409: TX-4)', async () => {
    const store = new EmulatorStore({ transactionMs: 20, random: () => 0.5, ginFastUpdate: false });
    const results = await Promise.allSettled(['p1', 'p2', 'p3', 'p4'].map((key) => createIfNone(store, key)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(store.conflicts.failures).toBe(0);
  });

  it('overlapping creates of one key meet: the later one is re-run by the server, finds the first, and creates nothing', async () => {
    const store = new EmulatorStore({ transactionMs: 20, random: () => 0.5, ginFastUpdate: false });
    const [first, second] = await Promise.all([createIfNone(store, 'same'), createIfNone(store, 'same')]);
    expect(second.resource.id).toBe(first.resource.id);
    expect([first.outcome.id, second.outcome.id].sort()).toEqual(['created', 'ok']);
    expect(await store.all('Task')).toHaveLength(1);
  });

  it('a conditional create that found its match wrote nothing, so it conflicts with nobody, whatever the setting', async () => {
    const store = new EmulatorStore({ transactionMs: 20, random: () => 0.5 });
    await createIfNone(store, 'existing');
    // Two that find theirs, one that creates: with fastupdate on only writers meet, so all three commit.
    const results = await Promise.allSettled([
      createIfNone(store, 'existing'),
      createIfNone(store, 'existing'),
      createIfNone(store, 'new'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    expect(store.conflicts.failures).toBe(0);
  });
});

describe('what the transaction model reaches inside MemoryRepository', () => {
  it('is there in the pinned @medplum/fhir-router, and a repository without it is refused by name', () => {
    expect(() => {
      assertMemoryRepositoryInternals(new MemoryRepository());
    }).not.toThrow();
    const renamed = Object.assign(new MemoryRepository(), { createResourceSync: undefined });
    expect(() => {
      assertMemoryRepositoryInternals(renamed);
    }).toThrow(/no longer has createResourceSync/);
  });
});
