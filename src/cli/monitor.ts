// `npm run monitor [-- --since 24h] [--json] [--max-failures N]`: per-bot runs, failures by reason,
// latency and drift; Medblocks endpoints with MEDBLOCKS_API_KEY. Exit 0 all good, 1 needs
// attention, 2 could not check. See docs/going-live.md.
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { parseWindow } from '../monitor/analyse';
import { formatMonitorReport, monitor } from '../monitor/monitor';
import { readSettings } from '../provision/env';

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
      },
      strict: true,
    });
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
