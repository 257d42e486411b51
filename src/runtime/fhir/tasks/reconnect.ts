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
import { compareStamps, newestOf } from '../stamp';
import type { EventStamp } from '../stamp';
import { decodeKeyPart, TASK_KEY } from '../systems';
import type { CODE } from '../systems';
import { businessStatus, ehrNameInput, ehrNamesOf, outputOf, sourceInput, sourceOf } from './parts';
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
