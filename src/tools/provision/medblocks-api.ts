// The Medblocks endpoint-management API (`Authorization: Bearer mb_sk_…`), the one HTTP client this
// package still writes by hand: Medblocks publishes no client library. Medplum is reached through
// `@medplum/core`'s MedplumClient instead (./medplum.ts). Errors name the call and the status, never
// a request or response body: bodies here carry signing secrets.

const REQUEST_TIMEOUT_MS = 30_000;
const MAX_PAGES = 20;
/** The API version this client speaks (Medblocks' `Version` header). */
const MEDBLOCKS_API_VERSION = '2026-04-25';

export class MedblocksApiError extends Error {
  readonly status: number | undefined;
  /** Medblocks' `Retry-After` (seconds) on a 429, so callers can wait exactly as long as asked. */
  retryAfterSeconds: number | undefined;
  constructor(method: string, path: string, status: number | undefined, detail?: string) {
    super(
      `Medblocks ${method} ${path} failed${status ? ` with HTTP ${status}` : ''}${detail ? `: ${detail}` : ''}` +
        (status === 401 || status === 403 ? ' (check MEDBLOCKS_API_KEY)' : '')
    );
    this.name = 'MedblocksApiError';
    this.status = status;
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
  /** The first 4 KB of the receiver's answer: the bots answer ids, a status and a reason only. */
  readonly last_response_body?: string | null;
  readonly last_redelivered_at?: string | null;
  readonly created_at?: string;
}

interface ListPage<T> {
  readonly data?: T[];
  readonly has_more?: boolean;
  readonly next_cursor?: string | null;
}

/** A short, safe explanation from a Medblocks error object, if there is one. */
function errorDetail(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string; code?: string } };
    return (parsed.error?.message ?? parsed.error?.code)?.slice(0, 200);
  } catch {
    return undefined;
  }
}

export class MedblocksApi {
  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
    private readonly fetchFn: typeof fetch = fetch
  ) {}

  private async call<T>(path: string, request: { method?: string; body?: unknown } = {}): Promise<T> {
    const url = new URL(path, this.baseUrl);
    const method = request.method ?? 'GET';
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.apiKey}`,
      version: MEDBLOCKS_API_VERSION,
    };
    if (request.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.fetchFn(url, {
        method,
        headers,
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new MedblocksApiError(
        method,
        url.pathname,
        undefined,
        `${err instanceof Error ? err.message : 'network error'} (check MEDBLOCKS_API_BASE_URL)`
      );
    }
    const text = await response.text();
    if (!response.ok) {
      const error = new MedblocksApiError(method, url.pathname, response.status, errorDetail(text));
      const retryAfter = Number(response.headers.get('retry-after'));
      if (Number.isFinite(retryAfter) && retryAfter > 0) error.retryAfterSeconds = retryAfter;
      throw error;
    }
    return (text ? JSON.parse(text) : {}) as T;
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

  /** Delivery records of one endpoint, filtered on delivery (redeliver looks for `delivered=false`). */
  listEvents(id: string, delivered?: boolean): Promise<MedblocksDelivery[]> {
    return this.list<MedblocksDelivery>(
      `/webhooks/${encodeURIComponent(id)}/events`,
      delivered === undefined ? {} : { delivered: String(delivered) }
    );
  }

  /** One more attempt now; Medblocks allows one per minute per event (429 with Retry-After). */
  redeliver(eventId: string): Promise<MedblocksDelivery> {
    return this.call(`/events/${encodeURIComponent(eventId)}/redeliver`, { method: 'POST' });
  }

  /** The EHR source's display name, for the Organization the sources sync keeps. */
  getSource(id: string): Promise<{ id: string; name?: string }> {
    return this.call(`/sources/${encodeURIComponent(id)}`);
  }
}
