// `npm run send -- …`: deliver Medblocks events, signed as Medblocks signs them, to the local
// emulator (default) or any URL — e.g. a deployed bot's webhook. One attempt by default (or a few,
// seconds apart, with --max-attempts); Medblocks' real retry schedule only with
// --medblocks-schedule. Prints one line per attempt with the bot's outcome, read from its answer,
// and exits 1 when any event was finally not delivered (Medblocks would then disable the endpoint).
import { readFileSync } from 'node:fs';
import { WEBHOOK_BOTS } from '../../runtime/registry';
import { outcomeOfAnswer } from '../../runtime/summary';
import { DEFAULT_EMULATOR_HOST, DEFAULT_EMULATOR_PORT, devSecret, membershipIdFor } from '../emulator/identity';
import { serialise } from '../fixtures/events';
import { buildEvent, eventBatch, VARIANTS } from '../fixtures/variants';
import type { BatchOrder } from '../fixtures/variants';
import { EVENT_TYPES } from '../../runtime/events';
import type { EventType, MedblocksEvent } from '../../runtime/events';
import { deliver, LOCAL_RETRY_SCHEDULE_MS, RETRY_SCHEDULE_MS } from '../sender/sender';
import type { AttemptRecord, DeliveryResult, Tamper } from '../sender/sender';
import { CONSOLE_IO, exitWith, isEntryPoint, runCommand } from './args';
import type { CommandIo, CommandSpec, ParsedOptions } from './args';

/** Where `npm run dev` listens with its defaults. */
const DEFAULT_EMULATOR_URL = `http://${DEFAULT_EMULATOR_HOST}:${String(DEFAULT_EMULATOR_PORT)}`;

export const SEND_SPEC = {
  name: 'send',
  summary:
    "delivers Medblocks events as Medblocks does (compact JSON, a Medblocks-Signature computed afresh per attempt, a 5 s deadline, any 2xx is success) to the emulator of `npm run dev` or to any webhook URL, and prints each attempt with the bot's outcome: processed, duplicate, stale, quarantined:<reason>, rejected:<reason>, failed:<class>.",
  options: {
    type: {
      type: 'string',
      choices: EVENT_TYPES,
      default: 'records.sync.completed',
      valueName: 'TYPE',
      description: 'the event type',
    },
    variant: { type: 'string', valueName: 'NAME', description: 'a named variant of the type (see --list)' },
    fixture: { type: 'string', valueName: 'FILE', description: 'send this JSON event file instead (as compact JSON)' },
    patient: { type: 'string', valueName: 'ID', description: "the event's patient id" },
    connection: { type: 'string', valueName: 'conn_…', description: "the event's connection id" },
    source: { type: 'string', valueName: 'fhirsrc_…', description: "the event's EHR source id" },
    at: { type: 'string', valueName: 'ISO-TIME', description: "the event's created time" },
    duplicate: {
      type: 'integer',
      min: 1,
      max: 1000,
      default: 1,
      valueName: 'N',
      description: 'deliver the same event N times (same event id)',
    },
    batch: {
      type: 'integer',
      min: 1,
      max: 1000,
      valueName: 'N',
      description: 'N events of the type, one minute apart, same patient and connection',
    },
    order: {
      type: 'string',
      choices: ['in-order', 'reverse', 'shuffle'],
      default: 'shuffle',
      valueName: 'ORDER',
      description: 'the order of a --batch',
    },
    seed: { type: 'integer', default: 1, valueName: 'N', description: 'shuffle seed' },
    concurrent: { type: 'boolean', description: 'send the copies / the batch all at once' },
    url: {
      type: 'string',
      valueName: 'URL',
      description: "webhook URL (default: the emulator's URL for the type's bot)",
    },
    emulator: {
      type: 'string',
      default: DEFAULT_EMULATOR_URL,
      valueName: 'URL',
      description: 'base URL of the emulator (`npm run dev -- --port N` → http://127.0.0.1:N)',
    },
    secret: {
      type: 'string',
      valueName: 'whsec_…',
      description: "signing secret (default: the env var named like the bot's project secret, else the dev secret)",
    },
    'wrong-secret': { type: 'boolean', description: 'sign with a random secret' },
    tamper: {
      type: 'string',
      choices: ['body', 'signature'],
      valueName: 'WHAT',
      description: 'change the body after signing, or corrupt the signature',
    },
    skew: {
      type: 'integer',
      default: 0,
      valueName: 'SECONDS',
      description: 'shift the signature timestamp (negative = in the past, e.g. --skew -600)',
    },
    'max-attempts': {
      type: 'integer',
      min: 1,
      max: RETRY_SCHEDULE_MS.length,
      valueName: 'N',
      description:
        'attempts per event: default 1; up to N, at 0, +1 s, +2 s, +4 s, +8 s…, until one gets a 2xx (Medblocks schedule: default 9)',
    },
    'medblocks-schedule': {
      type: 'boolean',
      description:
        "retry on Medblocks' real schedule (immediately, +1 min, +5 min, +30 min, +2 h, +12 h, +24 h ×3: 3.6 days in real time)",
    },
    'time-scale': {
      type: 'number',
      min: 0,
      exclusiveMin: true,
      valueName: 'X',
      description: "run Medblocks' schedule X times faster (3600: an hour per second); implies --medblocks-schedule",
    },
    'deadline-ms': {
      type: 'integer',
      min: 1,
      max: 600_000,
      default: 5000,
      valueName: 'MS',
      description: "per-attempt deadline (Medblocks' own is 5000)",
    },
    verbose: { type: 'boolean', description: 'print the first 4 KB of every answer' },
    list: { type: 'boolean', description: 'list the event types and their variants, send nothing' },
  },
  examples: [
    'npm run send -- --list',
    'npm run send -- --type patient_flow.completed --variant all-failed',
    'npm run send -- --type records.sync.completed --emulator http://127.0.0.1:8110',
    'npm run send -- --type patient_flow.completed --duplicate 5 --concurrent',
    'npm run send -- --type records.sync.completed --batch 10 --order shuffle --seed 7',
    'npm run send -- --type records.sync.completed --skew -600         # expired timestamp',
    'npm run send -- --type records.sync.completed --tamper body       # or --wrong-secret',
    'npm run send -- --type records.sync.failed --time-scale 3600      # the full retry schedule in ~87 s',
    'npm run send -- --url https://api.medplum.com/webhook/<membership id> --type records.sync.completed --verbose',
  ],
  exitCodes: { 0: 'every event got a 2xx answer', 1: 'an event was finally not delivered (or it could not be built)' },
} as const satisfies CommandSpec;

type SendOptions = ParsedOptions<typeof SEND_SPEC.options>;

/** Runs `npm run send` in-process; returns the exit code. */
export function main(argv: readonly string[], io: CommandIo = CONSOLE_IO): Promise<number> {
  return runCommand(SEND_SPEC, argv, (values) => send(values, io), io);
}

async function send(values: SendOptions, io: CommandIo): Promise<number> {
  if (values.list) {
    for (const type of EVENT_TYPES) io.print(`${type.padEnd(34)} ${Object.keys(VARIANTS[type]).join(', ')}`);
    return 0;
  }
  const events = eventsToSend(values);
  const first = events[0];
  if (!first) throw new Error('nothing to send');
  const type = first.type;
  const bot = WEBHOOK_BOTS.find((b) => (b.eventTypes as readonly string[]).includes(type));
  const url = values.url ?? `${values.emulator.replace(/\/$/, '')}/webhook/${membershipIdFor(bot?.name ?? '')}`;
  const parsedUrl = parseUrl(url, values.url === undefined ? '--emulator' : '--url');
  const secret = values['wrong-secret']
    ? `whsec_wrong_${String(Math.random()).slice(2)}`
    : secretFor(values, bot?.secretName);
  const medblocksSchedule = values['medblocks-schedule'] || values['time-scale'] !== undefined;
  const schedule = medblocksSchedule ? RETRY_SCHEDULE_MS : LOCAL_RETRY_SCHEDULE_MS;
  const maxAttempts = values['max-attempts'] ?? (medblocksSchedule ? RETRY_SCHEDULE_MS.length : 1);
  const common = {
    url,
    secret,
    tamper: (values.tamper ?? 'none') as Tamper,
    clockSkewSeconds: values.skew,
    schedule,
    timeScale: medblocksSchedule ? (values['time-scale'] ?? 1) : 1,
    maxAttempts,
    deadlineMs: values['deadline-ms'],
  };
  io.print(
    `sending ${String(events.length)} delivery(ies) of ${type} to ${url} (${scheduleText(medblocksSchedule, maxAttempts, common.timeScale)})`
  );
  let refusedShown = false;
  const sendOne = (event: MedblocksEvent): Promise<DeliveryResult> =>
    deliver({
      ...common,
      body: serialise(event),
      onAttempt: (a) => {
        io.print(attemptLine(event.id, a));
        if (values.verbose && a.responseBody) io.print(`  answer: ${a.responseBody}`);
        if (a.cause === 'ECONNREFUSED' && !refusedShown) {
          refusedShown = true;
          io.print(connectionRefusedHint(parsedUrl));
        }
      },
    });
  const results: DeliveryResult[] = [];
  if (values.concurrent) {
    results.push(...(await Promise.all(events.map(sendOne))));
  } else {
    for (const event of events) results.push(await sendOne(event));
  }
  const failed = results.filter((r) => !r.delivered).length;
  io.print(
    failed === 0
      ? `delivered ${String(results.length)}/${String(results.length)}`
      : `FAILED ${String(failed)}/${String(results.length)}${
          medblocksSchedule && maxAttempts === RETRY_SCHEDULE_MS.length
            ? ' (Medblocks would now disable the endpoint)'
            : ' (Medblocks would retry on its schedule: --medblocks-schedule)'
        }`
  );
  return failed === 0 ? 0 : 1;
}

function scheduleText(medblocks: boolean, attempts: number, scale: number): string {
  if (!medblocks) return attempts === 1 ? 'one attempt' : `up to ${String(attempts)} attempts, seconds apart`;
  return `Medblocks' schedule, up to ${String(attempts)} attempts${scale === 1 ? ', in real time' : `, ${String(scale)}× faster`}`;
}

function parseUrl(url: string, option: string): URL {
  try {
    return new URL(url);
  } catch (err) {
    throw new Error(`${option} is not a URL (got "${url}"); e.g. http://127.0.0.1:8913`, { cause: err });
  }
}

/** What a refused connection means, with the port of the URL (not always 8913). */
export function connectionRefusedHint(url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const local = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  return local
    ? `connection refused — is \`npm run dev\` running on port ${port}? (start it, or pass --emulator http://127.0.0.1:<its port>)`
    : `connection refused by ${url.host} — is the server up, and is the URL right?`;
}

/**
 * The bot's outcome from one answer: the `status` of a 2xx JSON answer (a quarantine with its
 * reason), the outcome a non-2xx OperationOutcome's message stands for, or the network failure.
 * Answers that are neither (Medplum's own 403/404) are described by their first words.
 */
export function attemptOutcome(a: AttemptRecord): string {
  if (a.status === undefined) {
    return a.error === 'timeout' ? 'timeout' : a.cause === 'ECONNREFUSED' ? 'connection_refused' : 'network';
  }
  const outcome = outcomeOfAnswer(a.status, a.responseBody);
  if (outcome === 'quarantined') {
    const reason = quarantineReason(a.responseBody);
    return reason ? `quarantined:${reason}` : outcome;
  }
  if (outcome !== 'unknown') return outcome;
  const text = answerText(a.responseBody);
  return text ? `answer "${text}"` : 'unknown';
}

function quarantineReason(body: string): string | undefined {
  try {
    const reason = (JSON.parse(body) as { reason?: unknown }).reason;
    return typeof reason === 'string' && /^[a-z_]+$/.test(reason) ? reason : undefined;
  } catch {
    return undefined;
  }
}

/** Medplum's own refusals: plain text, or an OperationOutcome's details text; one line, 100 characters. */
function answerText(body: string): string {
  let text = body;
  try {
    const parsed = JSON.parse(body) as { issue?: { details?: { text?: unknown } }[] };
    const detail = parsed.issue?.[0]?.details?.text;
    text = typeof detail === 'string' ? detail : '';
  } catch {
    // plain text
  }
  return text.split('\n')[0]?.trim().slice(0, 100) ?? '';
}

/** One line per attempt: ids, status, the bot's outcome and timing only — never the payload. */
export function attemptLine(eventId: string, a: AttemptRecord): string {
  const when = `t+${formatOffset(a.scheduledOffsetMs)}`;
  const status = a.status === undefined ? (a.error ?? 'error') : String(a.status);
  return `${eventId} attempt=${String(a.attempt)} ${when.padEnd(10)} sent=${a.sentAt} status=${status} outcome=${attemptOutcome(a)} ms=${String(a.durationMs)}`;
}

function eventsToSend(values: SendOptions): MedblocksEvent[] {
  const shape = { patientId: values.patient, connectionId: values.connection, sourceId: values.source, at: values.at };
  if (values.fixture) {
    let event: MedblocksEvent;
    try {
      event = JSON.parse(readFileSync(values.fixture, 'utf8')) as MedblocksEvent;
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not a JSON file';
      throw new Error(`--fixture ${values.fixture}: ${why}`, { cause: err });
    }
    return Array.from({ length: values.duplicate }, () => event);
  }
  const type = values.type as EventType;
  if (values.batch !== undefined) {
    return eventBatch(type, values.batch, {
      variant: values.variant,
      order: values.order as BatchOrder,
      seed: values.seed,
      shape,
    });
  }
  const event = buildEvent(type, values.variant, shape);
  return Array.from({ length: values.duplicate }, () => event);
}

/** An explicit secret, else the environment variable named like the project secret, else the dev secret. */
function secretFor(values: SendOptions, secretName: string | undefined): string {
  if (values.secret) return values.secret;
  const fromEnv = secretName ? process.env[secretName]?.trim() : undefined;
  if (fromEnv) return fromEnv;
  if (!secretName) throw new Error('no bot handles this event type; pass --secret');
  return devSecret(secretName);
}

function formatOffset(ms: number): string {
  if (ms < 60_000) return `${String(Math.round(ms / 1000))}s`;
  if (ms < 3_600_000) return `${String(Math.round(ms / 60_000))}m`;
  return `${String(Math.round(ms / 360_000) / 10)}h`;
}

if (isEntryPoint(import.meta.url)) {
  exitWith(main(process.argv.slice(2)));
}
