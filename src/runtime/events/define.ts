// What one Medblocks event type is, as one value: the names Medblocks sends it under, its payload
// schema, the pure handler, the bot that receives it (name, signing-secret project secret) and what
// that bot's AccessPolicy grants beyond the grants every bot has. Each event type's module
// (src/runtime/events/<event-type>.ts) builds its definition here; src/runtime/events/index.ts lists
// them, and the registry, the policies, the tools and the tests derive their lists from that index.
import * as v from 'valibot';
import type { TaskCode } from '../fhir/systems';
import type { AnyTaskKind } from '../fhir/tasks/kind';
import type { EventHandler } from '../handlers/plan';
import { envelope } from '../medblocks/events';

/** The schema of a whole delivery (envelope and payload) of an event type named `N`. */
export type EnvelopeSchema<N extends string, P extends v.GenericSchema> = ReturnType<
  typeof envelope<v.PicklistSchema<readonly [N, ...N[]], undefined>, P>
>;

/** A delivery of an event type named `N` with payload schema `P`, as parsed. */
export type EnvelopeOf<N extends string, P extends v.GenericSchema> = v.InferOutput<EnvelopeSchema<N, P>>;

/** What a webhook bot's AccessPolicy grants beyond Patients, sources and its dead-letters. */
export interface PolicyShape {
  /** The policy's name is `Medblocks: <title> bot`. */
  readonly title: string;
  /** Whether it reads and writes Consents (and so their patients' records). */
  readonly consents: boolean;
  /** The Task kinds it writes (none: no Task grant but its dead-letters'), from its event type's `taskKinds`. */
  readonly taskCodes: readonly TaskCode[];
  /** Whether it finds and writes Basic markers: not when its handler's own stamp is the marker (`appliedIn`). */
  readonly marker: boolean;
}

/** What an event type's module says; `defineEventType` adds what follows from it. */
export interface EventTypeSpec<N extends string, P extends v.GenericSchema, B extends string> {
  /** Every name Medblocks sends this event under (the flow event has an older and a newer one). */
  readonly names: readonly [N, ...N[]];
  /** The name its Medblocks endpoint is registered for; the first name when absent. */
  readonly medblocksEvent?: N;
  /** The schema of `data.object`. */
  readonly payload: P;
  /** The bot that receives it: its registry name, `bots/<bot>.ts` and `access-policies/<bot>.json`. */
  readonly bot: B;
  /** The project secret holding its endpoint's signing secret (each endpoint has its own). */
  readonly secretName: string;
  /** Its policy's name and Consent grant; the Task grant follows from `taskKinds`, the marker grant from the handler. */
  readonly policy: Omit<PolicyShape, 'taskCodes' | 'marker'>;
  /**
   * The Task kinds its bot writes (fhir/tasks/*.ts), none for a bot that writes no Task: the
   * handler's working set reads and writes these only, and its policy grants these only.
   */
  readonly taskKinds: readonly AnyTaskKind[];
  readonly handler: EventHandler<EnvelopeOf<N, P>>;
  /** The connection statuses the event reports, so that a status Medblocks adds later is logged. */
  // A method, so that every definition is also a definition of "some event" (the registry maps them all).
  connectionStatuses?(event: EnvelopeOf<N, P>): readonly string[];
}

/** One event type, complete: what its module said, its delivery schema and its endpoint's name. */
export interface EventTypeDefinition<
  N extends string = string,
  P extends v.GenericSchema = v.GenericSchema,
  B extends string = string,
> extends Omit<EventTypeSpec<N, P, B>, 'policy'> {
  readonly policy: PolicyShape;
  readonly medblocksEvent: N;
  /** The whole delivery: the envelope with `type` one of `names`, and the payload. */
  readonly schema: EnvelopeSchema<N, P>;
}

/** The delivery type of a definition. */
export type EventOfDefinition<D> = D extends EventTypeDefinition<infer N, infer P> ? EnvelopeOf<N, P> : never;

/**
 * Builds an event type's definition. Each module calls it as `/* @__PURE__ *\/ defineEventType({…})`
 * with only literals, functions and identifiers in the spec: a bot's bundle imports the index for
 * every event type's names, and so esbuild drops the definitions (and handlers) nothing in the
 * bundle reads. test/emulator/bundles.test.ts fails when a bundle carries another bot's definition.
 */
export function defineEventType<const N extends string, P extends v.GenericSchema, const B extends string>(
  spec: EventTypeSpec<N, P, B>
): EventTypeDefinition<N, P, B> {
  const { handler } = spec;
  return {
    ...spec,
    // The handler's own stamp is its marker: its reads say so, so that no Basic marker is read or written.
    handler: handler.appliedIn
      ? { ...handler, reads: (event) => ({ ...handler.reads(event), withMarker: false }) }
      : handler,
    policy: {
      ...spec.policy,
      taskCodes: spec.taskKinds.map((kind) => kind.code),
      marker: spec.handler.appliedIn === undefined,
    },
    medblocksEvent: spec.medblocksEvent ?? spec.names[0],
    schema: envelope(v.picklist(spec.names), spec.payload),
  };
}
