// The Task frame: what every Task of this package carries (business key, code, patient, first and
// last event times, owner, the stamps that order events), around its kind's own codec (tasks/*.ts,
// each a TaskKind). Encode and decode are inverses on what the bots own; fields others own (notes,
// a reassigned owner, foreign identifiers and extensions) are kept as they were. The frame reaches a
// kind only through the TaskKind it is given, so a bundle carries only the kinds its bot names.
import type { Task } from '@medplum/fhirtypes';
import { hasKnownPatient } from './consent';
import { readStamp, stampExtension } from './stamp';
import { EXTENSION, packageCode, SYSTEM } from './systems';
import type { AnyTaskKind, KindedTaskModel, TaskKind } from './tasks/kind';
import type { FollowUpTaskModel } from './tasks/follow-up';
import type { ReconnectTaskModel } from './tasks/reconnect';
import type { RecordsSyncTaskModel } from './tasks/records-sync';

/** Who works the Tasks: an optional project secret names them. */
export type TaskOwner = NonNullable<Task['owner']>;

/** The models of the kinds this package writes (types only: a bundle carries the kinds its bot names). */
export type TaskModel = ReconnectTaskModel | FollowUpTaskModel | RecordsSyncTaskModel;

/** Writes a Task model onto the stored Task (or a new one), keeping fields others own (notes, owner changes). */
export function encodeTask<M extends KindedTaskModel>(
  kind: TaskKind<M, never>,
  model: M,
  existing: Task | undefined,
  owner: TaskOwner | undefined
): Task {
  const lastEvent = kind.lastEvent(model);
  const stamps = [stampExtension(EXTENSION.lastEvent, lastEvent), ...kind.stamps(model)];
  const own = stamps.map((e) => e.url);
  const foreignIdentifiers = (existing?.identifier ?? []).filter(
    (i) => !(i.system === SYSTEM.taskKey && i.value === model.key)
  );
  const foreignExtensions = (existing?.extension ?? []).filter((e) => !own.includes(e.url));
  const task: Task = {
    ...existing,
    resourceType: 'Task',
    extension: [...foreignExtensions, ...stamps],
    identifier: [{ system: SYSTEM.taskKey, value: model.key }, ...foreignIdentifiers],
    intent: 'order',
    code: packageCode(model.kind),
    for: hasKnownPatient(model.patient) ? model.patient : undefined,
    authoredOn: model.authoredOn,
    lastModified: lastEvent.at,
    owner: existing?.owner ?? owner,
    ...kind.encode(model),
  };
  return dropUndefined(task);
}

/**
 * Reads back what encodeTask wrote, with the kind that reads it; undefined when the Task is not one
 * of ours or of none of the given kinds.
 */
export function decodeTask(
  kinds: readonly AnyTaskKind[],
  task: Task
): { readonly kind: AnyTaskKind; readonly model: KindedTaskModel } | undefined {
  const key = task.identifier?.find((i) => i.system === SYSTEM.taskKey)?.value;
  const code = task.code?.coding?.find((c) => c.system === SYSTEM.code)?.code;
  const kind = kinds.find((k) => k.code === code);
  const lastEvent = readStamp(task, EXTENSION.lastEvent);
  if (!key || !kind || !lastEvent || !task.authoredOn) {
    return undefined;
  }
  const patient = hasKnownPatient(task.for) ? { reference: task.for.reference } : undefined;
  const model = kind.decode(task, { key, patient, authoredOn: task.authoredOn }, lastEvent, (url) =>
    readStamp(task, url)
  );
  return model ? { kind, model } : undefined;
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
