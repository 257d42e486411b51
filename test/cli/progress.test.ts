// Long waits show progress: redeliver's one-a-minute waits and reconcile's
// patient reads say how far the run is and how long it still takes (`3 of 12 events, about 9 min
// left`), on their own channel (stderr from the CLI), so stdout stays the report. An injected clock
// and sleep: no test waits a real minute.
import { describe, expect, it } from 'vitest';
import { runRedeliver } from '../../src/tools/cli/redeliver';
import { formatEstimate, Progress } from '../../src/tools/progress';
import { MedblocksApi } from '../../src/tools/provision/medblocks-api';
import { newMedplumClient } from '../../src/tools/provision/medplum';
import { readSettings } from '../../src/runtime/settings';
import { reconcile } from '../../src/tools/reconcile/reconcile';

/** A clock that only moves when the code under test sleeps (or a test advances it). */
function fakeClock(start = Date.parse('2026-04-25T10:00:00Z')): {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  slept: number[];
} {
  let t = start;
  const slept: number[] = [];
  return {
    now: () => t,
    sleep: (ms) => {
      slept.push(ms);
      t += ms;
      return Promise.resolve();
    },
    slept,
  };
}

describe('the estimate', () => {
  it('is said as a person says a wait, rounded up', () => {
    expect(formatEstimate(0)).toBe('about 0 s');
    expect(formatEstimate(40_100)).toBe('about 41 s');
    expect(formatEstimate(60_000)).toBe('about 1 min');
    expect(formatEstimate(61_000)).toBe('about 2 min');
    expect(formatEstimate(65 * 60_000)).toBe('about 1 h 5 min');
    expect(formatEstimate(120 * 60_000)).toBe('about 2 h');
  });

  it('is the pace so far, plus the wait about to start', () => {
    const clock = fakeClock();
    const progress = new Progress(12, clock.now, 'events');
    // Nothing done yet: the wait is the only pace known (12 events, a minute each).
    expect(progress.describe(0, 60_000)).toBe('0 of 12 events, about 12 min left');
    void clock.sleep(3 * 60_000);
    // 3 done in 3 minutes, a 54 s wait before the 4th, 8 more at a minute each.
    expect(progress.describe(3, 54_000)).toBe('3 of 12 events, about 9 min left');
    expect(progress.describe(12)).toBe('12 of 12 events, about 0 s left');
  });
});

describe('npm run redeliver under the one-a-minute limit', () => {
  const ENDPOINT = 'we_1';
  const EVENTS = ['evt_01A', 'evt_01B', 'evt_01C'];

  /** Medblocks: three undelivered events; each event's first redeliver call answered 429, Retry-After 60. */
  function medblocks(): typeof fetch {
    const limited = new Set<string>();
    const delivered = new Set<string>();
    const record = (id: string) => ({
      id,
      type: 'records.sync.completed',
      webhook_endpoint_id: ENDPOINT,
      attempts: delivered.has(id) ? 2 : 1,
      last_status_code: delivered.has(id) ? 200 : 500,
      last_response_body: delivered.has(id) ? '{"status":"processed"}' : null,
      delivered_at: delivered.has(id) ? '2026-04-25T10:30:00.000Z' : null,
      next_attempt_at: null,
      created_at: '2026-04-25T09:00:00.000Z',
    });
    const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
      new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
    return (input, init) => {
      const url = new URL(input instanceof Request ? input.url : input.toString());
      const method = init?.method ?? 'GET';
      if (method === 'GET' && url.pathname === '/webhooks') {
        return Promise.resolve(
          json(200, {
            data: [{ id: ENDPOINT, url: 'https://x/webhook/1', events: ['records.sync.completed'], status: 'active' }],
          })
        );
      }
      if (method === 'GET' && url.pathname === `/webhooks/${ENDPOINT}/events`) {
        const ids = url.searchParams.get('delivered') === 'false' ? EVENTS.filter((e) => !delivered.has(e)) : EVENTS;
        return Promise.resolve(json(200, { data: ids.map(record), has_more: false }));
      }
      const redeliver = /^\/events\/([^/]+)\/redeliver$/.exec(url.pathname);
      if (method === 'POST' && redeliver?.[1]) {
        const id = redeliver[1];
        if (!limited.has(id)) {
          limited.add(id);
          return Promise.resolve(
            json(429, { error: { code: 'rate_limited', message: 'one a minute' } }, { 'retry-after': '60' })
          );
        }
        const answer = record(id);
        delivered.add(id);
        return Promise.resolve(json(200, answer));
      }
      return Promise.resolve(json(404, { error: { code: 'not_found' } }));
    };
  }

  it('each wait says how many are done and how long is left, apart from the report', async () => {
    const clock = fakeClock();
    const report: string[] = [];
    const progress: string[] = [];
    const code = await runRedeliver(
      [],
      {
        MEDPLUM_BASE_URL: 'http://127.0.0.1:8913/',
        MEDBLOCKS_API_KEY: 'mb_sk_x',
        MEDBLOCKS_API_BASE_URL: 'https://mb.test',
      },
      (l) => report.push(l),
      { fetchFn: medblocks(), now: clock.now, sleep: clock.sleep, progress: (l) => progress.push(l) }
    );
    expect(code).toBe(0);
    expect(clock.slept).toEqual([60_000, 60_000, 60_000]);
    expect(progress).toEqual([
      'wait  evt_01A: Medblocks allows one redelivery a minute; retrying in 60 s (0 of 3 events, about 3 min left)',
      'wait  evt_01B: Medblocks allows one redelivery a minute; retrying in 60 s (1 of 3 events, about 2 min left)',
      'wait  evt_01C: Medblocks allows one redelivery a minute; retrying in 60 s (2 of 3 events, about 1 min left)',
    ]);
    // The report has the outcomes and no wait line.
    expect(report.some((l) => l.startsWith('wait'))).toBe(false);
    expect(report.at(-1)).toBe('Redelivered 3, delivered now 3, still failing 0, skipped 0.');
  });
});

describe('npm run reconcile over many patients', () => {
  it('says every 10 s (and every 50 patients) how many are read and how long is left, apart from its lines', async () => {
    const clock = fakeClock();
    // Each patient read takes 4 s (a slow or rate-limited Medblocks); none has a connection, so
    // Medplum is never asked.
    const slowMedblocks: typeof fetch = async (input) => {
      await clock.sleep(4_000);
      const id = /\/patients\/([^/?]+)/.exec(input instanceof Request ? input.url : input.toString())?.[1] ?? '';
      return new Response(JSON.stringify({ id, connections: [] }), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    };
    const lines: string[] = [];
    const progress: string[] = [];
    const summary = await reconcile({
      medplum: newMedplumClient('http://127.0.0.1:8913/'),
      api: new MedblocksApi('https://mb.test', 'mb_sk_x', slowMedblocks),
      settings: readSettings({}),
      dryRun: false,
      patientIds: ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'],
      print: (l) => lines.push(l),
      progress: (l) => progress.push(l),
      now: clock.now,
    });
    expect(summary.patients).toBe(7);
    expect(progress).toEqual(['… 3 of 7 patients, about 16 s left', '… 6 of 7 patients, about 4 s left']);
    expect(lines).toEqual([]);
  });
});
