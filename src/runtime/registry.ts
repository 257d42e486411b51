// The one list of this package's bots: a webhook bot per event type (derived from the event types'
// modules, src/runtime/events/index.ts) and the scheduled bots. Everything else derives from it:
// medplum.config.json and access-policies/ (checked against it by test/registry.test.ts),
// provisioning, the emulator, the benchmark and the tests. A bot's bundle never imports it (it
// would carry every handler): each bots/<bot>.ts binds its event type's definition directly.
import { files, webhookEntry } from './bot-entry';
import type { BotEntry, WebhookEntryFor } from './bot-entry';
import { EVENT_DEFINITIONS } from './events';
import type { EventType, EventTypeDefinitionOf } from './events';

export type { BotEntry, CronBotEntry, WebhookBotEntry } from './bot-entry';

/** Each event type's bot under its name, with the literal types of its definition. */
type WebhookEntries = { readonly [D in EventTypeDefinitionOf as D['bot']]: WebhookEntryFor<D> };

// Object.fromEntries loses the keys' types; the mapped type above restores them, and
// test/registry.test.ts checks every event type's bot is here under its own name.
const WEBHOOK_ENTRIES = Object.fromEntries(EVENT_DEFINITIONS.map((d) => [d.bot, webhookEntry(d)])) as WebhookEntries;

export const REGISTRY = {
  ...WEBHOOK_ENTRIES,
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
