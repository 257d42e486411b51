// The dead-letter of a quarantined event: one ops Task per event id, visible in the Medplum app with
// one search (`Task?code=urn:medblocks:code|webhook-dead-letter&status=failed`). It says which event,
// why (the failure reason and the field path) and when it was first and last seen — never a payload
// value, and no `for`: the patient may be unknown, and an ops record does not belong in a chart.
// Pure builders; the write is store/dead-letter.ts.
import type { WithId } from '@medplum/core';
import type { Task, TaskInput } from '@medplum/fhirtypes';
import type { PermanentReason, TransientReason } from '../failures';
import { earliest } from './stamp';
import { CODE, CODE_DISPLAY, packageCode, SYSTEM, token } from './systems';

export interface DeadLetterReport {
  /** The event id, or `sha256-<hex>` of a body without a usable id. */
  readonly key: string;
  /** The bot that quarantined it (its registry name): the dead-letter's owner. */
  readonly owner: string;
  /** An event type this package knows, or `unknown`. */
  readonly type: string;
  readonly reason: PermanentReason;
  /** A field path such as `data.object.total`; undefined when the whole body is the problem. */
  readonly path: string | undefined;
  /** For `retries_exhausted`: the transient failure that kept recurring. */
  readonly cause?: TransientReason;
  /** When this delivery saw it (ISO). */
  readonly seenAt: string;
}

/**
 * The search for one bot's dead-letter of one event, confined like that bot's policy grant (the
 * dead-letter code and its owner): a dead-letter another bot wrote with the same event id, even a
 * compromised one, is never found, so it can never be planned for an update this bot may not make.
 */
export function deadLetterQuery(key: string, owner: string): string {
  return (
    `identifier=${encodeURIComponent(token(SYSTEM.deadLetter, key))}` +
    `&code=${encodeURIComponent(token(SYSTEM.code, CODE.webhookDeadLetter))}` +
    `&group-identifier=${encodeURIComponent(token(SYSTEM.deadLetterOwner, owner))}`
  );
}

/** Whether a dead-letter belongs to this bot (its `groupIdentifier`); the search already asks for no other. */
export function isOwnedBy(task: Task, owner: string): boolean {
  return task.groupIdentifier?.system === SYSTEM.deadLetterOwner && task.groupIdentifier.value === owner;
}

/**
 * The dead-letter after this quarantine: a new one (first seen now), or the existing one with
 * `lastModified` moved and the current reason — re-opened if a later delivery had resolved it.
 */
export function buildDeadLetter(report: DeadLetterReport, existing?: WithId<Task>): Task {
  const why = whyText(report);
  const task: Task = {
    resourceType: 'Task',
    identifier: [{ system: SYSTEM.deadLetter, value: report.key }],
    groupIdentifier: { system: SYSTEM.deadLetterOwner, value: report.owner },
    status: 'failed',
    intent: 'order',
    priority: 'urgent',
    code: packageCode(CODE.webhookDeadLetter),
    businessStatus: businessStatus(CODE.quarantined),
    statusReason: { text: why },
    description:
      `Medblocks event ${report.key} (${report.type}) was quarantined: ${why}. ` +
      'It was answered 200 so that Medblocks keeps the endpoint enabled, and it is not applied. ' +
      'Fix the cause (README "When something goes wrong"), then redeliver it: npm run redeliver -- --quarantined',
    authoredOn: earliest(existing?.authoredOn, report.seenAt),
    lastModified: report.seenAt,
    input: inputs(report),
  };
  return existing ? { ...task, id: existing.id } : task;
}

/** The event type a dead-letter names (its `event-type` input); each bot's policy confines it to its own. */
export function deadLetterEventType(task: Task): string | undefined {
  return task.input?.find((i) => i.type.text === 'event-type')?.valueString;
}

/** Whether a dead-letter still waits for a successful delivery. */
export function isOpenDeadLetter(task: Task | undefined): task is WithId<Task> {
  return task?.id !== undefined && task.status !== 'completed';
}

/** The dead-letter once a later delivery of the same event applied it: completed, reason kept for the record. */
export function resolveDeadLetter(existing: WithId<Task>, appliedAt: string): WithId<Task> {
  const { statusReason: _reason, meta: _meta, ...rest } = existing;
  const key = existing.identifier?.find((i) => i.system === SYSTEM.deadLetter)?.value ?? '';
  return {
    ...rest,
    status: 'completed',
    businessStatus: businessStatus(CODE.appliedAfterRedelivery),
    description: `Medblocks event ${key} was quarantined, then applied when it was delivered again.`,
    lastModified: appliedAt,
  };
}

function inputs(report: DeadLetterReport): TaskInput[] {
  const out: TaskInput[] = [
    { type: { text: 'event-type' }, valueString: report.type },
    { type: { text: 'reason' }, valueString: report.reason },
  ];
  if (report.path) out.push({ type: { text: 'field-path' }, valueString: report.path });
  if (report.cause) out.push({ type: { text: 'cause' }, valueString: report.cause });
  return out;
}

function whyText(report: DeadLetterReport): string {
  const at = report.path ? ` at ${report.path}` : '';
  const cause = report.cause ? ` (cause: ${report.cause})` : '';
  return `${report.reason}${at}${cause}`;
}

function businessStatus(code: typeof CODE.quarantined | typeof CODE.appliedAfterRedelivery): Task['businessStatus'] {
  return { coding: [{ system: SYSTEM.code, code, display: CODE_DISPLAY[code] }], text: code };
}
