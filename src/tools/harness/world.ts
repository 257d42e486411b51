// A test world: one in-memory FHIR store shared by all bots (as in one Medplum project), and for
// each bot a MockClient whose every request is checked against that bot's own AccessPolicy JSON
// (with @medplum/core's evaluation), counted, and optionally failed on purpose.
import { readFileSync } from 'node:fs';
import {
  badRequest,
  conflict,
  forbidden,
  notFound,
  preconditionFailed,
  serverError,
  tooManyRequests,
} from '@medplum/core';
import type { BotEvent, WithId } from '@medplum/core';
import type { MemoryRepository } from '@medplum/fhir-router';
import type {
  AccessPolicy,
  Bot,
  Consent,
  OperationOutcome,
  Patient,
  ProjectSetting,
  Resource,
  Task,
} from '@medplum/fhirtypes';
import { MockClient, MockFetchClient } from '@medplum/mock';
import { REGISTRY } from '../../runtime/registry';
import type { BotName, WebhookBotName } from '../../runtime/registry';
import { bindEventType, createWebhookBot } from '../../runtime/webhook-bot';
import { EVENT_DEFINITIONS } from '../../runtime/events';
import type { BotAnswer, MedplumBotHandler, PipelineOptions } from '../../runtime/webhook-bot';
import { withAccessPolicy } from '../emulator/access-policy-repository';
import { indexFhirDefinitions } from '../emulator/definitions';
import type { PolicyDecision } from '../emulator/access-policy-repository';
import { ProjectFhirRouter, TransactionalRepository } from '../emulator/project-fhir';
import type { ProjectFeature } from '../emulator/project-fhir';
import { serialise } from '../fixtures/events';
import type { MedblocksEvent } from '../../runtime/events';
import { signatureHeader } from '../../runtime/medblocks/signature';

export const TEST_SECRET = 'whsec_test_0123456789abcdef0123456789abcdef';

/**
 * Each event type's bot, bound as its bots/<bot>.ts binds it (test/registry.test.ts checks they
 * agree); deliveries build its handler with a test clock, sleep and log sink.
 */
const BUILD = Object.fromEntries(
  EVENT_DEFINITIONS.map((definition) => {
    const { bot } = bindEventType(definition);
    return [definition.bot, (options: PipelineOptions) => createWebhookBot<MedblocksEvent>(bot, options)];
  })
) as Readonly<Record<WebhookBotName, (options: PipelineOptions) => MedplumBotHandler>>;

export function loadPolicy(botName: WebhookBotName): AccessPolicy {
  return JSON.parse(
    readFileSync(new URL(`../../../access-policies/${botName}.json`, import.meta.url), 'utf8')
  ) as AccessPolicy;
}

export interface SentRequest {
  readonly index: number;
  readonly method: string;
  readonly url: string;
  readonly body: unknown;
}

/**
 * Called before each request is sent. Return `{status}` to answer with that error instead, `'drop'`
 * to fail it like a dropped connection, or nothing to send it (after any side effect, e.g. a
 * racing writer's create).
 */
export type FaultInjector = (request: SentRequest) => Promise<Fault | undefined> | Fault | undefined;
export type Fault = { status: number; outcome?: Resource } | 'drop';

export interface DeliverOptions {
  /** When Medblocks signed it (ms); defaults to the event's created_at. */
  readonly signedAt?: number;
  /** When the bot runs (ms); defaults to signedAt. */
  readonly now?: number;
  readonly secret?: string;
  readonly rawBody?: string | Uint8Array | Record<string, unknown>;
  readonly headers?: Record<string, string | string[] | undefined>;
  readonly secrets?: Record<string, string>;
}

export interface BotUnderTest {
  readonly name: WebhookBotName;
  readonly policy: AccessPolicy;
  readonly medplum: MockClient;
  readonly requests: SentRequest[];
  readonly logs: string[];
  readonly deliver: (event: MedblocksEvent, options?: DeliverOptions) => Promise<BotAnswer>;
  /** The number of requests made by the last delivery. */
  readonly lastRequestCount: () => number;
}

export interface WorldOptions {
  /** Extra project secrets shared by every bot (values as strings). */
  readonly secrets?: Record<string, string>;
  /** `Project.features`: with `transaction-bundles`, transaction bundles are atomic and capped (TX-1, TX-2). */
  readonly features?: readonly ProjectFeature[];
}

export class World {
  /** The server's transaction semantics (rollback; no serialisation failures: tests inject 409s themselves). */
  readonly repo = new TransactionalRepository();
  readonly router: ProjectFhirRouter;
  readonly decisions: (PolicyDecision & { bot: BotName })[] = [];
  readonly secrets: Record<string, string>;
  /** Unrestricted client over the same store, for setting up and asserting state. */
  readonly admin: MockClient;

  constructor(options: WorldOptions = {}) {
    // Without the indexed definitions, identifier searches match nothing (so a bot's conditional
    // create is refused): a World outside vitest's setup must not quietly model another server.
    indexFhirDefinitions();
    this.secrets = options.secrets ?? {};
    const features = options.features ?? ['bots'];
    this.router = new ProjectFhirRouter(() => features);
    this.admin = this.client(this.repo, []);
  }

  private client(repo: MemoryRepository, requests: SentRequest[], faults?: FaultInjector): MockClient {
    const fetchClient = new MockFetchClient(this.router, repo, 'https://example.com/', { seedDefaultData: false });
    // Skip the mock's own seeding: it would write sample StructureDefinitions over the real indexed
    // definitions, and through a bot's policy it would be (rightly) refused.
    fetchClient.initialized = true;
    const medplum = new MockClient({ mockFetchOverride: { client: fetchClient, router: this.router, repo } });
    const send = fetchClient.mockFetch.bind(fetchClient);
    fetchClient.mockFetch = async (url: string, init: { method?: string; body?: string }) => {
      const request: SentRequest = {
        index: requests.length,
        method: init.method ?? 'GET',
        url,
        body: typeof init.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined,
      };
      requests.push(request);
      const fault = await faults?.(request);
      if (fault === 'drop') {
        throw new TypeError('fetch failed: connection reset');
      }
      if (fault) {
        const outcome = fault.outcome ?? medplumOutcomeFor(fault.status);
        return {
          ok: false,
          status: fault.status,
          headers: new Headers({ 'content-type': 'application/fhir+json' }),
          json: () => Promise.resolve(outcome),
          text: () => Promise.resolve(JSON.stringify(outcome)),
        };
      }
      return send(url, init);
    };
    return medplum;
  }

  bot(
    name: WebhookBotName,
    options: { faults?: FaultInjector; runtime?: PipelineOptions; policy?: AccessPolicy } = {}
  ): BotUnderTest {
    const policy = options.policy ?? loadPolicy(name);
    const requests: SentRequest[] = [];
    const logs: string[] = [];
    const enforced = withAccessPolicy(this.repo, policy, (d) => this.decisions.push({ ...d, bot: name }));
    const medplum = this.client(enforced, requests, options.faults);
    let startIndex = 0;
    const descriptor = REGISTRY[name];
    const deliver = async (event: MedblocksEvent, deliverOptions: DeliverOptions = {}): Promise<BotAnswer> => {
      startIndex = requests.length;
      const signedAt = deliverOptions.signedAt ?? Date.parse(event.created_at);
      const runAt = deliverOptions.now ?? signedAt;
      const handler = BUILD[name]({
        sleep: () => Promise.resolve(),
        ...options.runtime,
        now: options.runtime?.now ?? (() => runAt),
        log: (line) => logs.push(line),
      });
      const botEvent = medplumBotEvent(event, {
        ...deliverOptions,
        signedAt,
        secretName: descriptor.secretName,
        secrets: { ...this.secrets, ...deliverOptions.secrets },
      });
      return handler(medplum, botEvent);
    };
    return { name, policy, medplum, requests, logs, deliver, lastRequestCount: () => requests.length - startIndex };
  }

  /**
   * A scheduled bot's client: its checked-in AccessPolicy enforced, every request recorded, as
   * `bot()` gives a webhook bot. The caller runs the bot's handler with it (there is no delivery).
   */
  scheduled(
    name: Exclude<BotName, WebhookBotName>,
    options: { faults?: FaultInjector } = {}
  ): { readonly medplum: MockClient; readonly requests: SentRequest[]; readonly policy: AccessPolicy } {
    const policy = JSON.parse(
      readFileSync(new URL(`../../../${REGISTRY[name].policyFile}`, import.meta.url), 'utf8')
    ) as AccessPolicy;
    const requests: SentRequest[] = [];
    const enforced = withAccessPolicy(this.repo, policy, (d) => this.decisions.push({ ...d, bot: name }));
    return { medplum: this.client(enforced, requests, options.faults), requests, policy };
  }

  async all<T extends Resource>(resourceType: T['resourceType']): Promise<WithId<T>[]> {
    const bundle = await this.repo.search<T>({ resourceType: resourceType });
    return (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
  }

  consents(): Promise<WithId<Consent>[]> {
    return this.all<Consent>('Consent');
  }

  tasks(): Promise<WithId<Task>[]> {
    return this.all<Task>('Task');
  }

  patients(): Promise<WithId<Patient>[]> {
    return this.all<Patient>('Patient');
  }

  /**
   * Everything in the store in a canonical form (keys sorted, server ids and metadata replaced) so
   * that two worlds fed the same events in different orders can be compared. A marker's subject is
   * left out: it records what was known when that event was applied (a refresh failure that came
   * before its flow has no patient yet), which is audit data, not business state.
   */
  async snapshot(): Promise<Record<string, unknown[]>> {
    const out: Record<string, unknown[]> = {};
    for (const type of ['Patient', 'Consent', 'Task', 'Basic'] as const) {
      out[type] = (await this.all(type))
        .map((r) => {
          const { subject: _subject, ...rest } = r as unknown as Record<string, unknown>;
          return normaliseForComparison(type === 'Basic' ? rest : (r as unknown as Record<string, unknown>));
        })
        .sort(byJson);
    }
    return out;
  }
}

/** The OperationOutcome Medplum's server answers with for a status (MedplumClient keys on its id, not the HTTP status). */
export function medplumOutcomeFor(status: number): OperationOutcome {
  switch (status) {
    case 403:
      return forbidden;
    case 404:
      return notFound;
    case 409:
      return conflict('Conflict');
    case 412:
      return preconditionFailed;
    case 429:
      return tooManyRequests;
    default:
      return status >= 500 ? serverError(new Error('Internal server error')) : badRequest('Bad request');
  }
}

function byJson(a: unknown, b: unknown): number {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Replaces generated ids with stable business keys so that two worlds can be compared. */
function normaliseForComparison(resource: Record<string, unknown>): unknown {
  const { id: _id, meta: _meta, ...rest } = resource;
  return JSON.parse(
    JSON.stringify(rest).replace(/"(Patient|Consent|Task|Basic)\/[A-Za-z0-9-]+"/g, '"$1/*"')
  ) as unknown;
}

/** A BotEvent shaped exactly as Medplum builds one for a public webhook with `Bot.rawBody: true`. */
export function medplumBotEvent(
  event: MedblocksEvent | undefined,
  options: DeliverOptions & { signedAt: number; secretName: string }
): BotEvent {
  const raw = options.rawBody ?? serialise(event ?? {});
  const signed = typeof raw === 'string' || raw instanceof Uint8Array ? raw : JSON.stringify(raw);
  const header = signatureHeader(options.secret ?? TEST_SECRET, Math.floor(options.signedAt / 1000), signed);
  const settings: Record<string, ProjectSetting> = {
    [options.secretName]: { name: options.secretName, valueString: TEST_SECRET },
  };
  for (const [name, value] of Object.entries(options.secrets ?? {})) {
    settings[name] = { name, valueString: value };
  }
  return {
    bot: { reference: 'Bot/test-bot' },
    contentType: 'application/json',
    input: raw,
    secrets: settings,
    headers: {
      'content-type': 'application/json',
      host: 'api.medplum.example',
      'medblocks-signature': header,
      ...options.headers,
    },
  };
}

export type { Bot };
