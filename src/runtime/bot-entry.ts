// What the registry says of a bot (src/runtime/registry.ts lists them), and how an event type's
// definition becomes its webhook bot's entry. Apart from the registry so that a bot's bundle can
// build its own entry without importing the registry, which imports every event type's handler.
import * as v from 'valibot';
import type { EventType } from './events';
import type { EnvelopeOf, EventTypeDefinition } from './events/define';

/** Below Medblocks' 5 s deadline, above the pipeline's 3.5 s retry budget: a stuck run answers 400 before Medblocks gives up. */
export const WEBHOOK_TIMEOUT_SECONDS = 4;

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

/** Where a bot's files are, by its name: the registry and medplum.config.json agree (test/registry.test.ts). */
export function files(name: string): Pick<BotEntryBase, 'policyFile' | 'source' | 'dist'> {
  return { policyFile: `access-policies/${name}.json`, source: `bots/${name}.ts`, dist: `dist/${name}.js` };
}

/** A webhook bot's entry with the literal types of its definition, and the schema it parses deliveries with. */
export interface WebhookEntryOf<N extends EventType, P extends v.GenericSchema, B extends string> extends Omit<
  WebhookBotEntry,
  'eventTypes' | 'medblocksEvent'
> {
  readonly name: B;
  /** The endpoint's name first, then the other names of the event: the order policies and provisioning list them in. */
  readonly eventTypes: readonly [N, ...N[]];
  readonly medblocksEvent: N;
  /** Every name of the bot's event, and nothing else, as a delivery is parsed: no other type's schema ships in its bundle. */
  readonly schema: v.GenericSchema<unknown, EnvelopeOf<N, P>>;
  // A method, so that an entry of one event type is also an entry of "some event" for the tools.
  connectionStatuses?(event: EnvelopeOf<N, P>): readonly string[];
}

/** What an entry is made of: a definition without its handler (which the entry does not carry). */
export type EntrySource = Pick<
  EventTypeDefinition<EventType>,
  'bot' | 'names' | 'medblocksEvent' | 'secretName' | 'schema' | 'connectionStatuses'
>;

/** The entry of a definition's bot. */
export type WebhookEntryFor<D> =
  D extends EventTypeDefinition<infer N extends EventType, infer P, infer B> ? WebhookEntryOf<N, P, B> : never;

/** An event type's bot as the registry lists it; a bot's bundle builds only its own. */
export function webhookEntry<const D extends EntrySource>(definition: D): WebhookEntryFor<D> {
  const subscribed = definition.medblocksEvent;
  const entry = {
    kind: 'webhook',
    name: definition.bot,
    eventTypes: [subscribed, ...definition.names.filter((n) => n !== subscribed)],
    medblocksEvent: subscribed,
    secretName: definition.secretName,
    timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
    schema: v.variant('type', [definition.schema]),
    ...(definition.connectionStatuses ? { connectionStatuses: definition.connectionStatuses } : {}),
    ...files(definition.bot),
  };
  // The literal types the object has, which the compiler cannot follow through the generic spread.
  return entry as unknown as WebhookEntryFor<D>;
}
