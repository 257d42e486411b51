// Turns an event handler into a Medplum bot handler. This is where the answer and the one summary
// log line are made: console output becomes AuditEvent.outcomeDesc and, on failure, part of the
// 400 body Medplum returns to an unauthenticated caller, so it carries ids, types and outcomes only.
import type { BotEvent, MedplumClient } from '@medplum/core';
import { DeliveryRejectedError, receiveDelivery } from '../delivery/receive';
import type { ReceiverSpec } from '../delivery/receive';
import { PlanningError } from '../handlers/plan';
import type { EventHandler } from '../handlers/plan';
import type { MedblocksEvent } from '../medblocks/events';
import { applyEvent } from '../store/engine';
import type { AppliedOutcome, EngineOptions } from '../store/engine';
import { FhirFailureError } from '../store/errors';
import { formatDeliverySummary, notAppliedMessage } from './summary';

export interface BotSpec<E extends MedblocksEvent> extends ReceiverSpec {
  readonly name: string;
  readonly handler: EventHandler<E>;
}

/** The whole answer Medblocks stores in its dashboard: no PHI, no payload. */
export interface BotAnswer {
  readonly status: AppliedOutcome;
  readonly event: string;
  readonly type: string;
}

export interface BotRuntimeOptions extends EngineOptions {
  /** Where the summary line goes; Medplum captures console.log. */
  readonly log?: (line: string) => void;
}

export type MedplumBotHandler = (medplum: MedplumClient, event: BotEvent) => Promise<BotAnswer>;

/** Builds the `handler` a bot file exports. Options exist for tests (clock, sleep, log sink). */
export function createMedblocksBot<E extends MedblocksEvent>(
  spec: BotSpec<E>,
  options: BotRuntimeOptions = {}
): MedplumBotHandler {
  const now = options.now ?? Date.now;
  const log =
    options.log ??
    ((line: string) => {
      console.log(line);
    });
  return async (medplum, botEvent) => {
    const started = now();
    let eventId = '-';
    let type = '-';
    const counter = { requests: 0 };
    try {
      const delivery = receiveDelivery(botEvent, spec, { now });
      eventId = delivery.event.id;
      type = delivery.event.type;
      // receiveDelivery only returns types in spec.acceptedTypes, which are exactly E's types.
      const result = await applyEvent(medplum, delivery.event as E, spec.handler, delivery.settings, options, counter);
      log(
        formatDeliverySummary({
          eventId,
          type,
          outcome: result.outcome,
          fhirRequests: result.fhirRequests,
          ms: now() - started,
        })
      );
      return { status: result.outcome, event: eventId, type };
    } catch (err) {
      if (err instanceof DeliveryRejectedError && err.event) {
        eventId = err.event.id;
        type = err.event.type;
      }
      const { outcome, message } = describeFailure(err);
      log(formatDeliverySummary({ eventId, type, outcome, fhirRequests: counter.requests, ms: now() - started }));
      // No `cause`: the original error may quote server text or payload, and this message is
      // echoed to the unauthenticated caller and stored in Medblocks' dashboard.
      // eslint-disable-next-line preserve-caught-error
      throw new Error(message);
    }
  };
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
