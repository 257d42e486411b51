// `npm run monitor [-- --since 24h] [--json] [--max-failures N]`: per-bot runs, failures by reason,
// latency and drift; Medblocks endpoints with MEDBLOCKS_API_KEY. Exit 0 all good, 1 needs
// attention, 2 could not check. See docs/going-live.md.
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { parseWindow } from '../monitor/analyse';
import { formatMonitorReport, monitor } from '../monitor/monitor';
import { readSettings } from '../provision/env';

export const MONITOR_USAGE = `Usage: npm run monitor [-- --since 24h] [--json] [--max-failures N]

Per bot: runs, failures by reason, p50/p95 duration and configuration drift; with MEDBLOCKS_API_KEY,
Medblocks endpoints that are disabled and their undelivered events. Read-only.
Exit code: 0 all good (warnings such as the parsed-body fallback on Medplum < 5.2 included), 1 needs
attention, 2 could not check.

  --since W          window: 30m, 24h, 7d (default 24h)
  --json             the report as JSON
  --max-failures N   failed runs per bot tolerated in the window (default 0)
  --help             this text

Settings (environment or .env): MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET (a project-admin
ClientApplication), MEDBLOCKS_API_KEY, MEDBLOCKS_API_BASE_URL.`;

/** Runs the command and returns its exit code; output goes through `print`. */
export async function runMonitor(
  argv: readonly string[],
  io: {
    print: (line: string) => void;
    root?: string;
    env?: NodeJS.ProcessEnv;
    fetchFn?: typeof fetch;
    now?: () => number;
  }
): Promise<number> {
  try {
    const root = io.root ?? process.cwd();
    const { values } = parseArgs({
      args: [...argv],
      options: {
        since: { type: 'string', default: '24h' },
        json: { type: 'boolean', default: false },
        'max-failures': { type: 'string', default: '0' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (values.help) {
      io.print(MONITOR_USAGE);
      return 0;
    }
    const maxFailures = Number(values['max-failures']);
    if (!Number.isInteger(maxFailures) || maxFailures < 0) throw new Error('--max-failures must be a whole number');
    const report = await monitor({
      root,
      settings: readSettings(io.env, root),
      windowMs: parseWindow(values.since),
      maxFailures,
      fetchFn: io.fetchFn,
      now: io.now,
    });
    if (values.json) io.print(JSON.stringify(report, null, 2));
    else for (const line of formatMonitorReport(report)) io.print(line);
    return report.attention ? 1 : 0;
  } catch (err) {
    io.print(`monitor failed: ${err instanceof Error ? err.message : 'unknown error'}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  runMonitor(process.argv.slice(2), {
    print: (line) => {
      console.log(line);
    },
  }).then(
    (code) => process.exit(code),
    () => process.exit(2)
  );
}
