// The one list of this package's bots. Everything else derives from it: each bot's entry file in
// bots/ (which binds its handler, type-checked against the event types below), medplum.config.json
// and access-policies/ (checked against it by test/registry.test.ts), provisioning, the emulator,
// the benchmark and the tests. Adding an event type means one entry here, a handler, a policy file
// and a test (README "Adding an event type").
import type { EventType } from './medblocks/events';

/** Below Medblocks' 5 s deadline, above the pipeline's 3.5 s retry budget: a stuck run answers 400 before Medblocks gives up. */
const WEBHOOK_TIMEOUT_SECONDS = 4;

interface BotEntryBase {
  readonly name: string;
  /** Medplum's `Bot.timeout`, seconds. */
  readonly timeoutSeconds: number;
  /** The AccessPolicy its membership carries, relative to the project root. */
  readonly policyFile: string;
  /** The bot's source and its built bundle (medplum.config.json's `source` and `dist`). */
  readonly source: string;
  readonly dist: string;
}

/** A bot on Medplum's public webhook endpoint, receiving one Medblocks endpoint's deliveries. */
export interface WebhookBotEntry extends BotEntryBase {
  readonly kind: 'webhook';
  /** The event types it applies; a delivery of any other type is refused as `unexpected_event_type`. */
  readonly eventTypes: readonly EventType[];
  /** What its Medblocks endpoint is registered for. */
  readonly medblocksEvent: EventType;
  /** The project secret holding that endpoint's signing secret (each endpoint has its own). */
  readonly secretName: string;
  readonly schedule?: undefined;
}

/** A bot Medplum runs on a schedule (`Bot.cronString`); no public webhook. */
export interface CronBotEntry extends BotEntryBase {
  readonly kind: 'cron';
  /** `Bot.cronString`. */
  readonly schedule: string;
  /** What goes wrong while it never runs (a project without Medplum's cron feature): provisioning says it. */
  readonly unscheduled: string;
  readonly eventTypes?: undefined;
  readonly medblocksEvent?: undefined;
  readonly secretName?: undefined;
}

export type BotEntry = WebhookBotEntry | CronBotEntry;

function files(name: string): Pick<BotEntryBase, 'policyFile' | 'source' | 'dist'> {
  return { policyFile: `access-policies/${name}.json`, source: `bots/${name}.ts`, dist: `dist/${name}.js` };
}

function webhook<const N extends string, const T extends readonly [EventType, ...EventType[]]>(
  name: N,
  eventTypes: T,
  secretName: string
): WebhookBotEntry & { readonly name: N; readonly eventTypes: T; readonly medblocksEvent: T[0] } {
  return {
    kind: 'webhook',
    name,
    eventTypes,
    medblocksEvent: eventTypes[0],
    secretName,
    timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
    ...files(name),
  };
}

export const REGISTRY = {
  'medblocks-patient-flow-completed': webhook(
    'medblocks-patient-flow-completed',
    ['patient_session.completed', 'patient_flow.completed'],
    'MEDBLOCKS_WEBHOOK_SECRET_PATIENT_FLOW_COMPLETED'
  ),
  'medblocks-connection-token-refresh-failed': webhook(
    'medblocks-connection-token-refresh-failed',
    ['connection.token_refresh_failed'],
    'MEDBLOCKS_WEBHOOK_SECRET_CONNECTION_TOKEN_REFRESH_FAILED'
  ),
  'medblocks-records-sync-completed': webhook(
    'medblocks-records-sync-completed',
    ['records.sync.completed'],
    'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_COMPLETED'
  ),
  'medblocks-records-sync-failed': webhook(
    'medblocks-records-sync-failed',
    ['records.sync.failed'],
    'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED'
  ),
  'medblocks-marker-sweeper': {
    kind: 'cron',
    name: 'medblocks-marker-sweeper',
    // Daily at 03:17 UTC: off the hour, when deliveries are usually quiet.
    schedule: '17 3 * * *',
    unscheduled: 'the delivery markers (Basic resources, one per event) grow without bound',
    // The sweep's own work budget (20 s) fits well inside this.
    timeoutSeconds: 60,
    ...files('medblocks-marker-sweeper'),
  },
  'medblocks-records-import': {
    kind: 'cron',
    name: 'medblocks-records-import',
    // Every five minutes: records arrive within minutes of their sync, and one run's work budget
    // (90 s) ends well before the next starts.
    schedule: '*/5 * * * *',
    unscheduled: 'no records are imported',
    timeoutSeconds: 120,
    ...files('medblocks-records-import'),
  },
  'medblocks-reconciler': {
    kind: 'cron',
    name: 'medblocks-reconciler',
    // Daily at 04:43 UTC, after the sweeper: expiries and disconnections, which no webhook reports.
    schedule: '43 4 * * *',
    unscheduled:
      'a connection that expires or is disconnected at Medblocks stays active in Medplum until someone runs npm run reconcile',
    timeoutSeconds: 120,
    ...files('medblocks-reconciler'),
  },
} as const satisfies Record<string, BotEntry>;

export type BotName = keyof typeof REGISTRY;
type RegisteredBot = (typeof REGISTRY)[BotName];
export type RegisteredWebhookBot = Extract<RegisteredBot, { kind: 'webhook' }>;
export type WebhookBotName = RegisteredWebhookBot['name'];

/** Every bot, in deployment order. */
export const ALL_BOTS: readonly BotEntry[] = Object.values(REGISTRY);

/** The webhook bots, one per Medblocks endpoint, with their names' literal types. */
export const WEBHOOK_BOTS: readonly RegisteredWebhookBot[] = Object.values(REGISTRY).filter(
  (b: RegisteredBot): b is RegisteredWebhookBot => b.kind === 'webhook'
);

/** The name of the bot whose endpoint receives this event. */
export function botForEvent(event: { readonly type: EventType }): WebhookBotName {
  return botForEventType(event.type).name;
}

/** The bot whose endpoint receives an event type (one Medblocks endpoint per event type, one bot each). */
export function botForEventType(type: EventType): RegisteredWebhookBot {
  const bot = WEBHOOK_BOTS.find((b) => (b.eventTypes as readonly EventType[]).includes(type));
  if (!bot) throw new Error(`no bot handles ${type}`);
  return bot;
}
