// What a handler is: what it reads and what it plans, given what was read. The read and write
// shapes themselves are the store's contract (store/contract.ts): the I/O layer depends on no handler.
import type { Reference } from '@medplum/fhirtypes';
import type { PlannedWrite, ReadRequest, DeliveryState } from '../store/contract';
import { ClassifiedFailure } from '../failures';
import type { BotSettings } from '../settings';
import type { EventEnvelope } from '../medblocks/events';
import type { EventStamp } from '../fhir/stamp';

export type { DeliveryState, PlannedWrite, ReadRequest } from '../store/contract';
export interface WritePlan {
  readonly writes: readonly PlannedWrite[];
  /** The patient the marker points at: a reference, or the fullUrl of the Patient created in `writes`. */
  readonly markerSubject: Reference | undefined;
  /** True when some change was skipped because a newer event had already been applied. */
  readonly stale: boolean;
}

export interface PlanContext {
  readonly stamp: EventStamp;
  readonly settings: BotSettings;
  /** Source of `urn:uuid:` ids for resources created in the same bundle; injectable for tests. */
  readonly newUuid: () => string;
  /** When this delivery applies the event (ISO): what the dead-letter it resolves records. */
  readonly appliedAt: string;
}

/** One event type's pure logic: what to read, and what to write given what was read. */
export interface EventHandler<E extends EventEnvelope> {
  readonly reads: (event: E) => ReadRequest;
  readonly plan: (event: E, state: DeliveryState, context: PlanContext) => WritePlan;
  /**
   * Present when the event's own stamp, on the one resource its plan writes, is its marker: then
   * "applied" commits in the same version as the work, never apart from it, and the delivery neither
   * reads nor writes a Basic marker (one request and one version fewer, and its bot's policy grants
   * no Basic). Only for an event type whose every applied delivery leaves the stamp on a resource its
   * read batch fetches, and where an older event's redelivery is answered `stale` as it would be anyway.
   */
  readonly appliedIn?: (event: E, state: DeliveryState) => boolean;
}

/**
 * A planning failure that is the customer's configuration, not a FHIR error: nothing is written.
 * Permanent in the failure table (the event is quarantined until the configuration changes), so it
 * names the event field it concerns.
 */
export class PlanningError extends ClassifiedFailure {
  readonly reason: 'patient_not_found';
  constructor(reason: 'patient_not_found', message: string, path = 'data.object.patient_id') {
    super(message, path);
    this.name = 'PlanningError';
    this.reason = reason;
  }
}
