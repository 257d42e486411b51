// A webhook bot, from Medplum's BotEvent to the answer, in one pipeline that reads top to bottom:
//
//   verify  → the signature over the raw body, then the event's shape and type   (no FHIR request)
//   read    → one batch of searches: marker, patient, Consents, Tasks            (store/read.ts)
//   plan    → the handler decides what to create and update, purely               (handlers/)
//   write   → one batch bundle of conditional writes                             (store/write.ts)
//   mark    → the "event applied" marker, only after every write succeeded       (store/write.ts)
//
// A conflict (two deliveries writing at once) sends it back to `read` within a deadline far below
// Medblocks' 5 s; any other failure throws with nothing marked applied, so Medblocks' retry
// completes the work. The one summary line and the thrown message carry ids, types and outcomes
// only: console output becomes AuditEvent.outcomeDesc, and the thrown message is the 400 body an
// unauthenticated caller and Medblocks' dashboard receive.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { BotEvent, MedplumClient } from '@medplum/core';
import { DeliveryRejectedError, receiveDelivery } from './receive';
import type { EventStamp } from './fhir/stamp';
import { PlanningError } from './handlers/plan';
import type { EventHandler } from './handlers/plan';
import type { EventType, MedblocksEvent } from './medblocks/events';
import { FhirFailureError } from './store/errors';
import { readState } from './store/read';
import { markApplied, resolveSubject, writePlan } from './store/write';
import type { RequestCounter, WriteConflict } from './store/write';
import type { WebhookBotEntry } from './registry';
import { formatDeliverySummary, notAppliedMessage } from './summary';

/** The event of one of the given types. */
export type EventOf<T extends EventType> = Extract<MedblocksEvent, { type: T }>;

/** A registry entry bound to its handler; the handler's event type must cover the entry's event types. */
export interface WebhookBot<T extends EventType = EventType> extends WebhookBotEntry {
  readonly eventTypes: readonly T[];
  readonly handler: EventHandler<EventOf<T>>;
}

/**
 * Binds a registry entry to its handler. The types tie them: wiring the records-sync bot to the
 * token-refresh handler does not compile (test/registry.test.ts shows it).
 */
export function defineWebhookBot<const T extends EventType>(
  entry: WebhookBotEntry & { readonly eventTypes: readonly T[] },
  handler: EventHandler<EventOf<T>>
): WebhookBot<T> {
  return { ...entry, handler };
}

export type AppliedOutcome = 'processed' | 'duplicate' | 'stale';

/** The whole answer Medblocks stores in its dashboard: no PHI, no payload. */
export interface BotAnswer {
  readonly status: AppliedOutcome;
  readonly event: string;
  readonly type: string;
}

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

export const DEFAULT_DEADLINE_MS = 2500;
export const DEFAULT_MAX_ATTEMPTS = 5;

export type MedplumBotHandler = (medplum: MedplumClient, event: BotEvent) => Promise<BotAnswer>;

/** Builds the `handler` a bot file exports. Options exist for tests (clock, sleep, log sink). */
export function createWebhookBot<T extends EventType>(
  bot: WebhookBot<T>,
  options: PipelineOptions = {}
): MedplumBotHandler {
  const now = options.now ?? Date.now;
  const log =
    options.log ??
    ((line: string) => {
      console.log(line);
    });
  return async (medplum, botEvent) => {
    const started = now();
    const counter: RequestCounter = { requests: 0 };
    const seen = { eventId: '-', type: '-' };
    try {
      const outcome = await deliver(medplum, botEvent, bot, options, counter, seen);
      log(formatDeliverySummary({ ...seen, outcome, fhirRequests: counter.requests, ms: now() - started }));
      return { status: outcome, event: seen.eventId, type: seen.type };
    } catch (err) {
      if (err instanceof DeliveryRejectedError && err.event) {
        // Verified and well-formed but misrouted: its id and type are safe to log.
        seen.eventId = err.event.id;
        seen.type = err.event.type;
      }
      const { outcome, message } = describeFailure(err);
      log(formatDeliverySummary({ ...seen, outcome, fhirRequests: counter.requests, ms: now() - started }));
      // No `cause`: the original error may quote server text or payload, and this message is
      // echoed to the unauthenticated caller and stored in Medblocks' dashboard.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(message);
    }
  };
}

/** The pipeline. `seen` receives the event's id and type once they are safe to log (verified). */
async function deliver<T extends EventType>(
  medplum: MedplumClient,
  botEvent: BotEvent,
  bot: WebhookBot<T>,
  options: PipelineOptions,
  counter: RequestCounter,
  seen: { eventId: string; type: string }
): Promise<AppliedOutcome> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => sleepFor(ms));
  const deadline = now() + (options.deadlineMs ?? DEFAULT_DEADLINE_MS);
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;

  const { event, settings } = receiveDelivery(botEvent, bot, { now }); // verify
  seen.eventId = event.id;
  seen.type = event.type;
  const stamp: EventStamp = { at: event.created_at, eventId: event.id };
  const context = { stamp, settings, newUuid: options.newUuid ?? randomUUID };

  for (let attempt = 1; ; attempt++) {
    const state = await readState(medplum, bot.handler.reads(event), counter); // read
    // Only a marker naming this event's type counts: each bot's policy lets it write markers of its own types only.
    if (state.marker?.code.text === event.type) return 'duplicate';
    const plan = bot.handler.plan(event, state, context); // plan
    const written = await writePlan(medplum, plan.writes, counter); // write
    const conflict: WriteConflict | undefined =
      written.conflicts[0] ??
      (await markApplied(medplum, event, resolveSubject(plan.markerSubject, written.created), counter)); // mark
    if (!conflict) return plan.stale ? 'stale' : 'processed';

    // Lost a race: back off with jitter (so that racing deliveries spread out), then start over from read.
    const backoff = Math.min(400, 25 * 2 ** attempt) * (0.5 + Math.random());
    if (attempt >= maxAttempts || now() + backoff >= deadline) {
      throw new FhirFailureError('conflict', 'status' in conflict ? conflict.status : undefined, 'write');
    }
    await sleep(backoff);
  }
}

/** Maps anything thrown to a safe outcome and message; unknown errors are never echoed. */
function describeFailure(err: unknown): { outcome: string; message: string } {
  if (err instanceof DeliveryRejectedError) {
    return { outcome: `rejected:${err.reason}`, message: err.message };
  }
  if (err instanceof PlanningError) {
    return { outcome: `failed:${err.reason}`, message: notAppliedMessage(err.reason, err.message) };
  }
  if (err instanceof FhirFailureError) {
    return { outcome: `failed:${err.failureClass}`, message: err.message };
  }
  return {
    outcome: 'failed:internal',
    message: notAppliedMessage('internal', 'internal error; nothing was marked applied'),
  };
}
