// The one module that talks HTTP: to Medplum (client-credentials token, FHIR, admin API, $deploy,
// /healthcheck) and to the Medblocks endpoint-management API. Errors name the call and the status,
// never a request or response body: bodies here can carry signing secrets.
import type {
  AccessPolicy,
  AuditEvent,
  Bot,
  Bundle,
  ProjectMembership,
  ProjectSetting,
  Reference,
  Resource,
} from '@medplum/fhirtypes';

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_PAGES = 20;

export class RemoteError extends Error {
  readonly status: number | undefined;
  constructor(service: string, method: string, path: string, status: number | undefined, detail?: string) {
    super(`${service} ${method} ${path} failed${status ? ` with HTTP ${status}` : ''}${detail ? `: ${detail}` : ''}`);
    this.name = 'RemoteError';
    this.status = status;
  }
}

interface JsonRequest {
  readonly method?: string;
  readonly body?: unknown;
  readonly form?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly accept?: string;
}

type Fetch = typeof fetch;

async function send(
  fetchFn: Fetch,
  service: string,
  url: URL,
  request: JsonRequest
): Promise<{ status: number; text: string }> {
  const method = request.method ?? 'GET';
  const headers: Record<string, string> = { accept: request.accept ?? 'application/json', ...request.headers };
  let body: string | undefined;
  if (request.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(request.form).toString();
  } else if (request.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(request.body);
  }
  let response: Response;
  try {
    response = await fetchFn(url, { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    throw new RemoteError(
      service,
      method,
      url.pathname,
      undefined,
      err instanceof Error ? err.message : 'network error'
    );
  }
  const text = await response.text();
  if (!response.ok) {
    throw new RemoteError(service, method, url.pathname, response.status, errorDetail(text));
  }
  return { status: response.status, text };
}

/** A short, safe explanation from an OperationOutcome or a Medblocks error object, if there is one. */
function errorDetail(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as {
      issue?: { details?: { text?: string }; diagnostics?: string }[];
      error?: { message?: string; code?: string };
    };
    const detail = parsed.issue?.[0]?.details?.text ?? parsed.error?.message ?? parsed.error?.code;
    return detail?.slice(0, 200);
  } catch {
    return undefined;
  }
}

function parseJson(text: string): unknown {
  return text ? (JSON.parse(text) as unknown) : {};
}

export interface Healthcheck {
  readonly ok?: boolean;
  readonly version?: string;
}

/** What provisioning and the monitor need from a Medplum project, over plain HTTP. */
export class MedplumApi {
  private constructor(
    readonly baseUrl: string,
    readonly projectId: string,
    private readonly accessToken: string,
    private readonly fetchFn: Fetch
  ) {}

  /**
   * Logs in like the Medplum CLI with client credentials (`POST oauth2/token`,
   * grant_type=client_credentials) and finds the client's project from the token answer or `auth/me`.
   */
  /** Connects with the CLI's credentials, failing clearly when they are not set. */
  static async fromSettings(
    settings: { medplumBaseUrl: string; clientId: string | undefined; clientSecret: string | undefined },
    fetchFn: Fetch = fetch
  ): Promise<MedplumApi> {
    if (!settings.clientId || !settings.clientSecret) {
      throw new Error('MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET must be set (environment or .env)');
    }
    return MedplumApi.connect(settings.medplumBaseUrl, settings.clientId, settings.clientSecret, fetchFn);
  }

  static async connect(
    baseUrl: string,
    clientId: string,
    clientSecret: string,
    fetchFn: Fetch = fetch
  ): Promise<MedplumApi> {
    const { text } = await send(fetchFn, 'Medplum', new URL('oauth2/token', baseUrl), {
      method: 'POST',
      form: { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret },
    });
    const token = parseJson(text) as { access_token?: string; project?: Reference };
    if (!token.access_token) throw new RemoteError('Medplum', 'POST', '/oauth2/token', undefined, 'no access_token');
    let projectId = token.project?.reference?.replace(/^Project\//, '');
    if (!projectId) {
      const { text: meText } = await send(fetchFn, 'Medplum', new URL('auth/me', baseUrl), {
        headers: { authorization: `Bearer ${token.access_token}` },
      });
      const me = parseJson(meText) as { project?: { id?: string } };
      projectId = me.project?.id;
    }
    if (!projectId) throw new RemoteError('Medplum', 'GET', '/auth/me', undefined, 'client is not in a project');
    return new MedplumApi(baseUrl, projectId, token.access_token, fetchFn);
  }

  private async call<T>(path: string, request: JsonRequest = {}): Promise<T> {
    const url = new URL(path, this.baseUrl);
    const { text } = await send(this.fetchFn, 'Medplum', url, {
      ...request,
      headers: { authorization: `Bearer ${this.accessToken}`, ...request.headers },
    });
    return parseJson(text) as T;
  }

  /** `/healthcheck` is public; its `version` tells whether the server knows Bot.rawBody. */
  async healthcheck(): Promise<Healthcheck> {
    const { text } = await send(this.fetchFn, 'Medplum', new URL('healthcheck', this.baseUrl), {});
    return parseJson(text) as Healthcheck;
  }

  /** All matches, following `next` links up to a fixed number of pages. */
  async search<T extends Resource>(resourceType: T['resourceType'], params: Record<string, string>): Promise<T[]> {
    const out: T[] = [];
    let next: string | undefined = `fhir/R4/${resourceType}?${new URLSearchParams(params).toString()}`;
    for (let page = 0; next && page < MAX_PAGES; page++) {
      const bundle: Bundle<T> = await this.call<Bundle<T>>(next, { accept: 'application/fhir+json' });
      for (const entry of bundle.entry ?? []) if (entry.resource) out.push(entry.resource);
      next = bundle.link?.find((l) => l.relation === 'next')?.url;
    }
    return out;
  }

  read<T extends Resource>(resourceType: T['resourceType'], id: string): Promise<T> {
    return this.call<T>(`fhir/R4/${resourceType}/${encodeURIComponent(id)}`, { accept: 'application/fhir+json' });
  }

  create<T extends Resource>(resource: T): Promise<T> {
    return this.call<T>(`fhir/R4/${resource.resourceType}`, { method: 'POST', body: resource });
  }

  update<T extends Resource & { id?: string }>(resource: T): Promise<T> {
    return this.call<T>(`fhir/R4/${resource.resourceType}/${encodeURIComponent(resource.id ?? '')}`, {
      method: 'PUT',
      body: resource,
    });
  }

  /** The admin API creates the Bot and its ProjectMembership carrying the policy in one call. */
  createBot(
    name: string,
    description: string,
    accessPolicy: Reference<AccessPolicy>,
    runtimeVersion: string
  ): Promise<Bot> {
    return this.call<Bot>(`admin/projects/${this.projectId}/bot`, {
      method: 'POST',
      body: { name, description, accessPolicy, runtimeVersion },
    });
  }

  async membershipOf(botId: string): Promise<ProjectMembership | undefined> {
    const found = await this.search<ProjectMembership>('ProjectMembership', { profile: `Bot/${botId}` });
    return found[0];
  }

  /** Memberships are updated through the admin API, as the Medplum app does. */
  updateMembership(membership: ProjectMembership): Promise<ProjectMembership> {
    return this.call<ProjectMembership>(`admin/projects/${this.projectId}/members/${membership.id ?? ''}`, {
      method: 'POST',
      body: membership,
    });
  }

  async projectSecrets(): Promise<ProjectSetting[]> {
    const details = await this.call<{ project?: { secret?: ProjectSetting[] } }>(`admin/projects/${this.projectId}`);
    return details.project?.secret ?? [];
  }

  /** Replaces the whole `Project.secret` list (the admin API has no per-secret call). */
  async setProjectSecrets(secrets: readonly ProjectSetting[]): Promise<void> {
    await this.call(`admin/projects/${this.projectId}/secrets`, { method: 'POST', body: secrets });
  }

  /** What `medplum bot deploy` sends: the bundle's text and its file name. */
  async deploy(botId: string, code: string, filename: string): Promise<void> {
    await this.call(`fhir/R4/Bot/${encodeURIComponent(botId)}/$deploy`, { method: 'POST', body: { code, filename } });
  }

  /** The deployed code (Bot.executableCode points at a Binary), or undefined when unreadable. */
  async readBinaryText(reference: string): Promise<string | undefined> {
    const id = reference.replace(/^Binary\//, '');
    try {
      const { text } = await send(
        this.fetchFn,
        'Medplum',
        new URL(`fhir/R4/Binary/${encodeURIComponent(id)}`, this.baseUrl),
        {
          accept: '*/*',
          headers: { authorization: `Bearer ${this.accessToken}` },
        }
      );
      return text;
    } catch {
      return undefined;
    }
  }

  auditEvents(botId: string, sinceIso: string): Promise<AuditEvent[]> {
    return this.search<AuditEvent>('AuditEvent', {
      entity: `Bot/${botId}`,
      date: `ge${sinceIso}`,
      _sort: '-date',
      _count: '1000',
    });
  }
}

export interface MedblocksEndpoint {
  readonly id: string;
  readonly url: string;
  readonly events: readonly string[];
  /** `active` or `disabled`; kept open for values Medblocks may add. */
  readonly status: string;
  readonly description?: string;
  readonly metadata?: Record<string, string>;
}

export interface MedblocksDelivery {
  readonly id: string;
  readonly type: string;
  readonly attempts?: number;
  readonly next_attempt_at?: string | null;
  readonly delivered_at?: string | null;
  readonly last_status_code?: number | null;
  readonly created_at?: string;
}

interface ListPage<T> {
  readonly data?: T[];
  readonly has_more?: boolean;
  readonly next_cursor?: string | null;
}

/** The Medblocks endpoint-management API (`Authorization: Bearer mb_sk_…`). */
export class MedblocksApi {
  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
    private readonly fetchFn: Fetch = fetch
  ) {}

  private async call<T>(path: string, request: JsonRequest = {}): Promise<T> {
    const { text } = await send(this.fetchFn, 'Medblocks', new URL(path, this.baseUrl), {
      ...request,
      headers: { authorization: `Bearer ${this.apiKey}`, version: '2026-04-25', ...request.headers },
    });
    return parseJson(text) as T;
  }

  private async list<T>(path: string, params: Record<string, string>): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = new URLSearchParams({ ...params, limit: '100', ...(cursor ? { starting_after: cursor } : {}) });
      const result = await this.call<ListPage<T>>(`${path}?${query.toString()}`);
      out.push(...(result.data ?? []));
      if (!result.has_more || !result.next_cursor) break;
      cursor = result.next_cursor;
    }
    return out;
  }

  listEndpoints(): Promise<MedblocksEndpoint[]> {
    return this.list<MedblocksEndpoint>('/webhooks', {});
  }

  /** The answer carries the signing secret: this is the only time Medblocks returns it (besides rotation). */
  createEndpoint(body: {
    url: string;
    events: string[];
    description: string;
  }): Promise<MedblocksEndpoint & { secret?: string }> {
    return this.call(`/webhooks`, { method: 'POST', body });
  }

  updateEndpoint(
    id: string,
    patch: Partial<Pick<MedblocksEndpoint, 'status' | 'events' | 'url'>>
  ): Promise<MedblocksEndpoint> {
    return this.call(`/webhooks/${encodeURIComponent(id)}`, { method: 'PATCH', body: patch });
  }

  rotateSecret(id: string): Promise<{ secret?: string }> {
    return this.call(`/webhooks/${encodeURIComponent(id)}/rotate-secret`, { method: 'POST' });
  }

  undeliveredEvents(id: string): Promise<MedblocksDelivery[]> {
    return this.list<MedblocksDelivery>(`/webhooks/${encodeURIComponent(id)}/events`, { delivered: 'false' });
  }
}
