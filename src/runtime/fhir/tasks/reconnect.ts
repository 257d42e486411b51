// Reconnect EHR (`reconnect-ehr`, key `reconnect/<conn id>`): opened when a connection's token
// refresh fails, completed when a newer flow reports an active connection for the same patient and
// EHR source.
//
// Invariant (what makes the stored Task decode to the model it was encoded from):
//   last-applied-event = newest(lastRefreshFailed, reconnectedBy.stamp), and
//   reconnected ⟺ last-applied-event is newer than last-refresh-failed-event and a `new-consent`
//   output is present. A refresh failure newer than the reconnect re-opens the Task: its stamp
//   becomes the newest, so the stored reconnect no longer counts.
import type { Reference, Task } from '@medplum/fhirtypes';
import { hasKnownPatient } from '../consent';
import { compareStamps, earliest, isNewer, newestOf, stampExtension } from '../stamp';
import type { EventStamp } from '../stamp';
import { decodeKeyPart, EXTENSION, TASK_KEY } from '../systems';
import type { CODE } from '../systems';
import type { TaskKind } from './kind';
import {
  bestActivation,
  businessStatus,
  ehrNameInput,
  ehrNamesOf,
  knownPatient,
  outputOf,
  sourceInput,
  sourceOf,
} from './parts';
import type { TaskModelBase, VisibleTaskState } from './parts';

export interface ReconnectTaskModel extends TaskModelBase {
  readonly kind: typeof CODE.reconnectEhr;
  readonly connectionId: string;
  readonly sourceId: string;
  /** The EHR's name, when an Organization names the source. */
  readonly sourceName: string | undefined;
  readonly consent: Reference;
  readonly lastRefreshFailed: EventStamp;
  /** Set when a newer flow reported an active connection for the same patient and source. */
  readonly reconnectedBy: { readonly consent: Reference; readonly stamp: EventStamp } | undefined;
}

export function reconnectLastEvent(model: ReconnectTaskModel): EventStamp {
  return newestOf(model.lastRefreshFailed, model.reconnectedBy?.stamp) ?? model.lastRefreshFailed;
}

export function encodeReconnect(model: ReconnectTaskModel): VisibleTaskState {
  const reconnected = model.reconnectedBy;
  return {
    status: reconnected ? 'completed' : 'requested',
    priority: 'routine',
    focus: model.consent,
    description: `Ask the patient to reconnect their ${model.sourceName ?? 'EHR'} portal: its access expired.`,
    businessStatus: businessStatus(reconnected ? 'reconnected' : 'awaiting-patient'),
    input: [sourceInput(model.sourceId), ...(model.sourceName ? [ehrNameInput(model.sourceName)] : [])],
    output: reconnected ? [outputOf('new-consent', { valueReference: reconnected.consent })] : undefined,
  };
}

export function decodeReconnect(
  task: Task,
  base: TaskModelBase,
  lastEvent: EventStamp,
  lastRefreshFailed: EventStamp | undefined
): ReconnectTaskModel | undefined {
  const source = sourceOf(task);
  const newConsent = task.output?.find((o) => o.type.coding?.[0]?.code === 'new-consent')?.valueReference;
  if (!lastRefreshFailed || !source || !task.focus) {
    return undefined;
  }
  const reconnected = newConsent && compareStamps(lastEvent, lastRefreshFailed) > 0;
  return {
    ...base,
    kind: 'reconnect-ehr',
    connectionId: decodeKeyPart(base.key.slice(TASK_KEY.reconnect('').length)),
    sourceId: source,
    sourceName: ehrNamesOf(task)[0],
    consent: task.focus,
    lastRefreshFailed,
    reconnectedBy: reconnected ? { consent: newConsent, stamp: lastEvent } : undefined,
  };
}

/** What a refresh failure (or a flow's `refresh_failed` connection) says about its reconnect Task. */
export interface RefreshFailureReport {
  /** What the Task is keyed by: the `conn_` id, or the attempt key when there is none. */
  readonly connectionId: string;
  readonly sourceId: string;
  /** This event's reference to the connection's Consent. */
  readonly consent: Reference;
  readonly patient: Reference | undefined;
}

/** The reconnect Task kind: opened by a refresh failure, completed by a newer activation of the same patient and source. */
export const reconnectTask: TaskKind<ReconnectTaskModel, RefreshFailureReport> = {
  code: 'reconnect-ehr',
  statuses: ['requested', 'completed'],
  lastEvent: reconnectLastEvent,
  stamps: (model) => [stampExtension(EXTENSION.lastRefreshFailedEvent, model.lastRefreshFailed)],
  encode: encodeReconnect,
  decode: (task, base, lastEvent, readStamp) =>
    decodeReconnect(task, base, lastEvent, readStamp(EXTENSION.lastRefreshFailedEvent)),
  key: (report) => TASK_KEY.reconnect(report.connectionId),
  merge(current, report, context) {
    const lastRefreshFailed = newestOf(current?.lastRefreshFailed, context.stamp) ?? context.stamp;
    if (current && !isNewer(context.stamp, current.lastRefreshFailed)) {
      context.noteStaleIfOlder(current.lastRefreshFailed);
    }
    const reconnectedBy =
      current?.reconnectedBy && compareStamps(current.reconnectedBy.stamp, lastRefreshFailed) > 0
        ? current.reconnectedBy
        : undefined;
    return {
      kind: 'reconnect-ehr',
      key: TASK_KEY.reconnect(report.connectionId),
      connectionId: report.connectionId,
      sourceId: report.sourceId,
      sourceName: context.sourceName(report.sourceId) ?? current?.sourceName,
      // This event's reference to the connection's Consent wins: a stored one that differs names a
      // Consent create that failed to serialise in the bundle that created this Task (the server had
      // assigned it an id), and the focus is the one reference the policies let a bot re-point.
      consent: report.consent,
      patient: current?.patient ?? knownPatient(report.patient),
      authoredOn: earliest(current?.authoredOn, context.stamp.at),
      lastRefreshFailed,
      reconnectedBy,
    };
  },
  /** Completed by the best newer activation of the same patient and EHR source; unchanged when what it records ranks as high. */
  resolve(model, activations) {
    if (!hasKnownPatient(model.patient)) return undefined;
    const best = bestActivation(
      activations.filter(
        (a) =>
          a.model.patient?.reference === model.patient?.reference &&
          a.model.sourceId === model.sourceId &&
          compareStamps(a.stamp, model.lastRefreshFailed) > 0
      ),
      model.connectionId
    );
    if (!best) return undefined;
    const current = model.reconnectedBy;
    const order = current ? compareStamps(best.stamp, current.stamp) : 1;
    const changes = order > 0 || (order === 0 && best.ref.reference !== current?.consent.reference);
    return changes ? { ...model, reconnectedBy: { consent: best.ref, stamp: best.stamp } } : undefined;
  },
};
