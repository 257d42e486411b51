// The local Medblocks without its transport: the state, the deliveries and the controls tests and
// the demo hold (./model.ts RunningLocalMedblocks), and the one function that answers a request —
// the API key, the body, the route, every refusal in the published error envelope (MB-C3). Both
// entries use it: ./server.ts over HTTP on loopback, ./in-process.ts as a `fetch` with no socket.
import { randomBytes } from 'node:crypto';
import { EVENT_TYPES } from '../../runtime/events';
import { Deliveries } from './deliveries';
import { ApiFailure, iso, newId } from './model';
import type { FlowEventName, LocalMedblocksOptions, LocalMedblocksState, RunningLocalMedblocks } from './model';
import { createRecordsStore, syncCompletedEvents } from './records';
import { routeFor } from './routes';

const MAX_BODY_BYTES = 1_000_000;

export const DEFAULT_SOURCES: Readonly<Record<string, string>> = {
  fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc: 'Epic on FHIR (sandbox)',
  fhirsrc_0a9Ea55aR4u7HaWMyFBN8wcc: 'NextGen Patient Portal (sandbox)',
  fhirsrc_03Cerner0000000000000000: 'Oracle Health (Cerner) sandbox',
  fhirsrc_04Athena0000000000000000: 'athenahealth Preview',
};

/** What either entry adds to the controls: where it answers, and how it stops. */
export type LocalMedblocksControls = Omit<RunningLocalMedblocks, 'url' | 'close'>;

/** One local Medblocks: its state, its deliveries (their timers), its key and its controls. */
export interface LocalMedblocks {
  readonly state: LocalMedblocksState;
  readonly deliveries: Deliveries;
  readonly apiKey: string;
  readonly controls: LocalMedblocksControls;
}

/** A request as the entries hand it over: the method, the path and query, the key, the body on demand. */
export interface LocalRequest {
  readonly method: string;
  /** The path and query, as `/webhooks?limit=10`. */
  readonly target: string;
  readonly authorization: string | null | undefined;
  /** The body's text; throws the published 413 past the size limit (see `readLimited`). */
  readBody(): Promise<string>;
}

export interface LocalAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Builds the state and the deliveries; `send` is the `fetch` deliveries go out through. */
export function createLocalMedblocks(
  options: LocalMedblocksOptions,
  send: typeof fetch = (input, init) => fetch(input, init)
): LocalMedblocks {
  const apiKey = options.apiKey ?? `mb_sk_sbx_local_${randomBytes(8).toString('hex')}`;
  const state = newState(options, options.now ?? Date.now);
  const deliveries = new Deliveries(state, options.timeScale ?? 1, send);
  return { state, deliveries, apiKey, controls: controlsOf(state, deliveries, apiKey) };
}

function controlsOf(state: LocalMedblocksState, deliveries: Deliveries, apiKey: string): LocalMedblocksControls {
  return {
    apiKey,
    emit: (event) => {
      deliveries.emit(event);
    },
    setPatient(patientId, connections) {
      const created_at = state.patients.get(patientId)?.created_at ?? iso(state.now());
      state.patients.set(patientId, { created_at, connections });
    },
    putRecords(patientId, items, putOptions = {}) {
      if (!state.patients.has(patientId))
        state.patients.set(patientId, { created_at: iso(state.now()), connections: [] });
      const result = state.patientRecords.put(patientId, items);
      const events = syncCompletedEvents(patientId, items, putOptions, iso(state.now()));
      for (const event of events) deliveries.emit(event);
      return { ...result, events };
    },
    records: (patientId) => state.patientRecords.records(patientId),
    endpoint: (id) => state.endpoints.get(id),
    endpoints: () => [...state.endpoints.values()],
    deliveryRecords: (endpointId) => [...(state.deliveries.get(endpointId)?.values() ?? [])],
    idle: () => deliveries.idle(),
  };
}

function newState(options: LocalMedblocksOptions, now: () => number): LocalMedblocksState {
  const flowName = options.flowEventName ?? 'patient_session.completed';
  // The event names this Medblocks knows: the package's, with one name of the flow event.
  const otherFlowName: FlowEventName =
    flowName === 'patient_session.completed' ? 'patient_flow.completed' : 'patient_session.completed';
  return {
    now,
    known: new Set<string>(options.knownEvents ?? EVENT_TYPES.filter((t) => t !== otherFlowName)),
    sources: options.sources ?? DEFAULT_SOURCES,
    secretForUrl: options.secretForUrl,
    endpoints: new Map(),
    patients: new Map(),
    deliveries: new Map(),
    bodies: new Map(),
    patientRecords: createRecordsStore(now),
  };
}

/** Authenticates, reads the JSON body, runs the route; every refusal in the published envelope (MB-C3). */
export async function answerRequest(local: LocalMedblocks, request: LocalRequest): Promise<LocalAnswer> {
  const requestId = newId('req');
  const answer = (status: number, payload: unknown, headers: Record<string, string> = {}): LocalAnswer => ({
    status,
    headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...headers },
    body: JSON.stringify(payload),
  });
  try {
    const url = new URL(request.target, 'http://local');
    // The one unauthenticated operation, as published (MB-10).
    if (request.method === 'GET' && url.pathname === '/health')
      return answer(200, { ok: true, server_time: iso(local.state.now()) });
    // MB-C1: every other operation needs the API key as a Bearer token.
    if (request.authorization !== `Bearer ${local.apiKey}`)
      throw new ApiFailure(401, 'authentication_error', 'invalid_api_key', 'Invalid API key provided');
    const body = parseJson(await request.readBody());
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const { route, params } = routeFor(request.method, parts);
    const [status, payload] = route.answer({
      state: local.state,
      deliveries: local.deliveries,
      params,
      query: url.searchParams,
      body: (body ?? {}) as Record<string, unknown>,
    });
    return answer(status, payload);
  } catch (err) {
    const f = err instanceof ApiFailure ? err : new ApiFailure(500, 'api_error', 'internal_error', 'Internal error');
    const error = {
      type: f.type,
      code: f.code,
      message: f.message,
      param: f.param ?? null,
      doc_url: 'https://docs.medblocks.com/api-reference/errors',
      request_id: requestId,
    };
    return answer(f.status, { error }, f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {});
  }
}

/** A body's text from its chunks, refused with the published 413 past 1 MB. */
export async function readLimited(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<string> {
  const kept: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new ApiFailure(413, 'invalid_request_error', 'payload_too_large', 'Request body too large');
    kept.push(Buffer.from(chunk));
  }
  return Buffer.concat(kept).toString('utf8');
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiFailure(400, 'invalid_request_error', 'bad_request', 'Body is not JSON');
  }
}
