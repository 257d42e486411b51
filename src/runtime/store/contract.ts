// The store's contract: what a delivery asks the server for (one batch of searches), what comes back,
// and the writes it may be asked to make. Handlers fill these in (handlers/plan.ts); the store
// modules (read.ts, write.ts) depend on nothing above them.
import type { WithId } from '@medplum/core';
import type { Basic, Consent, Patient, Resource, Task } from '@medplum/fhirtypes';

/** Everything a delivery needs to read, fetched in one batch bundle of searches. */
export interface ReadRequest {
  /** The event being applied, whose marker and dead-letter are read; undefined for a reconciliation, which applies none. */
  readonly eventId: string | undefined;
  /**
   * False when the event's Basic marker is neither read nor written: the handler's own writes say
   * whether the event was applied (handlers/plan.ts `appliedIn`; events/define.ts sets this from it).
   */
  readonly withMarker?: boolean;
  /** The Medblocks patient_id to resolve (by identifier, then as a Medplum id). */
  readonly patientId: string | undefined;
  /**
   * Create that patient, conditionally, in the read batch when it is missing, so that no write of
   * the delivery waits for a Patient create in its own bundle: when such a create fails to serialise,
   * the Consents and Tasks beside it commit pointing at the id the server had assigned it, a Patient
   * that then never exists. Only for a patient_id that cannot be a Medplum id: one that can must
   * first be looked up as an id (and is created, when missing, in a request of its own).
   */
  readonly ensurePatient?: boolean;
  /** Also fetch every Consent and Task of the resolved patient (reconnect and follow-up logic needs them). */
  readonly withPatientRecords: boolean;
  /** Consent business identifiers as `system|value`. */
  readonly consentTokens: readonly string[];
  /** Also fetch the patient of those Consents with all of that patient's Consents and Tasks. */
  readonly consentsWithPatientRecords: boolean;
  /** Task business keys (values of urn:medblocks:task-key). */
  readonly taskKeys: readonly string[];
  /** EHR sources (`fhirsrc_…`) whose names the Consents and Tasks may show: events carry only the ids. */
  readonly sourceIds?: readonly string[];
  /**
   * The bot whose dead-letter of this event to look for (its registry name; the pipeline sets it).
   * Another bot's dead-letter carrying this event's id is not this delivery's: its policy refuses to
   * touch it, and a compromised bot could write one to fail this bot's genuine deliveries; so it is
   * never searched for. Absent, no dead-letter is read.
   */
  readonly deadLetterOwner?: string;
}

export interface DeliveryState {
  readonly marker: WithId<Basic> | undefined;
  readonly patientByIdentifier: WithId<Patient> | undefined;
  readonly patientById: WithId<Patient> | undefined;
  readonly consents: readonly WithId<Consent>[];
  readonly tasks: readonly WithId<Task>[];
  /** EHR names by source id, from Organizations with identifier urn:medblocks:fhir-source-id. */
  readonly sourceNames?: ReadonlyMap<string, string>;
  /** The event's dead-letter Task, when an earlier delivery quarantined it (store/dead-letter.ts). */
  readonly deadLetter?: WithId<Task> | undefined;
}

export type PlannedWrite =
  | {
      readonly kind: 'create';
      readonly fullUrl: string;
      readonly resource: Resource;
      /** The business-key query that makes the create idempotent (`identifier=system|value`). */
      readonly ifNoneExist: string;
      /** A Patient found by a racing writer is what we wanted; any other pre-existing match is a conflict. */
      readonly existingIsConflict: boolean;
    }
  | { readonly kind: 'update'; readonly resource: WithId<Resource>; readonly versionId: string | undefined };
