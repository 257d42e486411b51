// The Medblocks endpoint-management API (`Authorization: Bearer mb_sk_…`), the one HTTP client this
// package still writes by hand: Medblocks publishes no client library. Medplum is reached through
// `@medplum/core`'s MedplumClient instead (./medplum.ts). Errors name the call and the status, never
// a request or response body: bodies here carry signing secrets.
//
// Against a hostile or failing server every request gives up after a timeout that
// names what it waited for; a read that meets a 429, 502, 503, 504 or a network failure is retried
// (3 times, as Medblocks' own SDK does, honouring Retry-After: contract MB-C4), every wait charged to one budget per
// client, so that no run can wait for hours; list pages are bounded and their items type-checked, and
// an answer that is not JSON says so, naming the variable to check.
import * as v from 'valibot';
import { EndpointSchema } from '../../runtime/medblocks/endpoints';
// The API version (`Version` header) the bots speak too: one constant for both.
import { MEDBLOCKS_API_VERSION } from '../../runtime/medblocks/version';
import { PatientDetailSchema, PatientSchema } from '../../runtime/medblocks/patients';
import type { MedblocksPatientDetail } from '../../runtime/medblocks/patients';
import { describeNetworkError, NoAnswerError, UnreachableError } from './reach';

const REQUEST_TIMEOUT_MS = 30_000;
/** Pages of 100 followed per list: 10,000 items, then an error (never a silent stop). */
const MAX_PAGES = 100;
const PAGE_LIMIT = 100;
/** Retries of one read after a transient answer, as Medblocks' SDK. */
const READ_RETRIES = 3;
/** The longest single wait (a Retry-After beyond it is cut to it). */
const MAX_SINGLE_WAIT_MS = 65_000;
/** All waits of one client together, whatever the server asks: then the run stops and says so. */
export const DEFAULT_WAIT_BUDGET_MS = 10 * 60_000;
const TRANSIENT = new Set([429, 502, 503, 504]);

/**
 * The time one run may spend waiting on Medblocks (rate limits, outages). Shared by the client's own
 * retries and the tools' (redeliver's one-a-minute limit), so that 2,000 rate-limited events cannot
 * turn into a wait of days.
 */
export class WaitBudget {
  private spentMs = 0;
  constructor(readonly totalMs: number = DEFAULT_WAIT_BUDGET_MS) {}

  /** Takes `ms` from the budget; false, taking nothing, when that would exceed it. */
  spend(ms: number): boolean {
    if (this.spentMs + ms > this.totalMs) return false;
    this.spentMs += ms;
    return true;
  }

  describe(): string {
    return `the ${String(Math.round(this.totalMs / 60_000))}-minute budget for waiting on Medblocks is spent`;
  }
}

export interface MedblocksApiOptions {
  /** Per request; a request without an answer in time fails naming it. */
  readonly timeoutMs?: number;
  readonly waitBudget?: WaitBudget;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Told before each wait, for the tool's progress output. */
  readonly onWait?: (line: string) => void;
}

export class MedblocksApiError extends Error {
  readonly status: number | undefined;
  readonly path: string;
  /** What went wrong, without the call: reused when a retry gives up. */
  readonly detailText: string;
  /** Medblocks' `Retry-After` (seconds) on a 429, so callers can wait exactly as long as asked. */
  retryAfterSeconds: number | undefined;
  /** A 429, 502, 503, 504 or no answer: worth another try. */
  transient = false;
  constructor(method: string, path: string, status: number | undefined, detail?: string) {
    super(
      `Medblocks ${method} ${path} failed${status ? ` with HTTP ${status}` : ''}${detail ? `: ${detail}` : ''}` +
        (status === 401 || status === 403 ? ' (check MEDBLOCKS_API_KEY)' : '')
    );
    this.name = 'MedblocksApiError';
    this.status = status;
    this.path = path;
    this.detailText = detail ?? (status ? `HTTP ${String(status)}` : 'no answer');
  }
}

const ListPageSchema = v.looseObject({
  data: v.array(v.unknown()),
  has_more: v.optional(v.nullable(v.boolean())),
  next_cursor: v.optional(v.nullable(v.string())),
});

const optionalText = v.optional(v.nullable(v.string()));
const DeliverySchema = v.looseObject({
  id: v.string(),
  type: v.string(),
  webhook_endpoint_id: optionalText,
  attempts: v.optional(v.nullable(v.number())),
  next_attempt_at: optionalText,
  delivered_at: optionalText,
  last_status_code: v.optional(v.nullable(v.number())),
  last_response_body: optionalText,
  last_redelivered_at: optionalText,
  created_at: optionalText,
});

/** A webhook endpoint as Medblocks lists it; `status` is `active` or `disabled`, kept open for values it may add. */
export type MedblocksEndpoint = v.InferOutput<typeof EndpointSchema> & { readonly metadata?: Record<string, string> };

/**
 * A delivery record. `last_response_body` is the first 4 KB of the receiver's answer: the bots
 * answer ids, a status and a reason only.
 */
export type MedblocksDelivery = v.InferOutput<typeof DeliverySchema>;

/** `FhirSource` as published (all seven fields required; `type`, `logo_url`, `portal_url` nullable). */
const FhirSourceSchema = v.looseObject({
  id: v.string(),
  resource_type: v.optional(v.string()),
  name: v.string(),
  type: v.optional(v.nullable(v.string())),
  fhir_base_url: v.optional(v.string()),
  logo_url: v.optional(v.nullable(v.string())),
  portal_url: v.optional(v.nullable(v.string())),
});
export type FhirSource = v.InferOutput<typeof FhirSourceSchema>;

export type { MedblocksPatientConnection, MedblocksPatientDetail } from '../../runtime/medblocks/patients';

/** Where a value fails a schema, as `data[3].url`: the shape, never the value. */
function issuePath(issues: readonly v.BaseIssue<unknown>[], prefix: string): string {
  const path = (issues[0]?.path ?? []).map((p) => (typeof p.key === 'number' ? `[${p.key}]` : `.${String(p.key)}`));
  return `${prefix}${path.join('')}`;
}

/**
 * A short, safe explanation from a Medblocks error object, if there is one, with the request id
 * (`error.request_id`, else the `X-Request-Id` header) that Medblocks' support asks for.
 */
function errorDetail(text: string, headerRequestId: string | null): string | undefined {
  let message: string | undefined;
  let requestId = headerRequestId ?? undefined;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown; code?: unknown; request_id?: unknown } };
    const { error } = parsed;
    const said =
      typeof error?.message === 'string' ? error.message : typeof error?.code === 'string' ? error.code : undefined;
    message = said?.slice(0, 200);
    if (typeof error?.request_id === 'string') requestId = error.request_id;
  } catch {
    // Not JSON: the status says enough.
  }
  const id = requestId && /^[\w.-]{1,80}$/.test(requestId) ? `request_id ${requestId}` : undefined;
  return [message, id].filter(Boolean).join('; ') || undefined;
}

export class MedblocksApi {
  /** The waits of this client and of the tools using it. */
  readonly waitBudget: WaitBudget;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly onWait: (line: string) => void;

  constructor(
    private readonly baseUrl: string,
    private readonly apiKey: string,
    private readonly fetchFn: typeof fetch = fetch,
    options: MedblocksApiOptions = {}
  ) {
    this.waitBudget = options.waitBudget ?? new WaitBudget();
    this.timeoutMs = options.timeoutMs ?? REQUEST_TIMEOUT_MS;
    this.sleep = options.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    this.onWait = options.onWait ?? (() => undefined);
  }

  private async call<T>(path: string, request: { method?: string; body?: unknown } = {}): Promise<T> {
    const method = request.method ?? 'GET';
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.callOnce<T>(path, method, request.body);
      } catch (err) {
        if (!(err instanceof MedblocksApiError) || !err.transient || method !== 'GET' || attempt >= READ_RETRIES) {
          throw err;
        }
        const waitMs = Math.min(
          err.retryAfterSeconds !== undefined ? err.retryAfterSeconds * 1000 : 500 * 2 ** attempt,
          MAX_SINGLE_WAIT_MS
        );
        if (!this.waitBudget.spend(waitMs)) {
          throw new MedblocksApiError(method, err.path, err.status, `${err.detailText}; ${this.waitBudget.describe()}`);
        }
        this.onWait(
          `wait  Medblocks ${method} ${err.path} answered ${err.status ? `HTTP ${String(err.status)}` : 'nothing'}; retrying in ${String(Math.ceil(waitMs / 1000))} s`
        );
        await this.sleep(waitMs);
      }
    }
  }

  private async callOnce<T>(path: string, method: string, body: unknown): Promise<T> {
    const url = new URL(path, this.baseUrl);
    const headers: Record<string, string> = {
      accept: 'application/json',
      authorization: `Bearer ${this.apiKey}`,
      version: MEDBLOCKS_API_VERSION,
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    let text: string;
    try {
      response = await this.fetchFn(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      const seconds =
        this.timeoutMs < 1000 ? `${String(this.timeoutMs)} ms` : `${String(Math.round(this.timeoutMs / 1000))} s`;
      // A fetch wrapped by reachableFetch already names the variable and the cause.
      const detail =
        err instanceof UnreachableError || err instanceof NoAnswerError
          ? err.message
          : `${timedOut ? `no answer within ${seconds} (waiting for ${method} ${url.pathname})` : describeNetworkError(err)} (check MEDBLOCKS_API_BASE_URL=${this.baseUrl})`;
      const error = new MedblocksApiError(method, url.pathname, undefined, detail);
      error.transient = true;
      throw error;
    }
    if (!response.ok) {
      // An HTML error page (a wrong host's 404, a proxy's 502) has no Medblocks error to quote: the
      // URL it came from is what to check.
      const html = /^text\/html\b/i.test(response.headers.get('content-type') ?? '');
      const error = new MedblocksApiError(
        method,
        url.pathname,
        response.status,
        html
          ? `the answer is an HTML page, not Medblocks' API: is MEDBLOCKS_API_BASE_URL=${this.baseUrl} Medblocks' API${response.status >= 500 ? ', or a proxy in front of it failing' : ''}?`
          : errorDetail(text, response.headers.get('x-request-id'))
      );
      const retryAfter = Number(response.headers.get('retry-after'));
      if (Number.isFinite(retryAfter) && retryAfter > 0) error.retryAfterSeconds = retryAfter;
      error.transient = TRANSIENT.has(response.status);
      throw error;
    }
    if (!text) return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      const type = response.headers.get('content-type') ?? 'no content type';
      throw new MedblocksApiError(
        method,
        url.pathname,
        response.status,
        `the answer is not JSON (${type.split(';')[0] ?? type}): is MEDBLOCKS_API_BASE_URL=${this.baseUrl} Medblocks' API?`
      );
    }
  }

  private async list<T>(
    path: string,
    params: Record<string, string>,
    schema: v.GenericSchema<unknown, T>
  ): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const query = new URLSearchParams({
        ...params,
        limit: String(PAGE_LIMIT),
        ...(cursor ? { starting_after: cursor } : {}),
      });
      const answer = await this.call<unknown>(`${path}?${query.toString()}`);
      const listPage = v.safeParse(ListPageSchema, answer);
      if (!listPage.success) {
        throw new MedblocksApiError(
          'GET',
          path,
          undefined,
          `the answer is not a list page (${issuePath(listPage.issues, '')})`
        );
      }
      const items = listPage.output.data;
      if (items.length > PAGE_LIMIT) {
        throw new MedblocksApiError(
          'GET',
          path,
          undefined,
          `a page of ${String(items.length)} items for limit ${String(PAGE_LIMIT)}`
        );
      }
      for (const [index, item] of items.entries()) {
        const parsed = v.safeParse(schema, item);
        if (!parsed.success) {
          throw new MedblocksApiError(
            'GET',
            path,
            undefined,
            `an item of an unexpected shape (${issuePath(parsed.issues, `data[${String(index)}]`)})`
          );
        }
        out.push(parsed.output);
      }
      if (!listPage.output.has_more || !listPage.output.next_cursor) return out;
      cursor = listPage.output.next_cursor;
    }
    throw new MedblocksApiError(
      'GET',
      path,
      undefined,
      `more than ${String(MAX_PAGES * PAGE_LIMIT)} items: stopped rather than go on without bound`
    );
  }

  listEndpoints(): Promise<MedblocksEndpoint[]> {
    return this.list('/webhooks', {}, EndpointSchema);
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
    return this.list(`/webhooks/${encodeURIComponent(id)}/events`, { delivered: 'false' }, DeliverySchema);
  }

  /** Delivery records of one endpoint, filtered on delivery (redeliver looks for `delivered=false`). */
  listEvents(id: string, delivered?: boolean): Promise<MedblocksDelivery[]> {
    return this.list(
      `/webhooks/${encodeURIComponent(id)}/events`,
      delivered === undefined ? {} : { delivered: String(delivered) },
      DeliverySchema
    );
  }

  /** One more attempt now; Medblocks allows one per minute per event (429 with Retry-After). */
  redeliver(eventId: string): Promise<MedblocksDelivery> {
    return this.call(`/events/${encodeURIComponent(eventId)}/redeliver`, { method: 'POST' });
  }

  /** `GET /health` (`api.health`, unauthenticated): reachable, and Medblocks' clock (`server_time`). */
  async health(): Promise<{ ok: boolean; serverTime: string | undefined }> {
    const answer = v.safeParse(
      v.looseObject({ ok: v.boolean(), server_time: v.optional(v.string()) }),
      await this.call<unknown>('/health')
    );
    if (!answer.success) throw new MedblocksApiError('GET', '/health', undefined, 'the answer is not a health status');
    return { ok: answer.output.ok, serverTime: answer.output.server_time };
  }

  /** Every patient id of the workspace (`GET /patients`, `api.listPatients`), paged to the end within the bound. */
  async listPatientIds(): Promise<string[]> {
    return (await this.list('/patients', {}, PatientSchema)).map((p) => p.id);
  }

  /** A patient and its connections with their current statuses (`GET /patients/{id}`, `api.getPatient`). */
  async getPatient(patientId: string): Promise<MedblocksPatientDetail> {
    return this.getOne(`/patients/${encodeURIComponent(patientId)}`, PatientDetailSchema, 'a PatientDetail');
  }

  /**
   * An EHR source of Medblocks' catalogue (`GET /connections/{id}`, operation `api.getFhirSource`;
   * `id` a `fhirsrc_` id or the source's FHIR base URL), for the Organization the sources sync keeps.
   */
  async getSource(id: string): Promise<FhirSource> {
    return this.getOne(`/connections/${encodeURIComponent(id)}`, FhirSourceSchema, 'a FhirSource');
  }

  /** One object, type-checked; an answer of another shape is named by its path, never its values. */
  private async getOne<T>(path: string, schema: v.GenericSchema<unknown, T>, what: string): Promise<T> {
    const parsed = v.safeParse(schema, await this.call<unknown>(path));
    if (!parsed.success) {
      throw new MedblocksApiError(
        'GET',
        path,
        undefined,
        `the answer is not ${what} (${issuePath(parsed.issues, '')})`
      );
    }
    return parsed.output;
  }
}
