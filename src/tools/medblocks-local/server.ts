// A local stand-in for the Medblocks endpoint-management API and its webhook deliveries, so that
// provision, monitor, redeliver and sources can be exercised without a Medblocks account, and so
// that delivery faults (retries, auto-disable, the redelivery limit) can be tested in milliseconds.
// Facts follow Medblocks' published webhook and endpoint-API contract (docs/medblocks-contract.md):
// one rule per operation in ./routes.ts, the deliveries in ./deliveries.ts; this module is the HTTP
// around them — the API key, the body, the published error envelope — and the handle tests hold.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EVENT_TYPES } from '../../runtime/events';
import { Deliveries } from './deliveries';
import { ApiFailure, iso, newId } from './model';
import type { FlowEventName, LocalMedblocksOptions, LocalMedblocksState, RunningLocalMedblocks } from './model';
import { createRecordsStore, syncCompletedEvents } from './records';
import { routeFor } from './routes';

export type {
  PatientRecordItem,
  PatientRecordsPage,
  PutRecordsOptions,
  PutRecordsResult,
  StoredPatientRecord,
} from './records';
export type {
  FlowEventName,
  LocalDeliveryRecord,
  LocalEndpoint,
  LocalMedblocksOptions,
  LocalPatientConnection,
  LocalPutRecordsResult,
  MedblocksEvent,
  RunningLocalMedblocks,
} from './model';

const MAX_BODY_BYTES = 1_000_000;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export const DEFAULT_SOURCES: Readonly<Record<string, string>> = {
  fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc: 'Epic on FHIR (sandbox)',
  fhirsrc_0a9Ea55aR4u7HaWMyFBN8wcc: 'NextGen Patient Portal (sandbox)',
  fhirsrc_03Cerner0000000000000000: 'Oracle Health (Cerner) sandbox',
  fhirsrc_04Athena0000000000000000: 'athenahealth Preview',
};

/** Starts the local Medblocks; only loopback addresses, every timer cancelled by `close()`. */
export async function startLocalMedblocks(options: LocalMedblocksOptions = {}): Promise<RunningLocalMedblocks> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`The local Medblocks listens on loopback only, not ${host}`);
  const apiKey = options.apiKey ?? `mb_sk_sbx_local_${randomBytes(8).toString('hex')}`;
  const now = options.now ?? Date.now;
  const state = newState(options, now);
  const deliveries = new Deliveries(state, options.timeScale ?? 1);
  const server = createServer((req, res) => void handle(req, res, { state, deliveries, apiKey }));
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
    emit: (event) => {
      deliveries.emit(event);
    },
    setPatient(patientId, connections) {
      state.patients.set(patientId, {
        created_at: state.patients.get(patientId)?.created_at ?? iso(now()),
        connections,
      });
    },
    putRecords(patientId, items, putOptions = {}) {
      if (!state.patients.has(patientId)) state.patients.set(patientId, { created_at: iso(now()), connections: [] });
      const result = state.patientRecords.put(patientId, items);
      const events = syncCompletedEvents(patientId, items, putOptions, iso(now()));
      for (const event of events) deliveries.emit(event);
      return { ...result, events };
    },
    records: (patientId) => state.patientRecords.records(patientId),
    endpoint: (id) => state.endpoints.get(id),
    idle: () => deliveries.idle(),
    async close() {
      deliveries.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        })
      );
    },
  };
}

function newState(options: LocalMedblocksOptions, now: () => number): LocalMedblocksState {
  const flowName = options.flowEventName ?? 'patient_session.completed';
  // The event names this Medblocks knows: the package's, with one name of the flow event.
  const otherFlowName: FlowEventName =
    flowName === 'patient_session.completed' ? 'patient_flow.completed' : 'patient_session.completed';
  return {
    now,
    known: new Set<string>(EVENT_TYPES.filter((t) => t !== otherFlowName)),
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
async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  local: { readonly state: LocalMedblocksState; readonly deliveries: Deliveries; readonly apiKey: string }
): Promise<void> {
  const requestId = newId('req');
  const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': requestId, ...headers });
    res.end(JSON.stringify(payload));
  };
  try {
    // The one unauthenticated operation, as published (MB-10).
    if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/health') {
      send(200, { ok: true, server_time: iso(local.state.now()) });
      return;
    }
    // MB-C1: every other operation needs the API key as a Bearer token.
    if (req.headers.authorization !== `Bearer ${local.apiKey}`)
      throw new ApiFailure(401, 'authentication_error', 'invalid_api_key', 'Invalid API key provided');
    const body = await jsonBody(req);
    const url = new URL(req.url ?? '/', 'http://local');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const { route, params } = routeFor(req.method ?? 'GET', parts);
    const [status, payload] = route.answer({
      state: local.state,
      deliveries: local.deliveries,
      params,
      query: url.searchParams,
      body: (body ?? {}) as Record<string, unknown>,
    });
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

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES)
      throw new ApiFailure(413, 'invalid_request_error', 'payload_too_large', 'Request body too large');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiFailure(400, 'invalid_request_error', 'bad_request', 'Body is not JSON');
  }
}
