// The event types this package handles: one module each (./<event-type>.ts), listed here once.
// Every other list is derived from this one: the registry's webhook bots, the event type names,
// the policies' shapes, the tools' routing and the tests. Adding an event type is a module and a
// line in each of the two lists below (docs/architecture.md, "Adding an event type"); the
// compiler refuses a name list that does not match the definitions.
//
// A bot's bundle imports this index for the names alone (a misrouted delivery of another known
// type is named in the answer); nothing at the top level here reads a definition, so esbuild keeps
// only the bot's own definition and handler.
import * as v from 'valibot';
import { parseEvent, unknownStatusNotes } from '../medblocks/events';
import type { EventEnvelope, EventParseResult } from '../medblocks/events';
import type { EventHandler } from '../handlers/plan';
import {
  CONNECTION_TOKEN_REFRESH_FAILED,
  connectionTokenRefreshFailed,
  tokenRefreshFailedSamples,
} from './connection-token-refresh-failed';
import {
  PATIENT_SESSION_COMPLETED,
  patientSessionCompleted,
  patientSessionCompletedSamples,
} from './patient-session-completed';
import { RECORDS_SYNC_COMPLETED, recordsSyncCompleted, recordsSyncCompletedSamples } from './records-sync-completed';
import { RECORDS_SYNC_FAILED, recordsSyncFailed, recordsSyncFailedSamples } from './records-sync-failed';
import type { EventOfDefinition } from './define';
import type { SampleShape } from './samples';

/** Every event type's definition, in deployment order (the registry lists their bots so). */
export const EVENT_DEFINITIONS = [
  patientSessionCompleted,
  connectionTokenRefreshFailed,
  recordsSyncCompleted,
  recordsSyncFailed,
] as const;

/** Every name a bot can be wired to, from the same modules; `patient_session.completed` is the newer name of the flow event. */
export const EVENT_TYPES = [
  ...PATIENT_SESSION_COMPLETED,
  ...CONNECTION_TOKEN_REFRESH_FAILED,
  ...RECORDS_SYNC_COMPLETED,
  ...RECORDS_SYNC_FAILED,
] as const;

export type EventType = (typeof EVENT_TYPES)[number];
export type EventTypeDefinitionOf = (typeof EVENT_DEFINITIONS)[number];
export type MedblocksEvent = EventOfDefinition<EventTypeDefinitionOf>;
/** The delivery of one of the given types. */
export type EventOf<T extends EventType> = Extract<MedblocksEvent, { type: T }>;

// The two lists name the same event types: a definition whose names are missing from EVENT_TYPES,
// or a name no definition has, does not compile.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
type _NamesMatch = Assert<Same<EventType, EventTypeDefinitionOf['names'][number]>>;

/**
 * Every event type's named samples, from the same modules: the sender's variants, the demo's and
 * the tests' deliveries. Pure, so no bundle carries them; a name without samples does not compile.
 */
export const EVENT_SAMPLES: Readonly<
  Record<EventType, Readonly<Record<string, (shape: SampleShape) => MedblocksEvent>>>
> = /* @__PURE__ */ mergeSamples(
  patientSessionCompletedSamples,
  tokenRefreshFailedSamples,
  recordsSyncCompletedSamples,
  recordsSyncFailedSamples
);

function mergeSamples<const L extends readonly object[]>(...lists: L): UnionToIntersection<L[number]> {
  return Object.assign({}, ...lists) as UnionToIntersection<L[number]>;
}

type UnionToIntersection<U> = (U extends unknown ? (k: U) => void : never) extends (k: infer I) => void ? I : never;

export type { PatientFlowCompletedEvent, PatientFlowConnection } from './patient-session-completed';
export type { TokenRefreshFailedEvent } from './connection-token-refresh-failed';
export type { RecordsSyncCompletedEvent } from './records-sync-completed';
export type { RecordsSyncFailedEvent } from './records-sync-failed';

/** Whether a string is one of the event types this package knows (and so is safe to log and answer). */
export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

/** The definition of the event type a name belongs to. */
export function definitionOf<T extends EventType>(type: T): Extract<EventTypeDefinitionOf, { names: readonly T[] }> {
  const definition = EVENT_DEFINITIONS.find((d) => (d.names as readonly string[]).includes(type));
  if (!definition) throw new Error(`no event type is named ${type}`);
  return definition as Extract<EventTypeDefinitionOf, { names: readonly T[] }>;
}

/**
 * Validates a parsed JSON value as any Medblocks event this package knows, for the tools that hold
 * "some event" (a bot parses with its own event type's schema only: see bot-entry.ts).
 */
export function parseMedblocksEvent(value: unknown): EventParseResult<MedblocksEvent> {
  return parseEvent(medblocksEventSchema(), value);
}

/** Every event type's delivery schema, for the tools' receivers (the benchmark's per-resource bot). */
export function medblocksEventSchema(): v.GenericSchema<unknown, MedblocksEvent> {
  return v.variant(
    'type',
    EVENT_DEFINITIONS.map((d) => d.schema)
  );
}

/** What an event's own type says of it, typed by that event. */
interface DefinitionFor<E extends EventEnvelope> {
  readonly handler: EventHandler<E>;
  readonly connectionStatuses?: (event: E) => readonly string[];
}

/**
 * The definition of an event's own type. The one cast is sound: `definitionOf` finds the definition
 * by the event's type, and each definition's handler takes exactly its event type.
 */
function definitionFor<E extends MedblocksEvent>(event: E): DefinitionFor<E> {
  return definitionOf(event.type) as unknown as DefinitionFor<E>;
}

/** Every event type's handler behind one entry point, for the tools that hold "some event" (the benchmark, the fuzzer). */
export const medblocksEventHandler: EventHandler<MedblocksEvent> = {
  reads: (event) => definitionFor(event).handler.reads(event),
  plan: (event, state, context) => definitionFor(event).handler.plan(event, state, context),
  appliedIn: (event, state) => definitionFor(event).handler.appliedIn?.(event, state) ?? false,
};

/** The unknown-status notes a bot logs for this event (src/runtime/medblocks/events.ts `unknownStatusNotes`). */
export function unknownValueNotes(event: MedblocksEvent): string[] {
  return unknownStatusNotes(event.id, definitionFor(event).connectionStatuses?.(event) ?? []);
}
