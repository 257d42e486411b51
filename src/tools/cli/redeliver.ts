// `npm run redeliver`: asks Medblocks to deliver again what it could not deliver to this project's
// endpoints, and (with --quarantined) what the bots quarantined. See src/tools/redeliver/.
import { parseWindow } from '../monitor/analyse';
import { readSettings } from '../provision/env';
import { MedblocksApi } from '../provision/medblocks-api';
import { connectMedplum } from '../provision/medplum';
import { printProgressToStderr } from '../progress';
import { redeliver } from '../redeliver/redeliver';
import { EXIT_USAGE, formatRefusal, printToConsole, runCommand, type CommandSpec } from './args';

export const REDELIVER_SPEC = {
  name: 'redeliver',
  summary:
    'Redelivers the events Medblocks did not deliver to the project endpoints (and quarantined dead-letters), one per event per minute.',
  options: {
    since: { type: 'string', valueName: 'W', description: 'only events created in this window (30m, 24h, 7d)' },
    type: { type: 'string', valueName: 'TYPE', description: 'only this event type' },
    'status-code': {
      type: 'integer',
      valueName: 'N',
      min: 100,
      max: 599,
      description: 'only events whose last answer had this status',
    },
    event: { type: 'string', valueName: 'EVT', description: 'only this event id (evt_…)' },
    quarantined: { type: 'boolean', description: 'only events the bots quarantined (dead-letter Tasks in Medplum)' },
    'dry-run': { type: 'boolean', description: 'print the plan, change nothing' },
    force: { type: 'boolean', description: 'also events Medblocks is still retrying' },
    reenable: { type: 'boolean', description: 're-enable disabled endpoints first (PATCH status active)' },
  },
  examples: [
    'npm run redeliver -- --dry-run',
    'npm run redeliver -- --quarantined',
    'npm run redeliver -- --reenable --since 7d',
  ],
  exitCodes: {
    0: 'every planned event delivered (or dry run)',
    1: 'some still failing, quarantined again (the cause is not fixed yet), or an error: a missing or invalid setting (the message names the variable), a server refusal or an unreachable server',
    2: 'the command line was not understood (usage printed)',
  },
  notes:
    'Settings (environment or .env): MEDBLOCKS_API_KEY, MEDBLOCKS_API_BASE_URL; MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET for quarantined events.',
} as const satisfies CommandSpec;

/** What tests replace: the network, the clock and sleep behind the one-a-minute waits, where progress goes. */
export interface RedeliverDeps {
  readonly fetchFn?: typeof fetch;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** The waits, with a count and an estimate; stderr by default, so stdout stays the report. */
  readonly progress?: (line: string) => void;
}

/** Runs the command and returns its exit code. */
export async function runRedeliver(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  print: (line: string) => void = printToConsole,
  deps: RedeliverDeps = {}
): Promise<number> {
  return runCommand(
    REDELIVER_SPEC,
    argv,
    async (o) => {
      // Refused with the usage, like any malformed option: a bad id would silently match nothing,
      // and a bad window used to surface as a failure (exit 1) after the settings were read.
      if (o.event !== undefined && !/^evt_[A-Za-z0-9]{1,60}$/.test(o.event)) {
        print(
          formatRefusal(
            REDELIVER_SPEC,
            `--event must be a Medblocks event id (evt_ and letters or digits), got "${o.event}"`
          )
        );
        return EXIT_USAGE;
      }
      let windowMs: number | undefined;
      try {
        windowMs = o.since === undefined ? undefined : parseWindow(o.since);
      } catch (err) {
        print(formatRefusal(REDELIVER_SPEC, err instanceof Error ? err.message : String(err)));
        return EXIT_USAGE;
      }
      const settings = readSettings(env);
      if (!settings.medblocksApiKey) throw new Error('MEDBLOCKS_API_KEY must be set (environment or .env)');
      const progress = deps.progress ?? printProgressToStderr;
      const api = new MedblocksApi(settings.medblocksBaseUrl, settings.medblocksApiKey, deps.fetchFn, {
        sleep: deps.sleep,
        onWait: progress,
      });
      const medplum =
        settings.clientId && settings.clientSecret ? (await connectMedplum(settings, deps.fetchFn)).medplum : undefined;
      if (o.quarantined && !medplum) throw new Error('--quarantined needs MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET');
      const summary = await redeliver({
        api,
        medplum,
        filters: {
          sinceMs: windowMs === undefined ? undefined : (deps.now ?? Date.now)() - windowMs,
          type: o.type,
          statusCode: o['status-code'],
          event: o.event,
          quarantinedOnly: o.quarantined,
        },
        dryRun: o['dry-run'],
        force: o.force,
        reenable: o.reenable,
        print,
        now: deps.now,
        sleep: deps.sleep,
        progress,
      });
      return summary.stillFailing.length > 0 || summary.quarantinedAgain.length > 0 ? 1 : 0;
    },
    { print, printError: print }
  );
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  process.exitCode = await runRedeliver(process.argv.slice(2));
}
