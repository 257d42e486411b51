// `npm run send -- …`: deliver Medblocks events, signed and retried as Medblocks does, to the local
// emulator (default) or any URL — e.g. a deployed bot's webhook. Prints one line per attempt and
// exits 1 when any event was finally not delivered (Medblocks would then disable the endpoint).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { WEBHOOK_BOTS } from '../../runtime/registry';
import { devSecret, membershipIdFor } from '../emulator/identity';
import { serialise } from '../fixtures/events';
import { buildEvent, eventBatch, VARIANTS } from '../fixtures/variants';
import type { BatchOrder } from '../fixtures/variants';
import { EVENT_TYPES } from '../../runtime/medblocks/events';
import type { EventType, MedblocksEvent } from '../../runtime/medblocks/events';
import { deliver } from '../sender/sender';
import type { AttemptRecord, DeliveryResult, Tamper } from '../sender/sender';

const USAGE = `usage: npm run send -- [options]

what to send (default: one records.sync.completed, default variant)
  --type TYPE            ${EVENT_TYPES.join(' | ')}
  --variant NAME         see --list
  --fixture FILE         a JSON event file instead (sent as compact JSON)
  --patient ID --connection conn_… --source fhirsrc_… --at ISO-TIME
  --duplicate N          deliver the same event N times (same event id)
  --batch N              N events of the type, one minute apart, same patient/connection
  --order ORDER          in-order | reverse | shuffle (with --batch; default shuffle)
  --seed N               shuffle seed (default 1)
  --concurrent           send the copies / the batch all at once instead of one after another

where
  --url URL              webhook URL (default: the emulator's URL for the type's bot)
  --emulator URL         emulator base URL (default http://127.0.0.1:8103)

how
  --secret S             signing secret (default: env var named like the bot's project secret, else the emulator's dev secret)
  --wrong-secret         sign with a random secret
  --tamper body|signature
  --skew SECONDS         shift the signature timestamp (negative = in the past)
  --time-scale X         run the retry schedule X times faster (3600: one hour per second; default 1)
  --max-attempts N       stop retrying after N attempts (default 9, Medblocks' schedule)
  --deadline-ms MS       per-attempt deadline (default 5000)
  --verbose              print the first 4 KB of every answer
  --list                 list event types and variants`;

const OPTIONS = {
  type: { type: 'string' },
  variant: { type: 'string' },
  fixture: { type: 'string' },
  patient: { type: 'string' },
  connection: { type: 'string' },
  source: { type: 'string' },
  at: { type: 'string' },
  duplicate: { type: 'string' },
  batch: { type: 'string' },
  order: { type: 'string' },
  seed: { type: 'string' },
  concurrent: { type: 'boolean' },
  url: { type: 'string' },
  emulator: { type: 'string' },
  secret: { type: 'string' },
  'wrong-secret': { type: 'boolean' },
  tamper: { type: 'string' },
  skew: { type: 'string' },
  'time-scale': { type: 'string' },
  'max-attempts': { type: 'string' },
  'deadline-ms': { type: 'string' },
  verbose: { type: 'boolean' },
  list: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.list) {
    for (const type of EVENT_TYPES) console.log(`${type.padEnd(34)} ${Object.keys(VARIANTS[type]).join(', ')}`);
    return 0;
  }
  const events = eventsToSend(values);
  const first = events[0];
  if (!first) throw new Error('nothing to send');
  const type = first.type;
  const bot = WEBHOOK_BOTS.find((b) => (b.eventTypes as readonly string[]).includes(type));
  const url =
    values.url ??
    `${(values.emulator ?? 'http://127.0.0.1:8103').replace(/\/$/, '')}/webhook/${membershipIdFor(bot?.name ?? '')}`;
  const secret = values['wrong-secret']
    ? `whsec_wrong_${String(Math.random()).slice(2)}`
    : secretFor(values, bot?.secretName);
  const common = {
    url,
    secret,
    tamper: parseTamper(values.tamper),
    clockSkewSeconds: numberOption(values.skew, 0),
    timeScale: numberOption(values['time-scale'], 1),
    maxAttempts: numberOption(values['max-attempts'], 9),
    deadlineMs: numberOption(values['deadline-ms'], 5000),
  };
  console.log(`sending ${events.length} delivery(ies) of ${type} to ${url}`);
  const sendOne = (event: MedblocksEvent): Promise<DeliveryResult> =>
    deliver({
      ...common,
      body: serialise(event),
      onAttempt: (a) => {
        printAttempt(event, a, values.verbose === true);
      },
    });
  const results: DeliveryResult[] = [];
  if (values.concurrent) {
    results.push(...(await Promise.all(events.map(sendOne))));
  } else {
    for (const event of events) results.push(await sendOne(event));
  }
  const failed = results.filter((r) => !r.delivered).length;
  console.log(
    failed === 0
      ? `delivered ${results.length}/${results.length}`
      : `FAILED ${failed}/${results.length} (Medblocks would disable the endpoint)`
  );
  return failed === 0 ? 0 : 1;
}

function eventsToSend(values: Values): MedblocksEvent[] {
  const shape = { patientId: values.patient, connectionId: values.connection, sourceId: values.source, at: values.at };
  if (values.fixture) {
    const event = JSON.parse(readFileSync(values.fixture, 'utf8')) as MedblocksEvent;
    return Array.from({ length: numberOption(values.duplicate, 1) }, () => event);
  }
  const type = parseType(values.type ?? 'records.sync.completed');
  if (values.batch) {
    return eventBatch(type, numberOption(values.batch, 1), {
      variant: values.variant,
      order: parseOrder(values.order ?? 'shuffle'),
      seed: numberOption(values.seed, 1),
      shape,
    });
  }
  const event = buildEvent(type, values.variant, shape);
  return Array.from({ length: numberOption(values.duplicate, 1) }, () => event);
}

/** An explicit secret, else the environment variable named like the project secret, else the dev secret. */
function secretFor(values: Values, secretName: string | undefined): string {
  if (values.secret) return values.secret;
  const fromEnv = secretName ? process.env[secretName]?.trim() : undefined;
  if (fromEnv) return fromEnv;
  if (!secretName) throw new Error('no bot handles this event type; pass --secret');
  return devSecret(secretName);
}

/** One line per attempt: ids, status and timing only — never the payload. */
function printAttempt(event: MedblocksEvent, a: AttemptRecord, verbose: boolean): void {
  const when = `t+${formatOffset(a.scheduledOffsetMs)}`;
  const status = a.status === undefined ? (a.error ?? 'error') : String(a.status);
  console.log(
    `${event.id} attempt=${a.attempt} ${when.padEnd(10)} sent=${a.sentAt} status=${status} ms=${a.durationMs} ${a.ok ? 'ok' : 'failed'}`
  );
  if (verbose && a.responseBody) console.log(`  answer: ${a.responseBody}`);
}

function formatOffset(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 360_000) / 10}h`;
}

function parseType(value: string): EventType {
  if (!(EVENT_TYPES as readonly string[]).includes(value)) {
    throw new Error(`unknown --type ${value}; one of ${EVENT_TYPES.join(', ')}`);
  }
  return value as EventType;
}

function parseOrder(value: string): BatchOrder {
  if (value === 'in-order' || value === 'reverse' || value === 'shuffle') return value;
  throw new Error(`unknown --order ${value}`);
}

function parseTamper(value: string | undefined): Tamper {
  if (value === undefined) return 'none';
  if (value === 'body' || value === 'signature') return value;
  throw new Error(`unknown --tamper ${value}; body or signature`);
}

function numberOption(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`not a number: ${value}`);
  return n;
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    }
  );
}
