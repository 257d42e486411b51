import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../support/until';
import { verifySignature } from '../../src/runtime/medblocks/signature';
import { startLocalMedblocks, type RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { MedblocksApi, MedblocksApiError } from '../../src/tools/provision/medblocks-api';

const running: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (running.length) await running.pop()?.close();
});

async function receiver(answer: (body: string, signature: string) => number): Promise<{ url: string; hits: string[] }> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      hits.push(String(req.headers['medblocks-signature']));
      res.writeHead(answer(body, String(req.headers['medblocks-signature'])));
      res.end('{"status":"ok"}');
    });
  });
  await new Promise<void>((r) =>
    server.listen(0, '127.0.0.1', () => {
      r();
    })
  );
  running.push({
    close: () =>
      new Promise<void>((r) =>
        server.close(() => {
          r();
        })
      ),
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, hits };
}

async function local(opts: Parameters<typeof startLocalMedblocks>[0] = {}): Promise<RunningLocalMedblocks> {
  const mb = await startLocalMedblocks({ timeScale: 1e9, ...opts });
  running.push(mb);
  return mb;
}

const event = (id: string, type = 'records.sync.completed') => ({
  id,
  object: 'event',
  type,
  api_version: '2026-04-25',
  created_at: '2026-04-25T14:35:00.000Z',
  data: {
    object: {
      resource_type: 'records_sync',
      patient_id: 'user_1',
      connection_id: 'fhirsrc_x',
      total: 1,
      errors: 0,
      duration_ms: 1,
    },
  },
});

describe('local Medblocks endpoint API', () => {
  it('refuses a wrong key with an authentication_error', async () => {
    const mb = await local();
    const api = new MedblocksApi(mb.url, 'mb_sk_wrong');
    await expect(api.listEndpoints()).rejects.toMatchObject({ status: 401 });
  });

  it('refuses a loopback-less host', async () => {
    await expect(startLocalMedblocks({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
  });

  it('creates with a whsec_ secret, refuses an unknown flow name on events, patches, rotates and deletes', async () => {
    const mb = await local({ flowEventName: 'patient_session.completed' });
    const api = new MedblocksApi(mb.url, mb.apiKey);
    const refused = await api
      .createEndpoint({ url: 'http://localhost:1/x', events: ['patient_flow.completed'], description: 'flow' })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(MedblocksApiError);
    expect((refused as MedblocksApiError).status).toBe(400);
    const raw = await fetch(`${mb.url}/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${mb.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://localhost:1/x', events: ['patient_flow.completed'] }),
    });
    const errBody = (await raw.json()) as { error: { type: string; param: string; request_id: string } };
    expect(errBody.error).toMatchObject({ type: 'invalid_request_error', param: 'events' });
    expect(errBody.error.request_id).toMatch(/^req_/);
    await expect(
      api.createEndpoint({ url: 'http://example.com/x', events: ['*'], description: 'not https' })
    ).rejects.toMatchObject({ status: 400 });

    const created = await api.createEndpoint({
      url: 'http://localhost:1/x',
      events: ['patient_session.completed'],
      description: 'flow',
    });
    expect(created.secret).toMatch(/^whsec_/);
    expect((await api.listEndpoints()).map((e) => e.id)).toEqual([created.id]);
    expect(JSON.stringify(await api.listEndpoints())).not.toContain('whsec_');
    const patched = await api.updateEndpoint(created.id, { status: 'disabled' });
    expect(patched.status).toBe('disabled');
    const rotated = await api.rotateSecret(created.id);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);
    const del = await fetch(`${mb.url}/webhooks/${created.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${mb.apiKey}` },
    });
    expect(del.status).toBe(200);
    await expect(api.updateEndpoint(created.id, { status: 'active' })).rejects.toMatchObject({ status: 404 });
  });

  it('delivers signed compact JSON, records it delivered, and the secret verifies', async () => {
    let secret = '';
    const rx = await receiver((body, sig) =>
      verifySignature({ header: sig, rawBody: body, secrets: [secret] }).ok ? 200 : 400
    );
    const mb = await local();
    const api = new MedblocksApi(mb.url, mb.apiKey);
    const created = await api.createEndpoint({ url: rx.url, events: ['records.sync.completed'], description: 'sync' });
    secret = created.secret ?? '';
    mb.emit(event('evt_A'));
    mb.emit(event('evt_B', 'records.sync.failed')); // not subscribed: no record
    await mb.idle();
    expect(rx.hits).toHaveLength(1);
    const delivered = await api.listEvents(created.id, true);
    expect(delivered.map((d) => d.id)).toEqual(['evt_A']);
    expect(delivered[0]).toMatchObject({ attempts: 1, last_status_code: 200, next_attempt_at: null });
    expect(await api.listEvents(created.id, false)).toEqual([]);
  });

  it('retries nine times on a fresh t, then disables; events while disabled stay undelivered; redeliver is limited to one a minute', async () => {
    const rx = await receiver(() => 500);
    let clock = Date.parse('2026-04-25T14:35:00.000Z');
    const mb = await local({ now: () => clock });
    const api = new MedblocksApi(mb.url, mb.apiKey);
    const created = await api.createEndpoint({ url: rx.url, events: ['*'], description: 'all' });
    mb.emit(event('evt_C'));
    await mb.idle();
    expect(rx.hits).toHaveLength(9);
    expect(mb.endpoint(created.id)?.status).toBe('disabled');
    const failed = await api.listEvents(created.id, false);
    expect(failed[0]).toMatchObject({ id: 'evt_C', attempts: 9, last_status_code: 500, next_attempt_at: null });
    mb.emit(event('evt_D'));
    await mb.idle();
    expect(rx.hits).toHaveLength(9);
    expect((await api.listEvents(created.id, false)).map((e) => e.id)).toEqual(['evt_C', 'evt_D']);

    await api.updateEndpoint(created.id, { status: 'active' });
    // Re-enqueued, as published: the answer is the record before the attempt; the attempt's
    // outcome shows in the delivery record afterwards.
    const first = await api.redeliver('evt_C');
    expect(first).toMatchObject({ resource_type: 'event', webhook_endpoint_id: created.id, attempts: 9 });
    await mb.idle();
    expect(rx.hits).toHaveLength(10);
    const after = (await api.listEvents(created.id)).find((e) => e.id === 'evt_C');
    expect(after).toMatchObject({ attempts: 10, last_status_code: 500 });
    const limited = (await api.redeliver('evt_C').catch((e: unknown) => e)) as MedblocksApiError;
    expect(limited.status).toBe(429);
    expect(limited.retryAfterSeconds).toBe(60);
    clock += 61_000;
    await api.redeliver('evt_C');
    await mb.idle();
    expect(rx.hits).toHaveLength(11);
    await expect(api.redeliver('evt_nope')).rejects.toMatchObject({ status: 404 });
  });

  it('names known sources and 404s unknown ones', async () => {
    const mb = await local();
    const api = new MedblocksApi(mb.url, mb.apiKey);
    expect((await api.getSource('fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc')).name).toMatch(/Epic/);
    await expect(api.getSource('fhirsrc_unknown')).rejects.toMatchObject({ status: 404 });
  });

  it('close() cancels pending retries', async () => {
    const rx = await receiver(() => 500);
    const mb = await startLocalMedblocks({ timeScale: 1 });
    const api = new MedblocksApi(mb.url, mb.apiKey);
    await api.createEndpoint({ url: rx.url, events: ['*'], description: 'all' });
    mb.emit(event('evt_E'));
    await until(() => rx.hits.length >= 1, 'the first attempt');
    await mb.close();
    await mb.idle();
    expect(rx.hits).toHaveLength(1);
  });
});
