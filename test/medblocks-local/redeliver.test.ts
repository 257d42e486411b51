import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../support/until';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { MedblocksApi } from '../../src/tools/provision/medblocks-api';
import { redeliver } from '../../src/tools/redeliver/redeliver';

const running: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (running.length) await running.pop()?.close();
});

/** A receiver whose answer can be switched: failing first, healthy after the fix. */
async function receiver(): Promise<{ url: string; status: { code: number }; hits: number[] }> {
  const status = { code: 503 };
  const hits: number[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.push(status.code);
      res.writeHead(status.code);
      res.end();
    });
  });
  await new Promise<void>((r) =>
    server.listen(0, '127.0.0.1', () => {
      r();
    })
  );
  running.push({
    close: () =>
      new Promise<void>((r) => {
        server.close(() => {
          r();
        });
      }),
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, status, hits };
}

const ev = (id: string, type: string) => ({ id, object: 'event', type, data: { object: {} } });

async function setup() {
  let clock = Date.parse('2026-04-25T14:35:00.000Z');
  const mb = await startLocalMedblocks({ timeScale: 1e9, now: () => clock });
  running.push(mb);
  const rx = await receiver();
  const api = new MedblocksApi(mb.url, mb.apiKey);
  const flow = await api.createEndpoint({ url: rx.url, events: ['patient_session.completed'], description: 'flow' });
  await api.createEndpoint({
    url: rx.url,
    events: ['records.sync.completed', 'records.sync.failed'],
    description: 'sync',
  });
  mb.emit(ev('evt_1', 'patient_session.completed'));
  mb.emit(ev('evt_2', 'records.sync.completed'));
  await mb.idle();
  return { mb, rx, api, flow, advance: (ms: number) => (clock += ms), now: () => clock };
}

describe('redeliver against the local Medblocks', () => {
  it('dry run plans without calling redeliver and names the disabled endpoints', async () => {
    const { rx, api } = await setup();
    const lines: string[] = [];
    const before = rx.hits.length;
    const s = await redeliver({ api, dryRun: true, print: (l) => lines.push(l) });
    expect(s.planned.map((p) => p.id).sort()).toEqual(['evt_1', 'evt_2']);
    expect(rx.hits.length).toBe(before);
    expect(lines.join('\n')).toMatch(/is disabled/);
    expect(lines.at(-1)).toMatch(/Dry run: 2 event/);
  });

  it('re-enables, redelivers, and reports delivered now; filters by type', async () => {
    const { rx, api, mb, flow, now } = await setup();
    rx.status.code = 200;
    const lines: string[] = [];
    const s = await redeliver({
      api,
      reenable: true,
      now,
      filters: { type: 'patient_session.completed' },
      print: (l) => lines.push(l),
    });
    expect(mb.endpoint(flow.id)?.status).toBe('active');
    expect(s).toMatchObject({ redelivered: 1, deliveredNow: 1, stillFailing: [] });
    expect(lines.at(-1)).toMatch(/Redelivered 1, delivered now 1, still failing 0/);
    expect((await api.listEvents(flow.id, true)).map((e) => e.id)).toEqual(['evt_1']);
  });

  it('waits out a 429 Retry-After instead of failing, with a bounded wait', async () => {
    const { rx, api, advance, now } = await setup();
    const waits: number[] = [];
    await redeliver({ api, reenable: true, now, filters: { event: 'evt_2' }, print: () => undefined });
    rx.status.code = 200;
    const s = await redeliver({
      api,
      now,
      filters: { event: 'evt_2' },
      sleep: (ms) => {
        waits.push(ms);
        advance(ms);
        return Promise.resolve();
      },
      print: () => undefined,
    });
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeLessThanOrEqual(65_000);
    expect(s.deliveredNow).toBe(1);
  });

  it('skips events still inside Medblocks retry window unless forced; status-code filter', async () => {
    let clock = Date.parse('2026-04-25T14:35:00.000Z');
    const mb = await startLocalMedblocks({ timeScale: 1, now: () => clock });
    running.push(mb);
    const rx = await receiver();
    const api = new MedblocksApi(mb.url, mb.apiKey);
    await api.createEndpoint({ url: rx.url, events: ['records.sync.failed'], description: 'sync' });
    mb.emit(ev('evt_3', 'records.sync.failed'));
    await until(() => rx.hits.length >= 1, 'the first attempt');
    const now = () => clock;
    const a = await redeliver({ api, dryRun: true, now, print: () => undefined });
    expect(a.skipped.map((x) => x.id)).toEqual(['evt_3']);
    expect(
      (await redeliver({ api, dryRun: true, force: true, now, filters: { statusCode: 404 }, print: () => undefined }))
        .planned
    ).toEqual([]);
    const c = await redeliver({
      api,
      dryRun: true,
      force: true,
      now,
      filters: { statusCode: 503 },
      print: () => undefined,
    });
    expect(c.planned.map((x) => x.id)).toEqual(['evt_3']);
    clock += 0;
  });
});
