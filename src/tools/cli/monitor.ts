// `npm run monitor [-- --since 24h] [--json] [--max-failures N]`: per-bot runs, failures by reason,
// latency and drift; Medblocks endpoints with MEDBLOCKS_API_KEY. Exit 0 all good, 1 needs
// attention or could not check, 2 a bad command line (docs/commands.md, "Exit codes").
import { parseWindow } from '../monitor/analyse';
import { writeFileSync } from 'node:fs';
import { renderMonitorHtml } from '../monitor/html';
import { formatMonitorReport, monitor } from '../monitor/monitor';
import { printProgressToStderr } from '../progress';
import { readSettings } from '../provision/env';
import {
  EXIT_FAILURE,
  EXIT_USAGE,
  exitWith,
  failureLine,
  formatRefusal,
  isEntryPoint,
  printToConsole,
  runCommand,
} from './args';
import type { CommandSpec } from './args';

export const MONITOR_SPEC = {
  name: 'monitor',
  summary:
    'per bot: runs, failures by reason, p50/p95 duration and configuration drift; with MEDBLOCKS_API_KEY, Medblocks endpoints that are disabled and their undelivered events; open dead-letter Tasks (quarantined events) per event type. Read-only.',
  options: {
    since: { type: 'string', default: '24h', valueName: 'W', description: 'the window: 30m, 24h, 7d' },
    json: { type: 'boolean', description: 'the report as JSON' },
    html: {
      type: 'string',
      valueName: 'FILE',
      description: 'also write the report as one self-contained page (charts per hour, no network)',
    },
    'max-failures': {
      type: 'integer',
      min: 0,
      default: 0,
      valueName: 'N',
      description: 'failed runs per bot tolerated in the window',
    },
  },
  notes:
    'Settings (environment or .env): MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET (a project-admin ClientApplication), MEDBLOCKS_API_KEY, MEDBLOCKS_API_BASE_URL. ' +
    'A server that accepts the connection and never answers: each request gives up after 30 s, naming it, and monitor exits 1 (Medplum is asked first, so a silent Medplum ends the run within about 30 s); rate limits and outages of Medblocks are waited out for at most 10 minutes in all.',
  examples: [
    'npm run monitor',
    'npm run monitor -- --since 7d --max-failures 3',
    'npm run monitor -- --since 7d --html health.html',
    "npm run --silent monitor -- --json   (--silent: without npm's own header lines, stdout is pure JSON)",
  ],
  exitCodes: {
    0: 'all good (warnings such as the parsed-body fallback on Medplum < 5.2 included)',
    1: 'needs attention (an issue, failures over the limit, a disabled endpoint, or quarantined events), or could not check: a missing or invalid setting (the message names the variable) or a server failure',
    2: 'the command line was not understood (usage printed)',
  },
} as const satisfies CommandSpec;

/** Runs the command and returns its exit code; output goes through `print`. */
export function runMonitor(
  argv: readonly string[],
  io: {
    print: (line: string) => void;
    root?: string;
    env?: NodeJS.ProcessEnv;
    fetchFn?: typeof fetch;
    now?: () => number;
    /** Per request (30 s); tests make it short. */
    requestTimeoutMs?: number;
    /** Medblocks' waits; stderr by default, so that --json stays one JSON document on stdout. */
    progress?: (line: string) => void;
  }
): Promise<number> {
  return runCommand(
    MONITOR_SPEC,
    argv,
    async (values) => {
      let windowMs: number;
      try {
        windowMs = parseWindow(values.since);
      } catch (err) {
        io.print(formatRefusal(MONITOR_SPEC, err instanceof Error ? err.message : String(err)));
        return EXIT_USAGE;
      }
      try {
        const root = io.root ?? process.cwd();
        const report = await monitor({
          root,
          settings: readSettings(io.env, root),
          windowMs,
          maxFailures: values['max-failures'],
          fetchFn: io.fetchFn,
          now: io.now,
          requestTimeoutMs: io.requestTimeoutMs,
          onWait: io.progress ?? printProgressToStderr,
        });
        if (values.html) {
          writeFileSync(values.html, renderMonitorHtml(report, new Date((io.now ?? Date.now)()).toISOString()), 'utf8');
        }
        if (values.json) io.print(JSON.stringify(report, null, 2));
        else for (const line of formatMonitorReport(report)) io.print(line);
        return report.attention ? EXIT_FAILURE : 0;
      } catch (err) {
        io.print(failureLine('monitor', err));
        return EXIT_FAILURE;
      }
    },
    { print: io.print, printError: io.print }
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runMonitor(process.argv.slice(2), { print: printToConsole }));
}
