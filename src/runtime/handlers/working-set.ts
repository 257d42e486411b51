// The resources one delivery may change, as models keyed by business identifier. Handlers merge
// event reports into it; reconcile() derives reconnect and follow-up resolution from the Consents;
// toPlan() emits only what actually changed. Pure: no I/O, no clock.
import { deepEquals } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Consent, Patient, Reference, Task } from '@medplum/fhirtypes';
import { decodeConsent, encodeConsent, hasKnownPatient } from '../fhir/consent';
import type { ConsentModel, ConsentStatus } from '../fhir/consent';
import { buildPatient, isFhirId } from '../fhir/patient';
import { compareStamps, isNewer, newestOf } from '../fhir/stamp';
import type { EventStamp } from '../fhir/stamp';
import { patientIdentifier, SYSTEM, token } from '../fhir/systems';
import { decodeTask, encodeTask } from '../fhir/task';
import type { Activation, AnyTaskKind, KindedTaskModel, MergeContext, TaskKind } from '../fhir/tasks/kind';
import { knownPatient } from '../fhir/tasks/parts';
import { PlanningError } from './plan';
import type { DeliveryState, PlanContext, PlannedWrite, WritePlan } from './plan';

interface Entry<R, M> {
  readonly existing: WithId<R> | undefined;
  readonly original: M | undefined;
  model: M;
  readonly fullUrl: string | undefined;
}

/** A Task in view, with the kind that reads, merges and writes it. */
interface TaskEntry extends Entry<Task, KindedTaskModel> {
  readonly kind: AnyTaskKind;
}

/** What one event says about one connection. */
export interface ConnectionReport {
  readonly key: { readonly system: string; readonly value: string };
  readonly sourceId: string;
  readonly patient: Reference | undefined;
  readonly status: ConsentStatus;
  readonly connectionCreatedAt: string;
  readonly periodEnd: string | undefined;
  readonly failureCodes: readonly string[];
  readonly isActivation: boolean;
}

export class WorkingSet implements MergeContext {
  private readonly consents = new Map<string, Entry<Consent, ConsentModel>>();
  private readonly tasks = new Map<string, TaskEntry>();
  private patientCreate: { fullUrl: string; resource: Patient; patientId: string } | undefined;
  private stale = false;
  private readonly sourceNames: ReadonlyMap<string, string> | undefined;

  /** `taskKinds`: the kinds this delivery's bot writes; a Task of another kind in view is left alone. */
  constructor(
    state: DeliveryState,
    private readonly context: PlanContext,
    taskKinds: readonly AnyTaskKind[]
  ) {
    this.sourceNames = state.sourceNames;
    for (const consent of state.consents) {
      const model = decodeConsent(consent);
      if (model) {
        this.consents.set(token(model.key.system, model.key.value), {
          existing: consent,
          original: model,
          model,
          fullUrl: undefined,
        });
      }
    }
    for (const task of state.tasks) {
      const decoded = decodeTask(taskKinds, task);
      if (decoded) {
        const { kind, model } = decoded;
        this.tasks.set(model.key, { existing: task, original: model, model, fullUrl: undefined, kind });
      }
    }
  }

  get stamp(): EventStamp {
    return this.context.stamp;
  }

  /** The EHR's name when an Organization in the read batch names the source. */
  sourceName(sourceId: string): string | undefined {
    return this.sourceNames?.get(sourceId);
  }

  /**
   * Finds the patient in the documented order — by Medblocks identifier, then as a Medplum id —
   * or plans its creation (conditional, so racing deliveries make one).
   */
  resolvePatient(state: DeliveryState, patientId: string): Reference<Patient> & { reference: string } {
    const found = state.patientByIdentifier ?? (isFhirId(patientId) ? state.patientById : undefined);
    if (found) {
      return { reference: `Patient/${found.id}` };
    }
    if (!this.context.settings.createMissingPatients) {
      throw new PlanningError(
        'patient_not_found',
        'no Patient matches this patient_id and MEDBLOCKS_CREATE_MISSING_PATIENTS is false'
      );
    }
    this.patientCreate ??= {
      fullUrl: `urn:uuid:${this.context.newUuid()}`,
      resource: buildPatient(patientId),
      patientId,
    };
    return { reference: this.patientCreate.fullUrl };
  }

  consent(key: { system: string; value: string }): ConsentModel | undefined {
    return this.consents.get(token(key.system, key.value))?.model;
  }

  /** A reference that works inside the write bundle: the stored id, or the fullUrl of a planned create. */
  consentReference(key: { system: string; value: string }): Reference {
    const entry = this.consents.get(token(key.system, key.value));
    if (!entry) {
      throw new Error('consentReference called before the Consent was planned');
    }
    return { reference: entry.existing ? `Consent/${entry.existing.id}` : (entry.fullUrl ?? '') };
  }

  /** Newest event wins for status and dates; a known patient and the activation time are merged from any event. */
  reportConnection(report: ConnectionReport): void {
    const tokenKey = token(report.key.system, report.key.value);
    const entry = this.consents.get(tokenKey);
    // Period invariant per-1: a period never ends before it starts (clock skew between Medblocks' fields).
    const createdAt = entry?.model.connectionCreatedAt ?? report.connectionCreatedAt;
    report = { ...report, periodEnd: report.periodEnd && notBefore(report.periodEnd, createdAt) };
    const activation = report.isActivation ? this.stamp : undefined;
    if (!entry) {
      this.consents.set(tokenKey, {
        existing: undefined,
        original: undefined,
        fullUrl: `urn:uuid:${this.context.newUuid()}`,
        model: {
          key: report.key,
          sourceId: report.sourceId,
          patient: knownPatient(report.patient),
          status: report.status,
          connectionCreatedAt: report.connectionCreatedAt,
          periodEnd: report.periodEnd,
          failureCodes: report.failureCodes,
          sourceName: this.sourceName(report.sourceId),
          lastEvent: this.stamp,
          lastActiveEvent: activation,
        },
      });
      return;
    }
    const current = entry.model;
    const merged: ConsentModel = {
      ...current,
      patient: current.patient ?? knownPatient(report.patient),
      sourceName: this.sourceName(report.sourceId) ?? current.sourceName,
      lastActiveEvent: newestOf(current.lastActiveEvent, activation),
    };
    if (isNewer(this.stamp, current.lastEvent)) {
      entry.model = {
        ...merged,
        status: report.status,
        periodEnd: report.periodEnd,
        failureCodes: report.failureCodes,
        lastEvent: this.stamp,
      };
    } else {
      this.noteStaleIfOlder(current.lastEvent);
      entry.model = merged;
    }
  }

  /** Merges an event's report into the Task of that kind it is about (created when there is none yet). */
  report<M extends KindedTaskModel, R>(kind: TaskKind<M, R>, report: R): void {
    const key = kind.key(report);
    const entry = this.tasks.get(key);
    // The one cast: a Task in view whose code is this kind's was decoded by this kind.
    const current = entry?.kind.code === kind.code ? (entry.model as M) : undefined;
    this.putTask(key, entry, kind, kind.merge(current, report, this));
  }

  /** A late event links a Task created before its patient was known (a reconnect Task made by a refresh failure). */
  linkPatient(taskKey: string, patient: Reference): void {
    const entry = this.tasks.get(taskKey);
    if (entry && !entry.model.patient) {
      this.putTask(taskKey, entry, entry.kind, { ...entry.model, patient: knownPatient(patient) });
    }
  }

  /**
   * Resolves reconnect and follow-up Tasks from the Consents in view: a Task is done when a newer
   * event reported an active connection (same patient and source for reconnects, any source for
   * follow-ups). Deriving this from stored stamps, not from the order events arrive in, is what
   * makes every delivery order converge.
   */
  reconcile(): void {
    const activations = this.activations();
    for (const [key, entry] of this.tasks) {
      const resolved = entry.kind.resolve?.(entry.model, activations);
      if (resolved) this.putTask(key, entry, entry.kind, resolved);
    }
  }

  /** Every Consent in view that a flow reported active, with its patient known: what can resolve a Task. */
  private activations(): Activation[] {
    return [...this.consents.values()].flatMap((e) =>
      e.model.lastActiveEvent && hasKnownPatient(e.model.patient)
        ? [{ model: e.model, stamp: e.model.lastActiveEvent, ref: this.consentReference(e.model.key) }]
        : []
    );
  }

  /** The minimal write list: creates for new business keys, version-checked updates for changed models. */
  toPlan(markerSubject: Reference | undefined): WritePlan {
    const writes: PlannedWrite[] = [];
    if (this.patientCreate) {
      writes.push({
        kind: 'create',
        fullUrl: this.patientCreate.fullUrl,
        resource: this.patientCreate.resource,
        ifNoneExist: identifierQuery(
          patientIdentifier(this.patientCreate.patientId).system,
          patientIdentifier(this.patientCreate.patientId).value
        ),
        existingIsConflict: false,
      });
    }
    for (const entry of this.consents.values()) {
      const { key } = entry.model;
      pushWrite(writes, entry, encodeConsent(entry.model, entry.existing), identifierQuery(key.system, key.value));
    }
    for (const entry of this.tasks.values()) {
      const resource = encodeTask(entry.kind, entry.model, entry.existing, this.context.settings.taskOwner);
      pushWrite(writes, entry, resource, identifierQuery(SYSTEM.taskKey, entry.model.key));
    }
    return { writes, markerSubject, stale: this.stale };
  }

  private putTask(key: string, entry: TaskEntry | undefined, kind: AnyTaskKind, model: KindedTaskModel): void {
    if (entry) {
      entry.model = model;
    } else {
      this.tasks.set(key, {
        existing: undefined,
        original: undefined,
        model,
        fullUrl: `urn:uuid:${this.context.newUuid()}`,
        kind,
      });
    }
  }

  noteStaleIfOlder(applied: EventStamp): void {
    if (compareStamps(this.stamp, applied) < 0) {
      this.stale = true;
    }
  }
}

function pushWrite<R extends Consent | Task, M>(
  writes: PlannedWrite[],
  entry: Entry<R, M>,
  resource: R,
  ifNoneExist: string
): void {
  if (!entry.existing) {
    writes.push({ kind: 'create', fullUrl: entry.fullUrl ?? '', resource, ifNoneExist, existingIsConflict: true });
  } else if (!deepEquals(entry.original, entry.model)) {
    writes.push({
      kind: 'update',
      resource: { ...resource, id: entry.existing.id },
      versionId: entry.existing.meta?.versionId,
    });
  }
}

export function identifierQuery(system: string, value: string): string {
  return `identifier=${encodeURIComponent(token(system, value))}`;
}

/** `time`, or `floor` when `time` is earlier. */
function notBefore(time: string, floor: string): string {
  return Date.parse(time) < Date.parse(floor) ? floor : time;
}
