// The Medblocks-side sender: signing per attempt, the 5 s deadline, 2xx = success, and the retry
// schedule on a scaled clock, against a scripted local receiver.
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { main as sendCli } from '../../src/tools/cli/send';
import { recordsSyncFailed, serialise } from '../../src/tools/fixtures/events';
import { deliver, LOCAL_RETRY_SCHEDULE_MS, RETRY_SCHEDULE_MS } from '../../src/tools/sender/sender';
import { verifySignature } from '../../src/runtime/medblocks/signature';

const SECRET = 'whsec_sender_test_0123456789abcdef';
const BODY = serialise(recordsSyncFailed());

interface Received {
  readonly header: string;
  readonly body: string;
  readonly contentType: string;
}

let server: Server;
let url: string;
let script: (number | 'hang' | { status: number; body: string })[] = [];
let received: Received[] = [];

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      resolve(text);
    });
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    void readAll(req).then((body) => {
      received.push({
        header: String(req.headers['medblocks-signature']),
        body,
        contentType: String(req.headers['content-type']),
      });
      const next = script.shift() ?? 500;
      if (next === 'hang') return; // never answers; closed by closeAllConnections
      if (typeof next === 'object') {
        res.writeHead(next.status, { 'content-type': 'application/json' }).end(next.body);
        return;
      }
      res.writeHead(next, { 'content-type': 'application/json' }).end('{"ok":false}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook/x`;
});

afterEach(() => {
  script = [];
  received = [];
  vi.restoreAllMocks();
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    })
  );
});

/** A Medblocks clock that jumps forward by (real sleep × scale) on every sleep. */
function scaledClock(scale: number) {
  let virtualNow = Date.parse('2026-04-25T14:36:12.000Z');
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => virtualNow,
    sleep: (ms: number) => {
      sleeps.push(ms);
      virtualNow += ms * scale;
      return Promise.resolve();
    },
  };
}

function timestampOf(header: string): number {
  return Number(/t=(\d+)/.exec(header)?.[1]);
}

describe('deliver', () => {
  test('follows the 9-attempt schedule on the scaled clock and signs each attempt afresh', async () => {
    const clock = scaledClock(3600);
    const result = await deliver({
      url,
      body: BODY,
      secret: SECRET,
      timeScale: 3600,
      now: clock.now,
      sleep: clock.sleep,
    });

    expect(result.delivered).toBe(false);
    expect(result.attempts.map((a) => a.status)).toEqual(Array(9).fill(500));
    expect(clock.sleeps).toEqual(RETRY_SCHEDULE_MS.slice(1).map((ms) => ms / 3600));
    expect(result.attempts.map((a) => a.scheduledOffsetMs)).toEqual([
      0, 60_000, 360_000, 2_160_000, 9_360_000, 52_560_000, 138_960_000, 225_360_000, 311_760_000,
    ]);
    const ts = received.map((r) => timestampOf(r.header));
    const first = ts[0] ?? 0;
    expect(ts.map((t) => (t - first) * 1000)).toEqual(result.attempts.map((a) => a.scheduledOffsetMs));
    for (const r of received) {
      expect(r.body).toBe(BODY);
      expect(r.contentType).toBe('application/json');
      const check = verifySignature({
        header: r.header,
        rawBody: r.body,
        secrets: [SECRET],
        now: () => timestampOf(r.header) * 1000,
      });
      expect(check.ok).toBe(true);
    }
  });

  test('stops at the first 2xx; 3xx and 4xx count as failures', async () => {
    script = [302, 404, 503, 204];
    const clock = scaledClock(1e6);
    const result = await deliver({ url, body: BODY, secret: SECRET, now: clock.now, sleep: clock.sleep });
    expect(result.delivered).toBe(true);
    expect(result.attempts.map((a) => [a.status, a.ok])).toEqual([
      [302, false],
      [404, false],
      [503, false],
      [204, true],
    ]);
  });

  test('an answer slower than the deadline is a failed attempt (timeout)', async () => {
    script = ['hang', 200];
    const clock = scaledClock(1e6);
    const result = await deliver({
      url,
      body: BODY,
      secret: SECRET,
      deadlineMs: 150,
      now: clock.now,
      sleep: clock.sleep,
    });
    expect(result.attempts.map((a) => [a.status, a.error, a.ok])).toEqual([
      [undefined, 'timeout', false],
      [200, undefined, true],
    ]);
  });

  test('tampering, skew and a wrong secret make signatures the receiver must refuse', async () => {
    script = [200, 200, 200, 200];
    const now = Date.parse('2026-04-25T14:36:12.000Z');
    const base = { url, body: BODY, secret: SECRET, now: () => now, maxAttempts: 1 };
    await deliver({ ...base, tamper: 'body' });
    await deliver({ ...base, tamper: 'signature' });
    await deliver({ ...base, clockSkewSeconds: -600 });
    await deliver({ ...base, secret: 'whsec_someone_else' });
    const verdicts = received.map((r) =>
      verifySignature({ header: r.header, rawBody: r.body, secrets: [SECRET], now: () => now })
    );
    expect(verdicts).toEqual([
      { ok: false, reason: 'signature_mismatch' },
      { ok: false, reason: 'signature_mismatch' },
      { ok: false, reason: 'timestamp_out_of_tolerance' },
      { ok: false, reason: 'signature_mismatch' },
    ]);
    expect(received[0]?.body).not.toBe(BODY);
    expect(() => JSON.parse(received[0]?.body ?? '') as unknown).not.toThrow();
  });
});

describe('npm run send', () => {
  test('prints each attempt and exits 1 when delivery finally failed', async () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: string) => lines.push(line));
    const args = ['--url', url, '--type', 'records.sync.failed', '--secret', SECRET, '--time-scale', '1000000'];
    expect(await sendCli([...args, '--max-attempts', '3'])).toBe(1);
    expect(
      lines.filter((l) => / attempt=\d /.test(l)).map((l) => /attempt=(\d) .* status=(\d+)/.exec(l)?.slice(1))
    ).toEqual([
      ['1', '500'],
      ['2', '500'],
      ['3', '500'],
    ]);
    expect(lines.at(-1)).toMatch(/^FAILED 1\/1/);
  });

  test('exits 0 when every delivery got a 2xx, duplicates included', async () => {
    script = [200, 200];
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const args = ['--url', url, '--type', 'patient_flow.completed', '--secret', SECRET, '--duplicate', '2'];
    expect(await sendCli(args)).toBe(0);
    expect(received).toHaveLength(2);
    const ids = received.map((r) => (JSON.parse(r.body) as { id: string }).id);
    expect(ids[0]).toBe(ids[1]);
  });
});

/** An OperationOutcome as Medplum answers a bot's throw: the thrown message is the only text. */
function thrown(status: number, message: string): { status: number; body: string } {
  return {
    status,
    body: JSON.stringify({
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'invalid', details: { text: message } }],
    }),
  };
}

function ok(body: Record<string, string>): { status: number; body: string } {
  return { status: 200, body: JSON.stringify(body) };
}

async function sendCollecting(argv: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const io = { print: (l: string) => lines.push(l), printError: (l: string) => lines.push(l) };
  const code = await sendCli(argv, io);
  return { code, lines };
}

describe('npm run send, as a newcomer uses it', () => {
  const base = () => ['--url', url, '--type', 'records.sync.failed', '--secret', SECRET];

  test('one attempt by default: a failure is reported at once, with how to get retries', async () => {
    script = [500, 500, 500];
    const started = performance.now();
    const { code, lines } = await sendCollecting(base());
    expect(code).toBe(1);
    expect(received).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(lines[0]).toMatch(/\(one attempt\)$/);
    expect(lines.at(-1)).toBe('FAILED 1/1 (Medblocks would retry on its schedule: --medblocks-schedule)');
  });

  test('--max-attempts without --medblocks-schedule retries seconds apart, not minutes', async () => {
    script = [503, 200];
    const { code, lines } = await sendCollecting([...base(), '--max-attempts', '2']);
    expect(code).toBe(0);
    expect(received).toHaveLength(2);
    expect(LOCAL_RETRY_SCHEDULE_MS[1]).toBe(1000);
    expect(lines.filter((l) => / attempt=/.test(l)).map((l) => /attempt=(\d) (t\+\S+)/.exec(l)?.slice(1))).toEqual([
      ['1', 't+0s'],
      ['2', 't+1s'],
    ]);
  });

  test('--skew -600 as the docs write it: the signature is ten minutes old', async () => {
    script = [200];
    const before = Math.floor(Date.now() / 1000);
    const { code } = await sendCollecting([...base(), '--skew', '-600']);
    expect(code).toBe(0);
    const t = timestampOf(received[0]?.header ?? '');
    expect(before - 600 - t).toBeLessThanOrEqual(1);
    expect(t).toBeLessThanOrEqual(before - 599);
  });

  test("each attempt prints the bot's outcome, parsed from its answer", async () => {
    script = [
      ok({ status: 'processed' }),
      ok({ status: 'duplicate' }),
      ok({ status: 'stale' }),
      ok({ status: 'quarantined', event: 'evt_1', type: 'records.sync.failed', reason: 'invalid_payload' }),
      thrown(400, 'Delivery rejected: signature_mismatch'),
      thrown(
        400,
        'FHIR write failed: server_error (HTTP 503); nothing was marked applied, so a Medblocks retry will complete it'
      ),
      { status: 403, body: 'Bot is not configured for public webhook access' },
    ];
    const { lines } = await sendCollecting([...base(), '--duplicate', '7']);
    expect(
      lines.filter((l) => / attempt=/.test(l)).map((l) => /status=(\d+) outcome=(.*) ms=/.exec(l)?.slice(1))
    ).toEqual([
      ['200', 'processed'],
      ['200', 'duplicate'],
      ['200', 'stale'],
      ['200', 'quarantined:invalid_payload'],
      ['400', 'rejected:signature_mismatch'],
      ['400', 'failed:server_error'],
      ['403', 'answer "Bot is not configured for public webhook access"'],
    ]);
  });

  test('a refused connection names the port of the URL and the command to start', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) =>
      probe.close(() => {
        resolve();
      })
    );
    const { code, lines } = await sendCollecting(['--emulator', `http://127.0.0.1:${String(port)}`]);
    expect(code).toBe(1);
    expect(lines.find((l) => / attempt=1 /.test(l))).toMatch(/status=network outcome=connection_refused /);
    expect(lines).toContain(
      `connection refused — is \`npm run dev\` running on port ${String(port)}? (start it, or pass --emulator http://127.0.0.1:<its port>)`
    );
  });

  test('--help sends nothing', async () => {
    const { code, lines } = await sendCollecting(['--help', '--url', url]);
    expect(code).toBe(0);
    expect(received).toEqual([]);
    expect(lines.join('\n')).toContain('--medblocks-schedule');
  });
});
