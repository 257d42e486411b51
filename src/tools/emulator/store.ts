// The emulator's FHIR store: one MemoryRepository behind a FhirRouter (what @medplum/mock uses),
// answering FHIR requests in-process for the bots (each through its own AccessPolicy view) and
// over HTTP for people and tools. What the server does and the mock does not is added in
// project-fhir.ts (transactions as the project's features decide, rollback, serialisation
// conflicts); here, each request can also be slowed down by a simulated network latency.
import { setTimeout as sleep } from 'node:timers/promises';
import { getStatus, normalizeOperationOutcome } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { FhirRequest, MemoryRepository } from '@medplum/fhir-router';
import type { AccessPolicy, Bundle, Resource } from '@medplum/fhirtypes';
import { MockClient, MockFetchClient } from '@medplum/mock';
import { withAccessPolicy } from './access-policy-repository';
import type { DecisionListener } from './access-policy-repository';
import { indexFhirDefinitions } from './definitions';
import { ProjectFhirRouter, SerializableConflicts, TransactionalRepository } from './project-fhir';
import type { ProjectFeature } from './project-fhir';
import { ServerCores } from './server-work';
import type { RequestWork, ServerWorkModel } from './server-work';

/** MockClient's own base URL; its MockFetchClient must use the same one or every request misses. */
const MOCK_BASE_URL = 'https://example.com/';

/** Where FHIR lives under a server's base URL, as on Medplum. */
export const FHIR_PATH = 'fhir/R4';

export interface StoreOptions {
  /** Added before every FHIR request a bot makes, in milliseconds (0 = none). */
  readonly latencyMs?: number;
  /**
   * How long a SERIALIZABLE transaction holds its place, in milliseconds: the database time the
   * in-memory store does not spend. Concurrent ones touching the same types within it conflict (TX-4).
   */
  readonly transactionMs?: number;
  /**
   * `Project.features`; default `['bots', 'cron']`, as a project made for these bots has (`cron` for
   * the sweeper's schedule), without `transaction-bundles`.
   */
  readonly features?: readonly ProjectFeature[];
  /** Jitter for the server's transaction retry backoff (tests fix it). */
  readonly random?: () => number;
  /**
   * Postgres' GIN `fastupdate` on the server's token indexes: on (Postgres' default) makes
   * overlapping SERIALIZABLE transactions of a type conflict, off only those searching one key
   * (ledger TX-9, TX-11).
   */
  readonly ginFastUpdate?: boolean;
  /**
   * The server's CPU as a model (server-work.ts): each FHIR request a bot makes then waits for a
   * core for what it costs. Undefined: no CPU is modelled, only `latencyMs`.
   */
  readonly serverWork?: ServerWorkModel;
}

export interface FhirAnswer {
  readonly status: number;
  readonly body: Resource;
}

export interface FhirCall {
  readonly method: string;
  /** Path and query below `fhir/R4`, e.g. `/Patient?identifier=…` or `` for a batch. */
  readonly path: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export class EmulatorStore {
  readonly repo: TransactionalRepository;
  readonly router: ProjectFhirRouter;
  readonly conflicts: SerializableConflicts;
  readonly features: readonly ProjectFeature[];
  readonly latencyMs: number;
  /** The modelled server CPU, when the options asked for one: bot runs take their share too (webhook.ts). */
  readonly cores: ServerCores | undefined;
  private requestCount = 0;

  constructor(options: StoreOptions = {}) {
    indexFhirDefinitions();
    this.latencyMs = Math.max(0, options.latencyMs ?? 0);
    this.features = options.features ?? ['bots', 'cron'];
    this.conflicts = new SerializableConflicts(
      Math.max(0, options.transactionMs ?? 0),
      undefined,
      options.random,
      options.ginFastUpdate
    );
    this.repo = new TransactionalRepository(this.conflicts);
    this.cores = options.serverWork ? new ServerCores(options.serverWork) : undefined;
    this.router = new ProjectFhirRouter(() => this.features);
  }

  /** FHIR requests answered so far (bots and HTTP), for benchmarks and tests. */
  get requests(): number {
    return this.requestCount;
  }

  /** The view a bot gets: the shared store, filtered and guarded by its AccessPolicy. */
  viewFor(policy: AccessPolicy, onDecision?: DecisionListener): MemoryRepository {
    return withAccessPolicy(this.repo, policy, onDecision);
  }

  /**
   * Answers one FHIR request against `view` (the unrestricted store by default). Requests run
   * concurrently, as on the server; the repository decides what serialises and what conflicts.
   */
  async handle(call: FhirCall, view: MemoryRepository = this.repo): Promise<FhirAnswer> {
    this.requestCount++;
    if (this.latencyMs > 0) {
      await sleep(this.latencyMs);
    }
    const request: FhirRequest = {
      method: call.method.toUpperCase() as FhirRequest['method'],
      url: call.path,
      pathname: '',
      body: call.body,
      params: Object.create(null) as Record<string, string>,
      query: Object.create(null) as Record<string, string>,
      headers: call.headers,
    };
    const work: RequestWork = { entries: entriesOf(call.body), writes: 0 };
    let answer: FhirAnswer;
    try {
      const [outcome, resource] = await this.repo.countingWrites(work, () => this.router.handleRequest(request, view));
      answer = { status: getStatus(outcome), body: resource ?? outcome };
    } catch (err) {
      const outcome = normalizeOperationOutcome(err);
      answer = { status: getStatus(outcome), body: outcome };
    }
    // The answer leaves once the server has done the request's work: what it did decides the cost.
    await this.cores?.request(work);
    return answer;
  }

  /**
   * A `fetch` for a MedplumClient whose base URL is `baseUrl`: FHIR requests are answered here
   * through `view`; anything else goes to `fallback` (the network), as a bot's fetch would.
   */
  fetchFor(baseUrl: string, view: MemoryRepository, fallback: typeof fetch = fetch): typeof fetch {
    const prefix = `${baseUrl.replace(/\/$/, '')}/${FHIR_PATH}`;
    const storeFetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
      const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (!url.startsWith(prefix)) {
        return fallback(input, init);
      }
      const body = typeof init.body === 'string' && init.body !== '' ? (JSON.parse(init.body) as unknown) : undefined;
      const answer = await this.handle(
        { method: init.method ?? 'GET', path: url.slice(prefix.length), body, headers: headerRecord(init.headers) },
        view
      );
      return new Response(JSON.stringify(answer.body), {
        status: answer.status,
        headers: { 'content-type': 'application/fhir+json' },
      });
    };
    return storeFetch;
  }

  /**
   * A MockClient over `view` (the unrestricted store by default) for tests, the demo and the
   * plain-CommonJS run of a bundle. Seeding is skipped: the mock would otherwise write its sample
   * StructureDefinitions over the real indexed definitions.
   */
  client(view: MemoryRepository = this.repo): MockClient {
    const fetchClient = new MockFetchClient(this.router, view, MOCK_BASE_URL, { seedDefaultData: false });
    fetchClient.initialized = true;
    return new MockClient({ mockFetchOverride: { client: fetchClient, router: this.router, repo: view } });
  }

  /** Every resource of a type, optionally narrowed by a search query (`identifier=…`). */
  async all<T extends Resource>(resourceType: T['resourceType'], query = ''): Promise<WithId<T>[]> {
    const answer = await this.handle({
      method: 'GET',
      path: `/${resourceType}?_count=1000${query ? `&${query}` : ''}`,
    });
    const bundle = answer.body as Bundle<WithId<T>>;
    return (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
  }
}

function headerRecord(headers: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  const entries: Iterable<[string, string | undefined]> =
    headers instanceof Headers || Array.isArray(headers) ? headers : Object.entries(headers);
  for (const [name, value] of entries) {
    if (value !== undefined) out[name.toLowerCase()] = value;
  }
  return out;
}

/** The interactions one request holds: a batch's or transaction's entries, else one. */
function entriesOf(body: unknown): number {
  const bundle = body as Partial<Bundle> | undefined;
  return bundle?.resourceType === 'Bundle' && Array.isArray(bundle.entry) ? Math.max(1, bundle.entry.length) : 1;
}
