// `npm run dev`: the emulator on 127.0.0.1:8913 (not 8103, Medplum's own default, so that both can run). Builds dist/ from bots/
// first (so it runs what the sources say now), prints every bot's webhook URL and the signing
// secret configured for it (dev secrets, or the values of environment variables named like the
// project secrets) with hints that carry the port in use, then logs one line per delivery (bot,
// event, outcome, HTTP status, time) until Ctrl-C or until the process that started it ends.
// Beside it, on the next port, a local Medblocks (endpoint API, deliveries, redelivery) with a dev
// API key, so that `npm run provision`, `npm run monitor` and `npm run redeliver` can be tried
// against dev by hand without a Medblocks account.
import { DEFAULT_EMULATOR_HOST, DEFAULT_EMULATOR_PORT } from '../emulator/identity';
import { configurableSecretNames, discoverBots } from '../emulator/project';
import { startEmulator } from '../emulator/server';
import type { RunningEmulator } from '../emulator/server';
import type { WebhookRun } from '../emulator/webhook';
import type { RunningLocalMedblocks } from '../medblocks-local/server';
import { DEV_MEDBLOCKS_API_KEY, startLocalMedblocksFor } from '../medblocks-local/wire';
import { SAMPLE_PATIENT_ID, SAMPLE_SOURCE_A } from '../fixtures/events';
import { generatePatientRecords } from '../fixtures/patient-records';

/** Records of the sample patient the local Medblocks serves under `npm run dev` (the EHR's Patient among them). */
const DEV_SAMPLE_RECORDS = 120;
import { CONSOLE_IO, exitWith, isEntryPoint, runCommand } from './args';
import type { CommandIo, CommandSpec, ParsedOptions } from './args';
import { stopWithParent } from './lifetime';
import { buildBeforeRun, describePrebuild } from './prebuild';
import { createServer } from 'node:net';

/** The emulator's URL when `npm run dev` runs with its defaults (what `npm run send` targets). */
export const DEFAULT_EMULATOR_URL = `http://${DEFAULT_EMULATOR_HOST}:${String(DEFAULT_EMULATOR_PORT)}`;

export const DEV_SPEC = {
  name: 'dev',
  summary:
    "the local Medplum emulator: Medplum's public webhook route over the bots built from bots/ (built first, about a second), an in-memory FHIR store at /fhir/R4, each bot's webhook URL and dev signing secret printed; beside it, on the next port, a local Medblocks (endpoint API, deliveries, redelivery) with a dev API key; then one line per delivery until Ctrl-C. Stops when the process that started it ends.",
  options: {
    port: {
      type: 'integer',
      min: 0,
      // The local Medblocks takes the next port.
      max: 65534,
      default: DEFAULT_EMULATOR_PORT,
      valueName: 'PORT',
      description: 'port on 127.0.0.1 (0 picks a free one); the local Medblocks takes the next one',
    },
    'latency-ms': {
      type: 'number',
      min: 0,
      max: 60_000,
      default: 0,
      valueName: 'MS',
      description: 'simulated network latency added to every FHIR request a bot makes',
    },
    'fhir-writes': { type: 'boolean', description: 'allow writes through /fhir/R4 (read-only by default)' },
    json: {
      type: 'boolean',
      description: 'print the startup information as one JSON object on stdout (delivery lines go to stderr)',
    },
  },
  examples: [
    'npm run dev',
    'npm run dev -- --port 8110',
    'npm run dev -- --latency-ms 20',
    'npm run dev -- --fhir-writes --json',
    'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED=whsec_… npm run dev',
  ],
  exitCodes: {
    0: 'stopped (Ctrl-C, SIGTERM, SIGHUP, or the process that started it ended)',
    1: 'could not start (a port in use, build failed); the message says what to do',
  },
  notes:
    'Every bot signing secret and every setting (src/runtime/settings.ts) can be set as an environment variable of the same name; otherwise predictable dev secrets are used (never reuse them). The bundles are re-read on every run: after changing a bot, `npm run build` applies it without a restart.',
} as const satisfies CommandSpec;

export type DevOptions = ParsedOptions<typeof DEV_SPEC.options>;

/** Builds dist/ from bots/ (kept under this name for callers that imported it from here). */
export async function ensureBuilt(root = process.cwd()): Promise<void> {
  await buildBeforeRun(root);
}

/** Project secrets taken from the environment: every bot signing secret and every setting name. */
export function secretsFromEnvironment(env: NodeJS.ProcessEnv, root = process.cwd()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of configurableSecretNames(discoverBots(root))) {
    const value = env[name]?.trim();
    if (value) out[name] = value;
  }
  return out;
}

/** Where the local Medblocks of `npm run dev` listens, for the banner. */
export interface DevMedblocks {
  readonly url: string;
  readonly apiKey: string;
}

/** The local Medblocks' port: the emulator's + 1 (8914 by default); 0 stays 0 (a free one). */
export function medblocksPort(emulatorPort: number): number {
  return emulatorPort === 0 ? 0 : emulatorPort + 1;
}

/** The startup printout, as text or as one JSON object (`--json`); its hints use the URLs in use. */
export function describe(
  emulator: RunningEmulator,
  asJson: boolean,
  fhirWrites = false,
  medblocks?: DevMedblocks
): string {
  const bots = emulator.bots.map((b) => ({
    name: b.name,
    webhookUrl: b.webhookUrl,
    membershipId: b.membershipId,
    secretName: b.secretName ?? null,
    secret: b.secret ?? null,
  }));
  if (asJson) {
    return JSON.stringify({
      url: emulator.url,
      fhirUrl: emulator.fhirUrl,
      adminClient: emulator.adminClient,
      bots,
      ...(medblocks ? { medblocks: { url: medblocks.url, apiKey: medblocks.apiKey } } : {}),
    });
  }
  const lines = [
    `Medplum emulator on ${emulator.url}   FHIR (${fhirWrites ? 'read-write' : 'read-only'}, no auth): ${emulator.fhirUrl}`,
    '',
  ];
  for (const b of bots) {
    lines.push(b.name);
    lines.push(`  webhook  ${b.webhookUrl}`);
    lines.push(
      b.secretName ? `  secret   ${b.secretName}=${b.secret ?? ''}` : '  (no signing secret: not a webhook bot)'
    );
    if (!b.secretName) {
      // A scheduled bot: the emulator keeps no clock, so its cron job fires on request (CRON-1).
      lines.push(`  run now  curl -s -X POST '${emulator.url}/emulator/run-scheduled/${b.name}'`);
    }
  }
  const target = emulator.url === DEFAULT_EMULATOR_URL ? '' : ` --emulator ${emulator.url}`;
  const { clientId, clientSecret } = emulator.adminClient;
  lines.push('', 'Dev secrets only (never reuse them).');
  lines.push(
    `Send a delivery:  npm run send -- --type records.sync.completed${target}`,
    `Look at the data: curl -s '${emulator.fhirUrl}/Task'`
  );
  const medplumEnv = `MEDPLUM_BASE_URL=${emulator.url}/ MEDPLUM_CLIENT_ID=${clientId} MEDPLUM_CLIENT_SECRET=${clientSecret}`;
  if (medblocks) {
    lines.push(
      '',
      `Local Medblocks on ${medblocks.url}   (endpoint API, deliveries, redelivery; in memory)`,
      'Provision, monitor and redeliver against this dev (export these in another terminal):',
      `  export ${medplumEnv} \\`,
      `    MEDBLOCKS_API_BASE_URL=${medblocks.url} MEDBLOCKS_API_KEY=${medblocks.apiKey}`,
      '  npm run provision && npm run monitor && npm run redeliver -- --quarantined',
      `Emit an event through it: POST ${medblocks.url}/_local/events (docs/ops-tools-locally.md)`
    );
  } else {
    lines.push(
      `Provision and monitor this emulator: ${medplumEnv} \\`,
      '  npm run provision   (then the same with npm run monitor)'
    );
  }
  lines.push('', 'Changed a bot? npm run build applies it without a restart. Ctrl-C stops.');
  return lines.join('\n');
}

/** One line per delivery: time, bot, event id, the bot's outcome, HTTP status, duration. */
export function formatRun(run: WebhookRun, at = new Date()): string {
  return [
    at.toISOString().slice(11, 23),
    run.bot,
    run.eventId ?? '-',
    run.outcome,
    String(run.status),
    `${String(run.ms)} ms`,
  ].join('  ');
}

/** Whether the loopback port can be listened on now (the listen that follows still handles a race). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => {
      resolve(false);
    });
    probe.listen(port, DEFAULT_EMULATOR_HOST, () => {
      probe.close(() => {
        resolve(true);
      });
    });
  });
}

/** What to do when the port is taken, with the port named (EADDRINUSE alone told a newcomer nothing). */
export function portInUseMessage(port: number): string {
  const other = port === 8110 ? 8111 : 8110;
  return `port ${String(port)} is in use — stop the other process (is another \`npm run dev\` running?) or run \`npm run dev -- --port ${String(other)}\``;
}

/** The same for the local Medblocks' port (the emulator's + 1); the suggested --port moves both. */
export function medblocksPortInUseMessage(port: number, emulatorPort: number): string {
  const other = emulatorPort === 8110 ? 8120 : 8110;
  return `port ${String(port)} (the local Medblocks, the emulator's port + 1) is in use — stop the other process (is another \`npm run dev\` running?) or run \`npm run dev -- --port ${String(other)}\``;
}

export interface DevRunOptions {
  readonly io?: CommandIo;
  readonly root?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Resolves when dev should stop; by default signals and the end of the parent process. */
  readonly until?: (emulator: RunningEmulator, medblocks: RunningLocalMedblocks) => Promise<string>;
}

/**
 * Runs `npm run dev` in-process: build, start, print, log deliveries until `until` resolves, then
 * close. Returns the exit code.
 */
export function runDev(argv: readonly string[], options: DevRunOptions = {}): Promise<number> {
  const io = options.io ?? CONSOLE_IO;
  return runCommand(
    DEV_SPEC,
    argv,
    async (values) => {
      const root = options.root ?? process.cwd();
      // A busy port is said at once, before the build (which takes seconds).
      const mbPort = medblocksPort(values.port);
      if (values.port !== 0 && !(await portIsFree(values.port))) {
        io.printError(`dev: ${portInUseMessage(values.port)}`);
        return 1;
      }
      if (mbPort !== 0 && !(await portIsFree(mbPort))) {
        io.printError(`dev: ${medblocksPortInUseMessage(mbPort, values.port)}`);
        return 1;
      }
      const prebuild = await buildBeforeRun(root);
      (values.json ? io.printError : io.print)(describePrebuild(prebuild));
      let emulator: RunningEmulator;
      try {
        emulator = await startEmulator({
          port: values.port,
          host: DEFAULT_EMULATOR_HOST,
          latencyMs: values['latency-ms'],
          fhirWrites: values['fhir-writes'],
          secrets: secretsFromEnvironment(options.env ?? process.env, root),
          root,
          // One line per delivery; on stderr with --json so that stdout stays one JSON object.
          onRun: (run) => {
            (values.json ? io.printError : io.print)(formatRun(run));
          },
        });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          io.printError(`dev: ${portInUseMessage(values.port)}`);
          return 1;
        }
        throw err;
      }
      let medblocks: RunningLocalMedblocks;
      try {
        medblocks = await startLocalMedblocksFor(emulator, {
          port: mbPort,
          host: DEFAULT_EMULATOR_HOST,
          apiKey: DEV_MEDBLOCKS_API_KEY,
        });
      } catch (err) {
        await emulator.close();
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          io.printError(`dev: ${medblocksPortInUseMessage(mbPort, values.port)}`);
          return 1;
        }
        throw err;
      }
      // The patient `npm run send` writes about has a chart at this Medblocks, so a records sync sent
      // for it gives the records import something to bring in (docs/records-import.md).
      medblocks.putRecords(
        SAMPLE_PATIENT_ID,
        generatePatientRecords({ patientId: SAMPLE_PATIENT_ID, source: SAMPLE_SOURCE_A, count: DEV_SAMPLE_RECORDS })
      );
      io.print(describe(emulator, values.json, values['fhir-writes'], medblocks));
      try {
        const reason = await (options.until ?? untilStopped)(emulator, medblocks);
        (values.json ? io.printError : io.print)(
          `stopping the emulator on ${emulator.url} and the local Medblocks on ${medblocks.url}: ${reason}`
        );
      } finally {
        await medblocks.close();
        await emulator.close();
      }
      return 0;
    },
    io
  );
}

function untilStopped(): Promise<string> {
  return new Promise((resolve) => {
    stopWithParent(resolve);
  });
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runDev(process.argv.slice(2)));
}
