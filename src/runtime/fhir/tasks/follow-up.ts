// Connection follow-up (`connection-follow-up`, key `flow-follow-up/<flow id>`): opened when a flow
// ends with no active connection, completed when a newer flow for the same patient connects any EHR.
//
// Invariant: trigger-event is the flow event that opened the Task; last-applied-event =
// newest(trigger, connectedAt), so connected ⟺ last-applied-event is newer than trigger-event.
// Sources and failure codes are kept sorted and unique: the inputs do not depend on report order.
import type { Reference, Task } from '@medplum/fhirtypes';
import { hasKnownPatient } from '../consent';
import { compareStamps, earliest, isNewer, newestOf, oldestOf, stampExtension } from '../stamp';
import type { EventStamp } from '../stamp';
import { EXTENSION, failureCodeDisplay, SYSTEM, TASK_KEY } from '../systems';
import type { CODE } from '../systems';
import type { TaskKind } from './kind';
import {
  bestActivation,
  businessStatus,
  ehrNameInput,
  ehrNamesOf,
  inputOf,
  inputValues,
  knownPatient,
  orList,
  sortedUnique,
  sourceInput,
} from './parts';
import type { TaskModelBase, VisibleTaskState } from './parts';

export interface FollowUpTaskModel extends TaskModelBase {
  readonly kind: typeof CODE.connectionFollowUp;
  readonly flowId: string;
  readonly trigger: EventStamp;
  /** Sorted, unique: the sources the patient tried and the failure codes Medblocks gave. */
  readonly sources: readonly string[];
  readonly failureCodes: readonly string[];
  /** Sorted, unique: the names of the tried EHRs that an Organization names. */
  readonly sourceNames: readonly string[];
  readonly connectedAt: EventStamp | undefined;
}

export function followUpLastEvent(model: FollowUpTaskModel): EventStamp {
  return newestOf(model.trigger, model.connectedAt) ?? model.trigger;
}

export function encodeFollowUp(model: FollowUpTaskModel): VisibleTaskState {
  const codes = model.failureCodes;
  return {
    status: model.connectedAt ? 'completed' : 'requested',
    priority: 'routine',
    description: `Contact the patient to help them connect their health records: they left the connection flow without connecting ${
      model.sourceNames.length > 0 ? orList(model.sourceNames) : 'any EHR portal'
    }.`,
    businessStatus: model.connectedAt
      ? businessStatus('connected')
      : codes.length > 0
        ? {
            coding: codes.map((c) => ({ system: SYSTEM.code, code: c, display: failureCodeDisplay(c) })),
            text: codes.map(failureCodeDisplay).join(', '),
          }
        : businessStatus('no-connection'),
    input: [
      inputOf('patient-flow', { valueIdentifier: { system: SYSTEM.patientFlowId, value: model.flowId } }),
      ...model.sources.map(sourceInput),
      ...codes.map((c) => inputOf('failure-code', { valueCode: c })),
      ...model.sourceNames.map(ehrNameInput),
    ],
  };
}

export function decodeFollowUp(
  task: Task,
  base: TaskModelBase,
  lastEvent: EventStamp,
  trigger: EventStamp | undefined
): FollowUpTaskModel | undefined {
  const flowId = task.input?.find((i) => i.type.coding?.[0]?.code === 'patient-flow')?.valueIdentifier?.value;
  if (!trigger || !flowId) {
    return undefined;
  }
  return {
    ...base,
    kind: 'connection-follow-up',
    flowId,
    trigger,
    sources: inputValues(task, 'fhir-source'),
    failureCodes: inputValues(task, 'failure-code'),
    sourceNames: ehrNamesOf(task),
    connectedAt: compareStamps(lastEvent, trigger) > 0 ? lastEvent : undefined,
  };
}

/** What a flow in which no connection became active says about its follow-up Task. */
export interface FlowWithoutConnectionReport {
  readonly flowId: string;
  readonly patient: Reference;
  /** The sources the patient tried, and the failure codes Medblocks gave. */
  readonly sources: readonly string[];
  readonly failureCodes: readonly string[];
}

/** The follow-up Task kind: opened by a flow without a connection, completed by a newer activation of the same patient. */
export const followUpTask: TaskKind<FollowUpTaskModel, FlowWithoutConnectionReport> = {
  code: 'connection-follow-up',
  statuses: ['requested', 'completed'],
  lastEvent: followUpLastEvent,
  stamps: (model) => [stampExtension(EXTENSION.triggerEvent, model.trigger)],
  encode: encodeFollowUp,
  decode: (task, base, lastEvent, readStamp) =>
    decodeFollowUp(task, base, lastEvent, readStamp(EXTENSION.triggerEvent)),
  key: (report) => TASK_KEY.followUp(report.flowId),
  merge(current, report, context) {
    return {
      kind: 'connection-follow-up',
      key: TASK_KEY.followUp(report.flowId),
      flowId: report.flowId,
      patient: current?.patient ?? knownPatient(report.patient),
      authoredOn: earliest(current?.authoredOn, context.stamp.at),
      trigger: oldestOf(current?.trigger, context.stamp) ?? context.stamp,
      sources: sortedUnique([...(current?.sources ?? []), ...report.sources]),
      failureCodes: sortedUnique([...(current?.failureCodes ?? []), ...report.failureCodes]),
      sourceNames: sortedUnique([
        ...(current?.sourceNames ?? []),
        ...[...(current?.sources ?? []), ...report.sources].map((id) => context.sourceName(id)),
      ]),
      connectedAt: current?.connectedAt,
    };
  },
  /** Completed by the best activation of the same patient (any source) newer than the flow that opened it. */
  resolve(model, activations) {
    if (!hasKnownPatient(model.patient)) return undefined;
    const best = bestActivation(
      activations.filter(
        (a) => a.model.patient?.reference === model.patient?.reference && compareStamps(a.stamp, model.trigger) > 0
      ),
      undefined
    );
    return best && isNewer(best.stamp, model.connectedAt) ? { ...model, connectedAt: best.stamp } : undefined;
  },
};
