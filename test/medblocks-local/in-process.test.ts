// The local Medblocks in process (src/tools/medblocks-local/in-process.ts) is the HTTP one without the
// socket: the same requests get the same answers — status, content type, body up to the random ids
// — because both go through one `answerRequest` (core.ts). What only the in-process entry does: it
// answers its own URL only, and its deliveries go through the `deliver` it is given.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessLocalMedblocks } from '../../src/tools/medblocks-local/in-process';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import type { RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { verifySignature } from '../../src/runtime/medblocks/signature';

const KEY = 'mb_sk_test_in_process';
const NOW = Date.parse('2026-08-01T12:00:00.000Z');
const BASE = 'https://medblocks.in-process.test/';

let server: RunningLocalMedblocks;

beforeAll(async () => {
  server = await startLocalMedblocks({ apiKey: KEY, now: () => NOW });
});
afterAll(async () => {
  await server.close();
});

interface Step {
  readonly method: string;
  readonly path: string;
  readonly body?: string;
  readonly key?: string;
}

const STEPS: readonly Step[] = [
  { method: 'GET', path: 'health', key: '' },
  { method: 'GET', path: 'webhooks', key: 'wrong' },
  {
    method: 'POST',
    path: 'webhooks',
    body: JSON.stringify({ url: 'https://x.test/a', events: ['records.sync.failed'] }),
  },
  { method: 'POST', path: 'webhooks', body: JSON.stringify({ url: 'https://x.test/b', events: ['nope'] }) },
  { method: 'POST', path: 'webhooks', body: '{not json' },
  { method: 'POST', path: 'webhooks', body: 'x'.repeat(1_000_001) },
  { method: 'GET', path: 'webhooks?limit=1' },
  { method: 'GET', path: 'webhooks/wh_nope' },
  { method: 'PUT', path: 'webhooks' },
];

/** The answer with its random parts (ids, secrets, request ids) named by kind only. */
async function seen(response: Response): Promise<[number, string | null, string]> {
  const text = (await response.text()).replace(/\b(wh|req|whsec)_[0-9A-Za-z]+/g, '$1_*');
  return [response.status, response.headers.get('content-type'), text];
}

function init(step: Step): RequestInit {
  const key = step.key ?? KEY;
  return {
    method: step.method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    ...(step.body === undefined ? {} : { body: step.body }),
  };
}

describe('the local Medblocks in process', () => {
  it('answers every request as the HTTP server does', async () => {
    const inProcess = createInProcessLocalMedblocks({ url: BASE, apiKey: KEY, now: () => NOW });
    for (const step of STEPS) {
      const overHttp = await seen(await fetch(`${server.url}/${step.path}`, init(step)));
      const local = await seen(await inProcess.fetch(`${BASE}${step.path}`, init(step)));
      expect(local, `${step.method} /${step.path}`).toEqual(overHttp);
    }
  });

  it('answers only its own URL, as an unreachable host fails', async () => {
    const inProcess = createInProcessLocalMedblocks({ url: BASE, apiKey: KEY });
    await expect(inProcess.fetch('https://elsewhere.test/health')).rejects.toThrow(TypeError);
  });

  it('delivers through the fetch it is given, signed with the endpoint secret', async () => {
    const received: { url: string; body: string; signature: string | null }[] = [];
    const inProcess = createInProcessLocalMedblocks({
      url: BASE,
      apiKey: KEY,
      deliver: async (input, options) => {
        const request = new Request(input, options);
        received.push({
          url: request.url,
          body: await request.text(),
          signature: request.headers.get('medblocks-signature'),
        });
        return new Response('ok');
      },
    });
    const created = await inProcess.fetch(`${BASE}webhooks`, init(STEPS[2] ?? { method: 'POST', path: '' }));
    const { id, secret } = (await created.json()) as { id: string; secret: string };
    inProcess.emit({ id: 'evt_IN_PROCESS', object: 'event', type: 'records.sync.failed', data: { object: {} } });
    await inProcess.idle();
    expect(received.map((r) => r.url)).toEqual(['https://x.test/a']);
    const [delivery] = received;
    expect(
      verifySignature({ header: delivery?.signature ?? '', rawBody: delivery?.body ?? '', secrets: [secret] }).ok
    ).toBe(true);
    expect(inProcess.deliveryRecords(id)).toMatchObject([{ id: 'evt_IN_PROCESS', attempts: 1, last_status_code: 200 }]);
    await inProcess.close();
  });
});
