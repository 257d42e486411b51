// The Medblocks contract, as published (OpenAPI "Medblocks API" 2026-04-25; docs/medblocks-contract.md):
// schemas written from the published description — every required field, every nullable one —
// validate the local Medblocks' answers and the tools' requests. The local Medblocks is a model; these
// schemas are what keeps it, and the client, to the published shapes rather than to our memory.
import * as v from 'valibot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePatientRecords } from '../../src/tools/fixtures/patient-records';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import type { RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { MedblocksApi, MedblocksApiError } from '../../src/tools/provision/medblocks-api';

const EVENT_NAMES = [
  'patient_session.completed',
  'connection.token_refresh_failed',
  'records.sync.completed',
  'records.sync.failed',
] as const;
const nullableString = v.nullable(v.string());

/** `WebhookEndpoint`: all 10 fields required. */
const WebhookEndpoint = v.strictObject({
  id: v.pipe(v.string(), v.startsWith('wh_')),
  resource_type: v.literal('webhook_endpoint'),
  url: v.string(),
  events: v.array(v.string()),
  status: v.picklist(['active', 'disabled']),
  description: nullableString,
  metadata: v.record(v.string(), v.unknown()),
  api_version: v.string(),
  created_at: v.string(),
  updated_at: v.string(),
});
const WebhookEndpointWithSecret = v.strictObject({
  ...WebhookEndpoint.entries,
  secret: v.pipe(v.string(), v.startsWith('whsec_')),
});

/** `WebhookEvent` (a delivery record): all 13 fields required. */
const WebhookEvent = v.strictObject({
  id: v.pipe(v.string(), v.startsWith('evt_')),
  resource_type: v.literal('event'),
  webhook_endpoint_id: v.pipe(v.string(), v.startsWith('wh_')),
  type: v.picklist(EVENT_NAMES),
  data: v.object({ object: v.unknown() }),
  api_version: v.string(),
  attempts: v.pipe(v.number(), v.integer()),
  next_attempt_at: nullableString,
  delivered_at: nullableString,
  last_status_code: v.nullable(v.pipe(v.number(), v.integer())),
  last_response_body: nullableString,
  last_redelivered_at: nullableString,
  created_at: v.string(),
});

/** `FhirSource`: all 7 fields required. */
const FhirSource = v.strictObject({
  id: v.pipe(v.string(), v.startsWith('fhirsrc_')),
  resource_type: v.literal('fhir_source'),
  name: v.string(),
  type: nullableString,
  fhir_base_url: v.string(),
  logo_url: nullableString,
  portal_url: nullableString,
});

const list = <T extends v.GenericSchema>(item: T) =>
  v.strictObject({
    resource_type: v.literal('list'),
    data: v.array(item),
    has_more: v.boolean(),
    next_cursor: nullableString,
  });

/** `Patient` (all 6 required) and `PatientDetail` (+ `connections`, each with 10 required fields). */
const MedblocksPatient = v.strictObject({
  id: v.string(),
  resource_type: v.literal('patient'),
  email: nullableString,
  name: nullableString,
  metadata: v.record(v.string(), v.unknown()),
  created_at: v.string(),
});
const PatientConnection = v.strictObject({
  id: v.pipe(v.string(), v.startsWith('conn_')),
  resource_type: v.literal('connection'),
  patient_session_id: nullableString,
  connection_id: v.pipe(v.string(), v.startsWith('fhirsrc_')),
  status: v.picklist(['active', 'failed', 'expired', 'refresh_failed', 'disconnected']),
  scopes: v.array(v.string()),
  failure_code: nullableString,
  failure_at: nullableString,
  created_at: v.string(),
  updated_at: v.string(),
});
const PatientDetail = v.strictObject({ ...MedblocksPatient.entries, connections: v.array(PatientConnection) });

/**
 * `PatientRecords` (`GET /patients/{id}/records`): all 6 required, both cursors nullable and, when
 * set, 12-character opaque strings; each item `source` (the `fhirsrc_` id or null) and `resource`, a
 * FHIR object whose only required field is `resourceType` (`id` the EHR's own), any others allowed.
 */
const recordCursor = v.nullable(v.pipe(v.string(), v.length(12)));
const PatientRecords = v.strictObject({
  resource_type: v.literal('list'),
  patient_id: v.string(),
  data: v.array(
    v.strictObject({
      source: v.nullable(v.pipe(v.string(), v.startsWith('fhirsrc_'))),
      resource: v.looseObject({ resourceType: v.string(), id: v.optional(v.string()) }),
    })
  ),
  has_more: v.boolean(),
  next_cursor: recordCursor,
  previous_cursor: recordCursor,
});

/** The error envelope: all six inner fields required; `request_id` equals `X-Request-Id`. */
const ErrorEnvelope = v.strictObject({
  error: v.strictObject({
    type: v.string(),
    code: v.string(),
    message: v.string(),
    param: nullableString,
    doc_url: v.string(),
    request_id: v.string(),
  }),
});

/** `WebhookEndpointCreateInput`: what the tools may send. */
const WebhookEndpointCreateInput = v.strictObject({
  url: v.string(),
  events: v.pipe(v.array(v.picklist([...EVENT_NAMES, '*'])), v.minLength(1), v.maxLength(5)),
  description: v.optional(v.pipe(v.string(), v.maxLength(500))),
  metadata: v.optional(v.record(v.string(), v.unknown())),
});

const ERROR_CODES: Record<number, readonly string[]> = {
  400: ['bad_request', 'invalid_data', 'invalid_image', 'unsupported_api_version', 'oauth_state_expired'],
  401: [
    'not_authenticated',
    'invalid_credentials',
    'session_expired',
    'missing_api_key',
    'invalid_api_key',
    'expired_api_key',
  ],
  404: ['resource_not_found'],
  413: ['payload_too_large'],
  429: ['throttled', 'quota_exceeded', 'api_key_limit_exceeded'],
};

let mb: RunningLocalMedblocks;
const sent: { method: string; path: string; body: unknown }[] = [];
const recordingFetch: typeof fetch = async (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  sent.push({
    method: init?.method ?? 'GET',
    path: url.pathname,
    body: typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined,
  });
  return fetch(input, init);
};

beforeAll(async () => {
  mb = await startLocalMedblocks({ timeScale: 1e9 });
});
afterAll(async () => {
  await mb.close();
});

async function raw(
  method: string,
  path: string,
  body?: unknown,
  auth = true
): Promise<{ status: number; json: unknown; requestId: string | null }> {
  const response = await fetch(`${mb.url}${path}`, {
    method,
    headers: { ...(auth ? { authorization: `Bearer ${mb.apiKey}` } : {}), 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json(), requestId: response.headers.get('x-request-id') };
}

function expectShape(schema: v.GenericSchema, value: unknown): void {
  const result = v.safeParse(schema, value);
  expect(result.success ? [] : result.issues.map((i) => `${v.getDotPath(i) ?? '(root)'}: ${i.message}`)).toEqual([]);
}

describe('the local Medblocks answers in the published shapes', () => {
  it('webhook endpoints, their lists (paged by limit and starting_after) and the delete answer', async () => {
    const api = new MedblocksApi(mb.url, mb.apiKey, recordingFetch);
    const created = await api.createEndpoint({
      url: 'http://localhost:1/a',
      events: ['patient_session.completed'],
      description: 'a',
    });
    expectShape(WebhookEndpointWithSecret, created);
    await api.createEndpoint({ url: 'http://localhost:1/b', events: ['*'], description: 'b' });
    const page = await raw('GET', '/webhooks?limit=1');
    expectShape(list(WebhookEndpoint), page.json);
    expect(page.json).toMatchObject({ has_more: true });
    const next = await raw(
      'GET',
      `/webhooks?limit=1&starting_after=${(page.json as { next_cursor: string }).next_cursor}`
    );
    expect((next.json as { data: { id: string }[] }).data[0]?.id).not.toBe(created.id);
    expectShape(WebhookEndpoint, (await raw('GET', `/webhooks/${created.id}`)).json);
    expect((await raw('DELETE', `/webhooks/${created.id}`)).json).toEqual({
      id: created.id,
      resource_type: 'webhook_endpoint',
      deleted: true,
    });
  });

  it('delivery records, and redelivery as a re-enqueue answered with the record', async () => {
    const api = new MedblocksApi(mb.url, mb.apiKey);
    const endpoint = await api.createEndpoint({
      url: 'http://localhost:1/c',
      events: ['records.sync.failed'],
      description: 'c',
    });
    mb.emit({ id: 'evt_CONTRACT1', object: 'event', type: 'records.sync.failed', data: { object: {} } });
    await mb.idle();
    const records = await raw('GET', `/webhooks/${endpoint.id}/events`);
    expectShape(list(WebhookEvent), records.json);
    const record = (records.json as { data: Record<string, unknown>[] }).data[0];
    // A delivery that never got an answer has no response body: null, not "".
    expect(record).toMatchObject({ last_response_body: null, webhook_endpoint_id: endpoint.id });
    await api.updateEndpoint(endpoint.id, { status: 'active' });
    const redelivered = await raw('POST', '/events/evt_CONTRACT1/redeliver');
    expectShape(WebhookEvent, redelivered.json);
    await mb.idle();
  });

  it('the FHIR-source catalogue at /connections (by fhirsrc_ id or base URL); there is no /sources', async () => {
    const catalogue = await raw('GET', '/connections?limit=2');
    expectShape(list(FhirSource), catalogue.json);
    const first = (catalogue.json as { data: { id: string; fhir_base_url: string }[] }).data[0];
    if (!first) throw new Error('empty catalogue');
    expectShape(FhirSource, (await raw('GET', `/connections/${first.id}`)).json);
    expect((await raw('GET', `/connections/${encodeURIComponent(first.fhir_base_url)}`)).json).toMatchObject({
      id: first.id,
    });
    expect((await raw('GET', `/sources/${first.id}`)).status).toBe(404);
  });

  it('patients and their connections (GET /patients, GET /patients/{id})', async () => {
    mb.setPatient('user_contract', [
      {
        id: 'conn_CONTRACT',
        connection_id: 'fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc',
        status: 'expired',
        created_at: '2026-04-25T14:33:10.000Z',
        updated_at: '2026-05-01T00:00:00.000Z',
      },
    ]);
    expectShape(list(MedblocksPatient), (await raw('GET', '/patients')).json);
    expectShape(PatientDetail, (await raw('GET', '/patients/user_contract')).json);
    expect((await raw('GET', '/patients/nobody')).status).toBe(404);
  });

  it("a patient's records (GET /patients/{id}/records), paged both ways, in PatientRecords", async () => {
    mb.putRecords(
      'user_contract_records',
      generatePatientRecords({
        patientId: 'user_contract_records',
        source: 'fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc',
        seed: 11,
        count: 40,
      })
    );
    const first = await raw('GET', '/patients/user_contract_records/records?count=15');
    expectShape(PatientRecords, first.json);
    const { next_cursor: next } = first.json as v.InferOutput<typeof PatientRecords>;
    const second = await raw('GET', `/patients/user_contract_records/records?count=15&starting_after=${next ?? ''}`);
    expectShape(PatientRecords, second.json);
    const { previous_cursor: previous } = second.json as v.InferOutput<typeof PatientRecords>;
    expect(previous).not.toBeNull();
    const back = await raw('GET', `/patients/user_contract_records/records?count=15&ending_before=${previous ?? ''}`);
    expectShape(PatientRecords, back.json);
    expectShape(PatientRecords, (await raw('GET', '/patients/user_contract_records/records?type=Patient')).json);
    expect((await raw('GET', '/patients/nobody/records')).status).toBe(404);
  });

  it('GET /health answers without a key: ok and server_time', async () => {
    const health = await raw('GET', '/health', undefined, false);
    expectShape(
      v.strictObject({ ok: v.literal(true), server_time: v.pipe(v.string(), v.isoTimestamp()) }),
      health.json
    );
  });

  it('every error in the envelope, its code in the published catalogue, request_id equal to X-Request-Id', async () => {
    const answers = [
      await raw('GET', '/webhooks', undefined, false),
      await raw('GET', '/webhooks/wh_nope'),
      await raw('POST', '/webhooks', { url: 'http://localhost:1/x', events: ['patient_flow.completed'] }),
      await raw('POST', '/webhooks', { url: 'ftp://x', events: ['*'] }),
      await raw('GET', '/patients/user_contract/records?count=0'),
      await raw('GET', '/patients/user_contract/records?starting_after=AAAAAAAAAAAA'),
      await raw('GET', '/patients/nobody/records'),
    ];
    for (const answer of answers) {
      expectShape(ErrorEnvelope, answer.json);
      const { error } = answer.json as v.InferOutput<typeof ErrorEnvelope>;
      expect(ERROR_CODES[answer.status]).toContain(error.code);
      expect(error.request_id).toBe(answer.requestId);
    }
  });
});

describe('the tools send the published request shapes and keep request_id', () => {
  it('createEndpoint sends a WebhookEndpointCreateInput; a refusal names its request_id', async () => {
    const api = new MedblocksApi(mb.url, mb.apiKey, recordingFetch);
    await api.createEndpoint({
      url: 'http://localhost:1/d',
      events: ['connection.token_refresh_failed'],
      description: 'd',
    });
    for (const request of sent.filter((r) => r.method === 'POST' && r.path === '/webhooks')) {
      expectShape(WebhookEndpointCreateInput, request.body);
    }
    const refused = await api.getSource('fhirsrc_unknown').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(MedblocksApiError);
    expect(String(refused)).toMatch(/HTTP 404: No such FHIR source: fhirsrc_unknown; request_id req_\w+/);
  });
});
