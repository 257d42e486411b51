// The `fetch` services the tools' tests hand to provision, the monitor and verify (their real
// clients, MedplumClient and MedblocksApi, run against them), every request logged so that tests can
// assert "no writes" and "no secret in any URL":
// - LocalMedblocks: the local Medblocks itself, in process (src/tools/medblocks-local/in-process.ts),
//   the one Medblocks fake.
// - LoopbackService: the emulator (src/tools/emulator) over loopback, the Medplum of most tests.
// - FakeMedplum: only what the emulator does not model (docs/fidelity-ledger.md, ADM-1 … ADM-5): a
//   settable /healthcheck version, strict projects refusing `Bot.rawBody` before 5.2,
//   executableCode read back as a presigned storage URL, hosted Medplum's AWS for awslambda, a
//   client that is not a project admin, a real server's medplum.config.json. FHIR CRUD and search
//   are @medplum/fhir-router over a MemoryRepository; login, /auth/me, the admin API and `$deploy`
//   are added by hand around them.
import { allOk, badRequest, forbidden, getStatus, notFound, parseSearchRequest, unauthorized } from '@medplum/core';
import type { WithId } from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import type { FhirRequest } from '@medplum/fhir-router';
import type {
  Binary,
  Bot,
  ClientApplication,
  OperationOutcome,
  Project,
  ProjectMembership,
  ProjectSetting,
  Resource,
} from '@medplum/fhirtypes';
import { createInProcessLocalMedblocks } from '../../src/tools/medblocks-local/in-process';
import type {
  InProcessLocalMedblocks,
  InProcessLocalMedblocksOptions,
} from '../../src/tools/medblocks-local/in-process';

export const MEDPLUM_URL = 'https://medplum.test/';
export const MEDBLOCKS_URL = 'https://medblocks.test/';
export const CLIENT_ID = 'client-123';
export const CLIENT_SECRET = 'client-secret-DO-NOT-PRINT';
export const MEDBLOCKS_KEY = 'mb_sk_test_DO_NOT_PRINT';
export const PROJECT_ID = 'proj-1';

function base64Url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** Shaped like Medplum's: a JWT with `login_id`, so MedplumClient reads /auth/me after login. */
export const ACCESS_TOKEN = [
  base64Url({ alg: 'none' }),
  base64Url({ login_id: 'login-1', cid: CLIENT_ID, exp: 4_102_444_800, secret: 'access-token-DO-NOT-PRINT' }),
  'signature',
].join('.');

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

function json(status: number, body: unknown, contentType = 'application/fhir+json'): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': contentType } });
}

function outcome(o: OperationOutcome): Response {
  return json(getStatus(o), o);
}

abstract class FakeService {
  readonly requests: LoggedRequest[] = [];

  constructor(readonly url: string) {}

  /** A `fetch` answering this service's URLs. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const method = init?.method ?? 'GET';
    const body = typeof init?.body === 'string' ? init.body : '';
    this.requests.push({ method, path: url.pathname, body });
    try {
      return await this.handle(method, url, body, new Headers(init?.headers), init);
    } catch (err) {
      return json(500, { error: { message: err instanceof Error ? err.message : 'error' } });
    }
  };

  /** Requests that change something (everything but GET and the token call). */
  writes(): LoggedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET' && r.path !== '/oauth2/token');
  }

  protected abstract handle(
    method: string,
    url: URL,
    body: string,
    headers: Headers,
    init: RequestInit | undefined
  ): Promise<Response>;
}

/** Routes each request to the fake whose URL it starts with. */
export function fakeFetch(...services: readonly FakeService[]): typeof fetch {
  return async (input, init) => {
    const url = input instanceof Request ? input.url : input.toString();
    const service = services.find((s) => url.startsWith(s.url));
    if (!service) throw new TypeError(`fetch failed: no fake answers ${url}`);
    return service.fetch(input, init);
  };
}

const PRESIGNED = /\/storage\/([^/]+)\/[^/?]+\?Expires=/;

export class FakeMedplum extends FakeService {
  /** `/healthcheck`'s version; undefined: the answer has none. */
  version: string | undefined = '5.2.13-abc1234';
  /** Whether the client's membership is a project admin. */
  admin = true;
  /** Whether awslambda `$deploy`s find AWS credentials (true only on hosted Medplum). */
  aws = false;
  readonly repo = new MemoryRepository();
  private readonly router = new FhirRouter();
  private seeded: Promise<void> | undefined;

  constructor(url = MEDPLUM_URL) {
    super(url);
  }

  /** The project and the provisioning client, created on first use. */
  private seed(): Promise<void> {
    this.seeded ??= this.repo.withSeeding(async () => {
      await this.repo.createResource<Project>({
        resourceType: 'Project',
        id: PROJECT_ID,
        name: 'Test',
        // `cron` as well: a project set up for these bots can schedule the sweeper.
        features: ['bots', 'cron'],
        secret: [],
      });
      await this.repo.createResource<ClientApplication>({ resourceType: 'ClientApplication', id: CLIENT_ID });
    });
    return this.seeded;
  }

  async all<T extends Resource>(type: T['resourceType']): Promise<T[]> {
    await this.seed();
    return this.repo.searchResources<T>(parseSearchRequest(`${type}?_count=1000`));
  }

  /** Writes as the server's system would (no checks), keeping the id. */
  async put<T extends Resource>(resource: T): Promise<WithId<T>> {
    await this.seed();
    return resource.id ? this.repo.updateResource(resource) : this.repo.createResource(resource);
  }

  async remove(type: Resource['resourceType'], id: string): Promise<void> {
    await this.repo.deleteResource(type, id);
  }

  async bot(name: string): Promise<WithId<Bot>> {
    const bot = (await this.all<Bot>('Bot')).find((b) => b.name === name);
    if (!bot?.id) throw new Error(`no bot ${name}`);
    return bot as WithId<Bot>;
  }

  async membership(botId: string): Promise<WithId<ProjectMembership>> {
    const m = (await this.all<ProjectMembership>('ProjectMembership')).find(
      (x) => x.profile.reference === `Bot/${botId}`
    );
    if (!m?.id) throw new Error(`no membership for ${botId}`);
    return m as WithId<ProjectMembership>;
  }

  async project(): Promise<Project> {
    await this.seed();
    return this.repo.readResource<Project>('Project', PROJECT_ID);
  }

  async secrets(): Promise<ProjectSetting[]> {
    return (await this.project()).secret ?? [];
  }

  async setSecrets(secret: ProjectSetting[]): Promise<void> {
    await this.put({ ...(await this.project()), secret });
  }

  async setFeatures(features: Project['features']): Promise<void> {
    await this.put({ ...(await this.project()), features });
  }

  /** The code a Bot's executableCode points at, as stored. */
  deployedCode(bot: Bot): Promise<string | undefined> {
    return deployedCodeIn(this.repo, bot);
  }

  private rawBodyKnown(): boolean {
    const [major = 0, minor = 0] = (this.version ?? '0.0').split('.').map(Number);
    return major > 5 || (major === 5 && minor >= 2);
  }

  protected async handle(method: string, url: URL, body: string, headers: Headers): Promise<Response> {
    await this.seed();
    const path = url.pathname;
    if (method === 'POST' && path === '/oauth2/token') {
      const form = new URLSearchParams(body);
      if (form.get('client_id') !== CLIENT_ID || form.get('client_secret') !== CLIENT_SECRET) {
        return json(400, { error: 'invalid_request', error_description: 'Invalid client' }, 'application/json');
      }
      return json(
        200,
        {
          token_type: 'Bearer',
          access_token: ACCESS_TOKEN,
          expires_in: 3600,
          project: { reference: `Project/${PROJECT_ID}` },
          profile: { reference: `ClientApplication/${CLIENT_ID}` },
        },
        'application/json'
      );
    }
    if (method === 'GET' && path === '/healthcheck') {
      return json(200, { ok: true, ...(this.version ? { version: this.version } : {}) }, 'application/json');
    }
    if (headers.get('authorization') !== `Bearer ${ACCESS_TOKEN}`) return outcome(unauthorized);

    if (method === 'GET' && path === '/auth/me') {
      const project = await this.project();
      return json(200, {
        project: { resourceType: 'Project', id: project.id, name: project.name, features: project.features },
        membership: {
          resourceType: 'ProjectMembership',
          id: 'client-membership',
          profile: { reference: `ClientApplication/${CLIENT_ID}` },
          admin: this.admin,
        },
        profile: await this.repo.readResource('ClientApplication', CLIENT_ID),
      });
    }

    const admin = /^\/admin\/projects\/([^/]+)(?:\/(bot|secrets|members)(?:\/([^/]+))?)?$/.exec(path);
    if (admin) return this.handleAdmin(method, admin[1] ?? '', admin[2], admin[3], body);

    const deploy = /^\/fhir\/R4\/Bot\/([^/]+)\/\$deploy$/.exec(path);
    if (deploy && method === 'POST') return this.handleDeploy(deploy[1] ?? '', body);

    const fhirPath = path.replace(/^\/fhir\/R4/, '');
    if (fhirPath === path) return outcome(notFound);
    const binaryRead = /^\/Binary\/([^/]+)$/.exec(fhirPath);
    if (method === 'GET' && binaryRead && !headers.get('accept')?.startsWith('application/fhir+json')) {
      const binary = await this.repo.readResource<Binary>('Binary', binaryRead[1] ?? '').catch(() => undefined);
      if (!binary) return outcome(notFound);
      return new Response(Buffer.from(binary.data ?? '', 'base64'), {
        status: 200,
        headers: { 'content-type': binary.contentType },
      });
    }
    let resource: unknown = body ? JSON.parse(body) : undefined;
    if (isBot(resource)) {
      if ('rawBody' in resource && !this.rawBodyKnown()) {
        return outcome(badRequest('Invalid additional property "rawBody"', 'Bot.rawBody'));
      }
      resource = this.asWritten(resource);
    }
    if (isProject(resource) && fhirPath.startsWith('/Project/')) {
      // A project admin's edit of features is answered 200 and silently ignored.
      resource = { ...resource, features: (await this.project()).features };
    }
    const request: FhirRequest = {
      method: method as FhirRequest['method'],
      url: fhirPath + url.search,
      pathname: '',
      body: resource,
      params: Object.create(null) as Record<string, string>,
      query: Object.create(null) as Record<string, string>,
      headers: Object.fromEntries(headers.entries()),
    };
    const [result, answer] = await this.router.handleRequest(request, this.repo);
    return json(getStatus(result), answer ? this.asRead(answer) : result);
  }

  private async handleAdmin(
    method: string,
    projectId: string,
    sub: string | undefined,
    id: string | undefined,
    body: string
  ): Promise<Response> {
    if (projectId !== PROJECT_ID || !this.admin) return outcome(forbidden);
    const project = await this.project();
    if (method === 'GET' && !sub) {
      return json(200, { project: { id: project.id, name: project.name, secret: project.secret } });
    }
    if (method === 'POST' && sub === 'secrets') {
      return json(200, await this.put({ ...project, secret: JSON.parse(body) as ProjectSetting[] }));
    }
    if (method === 'POST' && sub === 'bot') {
      const request = JSON.parse(body) as Pick<Bot, 'name' | 'description' | 'runtimeVersion'> & {
        accessPolicy?: ProjectMembership['accessPolicy'];
      };
      const bot = await this.put<Bot>({
        resourceType: 'Bot',
        name: request.name,
        description: request.description,
        runtimeVersion: request.runtimeVersion,
      });
      await this.put<ProjectMembership>({
        resourceType: 'ProjectMembership',
        project: { reference: `Project/${PROJECT_ID}` },
        user: { reference: `Bot/${bot.id}` },
        profile: { reference: `Bot/${bot.id}` },
        accessPolicy: request.accessPolicy,
      });
      return json(201, bot);
    }
    if (method === 'POST' && sub === 'members' && id) {
      const membership = JSON.parse(body) as Partial<ProjectMembership>;
      if (membership.resourceType !== 'ProjectMembership' || membership.id !== id) return outcome(badRequest('id'));
      return json(200, await this.put(membership as ProjectMembership));
    }
    return outcome(notFound);
  }

  /** As the server's deployHandler: Binary and Bot are written before the runtime deploy, which may then fail. */
  private async handleDeploy(botId: string, body: string): Promise<Response> {
    const bot = await this.repo.readResource<Bot>('Bot', botId).catch(() => undefined);
    if (!bot) return outcome(notFound);
    const { code, filename } = JSON.parse(body) as { code?: string; filename?: string };
    if (!code) return outcome(badRequest('Bot missing executable code'));
    if (!(await this.project()).features?.includes('bots')) return outcome(badRequest('Bots not enabled'));
    const binary = await this.put<Binary>({
      resourceType: 'Binary',
      contentType: 'application/javascript',
      data: Buffer.from(code).toString('base64'),
    });
    await this.put<Bot>({
      ...bot,
      executableCode: { contentType: 'application/javascript', url: `Binary/${binary.id}`, title: filename },
    });
    if (bot.runtimeVersion === 'awslambda' && !this.aws) {
      return outcome(badRequest('Could not load credentials from any providers'));
    }
    return outcome(allOk);
  }

  /** Reads show executableCode as a presigned storage URL, as a real server's do. */
  private asRead(resource: Resource): Resource {
    if (resource.resourceType === 'Bundle') {
      return {
        ...resource,
        entry: resource.entry?.map((e) => (e.resource ? { ...e, resource: this.asRead(e.resource) } : e)),
      };
    }
    if (resource.resourceType !== 'Bot' || !resource.executableCode?.url) return resource;
    const id = /^Binary\/(.+)$/.exec(resource.executableCode.url)?.[1];
    const signed = `${this.url}storage/${id ?? ''}/v1?Expires=4102444800&Signature=sig-${id ?? ''}`;
    return { ...resource, executableCode: { ...resource.executableCode, url: signed } };
  }

  /** Writes store the canonical `Binary/{id}` back, as the server's rewrite does. */
  private asWritten(bot: Bot): Bot {
    const id = PRESIGNED.exec(bot.executableCode?.url ?? '')?.[1];
    return id && bot.executableCode ? { ...bot, executableCode: { ...bot.executableCode, url: `Binary/${id}` } } : bot;
  }
}

/** The code a Bot's `executableCode` (`Binary/{id}`, as written by `$deploy`) points at, in a store. */
export async function deployedCodeIn(repo: MemoryRepository, bot: Bot): Promise<string | undefined> {
  const id = /^Binary\/(.+)$/.exec(bot.executableCode?.url ?? '')?.[1];
  if (!id) return undefined;
  const binary = await repo.readResource<Binary>('Binary', id);
  return binary.data === undefined ? undefined : Buffer.from(binary.data, 'base64').toString('utf8');
}

function isBot(value: unknown): value is Bot {
  return typeof value === 'object' && value !== null && (value as Resource).resourceType === 'Bot';
}

function isProject(value: unknown): value is Project {
  return typeof value === 'object' && value !== null && (value as Resource).resourceType === 'Project';
}

const LOOPBACK_URL = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?\//;

/**
 * A server on this machine (the emulator, `src/tools/emulator`), its requests logged as the fakes'
 * are: the request goes out over loopback as it came; nothing else is reachable through it.
 */
export class LoopbackService extends FakeService {
  constructor(url: string) {
    const base = url.endsWith('/') ? url : `${url}/`;
    if (!LOOPBACK_URL.test(base)) throw new Error(`not a loopback URL: ${url}`);
    super(base);
  }

  protected handle(_method: string, url: URL, _body: string, _headers: Headers, init?: RequestInit): Promise<Response> {
    return fetch(url, init);
  }
}

/**
 * The local Medblocks (src/tools/medblocks-local), in process: the one Medblocks fake, answering at
 * MEDBLOCKS_URL with MEDBLOCKS_KEY, its requests logged as FakeMedplum's are. Its state is read
 * through `local` (`endpoints()`, `deliveryRecords()`, …). Deliveries go nowhere unless `deliver`
 * is given: a test reaches no network.
 */
export class LocalMedblocks extends FakeService {
  readonly local: InProcessLocalMedblocks;

  constructor(options: InProcessLocalMedblocksOptions = {}) {
    const local = createInProcessLocalMedblocks({
      url: MEDBLOCKS_URL,
      apiKey: MEDBLOCKS_KEY,
      deliver: () => Promise.reject(new TypeError('fetch failed: no receiver in this test')),
      ...options,
    });
    super(local.url);
    this.local = local;
  }

  protected handle(method: string, url: URL, body: string, headers: Headers): Promise<Response> {
    return this.local.fetch(url, { method, headers, ...(body ? { body } : {}) });
  }
}
