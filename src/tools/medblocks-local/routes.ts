// The local Medblocks' API, one named rule per published operation, each tagged with its contract
// ledger id (docs/medblocks-contract.md): what it accepts, what it answers, what it refuses. A
// route answers `[status, body]` or throws an ApiFailure; ./server.ts does the HTTP around it
// (authentication, body, the error envelope).
import { randomBytes } from 'node:crypto';
import { MEDBLOCKS_API_VERSION } from '../../runtime/medblocks/version';
import type { Deliveries } from './deliveries';
import { ApiFailure, iso, newId } from './model';
import type { LocalDeliveryRecord, LocalEndpoint, LocalMedblocksState, MedblocksEvent } from './model';
import { RecordsQueryError } from './records';

/** What a route is given: the state, the deliveries, the path's parameters, the query and the JSON body. */
export interface RouteRequest {
  readonly state: LocalMedblocksState;
  readonly deliveries: Deliveries;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly body: Readonly<Record<string, unknown>>;
}

export interface Route {
  /** The contract ledger row this rule implements. */
  readonly contract: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Path segments; `:name` matches one segment and names it. */
  readonly path: readonly string[];
  answer(request: RouteRequest): [number, unknown];
}

const REDELIVER_WINDOW_MS = 60_000;

/** The published API, as the local Medblocks serves it. */
export const ROUTES: readonly Route[] = [
  { contract: 'MB-2', method: 'POST', path: ['webhooks'], answer: createWebhook },
  { contract: 'MB-1', method: 'GET', path: ['webhooks'], answer: listWebhooks },
  { contract: 'MB-1', method: 'GET', path: ['webhooks', ':id'], answer: (r) => [200, publicEndpoint(endpointOf(r))] },
  { contract: 'MB-3', method: 'PATCH', path: ['webhooks', ':id'], answer: updateWebhook },
  { contract: 'MB-3', method: 'DELETE', path: ['webhooks', ':id'], answer: deleteWebhook },
  { contract: 'MB-4', method: 'POST', path: ['webhooks', ':id', 'rotate-secret'], answer: rotateSecret },
  { contract: 'MB-5', method: 'GET', path: ['webhooks', ':id', 'events'], answer: listWebhookEvents },
  { contract: 'MB-6', method: 'POST', path: ['events', ':id', 'redeliver'], answer: redeliverEvent },
  { contract: 'MB-11', method: 'GET', path: ['patients', ':id', 'records'], answer: patientRecords },
  { contract: 'MB-8', method: 'GET', path: ['patients'], answer: listPatients },
  { contract: 'MB-9', method: 'GET', path: ['patients', ':id'], answer: getPatient },
  { contract: 'MB-7', method: 'GET', path: ['connections'], answer: listFhirSources },
  { contract: 'MB-7', method: 'GET', path: ['connections', ':id'], answer: getFhirSource },
  // Not Medblocks': how tests and the demo make an event happen.
  { contract: 'local', method: 'POST', path: ['_local', 'events'], answer: emitLocalEvent },
];

/** The route a request reaches and its path parameters; a 404 in the published envelope when none. */
export function routeFor(method: string, parts: readonly string[]): { route: Route; params: Record<string, string> } {
  for (const route of ROUTES) {
    if (route.method !== method || route.path.length !== parts.length) continue;
    const params: Record<string, string> = {};
    if (route.path.every((segment, i) => matches(segment, parts[i] ?? '', params))) return { route, params };
  }
  // An unknown endpoint id is answered as published (404 on `id`) before the route's own checks.
  throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No route ${method} /${parts.join('/')}`);
}

function matches(segment: string, part: string, params: Record<string, string>): boolean {
  if (!segment.startsWith(':')) return segment === part;
  params[segment.slice(1)] = part;
  return true;
}

function createWebhook({ state, body }: RouteRequest): [number, unknown] {
  const t = iso(state.now());
  const url = validateUrl(body['url']);
  const endpoint: LocalEndpoint = {
    id: newId('wh'),
    url,
    events: validateEvents(state, body['events']),
    status: 'active',
    description: typeof body['description'] === 'string' ? body['description'] : null,
    metadata:
      body['metadata'] && typeof body['metadata'] === 'object' ? (body['metadata'] as Record<string, string>) : {},
    api_version: MEDBLOCKS_API_VERSION,
    created_at: t,
    updated_at: t,
    secret: state.secretForUrl?.(url) ?? newSecret(),
  };
  state.endpoints.set(endpoint.id, endpoint);
  return [200, { ...publicEndpoint(endpoint), secret: endpoint.secret }];
}

function listWebhooks({ state, query }: RouteRequest): [number, unknown] {
  const status = query.get('status');
  const all = [...state.endpoints.values()].filter((e) => !status || e.status === status);
  return [200, listPage(all.map(publicEndpoint), query)];
}

function updateWebhook(request: RouteRequest): [number, unknown] {
  const endpoint = endpointOf(request);
  const { body, state } = request;
  if (body['url'] !== undefined) endpoint.url = validateUrl(body['url']);
  if (body['events'] !== undefined) endpoint.events = validateEvents(state, body['events']);
  if (body['description'] !== undefined)
    endpoint.description = typeof body['description'] === 'string' ? body['description'] : null;
  if (body['status'] !== undefined) {
    if (body['status'] !== 'active' && body['status'] !== 'disabled')
      throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', 'status must be active or disabled', 'status');
    endpoint.status = body['status'];
  }
  endpoint.updated_at = iso(state.now());
  return [200, publicEndpoint(endpoint)];
}

function deleteWebhook(request: RouteRequest): [number, unknown] {
  const endpoint = endpointOf(request);
  request.state.endpoints.delete(endpoint.id);
  request.state.deliveries.delete(endpoint.id);
  return [200, { id: endpoint.id, resource_type: 'webhook_endpoint', deleted: true }];
}

function rotateSecret(request: RouteRequest): [number, unknown] {
  const endpoint = endpointOf(request);
  endpoint.secret = newSecret();
  endpoint.updated_at = iso(request.state.now());
  return [200, { ...publicEndpoint(endpoint), secret: endpoint.secret }];
}

function listWebhookEvents(request: RouteRequest): [number, unknown] {
  const endpoint = endpointOf(request);
  const delivered = request.query.get('delivered');
  const all = [...(request.state.deliveries.get(endpoint.id)?.values() ?? [])].filter(
    (r) => delivered === null || (delivered === 'true') === (r.delivered_at !== null)
  );
  return [200, listPage(all, request.query)];
}

/**
 * At most once a minute per event (429 with Retry-After otherwise); the event is re-enqueued and
 * the answer is its record as it is now — the attempt's outcome shows in the record afterwards.
 */
function redeliverEvent({ state, deliveries, params }: RouteRequest): [number, unknown] {
  const eventId = params['id'] ?? '';
  const owners = [...state.deliveries.entries()].filter(([, m]) => m.has(eventId));
  if (owners.length === 0)
    throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such event: ${eventId}`, 'id');
  for (const [, m] of owners) {
    const last = m.get(eventId)?.last_redelivered_at;
    const since = last ? state.now() - Date.parse(last) : Infinity;
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
  const [firstEndpointId, firstRecords] = owners[0] ?? ['', new Map<string, LocalDeliveryRecord>()];
  const answer = { ...firstRecords.get(eventId), last_redelivered_at: iso(state.now()) };
  for (const [endpointId, m] of owners) {
    const record = m.get(eventId);
    if (!record) continue;
    record.last_redelivered_at = iso(state.now());
    if (state.endpoints.get(endpointId)?.status === 'active') deliveries.redeliver(endpointId, eventId);
  }
  return [200, { ...answer, webhook_endpoint_id: firstEndpointId }];
}

function patientRecords({ state, params, query }: RouteRequest): [number, unknown] {
  const id = params['id'] ?? '';
  if (!state.patients.has(id)) throw noSuchPatient(id);
  try {
    return [200, state.patientRecords.page(id, query)];
  } catch (err) {
    if (err instanceof RecordsQueryError)
      throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', err.message, err.param);
    throw err;
  }
}

function listPatients({ state, query }: RouteRequest): [number, unknown] {
  const only = query.get('patient_id');
  const all = [...state.patients.entries()]
    .filter(([id]) => !only || id === only)
    .map(([id, p]) => patientView(id, p.created_at));
  return [200, listPage(all, query)];
}

/** `PatientDetail`: the patient and its connections, every published field present. */
function getPatient({ state, params }: RouteRequest): [number, unknown] {
  const id = params['id'] ?? '';
  const found = state.patients.get(id);
  if (!found) throw noSuchPatient(id);
  return [
    200,
    {
      ...patientView(id, found.created_at),
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

function listFhirSources({ state, query }: RouteRequest): [number, unknown] {
  const q = query.get('q')?.toLowerCase();
  const type = query.get('type');
  const matching = catalogue(state).filter(
    (c) => (!q || c.name.toLowerCase().includes(q)) && (!type || c.type === type)
  );
  return [200, listPage(matching, query)];
}

/** By `fhirsrc_` id or by its FHIR base URL, as published. */
function getFhirSource({ state, params }: RouteRequest): [number, unknown] {
  const id = params['id'] ?? '';
  const found = catalogue(state).find((c) => c.id === id || c.fhir_base_url === id);
  if (!found) throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such FHIR source: ${id}`, 'id');
  return [200, found];
}

function emitLocalEvent({ deliveries, body }: RouteRequest): [number, unknown] {
  if (typeof body['id'] !== 'string' || typeof body['type'] !== 'string')
    throw new ApiFailure(400, 'invalid_request_error', 'bad_request', 'event needs id and type', 'id');
  deliveries.emit(body as MedblocksEvent);
  return [202, { id: body['id'], queued: true }];
}

function endpointOf({ state, params }: RouteRequest): LocalEndpoint {
  const id = params['id'] ?? '';
  const endpoint = state.endpoints.get(id);
  if (!endpoint)
    throw new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such webhook endpoint: ${id}`, 'id');
  return endpoint;
}

/** An endpoint as the API shows it: every field but its secret. */
export function publicEndpoint(
  e: LocalEndpoint
): Omit<LocalEndpoint, 'secret'> & { resource_type: 'webhook_endpoint' } {
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

function validateEvents(state: LocalMedblocksState, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string'))
    throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', 'events must be a non-empty list', 'events');
  for (const e of value) {
    if (e !== '*' && !state.known.has(e))
      throw new ApiFailure(400, 'invalid_request_error', 'invalid_data', `Unknown event type: ${e}`, 'events');
  }
  return value;
}

/** HTTPS, or plain HTTP to this machine (the emulator). */
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

function newSecret(): string {
  return `whsec_${randomBytes(24).toString('hex')}`;
}

function noSuchPatient(id: string): ApiFailure {
  return new ApiFailure(404, 'not_found_error', 'resource_not_found', `No such patient: ${id}`, 'id');
}

function patientView(id: string, createdAt: string) {
  return { id, resource_type: 'patient', email: null, name: null, metadata: {}, created_at: createdAt };
}

/** The published list shape and cursor paging (MB-C2): `limit` 1–100 (default 10), `starting_after` an item id. */
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

function catalogue(state: LocalMedblocksState) {
  return Object.entries(state.sources).map(([id, name]) => fhirSource(id, name));
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
