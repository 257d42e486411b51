// How a Medplum project runs FHIR bundles, for the emulator and the bot tests. Medplum's server and
// @medplum/mock share one bundle processor (@medplum/fhir-router's BatchProcessor); what differs is
// what the server hands it and what its repository does with a transaction:
//
//   TX-1  a `transaction` bundle is atomic only when the project has the `transaction-bundles`
//         feature; the server passes that as `config.transactions`, and without it the processor
//         runs the bundle entry by entry, like a batch, and answers 200 (observed on 5.1.29).
//   TX-2  with the feature, a transaction holding any conditional entry runs SERIALIZABLE and is
//         refused above 8 entries, and any transaction above 50 updates (the processor's own
//         checks, with the server's messages — they only run when `config.transactions` is set).
//   TX-3  a failed transaction rolls back every entry (Postgres). MemoryRepository has no rollback:
//         TransactionalRepository adds one by restoring a copy of the store.
//   TX-4  SERIALIZABLE transactions (every conditional create/update/delete, and transaction bundles
//         with a conditional entry) that overlap in time and touch the same resource types conflict,
//         even for different patients (Postgres' predicate locks are coarser than one business key;
//         observed at concurrency 8 on 5.1.29). The later committer fails with `could not serialize
//         access…` (SQLSTATE 40001); the server re-runs the transaction (2 attempts in all by default,
//         after 50·2^n ms ±25%: repository-connection.ts), then answers 409 with an OperationOutcome
//         of id `conflict`. Modelled by SerializableConflicts below, per resource
//         type, first committer wins; each transaction lasts at least `holdMs` (the database work the
//         in-memory store does instantly). Other writes run one at a time under a lock, which is what
//         the server's row locks give concurrent writers of the same row.
//   TX-11 with GIN `fastupdate` off (a store option), per searched key instead; and whatever the
//         setting, a transaction that wrote nothing (a conditional create that found its match)
//         conflicts with nobody.
//
// docs/fidelity-ledger.md lists each rule with its source; test/emulator/transactions.test.ts pins them.
import { AsyncLocalStorage } from 'node:async_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { conflict, OperationOutcomeError } from '@medplum/core';
import type { SearchRequest, WithId } from '@medplum/core';
import type {
  CreateResourceOptions,
  DeleteResourceOptions,
  FhirRepository,
  FhirRequest,
  FhirResponse,
  TransactionOptions,
  UpdateResourceOptions,
} from '@medplum/fhir-router';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import type { OperationOutcome, Resource } from '@medplum/fhirtypes';
import { Mutex } from './mutex';
import type { RequestWork } from './server-work';
import { validateWrite, withServerIdentifierSearch } from './validation';

/**
 * The project features the emulator models (`Project.features`). `cron` lets provision's preflight
 * see a project that can schedule the sweeper, and decides whether a bot has a cron job that
 * `RunningEmulator.runScheduled` can fire (CRON-1); the emulator fires none on the clock.
 */
export type ProjectFeature = 'bots' | 'cron' | 'transaction-bundles';

/** A FhirRouter that hands the bundle processor what Medplum's server derives from the project. */
export class ProjectFhirRouter extends FhirRouter {
  constructor(private readonly features: () => readonly ProjectFeature[]) {
    super();
  }

  override handleRequest(req: FhirRequest, repo: FhirRepository): Promise<FhirResponse> {
    const transactions = this.features().includes('transaction-bundles');
    return super.handleRequest({ ...req, config: { ...req.config, transactions } }, repo);
  }
}

interface MemoryRepositoryInternals {
  readonly resources: Map<string, Map<string, Resource>>;
  readonly history: Map<string, Map<string, Resource[]>>;
}

/**
 * What the transaction model reaches inside MemoryRepository, which its public interface does not
 * offer (no snapshot or rollback, no hook on the synchronous search and write every path goes
 * through). Checked when a repository is made, so that a @medplum/fhir-router upgrade that renames
 * them fails at once, naming what moved, instead of silently losing rollback or validation.
 */
export function assertMemoryRepositoryInternals(repo: object): void {
  const members: Readonly<Record<string, 'function' | 'map'>> = {
    searchSync: 'function',
    createResourceSync: 'function',
    resources: 'map',
    history: 'map',
  };
  const found = repo as Record<string, unknown>;
  const missing = Object.entries(members).filter(([name, kind]) =>
    kind === 'map' ? !(found[name] instanceof Map) : typeof found[name] !== 'function'
  );
  if (missing.length > 0) {
    throw new Error(
      `@medplum/fhir-router's MemoryRepository no longer has ${missing.map(([n]) => n).join(', ')}: the emulator's transaction model (src/tools/emulator/project-fhir.ts) must follow it`
    );
  }
}

/** The message and code a real server answers a serialisation failure with (TX-4). */
export const SERIALIZATION_FAILURE = conflict(
  'could not serialize access due to read/write dependencies among transactions',
  '40001'
);

interface SerializableTransaction {
  readonly types: ReadonlySet<string>;
  /** The index keys its searches read (a conditional create's query); empty: unknown, per type. */
  readonly keys: ReadonlySet<string>;
  readonly start: number;
  end?: number;
}

/**
 * First-committer-wins for transactions that overlap in time (TX-4). By default per resource type,
 * because that is what Postgres' GIN predicate locks do with `fastupdate` on, its default (TX-9).
 * With `fastupdate` off (`ginFastUpdate: false`), per index key: a standalone conditional create
 * (a batch entry) then conflicts only with one searching the same query (TX-11), as long as no policy
 * criterion joins a key every resource shares to its search (TX-10; the shipped policies have none,
 * and the emulator's access model filters criteria after the search, so that case is not modelled
 * here). A transaction bundle keeps the per-type rule (its entries' keys are not collected: more
 * conflicts than a real server), and a query naming several tokens is one key, not each token
 * (fewer): the bots do neither (no `transaction-bundles` feature; one token per create).
 */
export class SerializableConflicts {
  private committed: SerializableTransaction[] = [];
  /** Serialisation failures answered after the server's own attempts ran out, for benchmarks. */
  failures = 0;

  constructor(
    readonly holdMs: number,
    private readonly clock: () => number = () => performance.now(),
    /** Jitter source for the server's retry backoff; tests fix it to make timings exact. */
    readonly random: () => number = Math.random,
    /** Postgres' GIN `fastupdate` on the server's token indexes: on (its default) or off (TX-9, TX-11). */
    readonly ginFastUpdate = true
  ) {}

  /** The server's wait before re-running a failed transaction (attempt 0 is the first run). */
  backoffMs(attempt: number): number {
    return Math.ceil(SERVER_BACKOFF_BASE_MS * 2 ** attempt * (0.75 + this.random() * 0.5));
  }

  begin(types: Iterable<string>, keys: Iterable<string> = []): SerializableTransaction {
    return { types: new Set(types), keys: new Set(keys), start: this.clock() };
  }

  /** True when a transaction that committed after `txn` began touched what it did: a type, or with `fastupdate` off a key. */
  conflicts(txn: SerializableTransaction): boolean {
    return this.committed.some((other) => other.end !== undefined && other.end > txn.start && this.overlap(txn, other));
  }

  private overlap(a: SerializableTransaction, b: SerializableTransaction): boolean {
    if (!this.ginFastUpdate && a.keys.size > 0 && b.keys.size > 0) {
      return [...b.keys].some((k) => a.keys.has(k));
    }
    return [...b.types].some((t) => a.types.has(t));
  }

  commit(txn: SerializableTransaction): void {
    txn.end = this.clock();
    // Only transactions that can still overlap a running one matter; keep the list short.
    const horizon = txn.end - 60_000;
    this.committed = [...this.committed.filter((c) => (c.end ?? 0) > horizon), txn];
  }
}

/**
 * How many times the server runs a transaction that fails to serialise: `transactionAttempts`,
 * default 2 (`defaultTransactionAttempts = 2` in repository-connection.ts, 5.1.13 and later upstream;
 * an older ledger entry said 3; the server's source says 2).
 */
export const SERVER_TRANSACTION_ATTEMPTS = 2;
/** `transactionExpBackoffBaseDelayMs`, default 50. */
const SERVER_BACKOFF_BASE_MS = 50;

/**
 * MemoryRepository with the server's transaction semantics: the outermost transaction rolls back on
 * failure (TX-3), serialisable ones can conflict (TX-4), and writes are applied one at a time.
 */
export class TransactionalRepository extends MemoryRepository {
  /** Set inside a transaction; `wrote` says whether it stored anything (a read-only one conflicts with nobody). */
  private readonly inTransaction = new AsyncLocalStorage<{ wrote: boolean }>();
  /** The key a conditional create searches, for the transaction it opens. */
  private readonly searchedKey = new AsyncLocalStorage<string[]>();
  private readonly writes = new Mutex();
  /** What the FHIR request being answered has written so far (ServerCores' cost model). */
  private readonly requestWork = new AsyncLocalStorage<RequestWork>();

  /** `conflicts` undefined: no serialisation failures (the bot tests inject 409s where they want them). */
  constructor(private readonly conflicts?: SerializableConflicts) {
    super();
    assertMemoryRepositoryInternals(this);
    // MemoryRepository's private synchronous search and write, which every search, create, update
    // and conditional create goes through, shadowed per instance: SRCH-1 and VAL-1 (validation.ts).
    const self = this as unknown as {
      searchSync: Parameters<typeof withServerIdentifierSearch>[0];
      createResourceSync: (resource: Resource, ...rest: unknown[]) => Resource;
    };
    self.searchSync = withServerIdentifierSearch(self.searchSync.bind(this));
    const createResourceSync = self.createResourceSync.bind(this);
    self.createResourceSync = (resource, ...rest) => {
      validateWrite(resource);
      this.noteWrite();
      return createResourceSync(resource, ...rest);
    };
  }

  override async withTransaction<TResult>(
    callback: (repo: this) => Promise<TResult>,
    options?: TransactionOptions
  ): Promise<TResult> {
    if (this.inTransaction.getStore()) {
      return callback(this);
    }
    const conflicts = options?.serializable ? this.conflicts : undefined;
    if (!conflicts) {
      return this.atomically(callback);
    }
    const types =
      typeof options?.resourceTypes === 'string' ? [options.resourceTypes] : [...(options?.resourceTypes ?? [])];
    const keys = this.searchedKey.getStore() ?? [];
    for (let attempt = 0; attempt < SERVER_TRANSACTION_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(conflicts.backoffMs(attempt - 1));
      const txn = conflicts.begin(types, keys);
      if (conflicts.holdMs > 0) await sleep(conflicts.holdMs);
      const outcome = await this.atomically(async (repo) => {
        if (conflicts.conflicts(txn)) return { serialised: false as const };
        const value = await callback(repo);
        // Only a transaction that wrote can be the other side of a read/write conflict: a
        // conditional create that found its match commits and conflicts with nobody (TX-11).
        if (this.inTransaction.getStore()?.wrote) conflicts.commit(txn);
        return { serialised: true as const, value };
      });
      if (outcome.serialised) return outcome.value;
    }
    conflicts.failures++;
    throw new OperationOutcomeError(SERIALIZATION_FAILURE);
  }

  /**
   * MemoryRepository answers a conditional create synchronously, outside any transaction; the
   * server's repository (FhirRepository.conditionalCreate) runs it SERIALIZABLE over the searched
   * type, as it already does for conditional update and delete.
   */
  override conditionalCreate<T extends Resource>(
    resource: T,
    search: SearchRequest<T>,
    options?: CreateResourceOptions
  ): Promise<{ resource: WithId<T>; outcome: OperationOutcome }> {
    // The index key its search reads: the query itself, so that two creates of one key meet (TX-11).
    const key = `${search.resourceType}?${(search.filters ?? [])
      .map((f) => `${f.code}:${f.operator}=${f.value}`)
      .sort()
      .join('&')}`;
    return this.searchedKey.run([key], () =>
      this.withTransaction(() => super.conditionalCreate(resource, search, options), {
        serializable: true,
        resourceTypes: [search.resourceType],
      })
    );
  }

  // Plain writes outside a transaction take the same lock, so that none interleaves with a transaction.
  override createResource<T extends Resource>(
    resource: T,
    options?: CreateResourceOptions,
    update?: boolean
  ): Promise<WithId<T>> {
    return this.outsideTransaction(() => super.createResource(resource, options, update));
  }

  override updateResource<T extends Resource>(resource: T, options?: UpdateResourceOptions): Promise<WithId<T>> {
    return this.outsideTransaction(() => super.updateResource(resource, options));
  }

  override deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
    // MemoryRepository deletes straight from its map, past createResourceSync: a delete is a write too.
    this.noteWrite();
    return this.outsideTransaction(() => super.deleteResource(resourceType, id, options));
  }

  /**
   * Runs one FHIR request with `work` counting every version it writes (creates, updates,
   * deletes; each attempt of a transaction the server re-runs). An update equal to the stored
   * version writes nothing, as on the server (AC-10's `isNotModified`, checked before it gets here).
   */
  countingWrites<T>(work: RequestWork, request: () => Promise<T>): Promise<T> {
    return this.requestWork.run(work, request);
  }

  /** A version is written: the transaction it is in wrote (TX-11), and the request it serves did (TX-12). */
  private noteWrite(): void {
    const transaction = this.inTransaction.getStore();
    if (transaction) transaction.wrote = true;
    const work = this.requestWork.getStore();
    if (work) work.writes++;
  }

  private outsideTransaction<T>(write: () => Promise<T>): Promise<T> {
    return this.inTransaction.getStore() ? write() : this.atomically(write);
  }

  private atomically<TResult>(callback: (repo: this) => Promise<TResult>): Promise<TResult> {
    return this.writes.run(() =>
      this.inTransaction.run({ wrote: false }, async () => {
        const saved = this.copyOfStore();
        try {
          return await callback(this);
        } catch (err) {
          this.restore(saved);
          throw err;
        }
      })
    );
  }

  private internals(): MemoryRepositoryInternals {
    return this as unknown as MemoryRepositoryInternals;
  }

  private copyOfStore(): MemoryRepositoryInternals {
    const { resources, history } = this.internals();
    return {
      resources: new Map([...resources].map(([type, byId]) => [type, new Map(byId)])),
      history: new Map([...history].map(([type, byId]) => [type, new Map([...byId].map(([id, v]) => [id, [...v]]))])),
    };
  }

  private restore(saved: MemoryRepositoryInternals): void {
    const { resources, history } = this.internals();
    resources.clear();
    history.clear();
    for (const [type, byId] of saved.resources) resources.set(type, byId);
    for (const [type, byId] of saved.history) history.set(type, byId);
  }
}
