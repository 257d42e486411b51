// The three Tasks of the contract. Each has a model holding what the bots own (keyed by a
// business identifier) and derives its visible state — status, businessStatus — from event
// stamps, so that applying the same events in any order yields the same Task.
import type { CodeableConcept, Extension, Patient, Reference, Task, TaskInput, TaskOutput } from '@medplum/fhirtypes';
import { hasKnownPatient } from './consent';
import { readStamp, stampExtension, compareStamps, newestOf } from './stamp';
import type { EventStamp } from './stamp';
import { EXTENSION, packageCode, SYSTEM, TASK_KEY } from './systems';
import type { TaskCode, CODE } from './systems';

/** Who works the Tasks: an optional project secret names them. */
export type TaskOwner = NonNullable<Task['owner']>;

/** statusReason is free text from Medblocks; it is kept, but never unbounded. */
export const MAX_STATUS_REASON_LENGTH = 500;

interface TaskModelBase {
  readonly key: string;
  readonly patient: Reference<Patient> | undefined;
  /** Time of the first event that touched the Task. */
  readonly authoredOn: string;
}

export interface ReconnectTaskModel extends TaskModelBase {
  readonly kind: typeof CODE.reconnectEhr;
  readonly connectionId: string;
  readonly sourceId: string;
  readonly consent: Reference;
  readonly lastRefreshFailed: EventStamp;
  /** Set when a newer flow reported an active connection for the same patient and source. */
  readonly reconnectedBy: { readonly consent: Reference; readonly stamp: EventStamp } | undefined;
}

export interface FollowUpTaskModel extends TaskModelBase {
  readonly kind: typeof CODE.connectionFollowUp;
  readonly flowId: string;
  readonly trigger: EventStamp;
  /** Sorted, unique: the sources the patient tried and the failure codes Medblocks gave. */
  readonly sources: readonly string[];
  readonly failureCodes: readonly string[];
  readonly connectedAt: EventStamp | undefined;
}

export type SyncResult =
  | {
      readonly kind: 'completed';
      readonly total: number;
      readonly errors: number;
      readonly durationMs: number | undefined;
    }
  | { readonly kind: 'failed'; readonly message: string | undefined };

export interface RecordsSyncTaskModel extends TaskModelBase {
  readonly kind: typeof CODE.recordsSync;
  readonly sourceId: string;
  readonly lastEvent: EventStamp;
  readonly result: SyncResult;
}

export type TaskModel = ReconnectTaskModel | FollowUpTaskModel | RecordsSyncTaskModel;

export function taskLastEvent(model: TaskModel): EventStamp {
  switch (model.kind) {
    case 'reconnect-ehr':
      return newestOf(model.lastRefreshFailed, model.reconnectedBy?.stamp) ?? model.lastRefreshFailed;
    case 'connection-follow-up':
      return newestOf(model.trigger, model.connectedAt) ?? model.trigger;
    case 'records-sync':
      return model.lastEvent;
  }
}

function businessStatus(code: string): CodeableConcept {
  return { coding: [{ system: SYSTEM.code, code }], text: code };
}

function inputOf(code: string, value: Omit<TaskInput, 'type'>): TaskInput {
  return { type: { coding: [{ system: SYSTEM.code, code }], text: code }, ...value };
}

function outputOf(code: string, value: Omit<TaskOutput, 'type'>): TaskOutput {
  return { type: { coding: [{ system: SYSTEM.code, code }], text: code }, ...value };
}

const OWN_EXTENSIONS: readonly string[] = [
  EXTENSION.lastEvent,
  EXTENSION.lastRefreshFailedEvent,
  EXTENSION.triggerEvent,
];

/** What a Task of each kind shows, derived from its model. */
function visibleState(model: TaskModel): Partial<Task> & Pick<Task, 'status'> {
  switch (model.kind) {
    case 'reconnect-ehr': {
      const reconnected = model.reconnectedBy;
      return {
        status: reconnected ? 'completed' : 'requested',
        priority: 'routine',
        focus: model.consent,
        description: `Ask the patient to reconnect EHR source ${model.sourceId}: its access token could not be refreshed.`,
        businessStatus: businessStatus(reconnected ? 'reconnected' : 'awaiting-patient'),
        input: [inputOf('fhir-source', { valueIdentifier: { system: SYSTEM.fhirSourceId, value: model.sourceId } })],
        output: reconnected ? [outputOf('new-consent', { valueReference: reconnected.consent })] : undefined,
      };
    }
    case 'connection-follow-up': {
      const codes = model.failureCodes;
      const sources = model.sources;
      return {
        status: model.connectedAt ? 'completed' : 'requested',
        priority: 'routine',
        description: 'The patient finished a Medblocks flow without connecting any EHR; follow up with them.',
        businessStatus: model.connectedAt
          ? businessStatus('connected')
          : codes.length > 0
            ? { coding: codes.map((c) => ({ system: SYSTEM.code, code: c })), text: codes.join(', ') }
            : businessStatus('no-connection'),
        input: [
          inputOf('patient-flow', { valueIdentifier: { system: SYSTEM.patientFlowId, value: model.flowId } }),
          ...sources.map((s) => inputOf('fhir-source', { valueIdentifier: { system: SYSTEM.fhirSourceId, value: s } })),
          ...codes.map((c) => inputOf('failure-code', { valueCode: c })),
        ],
      };
    }
    case 'records-sync': {
      const result = model.result;
      const common = {
        description: `Records pull from EHR source ${model.sourceId}.`,
        input: [inputOf('fhir-source', { valueIdentifier: { system: SYSTEM.fhirSourceId, value: model.sourceId } })],
        executionPeriod: { end: model.lastEvent.at },
      };
      if (result.kind === 'completed') {
        const output = [
          outputOf('total', { valueInteger: result.total }),
          outputOf('errors', { valueInteger: result.errors }),
        ];
        if (result.durationMs !== undefined) {
          output.push(outputOf('duration-ms', { valueInteger: result.durationMs }));
        }
        return {
          ...common,
          status: 'completed',
          priority: 'routine',
          businessStatus: businessStatus(result.errors > 0 ? 'synced-with-errors' : 'synced'),
          output,
          statusReason: undefined,
        };
      }
      return {
        ...common,
        status: 'failed',
        priority: 'urgent',
        businessStatus: businessStatus('sync-failed'),
        statusReason: { text: boundedReason(result.message) },
        output: undefined,
      };
    }
  }
}

function boundedReason(message: string | undefined): string {
  const text = (message ?? '').trim();
  if (text === '') {
    return 'Records sync failed (Medblocks gave no message)';
  }
  return text.length > MAX_STATUS_REASON_LENGTH ? `${text.slice(0, MAX_STATUS_REASON_LENGTH - 1)}…` : text;
}

/** Writes a Task model onto the stored Task (or a new one), keeping fields others own (notes, owner changes). */
export function encodeTask(model: TaskModel, existing: Task | undefined, owner: TaskOwner | undefined): Task {
  const foreignIdentifiers = (existing?.identifier ?? []).filter(
    (i) => !(i.system === SYSTEM.taskKey && i.value === model.key)
  );
  const foreignExtensions = (existing?.extension ?? []).filter((e) => !OWN_EXTENSIONS.includes(e.url));
  const ownExtensions: Extension[] = [stampExtension(EXTENSION.lastEvent, taskLastEvent(model))];
  if (model.kind === 'reconnect-ehr') {
    ownExtensions.push(stampExtension(EXTENSION.lastRefreshFailedEvent, model.lastRefreshFailed));
  } else if (model.kind === 'connection-follow-up') {
    ownExtensions.push(stampExtension(EXTENSION.triggerEvent, model.trigger));
  }
  const task: Task = {
    ...existing,
    resourceType: 'Task',
    extension: [...foreignExtensions, ...ownExtensions],
    identifier: [{ system: SYSTEM.taskKey, value: model.key }, ...foreignIdentifiers],
    intent: 'order',
    code: packageCode(model.kind),
    for: hasKnownPatient(model.patient) ? model.patient : undefined,
    authoredOn: model.authoredOn,
    lastModified: taskLastEvent(model).at,
    owner: existing?.owner ?? owner,
    ...visibleState(model),
  };
  return dropUndefined(task);
}

/** Reads back what encodeTask wrote; undefined when the Task is not one of ours. */
export function decodeTask(task: Task): TaskModel | undefined {
  const key = task.identifier?.find((i) => i.system === SYSTEM.taskKey)?.value;
  const code = task.code?.coding?.find((c) => c.system === SYSTEM.code)?.code as TaskCode | undefined;
  const lastEvent = readStamp(task, EXTENSION.lastEvent);
  if (!key || !code || !lastEvent || !task.authoredOn) {
    return undefined;
  }
  const patient = hasKnownPatient(task.for) ? { reference: task.for.reference } : undefined;
  const base = { key, patient, authoredOn: task.authoredOn };
  const source = task.input?.find((i) => i.type.coding?.[0]?.code === 'fhir-source')?.valueIdentifier?.value;
  switch (code) {
    case 'reconnect-ehr': {
      const lastRefreshFailed = readStamp(task, EXTENSION.lastRefreshFailedEvent);
      const newConsent = task.output?.find((o) => o.type.coding?.[0]?.code === 'new-consent')?.valueReference;
      if (!lastRefreshFailed || !source || !task.focus) {
        return undefined;
      }
      const reconnected = newConsent && compareStamps(lastEvent, lastRefreshFailed) > 0;
      return {
        ...base,
        kind: code,
        connectionId: key.slice(TASK_KEY.reconnect('').length),
        sourceId: source,
        consent: task.focus,
        lastRefreshFailed,
        reconnectedBy: reconnected ? { consent: newConsent, stamp: lastEvent } : undefined,
      };
    }
    case 'connection-follow-up': {
      const trigger = readStamp(task, EXTENSION.triggerEvent);
      const flowId = task.input?.find((i) => i.type.coding?.[0]?.code === 'patient-flow')?.valueIdentifier?.value;
      if (!trigger || !flowId) {
        return undefined;
      }
      return {
        ...base,
        kind: code,
        flowId,
        trigger,
        sources: inputValues(task, 'fhir-source'),
        failureCodes: inputValues(task, 'failure-code'),
        connectedAt: compareStamps(lastEvent, trigger) > 0 ? lastEvent : undefined,
      };
    }
    case 'records-sync': {
      if (!source) {
        return undefined;
      }
      const outputs = new Map((task.output ?? []).map((o) => [o.type.coding?.[0]?.code, o.valueInteger]));
      const result: SyncResult =
        task.status === 'failed'
          ? { kind: 'failed', message: task.statusReason?.text }
          : {
              kind: 'completed',
              total: outputs.get('total') ?? 0,
              errors: outputs.get('errors') ?? 0,
              durationMs: outputs.get('duration-ms'),
            };
      return { ...base, kind: code, sourceId: source, lastEvent, result };
    }
  }
}

function inputValues(task: Task, code: string): string[] {
  return (task.input ?? [])
    .filter((i) => i.type.coding?.[0]?.code === code)
    .flatMap((i) => {
      const value = i.valueIdentifier?.value ?? i.valueCode;
      return value ? [value] : [];
    });
}

/** Sorted and unique, so that a Task's inputs do not depend on the order attempts were reported in. */
export function sortedUnique(values: Iterable<string | null | undefined>): string[] {
  return [...new Set([...values].filter((v): v is string => typeof v === 'string' && v.length > 0))].sort();
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
