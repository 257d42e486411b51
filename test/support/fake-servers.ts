// Loopback stand-ins for a Medplum server and the Medblocks API, answering the calls provisioning
// and the monitor make with the shapes the real services use. State is plain and inspectable, and
// every request is logged so that tests can assert "no writes" and "no secret in any URL".
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AuditEvent, Bot, ProjectMembership, ProjectSetting, Resource } from '@medplum/fhirtypes';
import type { MedblocksDelivery, MedblocksEndpoint } from '../../src/provision/remote';

export const CLIENT_ID = 'client-123';
export const CLIENT_SECRET = 'client-secret-DO-NOT-PRINT';
export const ACCESS_TOKEN = 'access-token-DO-NOT-PRINT';
export const MEDBLOCKS_KEY = 'mb_sk_test_DO_NOT_PRINT';
export const PROJECT_ID = 'proj-1';

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly text?: string;
}

abstract class FakeServer {
  readonly requests: LoggedRequest[] = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.dispatch(req, res);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.server)
        this.server.close(() => {
          resolve();
        });
      else resolve();
    });
  }

  /** Requests that change something (everything but GET and the token call). */
  writes(): LoggedRequest[] {
    return this.requests.filter((r) => r.method !== 'GET' && r.path !== '/oauth2/token');
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of req) chunks.push(chunk as Uint8Array);
    const body = new TextDecoder().decode(Buffer.concat(chunks));
    const url = new URL(req.url ?? '/', 'http://fake');
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, body });
    let reply: Reply;
    try {
      reply = this.handle(req.method ?? 'GET', url, body, req.headers.authorization);
    } catch (err) {
      reply = { status: 500, body: { error: { message: err instanceof Error ? err.message : 'error' } } };
    }
    res.writeHead(reply.status, {
      'content-type': reply.text !== undefined ? 'application/javascript' : 'application/json',
    });
    res.end(reply.text ?? (reply.body === undefined ? '' : JSON.stringify(reply.body)));
  }

  protected abstract handle(method: string, url: URL, body: string, authorization: string | undefined): Reply;
}

function outcome(status: number, text: string): Reply {
  return {
    status,
    body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', details: { text } }] },
  };
}

/** Medplum: oauth2 token, /healthcheck, FHIR CRUD + search, admin bot/members/secrets, $deploy, Binary. */
export class FakeMedplum extends FakeServer {
  version = '5.2.13-abc1234';
  readonly store = new Map<string, Map<string, Resource>>();
  secrets: ProjectSetting[] = [];
  private nextId = 1;

  all<T extends Resource>(type: T['resourceType']): T[] {
    return [...(this.store.get(type)?.values() ?? [])] as T[];
  }

  put<T extends Resource>(resource: T): T & { id: string } {
    const id = resource.id ?? `${resource.resourceType.toLowerCase()}-${this.nextId++}`;
    const stored = {
      ...resource,
      id,
      meta: { versionId: String(this.nextId++), lastUpdated: new Date().toISOString() },
    };
    if (!this.store.has(resource.resourceType)) this.store.set(resource.resourceType, new Map());
    this.store.get(resource.resourceType)?.set(id, stored);
    return stored;
  }

  bot(name: string): Bot & { id: string } {
    const bot = this.all<Bot>('Bot').find((b) => b.name === name);
    if (!bot?.id) throw new Error(`no bot ${name}`);
    return bot as Bot & { id: string };
  }

  membership(botId: string): ProjectMembership & { id: string } {
    const m = this.all<ProjectMembership>('ProjectMembership').find((x) => x.profile.reference === `Bot/${botId}`);
    if (!m?.id) throw new Error(`no membership for ${botId}`);
    return m as ProjectMembership & { id: string };
  }

  private rawBodyKnown(): boolean {
    const [major = 0, minor = 0] = this.version.split('.').map(Number);
    return major > 5 || (major === 5 && minor >= 2);
  }

  protected handle(method: string, url: URL, body: string, authorization: string | undefined): Reply {
    const path = url.pathname;
    if (method === 'POST' && path === '/oauth2/token') {
      const form = new URLSearchParams(body);
      if (
        form.get('grant_type') !== 'client_credentials' ||
        form.get('client_id') !== CLIENT_ID ||
        form.get('client_secret') !== CLIENT_SECRET
      ) {
        return { status: 400, body: { error: 'invalid_client' } };
      }
      return {
        status: 200,
        body: {
          token_type: 'Bearer',
          access_token: ACCESS_TOKEN,
          expires_in: 3600,
          project: { reference: `Project/${PROJECT_ID}` },
        },
      };
    }
    if (method === 'GET' && path === '/healthcheck') return { status: 200, body: { ok: true, version: this.version } };
    if (authorization !== `Bearer ${ACCESS_TOKEN}`) return outcome(401, 'Unauthorized');

    const admin = /^\/admin\/projects\/([^/]+)(?:\/(bot|secrets|members)(?:\/([^/]+))?)?$/.exec(path);
    if (admin) {
      if (admin[1] !== PROJECT_ID) return outcome(403, 'Forbidden');
      const json = body ? (JSON.parse(body) as Record<string, unknown>) : {};
      if (method === 'GET' && !admin[2])
        return { status: 200, body: { project: { id: PROJECT_ID, name: 'Test', secret: this.secrets } } };
      if (method === 'POST' && admin[2] === 'secrets') {
        this.secrets = json as unknown as ProjectSetting[];
        return { status: 200, body: { resourceType: 'Project', id: PROJECT_ID, secret: this.secrets } };
      }
      if (method === 'POST' && admin[2] === 'bot') {
        const bot = this.put<Bot>({
          resourceType: 'Bot',
          name: json.name as string,
          description: json.description as string,
          runtimeVersion: json.runtimeVersion as Bot['runtimeVersion'],
        });
        this.put<ProjectMembership>({
          resourceType: 'ProjectMembership',
          project: { reference: `Project/${PROJECT_ID}` },
          user: { reference: `Bot/${bot.id}` },
          profile: { reference: `Bot/${bot.id}` },
          accessPolicy: json.accessPolicy as ProjectMembership['accessPolicy'],
        });
        return { status: 201, body: bot };
      }
      if (method === 'POST' && admin[2] === 'members' && admin[3]) {
        if (json.resourceType !== 'ProjectMembership' || json.id !== admin[3]) return { status: 400 };
        return { status: 200, body: this.put(json as unknown as ProjectMembership) };
      }
      return outcome(404, 'Not found');
    }

    const deploy = /^\/fhir\/R4\/Bot\/([^/]+)\/\$deploy$/.exec(path);
    if (deploy && method === 'POST') {
      const bot = this.store.get('Bot')?.get(deploy[1] ?? '') as Bot | undefined;
      if (!bot) return outcome(404, 'Not found');
      const { code, filename } = JSON.parse(body) as { code?: string; filename?: string };
      if (!code) return outcome(400, 'Missing code');
      const binary = this.put({
        resourceType: 'Binary',
        contentType: 'application/javascript',
        data: code,
      });
      this.put<Bot>({
        ...bot,
        executableCode: {
          contentType: 'application/javascript',
          url: `Binary/${binary.id}`,
          title: filename ?? 'index.js',
        },
      });
      return {
        status: 200,
        body: {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'information', code: 'informational', details: { text: 'All OK' } }],
        },
      };
    }

    const fhir = /^\/fhir\/R4\/([A-Za-z]+)(?:\/([^/]+))?$/.exec(path);
    if (!fhir?.[1]) return outcome(404, 'Not found');
    const [, type, id] = fhir;
    if (method === 'GET' && id) {
      const found = this.store.get(type)?.get(id);
      if (!found) return outcome(404, 'Not found');
      if (type === 'Binary') return { status: 200, text: (found as Resource & { data: string }).data };
      return { status: 200, body: found };
    }
    if (method === 'GET') return { status: 200, body: this.search(type, url.searchParams) };
    const resource = JSON.parse(body) as Resource;
    if (type === 'Bot' && 'rawBody' in resource && !this.rawBodyKnown())
      return outcome(400, 'Invalid additional property "rawBody"');
    if (method === 'POST') return { status: 201, body: this.put({ ...resource, id: undefined }) };
    if (method === 'PUT' && id) {
      if (!this.store.get(type)?.has(id)) return outcome(404, 'Not found');
      return { status: 200, body: this.put({ ...resource, id }) };
    }
    return outcome(405, 'Method not allowed');
  }

  private search(type: string, params: URLSearchParams): unknown {
    let found = this.all(type as Resource['resourceType']);
    const name = params.get('name');
    if (name !== null)
      found = found.filter((r) => ((r as { name?: string }).name ?? '').toLowerCase().startsWith(name.toLowerCase()));
    const profile = params.get('profile');
    if (profile !== null) found = found.filter((r) => (r as ProjectMembership).profile.reference === profile);
    const entity = params.get('entity');
    if (entity !== null)
      found = found.filter((r) => (r as AuditEvent).entity?.some((e) => e.what?.reference === entity));
    const date = params.get('date');
    if (date?.startsWith('ge')) found = found.filter((r) => (r as AuditEvent).recorded >= date.slice(2));
    return { resourceType: 'Bundle', type: 'searchset', entry: found.map((resource) => ({ resource })) };
  }
}

/** The Medblocks endpoint-management API. */
export class FakeMedblocks extends FakeServer {
  readonly endpoints: (MedblocksEndpoint & { secret: string })[] = [];
  readonly undelivered = new Map<string, MedblocksDelivery[]>();
  private n = 0;

  private issueSecret(): string {
    this.n++;
    return `whsec_fake_secret_${this.n}_DO_NOT_PRINT`;
  }

  private view(e: MedblocksEndpoint & { secret: string }): MedblocksEndpoint {
    const { secret: _secret, ...rest } = e;
    return rest;
  }

  protected handle(method: string, url: URL, body: string, authorization: string | undefined): Reply {
    if (authorization !== `Bearer ${MEDBLOCKS_KEY}`)
      return { status: 401, body: { error: { type: 'authentication_error', message: 'bad key' } } };
    const path = url.pathname;
    if (path === '/webhooks' && method === 'GET') {
      return {
        status: 200,
        body: {
          resource_type: 'list',
          data: this.endpoints.map((e) => this.view(e)),
          has_more: false,
          next_cursor: null,
        },
      };
    }
    if (path === '/webhooks' && method === 'POST') {
      const json = JSON.parse(body) as { url: string; events: string[] };
      const endpoint = {
        id: `wh_${this.endpoints.length + 1}`,
        url: json.url,
        events: json.events,
        status: 'active',
        secret: this.issueSecret(),
      };
      this.endpoints.push(endpoint);
      return { status: 200, body: { ...endpoint } };
    }
    const one = /^\/webhooks\/([^/]+)(?:\/(events|rotate-secret))?$/.exec(path);
    const endpoint = this.endpoints.find((e) => e.id === one?.[1]);
    if (!one || !endpoint)
      return { status: 404, body: { error: { type: 'not_found_error', message: 'no such endpoint' } } };
    if (method === 'PATCH' && !one[2]) {
      Object.assign(endpoint, JSON.parse(body) as object);
      return { status: 200, body: this.view(endpoint) };
    }
    if (method === 'POST' && one[2] === 'rotate-secret') {
      endpoint.secret = this.issueSecret();
      return { status: 200, body: { ...endpoint } };
    }
    if (method === 'GET' && one[2] === 'events') {
      const data = url.searchParams.get('delivered') === 'false' ? (this.undelivered.get(endpoint.id) ?? []) : [];
      return { status: 200, body: { resource_type: 'list', data, has_more: false, next_cursor: null } };
    }
    return { status: 405, body: { error: { type: 'invalid_request_error', message: 'method' } } };
  }
}
