// The Task frame: what every Task of this package carries (business key, code, patient, first and
// last event times, owner, the stamps that order events), around each kind's own codec in tasks/.
// Encode and decode are inverses on what the bots own; fields others own (notes, a reassigned
// owner, foreign identifiers and extensions) are kept as they were.
import type { Extension, Task } from '@medplum/fhirtypes';
import { hasKnownPatient } from './consent';
import { readStamp, stampExtension } from './stamp';
import type { EventStamp } from './stamp';
import { EXTENSION, packageCode, SYSTEM } from './systems';
import type { TaskCode } from './systems';
import { decodeFollowUp, encodeFollowUp, followUpLastEvent } from './tasks/follow-up';
import type { FollowUpTaskModel } from './tasks/follow-up';
import { decodeReconnect, encodeReconnect, reconnectLastEvent } from './tasks/reconnect';
import type { ReconnectTaskModel } from './tasks/reconnect';
import { decodeRecordsSync, encodeRecordsSync } from './tasks/records-sync';
import type { RecordsSyncTaskModel } from './tasks/records-sync';
import type { VisibleTaskState } from './tasks/parts';

/** Who works the Tasks: an optional project secret names them. */
export type TaskOwner = NonNullable<Task['owner']>;

export type TaskModel = ReconnectTaskModel | FollowUpTaskModel | RecordsSyncTaskModel;

/** The newest event applied to the Task: its `lastModified` and `last-applied-event`. */
export function taskLastEvent(model: TaskModel): EventStamp {
  switch (model.kind) {
    case 'reconnect-ehr':
      return reconnectLastEvent(model);
    case 'connection-follow-up':
      return followUpLastEvent(model);
    case 'records-sync':
      return model.lastEvent;
  }
}

function visibleState(model: TaskModel): VisibleTaskState {
  switch (model.kind) {
    case 'reconnect-ehr':
      return encodeReconnect(model);
    case 'connection-follow-up':
      return encodeFollowUp(model);
    case 'records-sync':
      return encodeRecordsSync(model);
  }
}

const OWN_EXTENSIONS: readonly string[] = [
  EXTENSION.lastEvent,
  EXTENSION.lastRefreshFailedEvent,
  EXTENSION.triggerEvent,
];

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
  switch (code) {
    case 'reconnect-ehr':
      return decodeReconnect(task, base, lastEvent, readStamp(task, EXTENSION.lastRefreshFailedEvent));
    case 'connection-follow-up':
      return decodeFollowUp(task, base, lastEvent, readStamp(task, EXTENSION.triggerEvent));
    case 'records-sync':
      return decodeRecordsSync(task, base, lastEvent);
  }
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
