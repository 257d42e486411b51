// A local stand-in for the Medblocks endpoint-management API and its webhook deliveries, so that
// provision, monitor, redeliver and sources can be exercised without a Medblocks account, and so
// that delivery faults (retries, auto-disable, the redelivery limit) can be tested in milliseconds.
// Facts follow Medblocks' published webhook and endpoint-API contract; the signing and the retry
// schedule are the sender's (one implementation of Medblocks' delivery rules).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EVENT_TYPES } from '../../runtime/events';
import type { PATIENT_SESSION_COMPLETED } from '../../runtime/events/patient-session-completed';
import { DELIVERY_DEADLINE_MS, MAX_RECORDED_RESPONSE_BYTES, RETRY_SCHEDULE_MS, signedRequest } from '../sender/sender';
import { createRecordsStore, RecordsQueryError, syncCompletedEvents } from './records';
import type { PatientRecordItem, PutRecordsOptions, PutRecordsResult, StoredPatientRecord } from './records';

export type {
  PatientRecordItem,
  PatientRecordsPage,
  PutRecordsOptions,
  PutRecordsResult,
  StoredPatientRecord,
} from './records';

export type FlowEventName = (typeof PATIENT_SESSION_COMPLETED)[number];

export interface LocalMedblocksOptions {
  readonly port?: number;
  /** Loopback only: 127.0.0.1, ::1 or localhost. */
  readonly host?: string;
  readonly apiKey?: string;
  /** How many times faster than real time the retry schedule runs. */
  readonly timeScale?: number;
  /**
   * Which name of the flow event this Medblocks knows; the other is refused as unknown. Default:
   * the published API's `patient_session.completed` (the guides' older `patient_flow.completed` is
   * kept for testing an account that still uses it).
   */
  readonly flowEventName?: FlowEventName;
  readonly now?: () => number;
  /** The EHR catalogue `GET /connections[/{id}]` serves (names by `fhirsrc_` id); a small table by default. */
  readonly sources?: Readonly<Record<string, string>>;
  /**
   * A fixed secret for an endpoint URL, so the local Medblocks can be wired to a receiver whose
   * secret is already set (the emulator's dev secrets); a random `whsec_` otherwise.
   */
  readonly secretForUrl?: (url: string) => string | undefined;
}

export interface LocalEndpoint {
  id: string;
  url: string;
  events: string[];
  status: 'active' | 'disabled';
  description: string | null;
  metadata: Record<string, string>;
  api_version: string;
  created_at: string;
  updated_at: string;
  secret: string;
}

export interface LocalDeliveryRecord {
  id: string;
  resource_type: 'event';
  webhook_endpoint_id: string;
  type: string;
  api_version: string;
  data: unknown;
  attempts: number;
  next_attempt_at: string | null;
  delivered_at: string | null;
  last_status_code: number | null;
  last_response_body: string | null;
  last_redelivered_at: string | null;
  created_at: string;
}

export interface MedblocksEvent {
  readonly id: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

/** A connection as `GET /patients/{id}` lists it (PatientDetail.connections[]). */
export interface LocalPatientConnection {
  readonly id: string;
  readonly connection_id: string;
  readonly status: 'active' | 'failed' | 'expired' | 'refresh_failed' | 'disconnected' | (string & {});
  readonly failure_code?: string | null;
  readonly failure_at?: string | null;
  readonly created_at: string;
  readonly updated_at: string;
  readonly patient_session_id?: string | null;
}

export interface LocalPutRecordsResult extends PutRecordsResult {
  /** The `records.sync.completed` events emitted (empty unless `syncCompleted` was asked). */
  readonly events: readonly MedblocksEvent[];
}

export interface RunningLocalMedblocks {
  readonly url: string;
  readonly apiKey: string;
  /** Sets what `GET /patients` and `GET /patients/{id}` answer for one patient (its connections, newest first). */
  setPatient(patientId: string, connections: readonly LocalPatientConnection[]): void;
  /**
   * Stores what `GET /patients/{id}/records` serves, upserting by (source, resourceType, id): a
   * changed item gets the server clock as its change time (what `since` compares), an unchanged one
   * keeps its own. An unknown patient becomes known (no connections), as a patient with records is.
   */
  putRecords(
    patientId: string,
    items: readonly PatientRecordItem[],
    options?: PutRecordsOptions
  ): LocalPutRecordsResult;
  /** The patient's stored records, in the order the API pages them, with their change times. */
  records(patientId: string): StoredPatientRecord[];
  /** Records the event for every active subscribed endpoint and starts its deliveries. */
  emit(event: MedblocksEvent): void;
  /** Resolves when no delivery attempt is pending or in flight. */
  idle(): Promise<void>;
  endpoint(id: string): LocalEndpoint | undefined;
  close(): Promise<void>;
}

const API_VERSION = '2026-04-25';
const REDELIVER_WINDOW_MS = 60_000;
const MAX_BODY_BYTES = 1_000_000;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export const DEFAULT_SOURCES: Readonly<Record<string, string>> = {
  fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc: 'Epic on FHIR (sandbox)',
  fhirsrc_0a9Ea55aR4u7HaWMyFBN8wcc: 'NextGen Patient Portal (sandbox)',
  fhirsrc_03Cerner0000000000000000: 'Oracle Health (Cerner) sandbox',
  fhirsrc_04Athena0000000000000000: 'athenahealth Preview',
};

class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string,
    message: string,
    readonly param?: string,
    readonly retryAfter?: number
  ) {
    super(message);
  }
}

function newId(prefix: string): string {
  return `${prefix}_${randomBytes(13).toString('hex').toUpperCase().slice(0, 26)}`;
}

/** The published list shape and cursor paging: `limit` 1–100 (default 10), `starting_after` an item id. */
function listPage(all: readonly { id: string }[], query: URLSearchParams): unknown {
  const limit = Math.min(Math.max(Number(query.get('limit') ?? 10) || 10, 1), 100);
  const after = query.get('starting_after');
  const start = after ? all.findIndex((e) => e.id === after) + 1 : 0;
  const page = all.slice(start, start + limit);
  const hasMore = start + limit < all.length;
  return {
    resource_type: 'list',
    data: page,
    has_more: hasMore,
    next_cursor: hasMore ? (page.at(-1)?.id ?? null) : null,
  };
}

/** A catalogue entry as `FhirSource` (all seven fields; the vendor from the name where it says one). */
function fhirSource(id: string, name: string) {
  const vendor = ['epic', 'cerner', 'athena', 'nextgen'].find((v) => name.toLowerCase().includes(v)) ?? null;
  return {
    id,
    resource_type: 'fhir_source' as const,
    name,
    type: vendor,
    fhir_base_url: `https://fhir.example.test/${id}/api/FHIR/R4`,
    logo_url: null,
    // Some sources publish their patient portal, some do not (`string | null`): vendors with a
    // known portal get one here, so both shapes are exercised.
    portal_url: vendor ? `https://portal.example.test/${id}` : null,
  };
}

/** Starts the local Medblocks; only loopback addresses, every timer cancelled by `close()`. */
export async function startLocalMedblocks(options: LocalMedblocksOptions = {}): Promise<RunningLocalMedblocks> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`The local Medblocks listens on loopback only, not ${host}`);
  const apiKey = options.apiKey ?? `mb_sk_sbx_local_${randomBytes(8).toString('hex')}`;
  const timeScale = options.timeScale ?? 1;
  const now = options.now ?? Date.now;
  const flowName = options.flowEventName ?? 'patient_session.completed';
  // The event names this Medblocks knows: the package's, with one name of the flow event.
  const otherFlowName: FlowEventName =
    flowName === 'patient_session.completed' ? 'patient_flow.completed' : 'patient_session.completed';
  const known = new Set<string>(EVENT_TYPES.filter((t) => t !== otherFlowName));
  const sources = options.sources ?? DEFAULT_SOURCES;
  const endpoints = new Map<string, LocalEndpoint>();
  const patients = new Map<string, { created_at: string; connections: readonly LocalPatientConnection[] }>();
  const records = new Map<string, Map<string, LocalDeliveryRecord>>(); // endpoint id → event id → record
  const bodies = new Map<string, string>(); // event id → compact JSON
  const patientRecords = createRecordsStore(now);
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new Set<Promise<void>>();
  const controllers = new Set<AbortController>();
  let closed = false;

  const iso = (ms: number): string => new Date(ms).toISOString();

  function publicEndpoint(e: LocalEndpoint): Omit<LocalEndpoint, 'secret'> & { resource_type: 'webhook_endpoint' } {
    return {
      id: e.id,
      resource_type: 'webhook_endpoint',
      url: e.url,
      events: e.events,
      status: e.status,
      description: e.description,
      metadata: e.metadata,
      api_version: e.api_version,
      created_at: e.created_at,
      updated_at: e.updated_at,
    };
  }

  async function attempt(endpointId: string, eventId: string): Promise<number | null> {
    const endpoint = endpoints.get(endpointId);
    const record = records.get(endpointId)?.get(eventId);
    const body = bodies.get(eventId);
    if (!endpoint || !record || body === undefined || closed) return null;
    const request = signedRequest({ body, secret: endpoint.secret }, now());
    const controller = new AbortController();
    controllers.add(controller);
    const timer = setTimeout(() => {
      controller.abort();
    }, DELIVERY_DEADLINE_MS);
    record.attempts += 1;
    let status: number | null;
    let text = '';
    try {
      const response = await fetch(endpoint.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'medblocks-signature': request.header },
        body: request.body,
        signal: controller.signal,
        redirect: 'manual',
      });
      status = response.status;
      text = (await response.text()).slice(0, MAX_RECORDED_RESPONSE_BYTES);
    } catch {
      status = null;
    } finally {
      clearTimeout(timer);
      controllers.delete(controller);
    }
    record.last_status_code = status;
    record.last_response_body = status === null ? null : text;
    if (status !== null && status >= 200 && status < 300) {
      record.delivered_at = iso(now());
      record.next_attempt_at = null;
    }
    return status;
  }

  function track(work: Promise<void>): void {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  }

  function schedule(endpointId: string, eventId: string, index: number): void {
    if (closed) return;
    const record = records.get(endpointId)?.get(eventId);
    if (!record) return;
    const delay = (RETRY_SCHEDULE_MS[index] ?? 0) / timeScale;
    record.next_attempt_at = iso(now() + (RETRY_SCHEDULE_MS[index] ?? 0));
    let resolveRun: () => void = () => undefined;
    const pending = new Promise<void>((resolve) => (resolveRun = resolve));
    track(pending);
    const timer = setTimeout(() => {
      timers.delete(timer);
      void attempt(endpointId, eventId)
        .then(() => {
          const current = records.get(endpointId)?.get(eventId);
          const endpoint = endpoints.get(endpointId);
          if (!current || !endpoint || closed || current.delivered_at) return;

          if (index + 1 < RETRY_SCHEDULE_MS.length) {
            schedule(endpointId, eventId, index + 1);
          } else {
            current.next_attempt_at = null;
            endpoint.status = 'disabled';
            endpoint.updated_at = iso(now());
          }
        })
        .finally(resolveRun);
    }, delay);
    timers.add(timer);
    // a cancelled timer must not leave idle() waiting
    (timer as NodeJS.Timeout & { _resolve?: () => void })._resolve = resolveRun;
  }

  function emit(event: MedblocksEvent): void {
    const body = JSON.stringify(event);
    bodies.set(event.id, body);
    for (const endpoint of endpoints.values()) {
      if (!endpoint.events.includes('*') && !endpoint.events.includes(event.type)) continue;
      const perEndpoint = records.get(endpoint.id) ?? new Map<string, LocalDeliveryRecord>();
      records.set(endpoint.id, perEndpoint);
      perEndpoint.set(event.id, {
        id: event.id,
        resource_type: 'event',
        webhook_endpoint_id: endpoint.id,
        type: event.type,
        api_version: endpoint.api_version,
        data: event['data'] ?? null,
        attempts: 0,
        next_attempt_at: null,
        delivered_at: null,
        last_status_code: null,
        last_response_body: null,
        last_redelivered_at: null,
        created_at: iso(now()),
      });
      if (endpoint.status === 'active') schedule(endpoint.id, event.id, 0);
    }
  }

  function validateEvents(value: unknown): string[] {
    if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string'))
      throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', 'events must be a non-empty list', 'events');
    const events = value;
    for (const e of events) {
      if (e !== '*' && !known.has(e))
        throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', `Unknown event type: ${e}`, 'events');
    }
    return events;
  }

  function validateUrl(value: unknown): string {
    if (typeof value !== 'string')
      throw new ApiFailure(400, 'invalid_request_error', 'bad_request', 'url is required', 'url');
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', 'url is not a URL', 'url');
    }
    const local = ['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname);
    if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && local))
      throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', 'url must be HTTPS', 'url');
    return value;
  }

  function getEndpoint(id: string): LocalEndpoint {
    const e = endpoints.get(id);
    if (!e) throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such webhook endpoint: ${id}`, 'id');
    return e;
  }

  function route(method: string, path: string, query: URLSearchParams, body: unknown): [number, unknown] {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const obj = (body ?? {}) as Record<string, unknown>;
    if (parts[0] === 'webhooks') {
      if (parts.length === 1 && method === 'POST') {
        const t = iso(now());
        const endpoint: LocalEndpoint = {
          id: newId('wh'),
          url: validateUrl(obj['url']),
          events: validateEvents(obj['events']),
          status: 'active',
          description: typeof obj['description'] === 'string' ? obj['description'] : null,
          metadata:
            obj['metadata'] && typeof obj['metadata'] === 'object' ? (obj['metadata'] as Record<string, string>) : {},
          api_version: API_VERSION,
          created_at: t,
          updated_at: t,
          secret: `whsec_${randomBytes(24).toString('hex')}`,
        };
        endpoint.secret = options.secretForUrl?.(endpoint.url) ?? endpoint.secret;
        endpoints.set(endpoint.id, endpoint);
        return [200, { ...publicEndpoint(endpoint), secret: endpoint.secret }];
      }
      if (parts.length === 1 && method === 'GET') {
        const status = query.get('status');
        const all = [...endpoints.values()].filter((e) => !status || e.status === status);
        return [200, listPage(all.map(publicEndpoint), query)];
      }
      const endpoint = getEndpoint(parts[1] ?? '');
      if (parts.length === 2 && method === 'GET') return [200, publicEndpoint(endpoint)];
      if (parts.length === 2 && method === 'PATCH') {
        if (obj['url'] !== undefined) endpoint.url = validateUrl(obj['url']);
        if (obj['events'] !== undefined) endpoint.events = validateEvents(obj['events']);
        if (obj['description'] !== undefined)
          endpoint.description = typeof obj['description'] === 'string' ? obj['description'] : null;
        if (obj['status'] !== undefined) {
          if (obj['status'] !== 'active' && obj['status'] !== 'disabled')
            throw new ApiFailure(
              400,
              'invalid_request_error',
              'invalid_data',
              'status must be active or disabled',
              'status'
            );
          endpoint.status = obj['status'];
        }
        endpoint.updated_at = iso(now());
        return [200, publicEndpoint(endpoint)];
      }
      if (parts.length === 2 && method === 'DELETE') {
        endpoints.delete(endpoint.id);
        records.delete(endpoint.id);
        return [200, { id: endpoint.id, resource_type: 'webhook_endpoint', deleted: true }];
      }
      if (parts.length === 3 && parts[2] === 'rotate-secret' && method === 'POST') {
        endpoint.secret = `whsec_${randomBytes(24).toString('hex')}`;
        endpoint.updated_at = iso(now());
        return [200, { ...publicEndpoint(endpoint), secret: endpoint.secret }];
      }
      if (parts.length === 3 && parts[2] === 'events' && method === 'GET') {
        const delivered = query.get('delivered');
        const all = [...(records.get(endpoint.id)?.values() ?? [])].filter(
          (r) => delivered === null || (delivered === 'true') === (r.delivered_at !== null)
        );
        return [200, listPage(all, query)];
      }
    }
    if (parts[0] === 'events' && parts.length === 3 && parts[2] === 'redeliver' && method === 'POST') {
      const eventId = parts[1] ?? '';
      const owners = [...records.entries()].filter(([, m]) => m.has(eventId));
      if (owners.length === 0)
        throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such event: ${eventId}`, 'id');
      for (const [, m] of owners) {
        const last = m.get(eventId)?.last_redelivered_at;
        const since = last ? now() - Date.parse(last) : Infinity;
        if (since < REDELIVER_WINDOW_MS)
          throw new ApiFailure(
            429,
            'rate_limit_error',
            'throttled',
            'An event can be redelivered at most once per minute',
            undefined,
            Math.ceil((REDELIVER_WINDOW_MS - since) / 1000)
          );
      }
      // As published: the event is re-enqueued; the answer is its record as it is now, and the
      // attempt's outcome shows in the record afterwards (GET /webhooks/{id}/events).
      const [firstEndpointId, firstRecords] = owners[0] ?? ['', new Map<string, LocalDeliveryRecord>()];
      const answer = { ...firstRecords.get(eventId), last_redelivered_at: iso(now()) };
      for (const [endpointId, m] of owners) {
        const record = m.get(eventId);
        if (!record) continue;
        record.last_redelivered_at = iso(now());
        if (endpoints.get(endpointId)?.status !== 'active') continue;
        track(attempt(endpointId, eventId).then(() => undefined));
      }
      return [200, { ...answer, webhook_endpoint_id: firstEndpointId }];
    }
    if (parts[0] === 'patients' && method === 'GET' && parts.length === 3 && parts[2] === 'records') {
      const id = parts[1] ?? '';
      if (!patients.has(id))
        throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such patient: ${id}`, 'id');
      try {
        return [200, patientRecords.page(id, query)];
      } catch (err) {
        if (err instanceof RecordsQueryError)
          throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', err.message, err.param);
        throw err;
      }
    }
    if (parts[0] === 'patients' && method === 'GET' && parts.length <= 2) {
      const view = (id: string, p: { created_at: string }) => ({
        id,
        resource_type: 'patient',
        email: null,
        name: null,
        metadata: {},
        created_at: p.created_at,
      });
      if (parts.length === 1) {
        const only = query.get('patient_id');
        const all = [...patients.entries()].filter(([id]) => !only || id === only).map(([id, p]) => view(id, p));
        return [200, listPage(all, query)];
      }
      const id = parts[1] ?? '';
      const found = patients.get(id);
      if (!found) throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such patient: ${id}`, 'id');
      return [
        200,
        {
          ...view(id, found),
          connections: found.connections.map((c) => ({
            resource_type: 'connection',
            patient_session_id: null,
            scopes: [],
            failure_code: null,
            failure_at: null,
            ...c,
          })),
        },
      ];
    }
    if (parts[0] === 'connections' && method === 'GET' && parts.length <= 2) {
      const catalogue = Object.entries(sources).map(([id, name]) => fhirSource(id, name));
      if (parts.length === 1) {
        const q = query.get('q')?.toLowerCase();
        const type = query.get('type');
        return [
          200,
          listPage(
            catalogue.filter((c) => (!q || c.name.toLowerCase().includes(q)) && (!type || c.type === type)),
            query
          ),
        ];
      }
      const id = parts[1] ?? '';
      const found = catalogue.find((c) => c.id === id || c.fhir_base_url === id);
      if (!found)
        throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such FHIR source: ${id}`, 'id');
      return [200, found];
    }
    if (parts[0] === '_local' && parts[1] === 'events' && parts.length === 2 && method === 'POST') {
      if (typeof obj['id'] !== 'string' || typeof obj['type'] !== 'string')
        throw new ApiFailure(400, 'invalid_request_error', 'bad_request', 'event needs id and type', 'id');
      emit(obj as MedblocksEvent);
      return [202, { id: obj['id'], queued: true }];
    }
    throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No route ${method} ${path}`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newId('req');
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': requestId, ...headers });
      res.end(JSON.stringify(payload));
    };
    try {
      // The one unauthenticated operation, as published.
      if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/health') {
        send(200, { ok: true, server_time: iso(now()) });
        return;
      }
      if (req.headers.authorization !== `Bearer ${apiKey}`)
        throw new ApiFailure(401, 'authentication_error', 'invalid_api_key', 'Invalid API key provided');
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of req) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES)
          throw new ApiFailure(413, 'invalid_request_error', 'payload_too_large', 'Request body too large');
        chunks.push(chunk as Buffer);
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      if (text) {
        try {
          body = JSON.parse(text);
        } catch {
          throw new ApiFailure(400, 'invalid_request_error', 'bad_request', 'Body is not JSON');
        }
      }
      const url = new URL(req.url ?? '/', 'http://local');
      const [status, payload] = route(req.method ?? 'GET', url.pathname, url.searchParams, body);
      send(status, payload);
    } catch (err) {
      const f = err instanceof ApiFailure ? err : new ApiFailure(500, 'api_error', 'internal_error', 'Internal error');
      send(
        f.status,
        {
          error: {
            type: f.type,
            code: f.code,
            message: f.message,
            param: f.param ?? null,
            doc_url: 'https://docs.medblocks.com/api-reference/errors',
            request_id: requestId,
          },
        },
        f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {}
      );
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${urlHost}:${address.port}`,
    apiKey,
    emit,
    setPatient(patientId, connections) {
      patients.set(patientId, { created_at: patients.get(patientId)?.created_at ?? iso(now()), connections });
    },
    putRecords(patientId, items, putOptions = {}) {
      if (!patients.has(patientId)) patients.set(patientId, { created_at: iso(now()), connections: [] });
      const result = patientRecords.put(patientId, items);
      const events = syncCompletedEvents(patientId, items, putOptions, iso(now()));
      for (const event of events) emit(event);
      return { ...result, events };
    },
    records: (patientId) => patientRecords.records(patientId),
    endpoint: (id) => endpoints.get(id),
    async idle() {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
    async close() {
      closed = true;
      for (const timer of timers) {
        clearTimeout(timer);
        (timer as NodeJS.Timeout & { _resolve?: () => void })._resolve?.();
      }
      timers.clear();
      for (const c of controllers) c.abort();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        })
      );
    },
  };
}
