// The server's CPU as the benchmark models it (src/tools/emulator/server-work.ts, ledger TX-12):
// every bot run and FHIR request waits for one of the server's cores and holds it for what its work
// costs, and the emulator counts that work as the server would spend it.
import { describe, expect, it } from 'vitest';
import type { Patient } from '@medplum/fhirtypes';
import { ServerCores } from '../../src/tools/emulator/server-work';
import type { ServerWorkModel } from '../../src/tools/emulator/server-work';
import { EmulatorStore } from '../../src/tools/emulator/store';

const MODEL: ServerWorkModel = { cores: 2, perRunMs: 27, perRequestMs: 3, perEntryMs: 1, perWriteMs: 10 };

/** A core's time that passes only when the test says so. */
function controlledTime(): {
  spend: (ms: number) => Promise<void>;
  spending: number[];
  finishNext: () => Promise<void>;
} {
  const pending: { ms: number; done: () => void }[] = [];
  const spending: number[] = [];
  return {
    spend: (ms) =>
      new Promise<void>((done) => {
        pending.push({ ms, done });
        spending.push(ms);
      }),
    spending,
    finishNext: async () => {
      pending.shift()?.done();
      await new Promise((r) => setImmediate(r));
    },
  };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('ServerCores: the server CPU of the benchmark', () => {
  it('serves as many at once as it has cores; the next in line starts when one finishes', async () => {
    const time = controlledTime();
    const cores = new ServerCores(MODEL, time.spend);
    const finished: string[] = [];
    const track = (name: string, work: Promise<void>) => work.then(() => finished.push(name));
    void track('first', cores.request({ entries: 1, writes: 0 }));
    void track('second', cores.run());
    void track('third', cores.request({ entries: 6, writes: 2 }));
    await settle();
    // A plain read: 3 + 1; a run: 27. The batch of 6 entries that wrote 2 versions waits.
    expect(time.spending).toEqual([4, 27]);
    await time.finishNext();
    expect(finished).toEqual(['first']);
    expect(time.spending).toEqual([4, 27, 3 + 6 + 2 * 10]);
    await time.finishNext();
    await time.finishNext();
    expect(finished).toEqual(['first', 'second', 'third']);
    expect(cores.served).toEqual({ busyMs: 4 + 27 + 29, runs: 1, requests: 2, entries: 7, writes: 2 });
  });

  it('refuses a server without a whole core', () => {
    expect(() => new ServerCores({ ...MODEL, cores: 0 })).toThrow(/cores/);
    expect(() => new ServerCores({ ...MODEL, cores: 1.5 })).toThrow(/cores/);
  });
});

describe('the emulator counts the work of each FHIR request as the server spends it', () => {
  const counting: ServerWorkModel = { cores: 1, perRunMs: 0, perRequestMs: 0, perEntryMs: 0, perWriteMs: 0 };
  const patient = (family: string): Patient => ({ resourceType: 'Patient', name: [{ family }] });

  it("a batch's entries, and each version it wrote", async () => {
    const store = new EmulatorStore({ serverWork: counting });
    const answer = await store.handle({
      method: 'POST',
      path: '',
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: patient('A'), request: { method: 'POST', url: 'Patient' } },
          { resource: patient('B'), request: { method: 'POST', url: 'Patient' } },
          { request: { method: 'GET', url: 'Patient?family=A' } },
        ],
      },
    });
    expect(answer.status).toBe(200);
    expect(store.cores?.served).toMatchObject({ requests: 1, entries: 3, writes: 2 });
  });

  it('an update equal to the stored version, sent without its meta, writes nothing: the stored one answers (AC-10, TX-12)', async () => {
    const store = new EmulatorStore({ serverWork: counting });
    const view = store.viewFor({ resourceType: 'AccessPolicy', resource: [{ resourceType: 'Patient' }] });
    const created = (await store.handle({ method: 'POST', path: '/Patient', body: patient('A') }, view))
      .body as Patient;
    expect(store.cores?.served.writes).toBe(1);
    const same = { resourceType: 'Patient', id: created.id, name: [{ family: 'A' }] };
    const unchanged = (await store.handle({ method: 'PUT', path: `/Patient/${String(created.id)}`, body: same }, view))
      .body as Patient;
    expect(unchanged.meta?.versionId).toBe(created.meta?.versionId);
    expect(store.cores?.served.writes).toBe(1);
    await store.handle(
      { method: 'PUT', path: `/Patient/${String(created.id)}`, body: { ...same, name: [{ family: 'B' }] } },
      view
    );
    expect(store.cores?.served).toMatchObject({ requests: 3, entries: 3, writes: 2 });
  });

  it('without a model nothing is counted and nothing waits', async () => {
    const store = new EmulatorStore();
    await store.handle({ method: 'POST', path: '/Patient', body: patient('A') });
    expect(store.cores).toBeUndefined();
  });
});
