import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent, Bot, Task } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runMonitor } from '../../src/tools/cli/monitor';
import { runProvision } from '../../src/tools/cli/provision';
import { buildDeadLetter, resolveDeadLetter } from '../../src/runtime/fhir/dead-letter';
import { CODE, packageCode, SYSTEM } from '../../src/runtime/fhir/systems';
import { percentile, runStats } from '../../src/tools/monitor/analyse';
import { outcomeOfConsole as parseOutcome } from '../../src/runtime/summary';
import type { MonitorReport } from '../../src/tools/monitor/monitor';
import { EMULATOR_PROJECT_ID } from '../../src/tools/emulator/identity';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { recordsSyncFailed } from '../../src/tools/fixtures/events';
import { FakeMedplum, fakeFetch, LocalMedblocks, LoopbackService, MEDBLOCKS_KEY } from '../support/fake-servers';
import { botRunAuditEvent } from '../support/audit-events';
import { EmulatorProject, emulatorEnv } from '../support/emulator-project';
import { fakeEnv, makeRoot } from '../support/provision-root';

// The monitor against the emulator (src/tools/emulator: login ADM-7, /auth/me ADM-9, the admin
// API ADM-10, AuditEvent search ADM-15), its project set up as the server's system would write it;
// only a server older than Bot.rawBody (ADM-1, ADM-4), which the emulator is not, is FakeMedplum's.
const NOW = Date.parse('2026-08-01T12:00:00.000Z');
let emulator: RunningEmulator;
let medplum: LoopbackService;
let project: EmulatorProject;
let medblocks: LocalMedblocks;
/** Medblocks' clock when a test sets it; this machine's otherwise. */
let medblocksClock: number | undefined;
let root: string;
let cleanup: () => void;

function audit(botId: string, minutesAgo: number, ms: number, outcome: '0' | '4', line: string): AuditEvent {
  return botRunAuditEvent(NOW, botId, minutesAgo, ms, outcome, line);
}

/** The environment `npm run dev` prints: the emulator's admin client, and the local Medblocks. */
function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...emulatorEnv(emulator, medblocks), ...extra };
}

beforeEach(async () => {
  ({ root, cleanup } = makeRoot());
  emulator = await startEmulator({ root });
  medplum = new LoopbackService(emulator.url);
  project = new EmulatorProject(emulator);
  medblocksClock = undefined;
  // The retry schedule (MB-D5) runs in microseconds; every receiver answers 500, so an event emitted
  // goes undelivered through all nine attempts and its endpoint is disabled, as Medblocks does.
  medblocks = new LocalMedblocks({
    now: () => medblocksClock ?? Date.now(),
    timeScale: 1e9,
    deliver: () => Promise.resolve(new Response('receiver down', { status: 500 })),
  });
  await runProvision([], { root, env: env(), fetchFn: fakeFetch(medplum, medblocks), print: () => undefined });
});

afterEach(async () => {
  await medblocks.local.close();
  await emulator.close();
  cleanup();
});

async function run(args: string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; output: string }> {
  const lines: string[] = [];
  const code = await runMonitor(args, {
    root,
    env: env(extraEnv),
    fetchFn: fakeFetch(medplum, medblocks),
    now: () => NOW,
    print: (l) => lines.push(l),
  });
  return { code, output: lines.join('\n') };
}

describe('npm run monitor', () => {
  it('--json stays one JSON document while a wait on Medblocks is said on the progress channel', async () => {
    const inner = fakeFetch(medplum, medblocks);
    let outage = true;
    // Medblocks' first endpoint list is answered 503 (an outage): the client waits 0.5 s and retries.
    const flaky: typeof fetch = (input, init) => {
      const url = input instanceof Request ? input.url : input.toString();
      if (outage && url.startsWith(`${medblocks.url}webhooks`)) {
        outage = false;
        return Promise.resolve(new Response('{"error":{"code":"unavailable"}}', { status: 503 }));
      }
      return inner(input, init);
    };
    const stdout: string[] = [];
    const progress: string[] = [];
    await runMonitor(['--json'], {
      root,
      env: env(),
      fetchFn: flaky,
      now: () => NOW,
      print: (l) => stdout.push(l),
      progress: (l) => progress.push(l),
    });
    expect(() => JSON.parse(stdout.join('\n')) as unknown).not.toThrow();
    expect(progress).toEqual(['wait  Medblocks GET /webhooks answered HTTP 503; retrying in 1 s']);
  });

  it('reports runs, failures by reason and latency, and exits 0 when all is well', async () => {
    const bot = await project.bot('medblocks-records-sync-completed');
    const ok = 'medblocks evt=evt_A type=records.sync.completed outcome=processed fhir_requests=2 ms=40';
    for (const [i, ms] of [10, 20, 30, 40, 50, 60, 70, 80, 90, 100].entries())
      await project.put(audit(bot.id, i + 1, ms, '0', ok));
    await project.put(audit(bot.id, 60 * 30, 5, '0', ok)); // outside the 24h window
    const { code, output } = await run(['--json', '--max-failures', '2']);
    const report = JSON.parse(output) as MonitorReport;
    expect(code).toBe(0);
    expect(report.attention).toBe(false);
    expect(report.bots.find((b) => b.name === bot.name)).toMatchObject({
      runs: 10,
      failures: 0,
      p50Ms: 50,
      p95Ms: 100,
    });
    expect(report.endpoints?.every((e) => e.status === 'active' && e.undelivered === 0)).toBe(true);
  });

  it('counts failures by the reason in the summary line and exits 1 over the threshold', async () => {
    const bot = await project.bot('medblocks-patient-flow-completed');
    const line = (o: string): string =>
      `medblocks evt=evt_B type=patient_flow.completed outcome=${o} fhir_requests=0 ms=3`;
    await project.put(audit(bot.id, 5, 12, '4', line('rejected:signature_mismatch')));
    await project.put(audit(bot.id, 6, 12, '4', line('rejected:signature_mismatch')));
    await project.put(audit(bot.id, 7, 12, '4', line('failed:conflict')));
    await project.put(audit(bot.id, 8, 4000, '4', 'Task timed out after 4.00 seconds'));
    await project.put(audit(bot.id, 9, 30, '0', line('duplicate')));
    const { code, output } = await run();
    expect(code).toBe(1);
    expect(output).toMatch(/medblocks-patient-flow-completed\s+5\s+4 .*ATTENTION/);
    expect(output).toMatch(/2 × rejected:signature_mismatch/);
    expect(output).toMatch(/1 × failed:conflict/);
    expect(output).toMatch(/1 × unknown/);
    expect(output).toContain('Needs attention.');
  });

  it('a disabled Medblocks endpoint with undelivered events makes it exit 1', async () => {
    const endpoint = medblocks.local.endpoints().find((e) => e.events.includes('records.sync.failed'));
    if (!endpoint) throw new Error('provision made no records.sync.failed endpoint');
    medblocksClock = Date.parse('2026-07-28T10:00:00.000Z');
    medblocks.local.emit(recordsSyncFailed({}, { id: 'evt_C', created_at: '2026-07-28T10:00:00.000Z' }));
    await medblocks.local.idle();
    medblocksClock = undefined;
    expect(medblocks.local.deliveryRecords(endpoint.id)).toMatchObject([
      { id: 'evt_C', attempts: 9, delivered_at: null },
    ]);
    expect(endpoint.status).toBe('disabled');
    const { code, output } = await run();
    expect(code).toBe(1);
    expect(output).toMatch(
      new RegExp(
        `records\\.sync\\.failed\\s+${endpoint.id}\\s+disabled\\s+undelivered=1 oldest=2026-07-28T10:00:00.000Z`
      )
    );
    expect(output).toMatch(/endpoint disabled: re-enable it/);
    const secrets = [
      emulator.adminClient.clientSecret,
      MEDBLOCKS_KEY,
      ...medblocks.local.endpoints().map((e) => e.secret),
    ];
    for (const secret of secrets) expect(output).not.toContain(secret);
    expect(output).not.toMatch(/eyJ[\w-]+\.eyJ/); // no access token (a JWT)
  });

  it('reports configuration drift', async () => {
    const flow = await project.bot('medblocks-patient-flow-completed');
    await project.put<Bot>({ ...flow, publicWebhook: false, rawBody: false });
    await project.setSecrets(
      (await project.secrets()).filter((s) => s.name !== 'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED')
    );
    const sweeper = await project.bot('medblocks-marker-sweeper');
    await project.remove('Bot', sweeper.id);
    const { code, output } = await run(['--json']);
    const report = JSON.parse(output) as MonitorReport;
    expect(code).toBe(1);
    const issues = Object.fromEntries(report.bots.map((b) => [b.name, b.issues]));
    expect(issues['medblocks-patient-flow-completed']).toEqual([
      'publicWebhook is off: Medplum answers 403',
      'rawBody is off: deliveries are refused with body_not_raw',
    ]);
    expect(issues['medblocks-records-sync-failed']?.[0]).toMatch(
      /MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED missing/
    );
    expect(issues['medblocks-marker-sweeper']).toEqual(['bot missing: run npm run provision']);
    expect(issues['medblocks-records-sync-completed']).toEqual([]);
  });

  it('counts open dead-letter Tasks per event type, hints at redeliver --quarantined, and exits 1', async () => {
    const seenAt = '2026-08-01T11:00:00.000Z';
    const dl = (key: string, type: string) =>
      buildDeadLetter({
        key,
        owner: 'medblocks-records-sync-completed',
        type,
        reason: 'patient_not_found',
        path: 'data.object.patient_id',
        seenAt,
      });
    await project.put(dl('evt_Q1', 'records.sync.completed'));
    await project.put(dl('evt_Q2', 'records.sync.completed'));
    await project.put(
      buildDeadLetter({
        key: 'evt_Q3',
        owner: 'medblocks-patient-flow-completed',
        type: 'patient_flow.completed',
        reason: 'retries_exhausted',
        path: undefined,
        cause: 'internal',
        seenAt,
      })
    );
    const done = await project.put(dl('evt_Q4', 'records.sync.failed'));
    await project.put(resolveDeadLetter(done, seenAt)); // applied after redelivery: not counted
    const { code, output } = await run();
    expect(code).toBe(1);
    expect(output).toContain(
      [
        'Quarantined events (open dead-letter Tasks): 3',
        '        2 × records.sync.completed',
        '        1 × patient_flow.completed',
        '    by reason: 2 × patient_not_found, 1 × retries_exhausted (cause: internal)',
        '! 3 quarantined events: fix the cause (README "When something goes wrong"), then npm run redeliver -- --quarantined',
      ].join('\n')
    );
    const json = JSON.parse((await run(['--json'])).output) as MonitorReport;
    expect(json.quarantined).toEqual({
      total: 3,
      more: false,
      byType: { 'records.sync.completed': 2, 'patient_flow.completed': 1 },
      byReason: { patient_not_found: 2, 'retries_exhausted (cause: internal)': 1 },
    });
  });

  it('counts failed and unfinished records imports, naming where to look, and exits 1 on a failed one', async () => {
    const task = (key: string, status: 'failed' | 'in-progress' | 'completed'): Task => ({
      resourceType: 'Task',
      identifier: [{ system: SYSTEM.taskKey, value: key }],
      code: packageCode(CODE.recordsImport),
      status,
      intent: 'order',
      for: { reference: 'Patient/p1' },
    });
    await project.put(task('records-import/pt_1', 'in-progress'));
    await project.put(task('records-import/pt_2', 'completed'));
    const unfinished = await run();
    expect(unfinished.code).toBe(0);
    expect(unfinished.output).toContain(
      'Records imports: 0 failed, 1 in progress (medblocks-records-import continues those every 5 minutes).'
    );
    await project.put(task('records-import/pt_3', 'failed'));
    const { code, output } = await run();
    expect(code).toBe(1);
    expect(output).toContain(
      '! 1 failed import: see each Task\'s reason (Task?code=urn:medblocks:code|records-import&status=failed); docs/records-import.md "Failures"'
    );
    const json = JSON.parse((await run(['--json'])).output) as MonitorReport;
    expect(json.imports).toEqual({ failed: 1, inProgress: 1, more: false });
  });

  it('no open dead-letter: says none and stays all good', async () => {
    const { code, output } = await run();
    expect(code).toBe(0);
    expect(output).toContain('Quarantined events (open dead-letter Tasks): none.');
  });

  it('exits 2 with the refusal when the window is not one', async () => {
    const lines: string[] = [];
    const code = await runMonitor(['--since', 'yesterday'], {
      root,
      env: env(),
      fetchFn: fakeFetch(medplum),
      print: (l) => lines.push(l),
    });
    expect(code).toBe(2);
    expect(lines[0]).toMatch(/--since must look like/);
  });

  it('exits 1 naming the variable when Medplum refuses the credentials', async () => {
    const { code, output } = await run([], { MEDPLUM_CLIENT_SECRET: 'wrong-secret-xyz' });
    expect(code).toBe(1);
    expect(output).toMatch(
      /monitor failed: Medplum POST \/oauth2\/token failed with HTTP 400: .*MEDPLUM_CLIENT_SECRET/
    );
    expect(output).not.toContain('wrong-secret-xyz');
  });

  it('a project without the bots feature needs attention', async () => {
    await project.setFeatures([]);
    const { code, output } = await run();
    expect(code).toBe(1);
    expect(output).toContain(
      `! Project/${EMULATOR_PROJECT_ID} lacks the "bots" feature: no bot can run or be deployed`
    );
  });

  it('--help prints the usage', async () => {
    const { code, output } = await run(['--help']);
    expect(code).toBe(0);
    expect(output).toMatch(/Usage: npm run monitor/);
  });
});

// The emulator is a 5.2 server (ADM-14); a server before Bot.rawBody (ADM-1, ADM-4) is FakeMedplum's.
describe('npm run monitor on a server before Bot.rawBody', () => {
  let old: FakeMedplum;

  beforeEach(async () => {
    old = new FakeMedplum();
    await runProvision([], {
      root,
      env: fakeEnv(old.url, medblocks.url),
      fetchFn: fakeFetch(old, medblocks),
      print: () => undefined,
    });
  });

  async function runOn(server: FakeMedplum, args: string[] = []): Promise<{ code: number; output: string }> {
    const lines: string[] = [];
    const code = await runMonitor(args, {
      root,
      env: fakeEnv(server.url, medblocks.url),
      fetchFn: fakeFetch(server, medblocks),
      now: () => NOW,
      print: (l) => lines.push(l),
    });
    return { code, output: lines.join('\n') };
  }

  it('on a server before Bot.rawBody, calls a bot on the parsed-body fallback working, with a warning', async () => {
    old.version = '5.1.29-1a2b3c4';
    await old.setSecrets([...(await old.secrets()), { name: 'MEDBLOCKS_ALLOW_PARSED_BODY', valueString: 'true' }]);
    const flow = await old.bot('medblocks-patient-flow-completed');
    const { rawBody: _rawBody, ...withoutRawBody } = flow;
    await old.put<Bot>(withoutRawBody);
    const ok = 'medblocks evt=evt_D type=patient_flow.completed outcome=processed fhir_requests=3 ms=40';
    await old.put(audit(flow.id, 3, 40, '0', ok));
    const { code, output } = await runOn(old);
    expect(code).toBe(0);
    expect(output).toMatch(/medblocks-patient-flow-completed\s+1\s+0 .*ok \(warning\)/);
    expect(output).toMatch(
      /~ server predates Bot\.rawBody; MEDBLOCKS_ALLOW_PARSED_BODY=true verifies the re-serialised parsed body/
    );
    expect(output).toContain('All good (see ~ warnings).');
    expect(output).not.toMatch(/rawBody is off/);
  });

  it('on a server before Bot.rawBody without the fallback, says every delivery is refused and how to fix it', async () => {
    old.version = '5.1.29-1a2b3c4';
    const { code, output } = await runOn(old, ['--json']);
    const report = JSON.parse(output) as MonitorReport;
    expect(code).toBe(1);
    expect(report.bots.find((b) => b.name === 'medblocks-records-sync-failed')?.issues[0]).toMatch(
      /server predates Bot\.rawBody: deliveries are refused with body_not_raw\. Upgrade Medplum to 5\.2\+ \(stopgap: project secret MEDBLOCKS_ALLOW_PARSED_BODY=true/
    );
  });
});

describe('monitor analysis', () => {
  it('takes the last summary line of a run and ignores other output', () => {
    expect(parseOutcome('noise\nmedblocks evt=a type=b outcome=failed:server_error fhir_requests=1 ms=2\n')).toBe(
      'failed:server_error'
    );
    expect(parseOutcome('medblocks-sweeper cutoff=2026-05-03 outcome=swept deleted=1')).toBe('swept');
    expect(parseOutcome('Unhandled error: outcome=failed:x')).toBeUndefined();
  });

  it('uses nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBeUndefined();
    expect(percentile([5], 95)).toBe(5);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(runStats([]).runs).toBe(0);
  });
});

describe('npm run monitor -- --html (a picture of health)', () => {
  it('writes one self-contained page whose charts and numbers are the --json report’s, per hour', async () => {
    const flow = await project.bot('medblocks-patient-flow-completed');
    const ok = 'medblocks evt=evt_1 type=patient_flow.completed outcome=processed fhir_requests=3 ms=40';
    const forged =
      'medblocks evt=evt_2 type=patient_flow.completed outcome=rejected:signature_mismatch fhir_requests=0 ms=2';
    // Three hours: failures start in the newest one.
    for (const [minutesAgo, ms, outcome, line] of [
      [170, 30, '0', ok],
      [160, 50, '0', ok],
      [100, 40, '0', ok],
      [20, 60, '0', ok],
      [10, 3, '4', forged],
      [5, 3, '4', forged],
    ] as const) {
      await project.put(audit(flow.id, minutesAgo, ms, outcome, line));
    }
    const file = join(root, 'health.html');
    const json = JSON.parse((await run(['--json', '--html', file])).output) as MonitorReport;
    const html = readFileSync(file, 'utf8');

    // Self-contained: nothing fetched from the network.
    expect(html).not.toMatch(/<script|<link|src=|href="http|@import|url\(/i);
    expect(html).toContain('<h1>Medblocks bots — <span data-field="attention">needs attention</span></h1>');

    const bot = json.bots.find((b) => b.name === 'medblocks-patient-flow-completed');
    expect(bot?.hourly.map((h) => [h.hour, h.runs, h.failures])).toEqual([
      ['2026-08-01T09', 2, 0],
      ['2026-08-01T10', 1, 0],
      ['2026-08-01T11', 3, 2],
    ]);
    const section = html.slice(
      html.indexOf('<section class="bot attention" data-bot="medblocks-patient-flow-completed">')
    );
    const runsChart = /<svg data-chart="runs"[^]*?<\/svg>/.exec(section)?.[0] ?? '';
    const bars = [...runsChart.matchAll(/data-hour="([^"]+)" data-runs="(\d+)" data-failures="(\d+)"/g)].map((m) => [
      m[1],
      Number(m[2]),
      Number(m[3]),
    ]);
    expect(bars).toEqual(bot?.hourly.map((h) => [h.hour, h.runs, h.failures]));
    // Non-empty bars: the failures' red rect has a height in the newest hour.
    expect(runsChart).toMatch(
      /<rect class="failed" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="(?!0\.0")[\d.]+"\/><\/g><\/svg>/
    );
    const p95 = /data-series="p95" data-values="([\d ]+)"/.exec(section)?.[1];
    expect(p95?.split(' ').map(Number)).toEqual(bot?.hourly.map((h) => Math.round(h.p95Ms ?? 0)));
    expect(section).toContain(`<span data-field="runs">${String(bot?.runs)}</span> runs`);
    expect(section).toContain('<td data-reason="rejected:signature_mismatch">2</td>');
    expect(html).toContain('No open dead-letters.');
  });

  it('escapes what came from outside', async () => {
    const flow = await project.bot('medblocks-patient-flow-completed');
    await project.put(
      audit(
        flow.id,
        5,
        3,
        '4',
        'medblocks evt=evt_3 type=x outcome=rejected:<img src=x onerror=alert(1)> fhir_requests=0 ms=1'
      )
    );
    const file = join(root, 'health.html');
    await run(['--html', file]);
    const html = readFileSync(file, 'utf8');
    expect(html).not.toContain('<img');
    expect(html).toContain('rejected:&#60;img');
  });
});
