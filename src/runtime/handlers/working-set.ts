// The resources one delivery may change, as models keyed by business identifier. Handlers merge
// event reports into it; reconcile() derives reconnect and follow-up resolution from the Consents;
// toPlan() emits only what actually changed. Pure: no I/O, no clock.
import { deepEquals } from '@medplum/core';
import type { Consent, Patient, Reference, Task } from '@medplum/fhirtypes';
import { decodeConsent, encodeConsent, hasKnownPatient } from '../fhir/consent';
import type { ConsentModel, ConsentStatus } from '../fhir/consent';
import { buildPatient, isFhirId } from '../fhir/patient';
import { compareStamps, isNewer, newestOf, oldestOf } from '../fhir/stamp';
import type { EventStamp } from '../fhir/stamp';
import { CODE, patientIdentifier, SYSTEM, TASK_KEY, token } from '../fhir/systems';
import { decodeTask, encodeTask } from '../fhir/task';
import type { TaskModel } from '../fhir/task';
import type { FollowUpTaskModel } from '../fhir/tasks/follow-up';
import { sortedUnique } from '../fhir/tasks/parts';
import type { ReconnectTaskModel } from '../fhir/tasks/reconnect';
import type { RecordsSyncTaskModel, SyncResult } from '../fhir/tasks/records-sync';
import type { ConnectionStatus } from '../medblocks/events';
import { consentStatusFor } from './connection-status';
import { PlanningError } from './plan';
import type { DeliveryState, PlanContext, PlannedWrite, WritePlan } from './plan';

interface Entry<R, M> {
  readonly existing: (R & { id: string }) | undefined;
  readonly original: M | undefined;
  model: M;
  readonly fullUrl: string | undefined;
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

/**
 * One connection as Medblocks reports it (a flow's entry, or a patient's connection read by
 * reconciliation), for `reportMedblocksConnection`: the mapping contract applied in one place.
 */
export interface MedblocksConnectionReport {
  readonly key: { readonly system: string; readonly value: string };
  /** Its `conn_` id, when it has one: a reconnect Task of that id gets the patient. */
  readonly connectionId: string | null | undefined;
  /** What its reconnect Task is keyed by: the `conn_` id, or the attempt key when there is none. */
  readonly reconnectId: string;
  readonly sourceId: string;
  readonly status: ConnectionStatus;
  readonly createdAt: string;
  /** When an inactive connection ended: `failure_at`, else the report's own time. */
  readonly endedAt: string;
  readonly failureCodes: readonly string[];
}

export class WorkingSet {
  private readonly consents = new Map<string, Entry<Consent, ConsentModel>>();
  private readonly tasks = new Map<string, Entry<Task, TaskModel>>();
  private patientCreate: { fullUrl: string; resource: Patient; patientId: string } | undefined;
  private stale = false;
  private readonly sourceNames: ReadonlyMap<string, string> | undefined;

  constructor(
    state: DeliveryState,
    private readonly context: PlanContext
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
      const model = decodeTask(task);
      if (model) {
        this.tasks.set(model.key, { existing: task, original: model, model, fullUrl: undefined });
      }
    }
  }

  private get stamp(): EventStamp {
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
          patient: normalisePatient(report.patient),
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
      patient: current.patient ?? normalisePatient(report.patient),
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

  /** A refresh failure (re)opens the reconnect Task of that connection, unless a newer reconnection already resolves it. */
  /**
   * A connection with the status Medblocks gives it (handlers/connection-status.ts): its Consent,
   * and for `refresh_failed` a reconnect Task; an unknown status changes nothing. Returns whether
   * the status was one this package knows.
   */
  reportMedblocksConnection(report: MedblocksConnectionReport, patient: Reference): boolean {
    if (report.connectionId) this.linkReconnectTask(report.connectionId, patient);
    const status = consentStatusFor(report.status);
    if (status === undefined) return false;
    const active = status === 'active';
    this.reportConnection({
      key: report.key,
      sourceId: report.sourceId,
      patient,
      status,
      connectionCreatedAt: report.createdAt,
      periodEnd: active ? undefined : report.endedAt,
      failureCodes: report.failureCodes,
      isActivation: active,
    });
    if (report.status === 'refresh_failed') {
      this.reportRefreshFailure(report.reconnectId, report.sourceId, this.consentReference(report.key), patient);
    }
    return true;
  }

  reportRefreshFailure(
    connectionId: string,
    sourceId: string,
    consent: Reference,
    patient: Reference | undefined
  ): void {
    const key = TASK_KEY.reconnect(connectionId);
    const entry = this.tasks.get(key);
    const current = entry?.model.kind === CODE.reconnectEhr ? entry.model : undefined;
    const lastRefreshFailed = newestOf(current?.lastRefreshFailed, this.stamp) ?? this.stamp;
    if (current && !isNewer(this.stamp, current.lastRefreshFailed)) {
      this.noteStaleIfOlder(current.lastRefreshFailed);
    }
    const reconnectedBy =
      current?.reconnectedBy && compareStamps(current.reconnectedBy.stamp, lastRefreshFailed) > 0
        ? current.reconnectedBy
        : undefined;
    const model: ReconnectTaskModel = {
      kind: CODE.reconnectEhr,
      key,
      connectionId,
      sourceId,
      sourceName: this.sourceName(sourceId) ?? current?.sourceName,
      // This event's reference to the connection's Consent wins: a stored one that differs names a
      // Consent create that failed to serialise in the bundle that created this Task (the server had
      // assigned it an id), and the focus is the one reference the policies let a bot re-point.
      consent,
      patient: current?.patient ?? normalisePatient(patient),
      authoredOn: earliest(current?.authoredOn, this.stamp.at),
      lastRefreshFailed,
      reconnectedBy,
    };
    this.putTask(key, entry, model);
  }

  /** A late flow event links a reconnect Task created before the patient was known. */
  linkReconnectTask(connectionId: string, patient: Reference): void {
    const key = TASK_KEY.reconnect(connectionId);
    const entry = this.tasks.get(key);
    if (entry?.model.kind === CODE.reconnectEhr && !entry.model.patient) {
      this.putTask(key, entry, { ...entry.model, patient: normalisePatient(patient) });
    }
  }

  /** A flow in which no connection became active asks for a follow-up with the patient. */
  reportFlowWithoutConnection(flowId: string, patient: Reference, sources: string[], failureCodes: string[]): void {
    const key = TASK_KEY.followUp(flowId);
    const entry = this.tasks.get(key);
    const current = entry?.model.kind === CODE.connectionFollowUp ? entry.model : undefined;
    const model: FollowUpTaskModel = {
      kind: CODE.connectionFollowUp,
      key,
      flowId,
      patient: current?.patient ?? normalisePatient(patient),
      authoredOn: earliest(current?.authoredOn, this.stamp.at),
      trigger: oldestOf(current?.trigger, this.stamp) ?? this.stamp,
      sources: sortedUnique([...(current?.sources ?? []), ...sources]),
      failureCodes: sortedUnique([...(current?.failureCodes ?? []), ...failureCodes]),
      sourceNames: sortedUnique([
        ...(current?.sourceNames ?? []),
        ...[...(current?.sources ?? []), ...sources].map((id) => this.sourceName(id)),
      ]),
      connectedAt: current?.connectedAt,
    };
    this.putTask(key, entry, model);
  }

  /** One records-sync Task per patient and source shows the newest pull: last writer by event stamp wins. */
  reportSync(patientId: string, sourceId: string, patient: Reference, result: SyncResult): void {
    const key = TASK_KEY.recordsSync(patientId, sourceId);
    const entry = this.tasks.get(key);
    const current = entry?.model.kind === CODE.recordsSync ? entry.model : undefined;
    const base = {
      patient: current?.patient ?? normalisePatient(patient),
      authoredOn: earliest(current?.authoredOn, this.stamp.at),
      sourceName: this.sourceName(sourceId) ?? current?.sourceName,
    };
    if (current && !isNewer(this.stamp, current.lastEvent)) {
      this.noteStaleIfOlder(current.lastEvent);
      this.putTask(key, entry, { ...current, ...base });
      return;
    }
    const model: RecordsSyncTaskModel = {
      kind: CODE.recordsSync,
      key,
      sourceId,
      ...base,
      lastEvent: this.stamp,
      result,
    };
    this.putTask(key, entry, model);
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
      const task = entry.model;
      if (task.kind === CODE.recordsSync || !hasKnownPatient(task.patient)) continue;
      const [best] = activations.filter((a) => resolves(a, task)).sort(rankFor(task));
      if (!best) continue;
      const resolved = task.kind === CODE.reconnectEhr ? reconnectedBy(task, best) : connectedBy(task, best);
      if (resolved) this.putTask(key, entry, resolved);
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
      const resource = encodeTask(entry.model, entry.existing, this.context.settings.taskOwner);
      pushWrite(writes, entry, resource, identifierQuery(SYSTEM.taskKey, entry.model.key));
    }
    return { writes, markerSubject, stale: this.stale };
  }

  private putTask(key: string, entry: Entry<Task, TaskModel> | undefined, model: TaskModel): void {
    if (entry) {
      entry.model = model;
    } else {
      this.tasks.set(key, {
        existing: undefined,
        original: undefined,
        model,
        fullUrl: `urn:uuid:${this.context.newUuid()}`,
      });
    }
  }

  private noteStaleIfOlder(applied: EventStamp): void {
    if (compareStamps(this.stamp, applied) < 0) {
      this.stale = true;
    }
  }
}

/** A Consent's activation: the newest event that reported its connection active. */
interface Activation {
  readonly model: ConsentModel;
  readonly stamp: EventStamp;
  readonly ref: Reference;
}

/**
 * Whether an activation resolves a Task: the same patient, activated by an event newer than the one
 * that opened (or last re-opened) the Task; a reconnect also needs the same EHR source, a follow-up
 * takes any source.
 */
function resolves(activation: Activation, task: ReconnectTaskModel | FollowUpTaskModel): boolean {
  const since = task.kind === CODE.reconnectEhr ? task.lastRefreshFailed : task.trigger;
  return (
    activation.model.patient?.reference === task.patient?.reference &&
    (task.kind === CODE.connectionFollowUp || activation.model.sourceId === task.sourceId) &&
    compareStamps(activation.stamp, since) > 0
  );
}

/**
 * A total order on the activations that resolve a Task, best first: the newest; on a tie (one flow
 * can activate two connections of one source with the same stamp), the Task's own connection; then
 * the lowest connection key. Total, so that the pick never depends on which Consent was seen first.
 */
function rankFor(task: ReconnectTaskModel | FollowUpTaskModel): (a: Activation, b: Activation) => number {
  const own = task.kind === CODE.reconnectEhr ? task.connectionId : undefined;
  return (a, b) =>
    compareStamps(b.stamp, a.stamp) ||
    Number(b.model.key.value === own) - Number(a.model.key.value === own) ||
    compareText(a.model.key.value, b.model.key.value);
}

/** The reconnect Task completed by `best`, or undefined when what it records already ranks as high. */
function reconnectedBy(task: ReconnectTaskModel, best: Activation): ReconnectTaskModel | undefined {
  const current = task.reconnectedBy;
  const order = current ? compareStamps(best.stamp, current.stamp) : 1;
  const changes = order > 0 || (order === 0 && best.ref.reference !== current?.consent.reference);
  return changes ? { ...task, reconnectedBy: { consent: best.ref, stamp: best.stamp } } : undefined;
}

/** The follow-up Task completed by `best`, or undefined when it already records a connection as new. */
function connectedBy(task: FollowUpTaskModel, best: Activation): FollowUpTaskModel | undefined {
  return isNewer(best.stamp, task.connectedAt) ? { ...task, connectedAt: best.stamp } : undefined;
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

function normalisePatient(patient: Reference | undefined): Reference<Patient> | undefined {
  return hasKnownPatient(patient) ? { reference: patient.reference } : undefined;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `time`, or `floor` when `time` is earlier. */
function notBefore(time: string, floor: string): string {
  return Date.parse(time) < Date.parse(floor) ? floor : time;
}

function earliest(a: string | undefined, b: string): string {
  return a !== undefined && Date.parse(a) <= Date.parse(b) ? a : b;
}
