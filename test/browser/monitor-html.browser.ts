// The monitor's HTML report as a person sees it (a picture of health at a glance): written by
// `npm run monitor -- --html`, opened in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; `.ci/run` installs Chromium when it is missing), and checked for what is on the
// screen: every bot's charts drawn with non-empty bars and lines, and the numbers shown equal to the
// `--json` report. Run by `npm run test:browser` (and `.ci/run`), outside `npm test`, which needs no
// browser.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent } from '@medplum/fhirtypes';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMonitor } from '../../src/tools/cli/monitor';
import { runProvision } from '../../src/tools/cli/provision';
import type { MonitorReport } from '../../src/tools/monitor/monitor';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { fakeFetch, LocalMedblocks, LoopbackService } from '../support/fake-servers';
import { botRunAuditEvent } from '../support/audit-events';
import { EmulatorProject, emulatorEnv } from '../support/emulator-project';
import { makeRoot } from '../support/provision-root';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const NOW = Date.parse('2026-08-01T12:00:00.000Z');

let browser: Browser;
let emulator: RunningEmulator;
let made: { root: string; cleanup: () => void };
let report: MonitorReport;
let file: string;

function audit(botId: string, minutesAgo: number, ms: number, outcome: '0' | '4', line: string): AuditEvent {
  return botRunAuditEvent(NOW, botId, minutesAgo, ms, outcome, line);
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) or set CHROMIUM_PATH`
    );
  }
  made = makeRoot();
  // Medplum is the emulator (the monitor's reads: ADM-7/9/10, ADM-15), Medblocks the local one.
  emulator = await startEmulator({ root: made.root });
  const medplum = new LoopbackService(emulator.url);
  const project = new EmulatorProject(emulator);
  const medblocks = new LocalMedblocks();
  const env = emulatorEnv(emulator, medblocks);
  await runProvision([], { root: made.root, env, fetchFn: fakeFetch(medplum, medblocks), print: () => undefined });
  const flow = await project.bot('medblocks-patient-flow-completed');
  const sync = await project.bot('medblocks-records-sync-completed');
  const line = (outcome: string) => `medblocks evt=evt_1 type=x outcome=${outcome} fhir_requests=3 ms=40`;
  for (const [bot, minutesAgo, ms, outcome, text] of [
    [flow.id, 170, 30, '0', line('processed')],
    [flow.id, 100, 80, '0', line('processed')],
    [flow.id, 10, 3, '4', line('rejected:signature_mismatch')],
    [sync.id, 50, 20, '0', line('processed')],
    [sync.id, 40, 25, '4', line('failed:conflict')],
  ] as const) {
    await project.put(audit(bot, minutesAgo, ms, outcome, text));
  }
  file = join(made.root, 'health.html');
  const lines: string[] = [];
  await runMonitor(['--json', '--html', file], {
    root: made.root,
    env,
    fetchFn: fakeFetch(medplum, medblocks),
    now: () => NOW,
    print: (l) => lines.push(l),
  });
  report = JSON.parse(lines.join('\n')) as MonitorReport;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser.close();
  await emulator.close();
  made.cleanup();
});

describe('the monitor report in Chromium', () => {
  it('shows every bot that ran with its charts drawn, and the numbers of the --json report', async () => {
    const page = await browser.newPage({ viewport: { width: 900, height: 1400 } });
    const failedRequests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) failedRequests.push(r.url());
    });
    await page.goto(`file://${file}`);
    expect(await page.locator('h1').innerText()).toBe('Medblocks bots — needs attention');
    for (const bot of report.bots.filter((b) => b.runs > 0)) {
      const section = page.locator(`section[data-bot="${bot.name}"]`);
      expect(await section.locator('[data-field="runs"]').innerText()).toBe(String(bot.runs));
      expect(await section.locator('[data-field="failures"]').innerText()).toBe(String(bot.failures));
      // One bar per hour, laid out on screen; the failed part of a failing hour is really drawn.
      const bars = section.locator('svg[data-chart="runs"] g[data-hour]');
      expect(await bars.count()).toBe(bot.hourly.length);
      for (const [i, hour] of bot.hourly.entries()) {
        const bar = bars.nth(i);
        expect(await bar.getAttribute('data-runs')).toBe(String(hour.runs));
        const failed = await bar.locator('rect.failed').boundingBox();
        const ok = await bar.locator('rect.ok').boundingBox();
        expect((failed?.height ?? 0) > 0).toBe(hour.failures > 0);
        expect((ok?.height ?? 0) > 0).toBe(hour.runs > hour.failures);
      }
      const p95 = await section.locator('polyline[data-series="p95"]').boundingBox();
      expect(p95?.width ?? 0).toBeGreaterThan(0);
    }
    expect(await page.locator('[data-field="quarantined"]').innerText()).toBe('No open dead-letters.');
    expect(await page.locator('[data-field="imports-failed"]').innerText()).toBe(String(report.imports.failed));
    expect(await page.locator('[data-field="imports-in-progress"]').innerText()).toBe(
      String(report.imports.inProgress)
    );
    const screenshot = await page.screenshot({ fullPage: true });
    expect(screenshot.length).toBeGreaterThan(10_000);
    expect(failedRequests).toEqual([]);
    expect(readFileSync(file, 'utf8')).not.toMatch(/<script/i);
  }, 60_000);
});
