// Tools that survive a hostile or silent server. Real loopback servers: one that
// accepts every connection and never answers, and a Medblocks that answers what an attacker or an
// outage would (HTML, a page of 300,000 items, a non-array `data`, an item of the wrong shape,
// endless 429s). Each run ends, non-zero where it could not do its work, with a message that names
// what it was waiting for or what was wrong — never a stack, never silence.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runMonitor } from '../../src/tools/cli/monitor';
import { MedblocksApi, MedblocksApiError, WaitBudget } from '../../src/tools/provision/medblocks-api';
import { makeRoot } from '../support/provision-root';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];

async function serve(handler: Handler): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/`;
}

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('npm run monitor against a Medplum that never answers', () => {
  let cleanup: () => void = () => undefined;
  afterEach(() => {
    cleanup();
  });

  it('exits 1 within its bound (one request timeout: MedplumClient does not retry a silent server), naming what it waited for', async () => {
    const silent = await serve(() => undefined);
    const made = makeRoot();
    cleanup = made.cleanup;
    const lines: string[] = [];
    const started = Date.now();
    const code = await runMonitor([], {
      print: (l) => lines.push(l),
      root: made.root,
      env: { MEDPLUM_BASE_URL: silent, MEDPLUM_CLIENT_ID: 'c', MEDPLUM_CLIENT_SECRET: 's' },
      requestTimeoutMs: 1_000,
    });
    const elapsed = Date.now() - started;
    expect(code).toBe(1);
    // One bound, not three (0.3.0 retried a silent server twice: 3 × the timeout).
    expect(elapsed).toBeLessThan(2_500);
    expect(lines.join('\n')).toMatch(
      new RegExp(
        `monitor failed: no answer from MEDPLUM_BASE_URL=${silent.replace(/[.]/g, '\\.')} within 1 s \\(waiting for GET /healthcheck\\)`
      )
    );
  });
});

describe('the Medblocks client against hostile answers', () => {
  const json =
    (body: unknown, status = 200, headers: Record<string, string> = {}): Handler =>
    (_req, res) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
  const noSleep = { sleep: () => Promise.resolve() };

  it('an HTML page says the answer is not JSON and names MEDBLOCKS_API_BASE_URL', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Medblocks dashboard</title>');
    });
    await expect(new MedblocksApi(url, 'mb_sk_x').listEndpoints()).rejects.toThrow(
      `Medblocks GET /webhooks failed with HTTP 200: the answer is not JSON (text/html): is MEDBLOCKS_API_BASE_URL=${url} Medblocks' API?`
    );
  });

  it('a page of 300,000 items is refused as beyond the page limit, without a stack overflow', async () => {
    const item = { id: 'we_1', url: 'https://x', events: ['*'], status: 'active' };
    const url = await serve(json({ data: Array.from({ length: 300_000 }, () => item), has_more: false }));
    await expect(new MedblocksApi(url, 'mb_sk_x').listEndpoints()).rejects.toThrow(
      'Medblocks GET /webhooks failed: a page of 300000 items for limit 100'
    );
  });

  it('a non-array data, or an item of the wrong shape, is named by its path, never by its value', async () => {
    const notArray = await serve(json({ data: { id: 'we_1' }, has_more: false }));
    await expect(new MedblocksApi(notArray, 'mb_sk_x').listEndpoints()).rejects.toThrow(
      'the answer is not a list page (.data)'
    );
    const wrongItem = await serve(
      json({ data: [{ id: 'we_1', url: 'https://x', events: 'SECRET-ish', status: 'active' }] })
    );
    const failure = await new MedblocksApi(wrongItem, 'mb_sk_x').listEndpoints().catch((err: unknown) => err);
    expect(String(failure)).toContain('an item of an unexpected shape (data[0].events)');
    expect(String(failure)).not.toContain('SECRET-ish');
  });

  it('pages without end stop with an error after 10,000 items, never silently', async () => {
    let served = 0;
    const url = await serve((_req, res) => {
      served++;
      json({
        data: [{ id: `evt_${String(served)}`, type: 'records.sync.failed' }],
        has_more: true,
        next_cursor: `c${String(served)}`,
      })(_req, res);
    });
    await expect(new MedblocksApi(url, 'mb_sk_x').listEvents('we_1')).rejects.toThrow(
      'more than 10000 items: stopped rather than go on without bound'
    );
    expect(served).toBe(100);
  });

  it('a read is retried after a 503 and a 429 (Retry-After honoured), then succeeds', async () => {
    const answers = [503, 429];
    const url = await serve((req, res) => {
      const status = answers.shift();
      if (status) json({ error: { code: 'x' } }, status, status === 429 ? { 'retry-after': '7' } : {})(req, res);
      else json({ data: [], has_more: false })(req, res);
    });
    const waits: number[] = [];
    const api = new MedblocksApi(url, 'mb_sk_x', fetch, {
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    await expect(api.listEndpoints()).resolves.toEqual([]);
    expect(waits).toEqual([500, 7000]);
  });

  it('endless 429s end when the run’s wait budget is spent, saying so', async () => {
    const url = await serve(json({ error: { code: 'rate_limited' } }, 429, { 'retry-after': '60' }));
    const api = new MedblocksApi(url, 'mb_sk_x', fetch, { ...noSleep, waitBudget: new WaitBudget(150_000) });
    const first = await api.listEndpoints().catch((err: unknown) => err);
    expect(first).toBeInstanceOf(MedblocksApiError);
    expect(String(first)).toMatch(/HTTP 429.*the 3-minute budget for waiting on Medblocks is spent/);
    // The budget is the run's: the next call cannot wait at all.
    expect(String(await api.listEndpoints().catch((err: unknown) => err))).toContain(
      'budget for waiting on Medblocks is spent'
    );
  });

  it('a Medblocks that never answers fails the request within its timeout, naming the call and the variable', async () => {
    const silent = await serve(() => undefined);
    const api = new MedblocksApi(silent, 'mb_sk_x', fetch, {
      ...noSleep,
      timeoutMs: 300,
      waitBudget: new WaitBudget(0),
    });
    const started = Date.now();
    const failure = await api.listEndpoints().catch((err: unknown) => err);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(String(failure)).toContain(
      `Medblocks GET /webhooks failed: no answer within 300 ms (waiting for GET /webhooks) (check MEDBLOCKS_API_BASE_URL=${silent})`
    );
  });
});
