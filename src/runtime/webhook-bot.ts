// A webhook bot, from Medplum's BotEvent to the answer, in one pipeline that reads top to bottom:
//
//   verify  → the signature over the raw body, then the event's shape and type   (no FHIR request)
//   read    → one batch of searches: marker, patient, Consents, Tasks, dead-letter (store/read.ts)
//   plan    → the handler decides what to create and update, purely               (handlers/)
//   write   → one batch bundle of conditional writes                             (store/write.ts)
//   mark    → the "event applied" marker, only after every write succeeded       (store/write.ts)
//             (none for a handler whose writes carry the event's stamp as its marker: handlers/plan.ts)
//
// A conflict (two deliveries writing at once) sends the writes that failed to serialise again, or,
// when that cannot repair it (a stale version, a racing create), goes back to `read`; both within a
// deadline far below Medblocks' 5 s. Every failure is a row of src/runtime/failures.ts, and its class alone decides
// the answer: rejected and transient failures throw with nothing marked applied (Medplum answers
// 400 and Medblocks' retry completes the work); a permanent one — a genuine event that cannot be
// applied as it is — is quarantined: recorded as a dead-letter Task (store/dead-letter.ts) and
// answered 200, so that no single event can get the endpoint disabled; so is a transient failure of
// an event Medblocks has retried for 24 h (`retries_exhausted`). A later successful delivery
// of the same event resolves its dead-letter in its write batch. The one summary line, the answer
// and the thrown message carry ids, types, reasons and field paths only: console output becomes
// AuditEvent.outcomeDesc, and answers reach an unauthenticated caller and Medblocks' dashboard.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { BotEvent, MedplumClient, WithId } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import type * as v from 'valibot';
import { ClassifiedFailure, ESCALATE_AFTER_MS, FAILURES, outcomeOfFailure } from './failures';
import type { FailureReason, PermanentReason, TransientReason } from './failures';
import { marksApplied } from './fhir/marker';
import { DeliveryRejectedError, InvalidPayloadError, receiveDelivery } from './receive';
import type { EventStamp } from './fhir/stamp';
import { unknownStatusNotes } from './medblocks/events';
import type { EventEnvelope } from './medblocks/events';
import type { EventHandler } from './handlers/plan';
import { webhookEntry } from './bot-entry';
import type { EntrySource, WebhookBotEntry, WebhookEntryFor } from './bot-entry';
import type { EventOfDefinition } from './events/define';
import { deadLetterResolution, recordDeadLetter } from './store/dead-letter';
import { FhirFailureError } from './store/errors';
import { readState } from './store/read';
import type { DeliveryState } from './store/contract';
import {
  dependencyStages,
  markApplied,
  resolveSubject,
  withCreatedReferences,
  writePlan,
  writesToResend,
} from './store/write';
import type { RequestCounter, WriteConflict } from './store/write';
import type { BotSettings } from './settings';
import { formatDeliverySummary, notAppliedMessage } from './summary';
import type { Outcome } from './summary';

/** What a bot parses a delivery with: its own event type's schema. */
interface ParsingEntry<E> extends WebhookBotEntry {
  readonly schema: v.GenericSchema<unknown, E>;
  /** The connection statuses a delivery reports, so that one Medblocks added later is logged. */
  connectionStatuses?(event: E): readonly string[];
}

/** A registry entry bound to its handler; the handler takes exactly the events the entry parses. */
export interface WebhookBot<E extends EventEnvelope> extends ParsingEntry<E> {
  readonly handler: EventHandler<E>;
}

/**
 * Binds a registry entry to a handler. The types tie them: wiring the records-sync bot to the
 * token-refresh handler does not compile (test/registry.test.ts shows it).
 */
export function defineWebhookBot<E extends EventEnvelope>(
  entry: ParsingEntry<E>,
  handler: EventHandler<NoInfer<E>>
): WebhookBot<E> {
  return { ...entry, handler: closingDeadLetter(handler) };
}

/**
 * A webhook bot's handler plans everything its delivery writes: what the event type's handler
 * plans, and the resolution of the event's open dead-letter when an earlier delivery quarantined it
 * (in the same write batch). Here, where a handler becomes a bot, so that only webhook bundles
 * carry it.
 */
export function closingDeadLetter<E extends EventEnvelope>(handler: EventHandler<E>): EventHandler<E> {
  return {
    ...handler,
    plan(event, state, context) {
      const plan = handler.plan(event, state, context);
      return { ...plan, writes: [...plan.writes, ...deadLetterResolution(state.deadLetter, context.appliedAt)] };
    },
  };
}

/** A definition's bot: its registry entry and its handler. */
export type BoundBot<D> = WebhookBot<EventOfDefinition<D>> & WebhookEntryFor<D>;

/**
 * What a bots/<bot>.ts file exports, from its event type's definition alone: `bot` (the entry and
 * its handler; tests build handlers from it with a test clock and log) and `handler` (what Medplum
 * runs). The bot file imports no registry, so its bundle carries no other event type's handler.
 */
export function bindEventType<const D extends EntrySource & { readonly handler: unknown }>(
  definition: D
): { readonly bot: BoundBot<D>; readonly handler: MedplumBotHandler } {
  // The entry parses exactly the events the definition's handler takes (defineEventType typed both
  // from the same names and payload), which the compiler cannot follow through the generic spread.
  const bot = {
    ...webhookEntry(definition),
    handler: closingDeadLetter(definition.handler as EventHandler<EventEnvelope>),
  } as unknown as BoundBot<D>;
  return { bot, handler: createWebhookBot(bot) };
}

export type AppliedOutcome = 'processed' | 'duplicate' | 'stale';

/** An event applied (or found applied): `processed`, `duplicate` or `stale`. */
export interface AppliedAnswer {
  readonly status: AppliedOutcome;
  readonly event: string;
  readonly type: string;
}

/**
 * A genuine event that cannot be applied as it is: answered 2xx so that Medblocks does not retry it
 * into disabling the endpoint, and kept as a dead-letter Task until a redelivery applies it.
 * `event` is the dead-letter key (the event id, or `sha256-<hex>` of a body without one).
 */
export interface QuarantinedAnswer {
  readonly status: 'quarantined';
  readonly event: string;
  readonly type: string;
  readonly reason: PermanentReason;
  /** The field path at fault (`data.object.total`), never its value. */
  readonly path?: string;
  /** For `retries_exhausted`: the transient failure that kept recurring. */
  readonly cause?: TransientReason;
}

/** The whole answer Medblocks stores in its dashboard: no PHI, no payload values. */
export type BotAnswer = AppliedAnswer | QuarantinedAnswer;

export interface PipelineOptions {
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<unknown>;
  readonly newUuid?: () => string;
  /** Total time allowed for conflict retries, measured from the start of the delivery. */
  readonly deadlineMs?: number;
  readonly maxAttempts?: number;
  /** Where the summary line goes; Medplum captures console.log. */
  readonly log?: (line: string) => void;
}

export const DEFAULT_DEADLINE_MS = 3500;
export const DEFAULT_MAX_ATTEMPTS = 10;
const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 400;

export type MedplumBotHandler = (medplum: MedplumClient, event: BotEvent) => Promise<BotAnswer>;

/** What the pipeline knew of a delivery when it stopped: the summary line and a quarantine need it. */
interface Known {
  /** The event's id and type once they are safe to log (verified); `-` before. */
  readonly eventId: string;
  readonly type: string;
  /** The verified event's `created_at`: how long Medblocks has been retrying it. */
  readonly createdAt: string | undefined;
  /** The dead-letter found by the last read batch, or 'unknown' before any read. */
  readonly deadLetter: WithId<Task> | undefined | 'unknown';
}

const NOTHING_KNOWN: Known = { eventId: '-', type: '-', createdAt: undefined, deadLetter: 'unknown' };

/** Whatever stopped a delivery, with what the pipeline knew of it at that point. */
class DeliveryStopped extends Error {
  constructor(
    readonly failure: unknown,
    readonly known: Known
  ) {
    super('delivery stopped');
    this.name = 'DeliveryStopped';
  }
}

/**
 * The id and type a failed delivery is logged and quarantined under: a body that is verified but
 * unreadable has its dead-letter key; a verified, well-formed but misrouted event its own id and
 * type; otherwise what the pipeline had verified.
 */
function namesOf(failure: unknown, known: Known): { readonly eventId: string; readonly type: string } {
  if (failure instanceof InvalidPayloadError) return { eventId: failure.key, type: failure.type };
  if (failure instanceof DeliveryRejectedError && failure.event) {
    return { eventId: failure.event.id, type: failure.event.type };
  }
  return known;
}

/** Builds the `handler` a bot file exports. Options exist for tests (clock, sleep, log sink). */
export function createWebhookBot<E extends EventEnvelope>(
  bot: WebhookBot<E>,
  options: PipelineOptions = {}
): MedplumBotHandler {
  const now = options.now ?? Date.now;
  // A method call on `console`, never `console.log` passed around: the console Medplum's vmcontext
  // gives a bot is an object whose `log` reads `this` (server `util/console.ts`), so a detached
  // `console.log` throws there — and every delivery that logs a note then fails.
  const log =
    options.log ??
    ((line: string) => {
      console.log(line);
    });
  return async (medplum, botEvent) => {
    const started = now();
    const counter: RequestCounter = { requests: 0 };
    const summarise = ({ eventId, type }: { eventId: string; type: string }, outcome: Outcome): void => {
      log(formatDeliverySummary({ eventId, type, outcome, fhirRequests: counter.requests, ms: now() - started }));
    };
    let stopped: DeliveryStopped;
    try {
      const { outcome, known } = await deliver(medplum, botEvent, bot, options, log, counter);
      summarise(known, outcome);
      return { status: outcome, event: known.eventId, type: known.type };
    } catch (err) {
      stopped = err instanceof DeliveryStopped ? err : new DeliveryStopped(err, NOTHING_KNOWN);
    }
    const { known } = stopped;
    let failure = stopped.failure;
    const names = namesOf(failure, known);
    const reason = reasonOf(failure);
    const cause = persistingCause(reason, known.createdAt, now());
    if ((isPermanent(reason) && failure instanceof ClassifiedFailure) || cause) {
      const quarantined = cause ? 'retries_exhausted' : (reason as PermanentReason);
      try {
        const why = { reason: quarantined, cause };
        const answer = await quarantine(medplum, bot.name, failure, why, { ...known, ...names }, counter, now);
        summarise(
          names,
          cause ? `${outcomeOfFailure('retries_exhausted')} cause=${cause}` : outcomeOfFailure(quarantined)
        );
        return answer;
      } catch (err) {
        failure = err; // the dead-letter could not be written: fail, so that Medblocks retries
      }
    }
    const { outcome, message } = describeFailure(failure);
    summarise(names, outcome);
    // No `cause`: the original error may quote server text or payload, and this message is
    // echoed to the unauthenticated caller and stored in Medblocks' dashboard.
    throw new Error(message);
  };
}

/** The pipeline; anything that stops it comes out as a DeliveryStopped carrying what it knew. */
async function deliver<E extends EventEnvelope>(
  medplum: MedplumClient,
  botEvent: BotEvent,
  bot: WebhookBot<E>,
  options: PipelineOptions,
  log: (line: string) => void,
  counter: RequestCounter
): Promise<{ readonly outcome: AppliedOutcome; readonly known: Known }> {
  let known = NOTHING_KNOWN;
  try {
    const { event, settings } = receiveDelivery(botEvent, bot, { now: options.now ?? Date.now }); // verify
    known = { eventId: event.id, type: event.type, createdAt: event.created_at, deadLetter: 'unknown' };
    const outcome = await apply(medplum, event, settings, bot, options, log, counter, (deadLetter) => {
      known = { ...known, deadLetter };
    });
    return { outcome, known };
  } catch (err) {
    throw new DeliveryStopped(err, known);
  }
}

/**
 * A verified event, applied: read → plan → write → mark, again after a conflict, within the
 * deadline. `onRead` learns the dead-letter each read batch found (a quarantine after a failure
 * updates that one).
 */
async function apply<E extends EventEnvelope>(
  medplum: MedplumClient,
  event: E,
  settings: BotSettings,
  bot: WebhookBot<E>,
  options: PipelineOptions,
  log: (line: string) => void,
  counter: RequestCounter,
  onRead: (deadLetter: WithId<Task> | undefined) => void
): Promise<AppliedOutcome> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => sleepFor(ms));
  const deadline = now() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  // Values Medblocks added since this package was written are applied as the mapping says and named here.
  // Through `log`, never a detached `console.log`: Medplum's vmcontext console needs its `this`.
  for (const note of unknownStatusNotes(event.id, bot.connectionStatuses?.(event) ?? [])) log(note);
  const stamp: EventStamp = { at: event.created_at, eventId: event.id };
  const newUuid = options.newUuid ?? randomUUID;

  /**
   * Lost a race: wait, then go on. Exponential with jitter, so that deliveries that collided spread
   * out instead of colliding again; gives up (a transient failure, retried by Medblocks) when the
   * attempts or the deadline run out.
   */
  const backOff = async (attempt: number, conflict: WriteConflict): Promise<number> => {
    const pause = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1)) * (0.5 + Math.random());
    if (attempt >= maxAttempts || now() + pause >= deadline) {
      throw new FhirFailureError('conflict', 'status' in conflict ? conflict.status : undefined, 'write');
    }
    await sleep(pause);
    return attempt + 1;
  };

  let wrote = false;
  for (let attempt = 1; ;) {
    const reads = {
      ...bot.handler.reads(event),
      deadLetterOwner: bot.name,
      ensurePatient: settings.createMissingPatients,
    };
    // No Basic marker is read or written for an event whose own stamp is its marker (events/define.ts).
    const stampMarked = reads.withMarker === false;
    let state: DeliveryState;
    try {
      state = await readState(medplum, reads, counter); // read (and the patient, created when missing)
    } catch (err) {
      // The read batch's Patient create failed to serialise: nothing was written, read again.
      if (!(err instanceof FhirFailureError && err.reason === 'conflict' && err.phase === 'write')) throw err;
      attempt = await backOff(attempt, { cause: 'serialization', status: err.status ?? 409 });
      continue;
    }
    onRead(state.deadLetter);
    if (stampMarked ? (bot.handler.appliedIn?.(event, state) ?? false) : marksApplied(state.marker, event.type)) {
      // Applied before, yet quarantined since (e.g. a replay of a poison body): close the dead-letter,
      // else monitor flags an applied event forever. Best effort: the event is applied whatever this
      // write answers, and a lost race or refusal leaves the dead-letter to the next delivery.
      const closing = deadLetterResolution(state.deadLetter, new Date(now()).toISOString());
      await writePlan(medplum, closing, counter).catch(() => undefined);
      // Found applied on a re-read after this delivery's own write, whose answer was lost: applied here.
      return wrote ? 'processed' : 'duplicate';
    }
    const appliedAt = new Date(now()).toISOString();
    const plan = bot.handler.plan(event, state, { stamp, settings, newUuid, appliedAt }); // plan
    const created = new Map<string, string>();
    let conflict: WriteConflict | undefined;
    for (const stage of dependencyStages(plan.writes)) {
      let pending = withCreatedReferences(stage, created);
      for (;;) {
        wrote ||= pending.length > 0;
        const written = await writePlan(medplum, pending, counter); // write
        for (const [fullUrl, reference] of written.created) created.set(fullUrl, reference);
        conflict = written.conflicts[0];
        // Only serialisation failures: the same conditional writes, sent again, commit or find what
        // the racing delivery committed. Cheaper than a re-read, so the deadline holds more of them.
        const resend = conflict ? writesToResend(pending, written) : undefined;
        if (!resend || !conflict) break;
        attempt = await backOff(attempt, conflict);
        pending = withCreatedReferences(resend, created);
      }
      if (conflict) break;
    }
    // mark: a Basic, unless the event's own stamp in those writes already is its marker
    if (!stampMarked) {
      conflict ??= await markApplied(
        medplum,
        event,
        resolveSubject(plan.markerSubject, created),
        counter,
        new Date(now()).toISOString()
      );
    }
    if (!conflict) return plan.stale ? 'stale' : 'processed';
    attempt = await backOff(attempt, conflict); // then start over from read
  }
}

/** Records the dead-letter and builds the 2xx answer; throws (a transient failure) when the record cannot be written. */
async function quarantine(
  medplum: MedplumClient,
  owner: string,
  failure: unknown,
  why: { readonly reason: PermanentReason; readonly cause: TransientReason | undefined },
  known: Known,
  counter: RequestCounter,
  now: () => number
): Promise<QuarantinedAnswer> {
  const { reason, cause } = why;
  // A recurring failure's path is not the event's fault: only a permanent failure names one.
  const path = !cause && failure instanceof ClassifiedFailure ? failure.path : undefined;
  await recordDeadLetter(
    medplum,
    { key: known.eventId, owner, type: known.type, reason, path, cause, seenAt: new Date(now()).toISOString() },
    known.deadLetter,
    counter
  );
  return {
    status: 'quarantined',
    event: known.eventId,
    type: known.type,
    reason,
    ...(path ? { path } : {}),
    ...(cause ? { cause } : {}),
  };
}

/**
 * The transient failure to quarantine instead of answering non-2xx: one of a verified event that
 * Medblocks has been retrying for ESCALATE_AFTER_MS (measured from its `created_at`), so that no
 * bug of ours, missing grant or persistent conflict can fail its last attempts and get the whole
 * endpoint disabled. Rejections (forged, misrouted) never escalate: they are loud on purpose.
 */
export function persistingCause(
  reason: FailureReason,
  createdAt: string | undefined,
  at: number
): TransientReason | undefined {
  if (FAILURES[reason].failureClass !== 'transient' || createdAt === undefined) return undefined;
  const age = at - Date.parse(createdAt);
  return age >= ESCALATE_AFTER_MS ? (reason as TransientReason) : undefined;
}

/** The failure-table reason of anything thrown; unknown errors are `internal` and never echoed. */
function reasonOf(err: unknown): FailureReason {
  return err instanceof ClassifiedFailure ? err.reason : 'internal';
}

function isPermanent(reason: FailureReason): reason is PermanentReason {
  return FAILURES[reason].failureClass === 'permanent';
}

/** Maps a failure to the summary outcome and the safe message thrown (and so answered non-2xx). */
function describeFailure(err: unknown): { outcome: Outcome; message: string } {
  if (err instanceof ClassifiedFailure) {
    return { outcome: outcomeOfFailure(err.reason), message: err.message };
  }
  return {
    outcome: outcomeOfFailure('internal'),
    message: notAppliedMessage('internal', 'internal error; nothing was marked applied'),
  };
}
