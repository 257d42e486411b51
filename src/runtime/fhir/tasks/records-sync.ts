// Records sync (`records-sync`, key `records-sync/<patient_id>/<fhirsrc id>`): one Task per patient
// and EHR source showing the newest pull, `completed` or `failed`; a later success heals a failure.
//
// Invariant: last-applied-event is the newest sync event applied; the result is read back from the
// status (`failed` → the failure with its bounded statusReason; otherwise the integer outputs).
import type { Reference, Task } from '@medplum/fhirtypes';
import { earliest, isNewer } from '../stamp';
import type { EventStamp } from '../stamp';
import type { CODE } from '../systems';
import { asFhirText, TASK_KEY } from '../systems';
import type { TaskKind } from './kind';
import {
  businessStatus,
  countValue,
  ehrNameInput,
  ehrNamesOf,
  knownPatient,
  outputOf,
  sourceInput,
  sourceOf,
} from './parts';
import type { TaskModelBase, VisibleTaskState } from './parts';

/** statusReason is free text from Medblocks; it is kept, but never unbounded. */
export const MAX_STATUS_REASON_LENGTH = 500;

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
  /** The EHR's name, when an Organization names the source. */
  readonly sourceName: string | undefined;
  readonly lastEvent: EventStamp;
  readonly result: SyncResult;
}

export function encodeRecordsSync(model: RecordsSyncTaskModel): VisibleTaskState {
  const result = model.result;
  const ehr = model.sourceName ?? 'an EHR portal';
  const common = {
    description:
      result.kind === 'completed'
        ? `Records were pulled from ${ehr}; nothing to do.`
        : `Records could not be pulled from ${ehr}; Medblocks tries again on its schedule. If this stays failed, check the reason and the patient's connection.`,
    input: [sourceInput(model.sourceId), ...(model.sourceName ? [ehrNameInput(model.sourceName)] : [])],
    executionPeriod: { end: model.lastEvent.at },
  };
  if (result.kind === 'completed') {
    const output = [outputOf('total', countValue(result.total)), outputOf('errors', countValue(result.errors))];
    if (result.durationMs !== undefined) {
      output.push(outputOf('duration-ms', countValue(result.durationMs)));
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

export function decodeRecordsSync(
  task: Task,
  base: TaskModelBase,
  lastEvent: EventStamp
): RecordsSyncTaskModel | undefined {
  const source = sourceOf(task);
  if (!source) {
    return undefined;
  }
  const outputs = new Map((task.output ?? []).map((o) => [o.type.coding?.[0]?.code, o.valueInteger ?? o.valueDecimal]));
  const result: SyncResult =
    task.status === 'failed'
      ? { kind: 'failed', message: task.statusReason?.text }
      : {
          kind: 'completed',
          total: outputs.get('total') ?? 0,
          errors: outputs.get('errors') ?? 0,
          durationMs: outputs.get('duration-ms'),
        };
  return { ...base, kind: 'records-sync', sourceId: source, sourceName: ehrNamesOf(task)[0], lastEvent, result };
}

/**
 * Medblocks' free-text message as a FHIR string: control characters (but tab and line breaks) and
 * the whitespace HL7's string type refuses (U+2028, U+00A0, …) become spaces, lone surrogates U+FFFD, and the text is cut to a bound on a code point boundary
 * (a cut pair would be a lone surrogate that Postgres refuses).
 */
export function boundedReason(message: string | undefined): string {
  const cleaned = Array.from(message ?? '')
    .map((c) => (c.length === 1 && c >= '\ud800' && c <= '\udfff' ? '\ufffd' : c))
    .join('')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, ' ');
  const text = asFhirText(cleaned).trim();
  if (text === '') {
    return 'Records sync failed (Medblocks gave no message)';
  }
  const points = Array.from(text);
  return points.length > MAX_STATUS_REASON_LENGTH ? `${points.slice(0, MAX_STATUS_REASON_LENGTH - 1).join('')}…` : text;
}

/** What a records-sync event says about its patient's Task for that source. */
export interface SyncReport {
  readonly patientId: string;
  readonly sourceId: string;
  readonly patient: Reference;
  readonly result: SyncResult;
}

/** The records-sync Task kind: one per patient and source, showing the newest pull (last writer by event stamp wins). */
export const recordsSyncTask: TaskKind<RecordsSyncTaskModel, SyncReport> = {
  code: 'records-sync',
  statuses: ['completed', 'failed'],
  lastEvent: (model) => model.lastEvent,
  stamps: () => [],
  encode: encodeRecordsSync,
  decode: (task, base, lastEvent) => decodeRecordsSync(task, base, lastEvent),
  key: (report) => TASK_KEY.recordsSync(report.patientId, report.sourceId),
  merge(current, report, context) {
    const known = {
      patient: current?.patient ?? knownPatient(report.patient),
      authoredOn: earliest(current?.authoredOn, context.stamp.at),
      sourceName: context.sourceName(report.sourceId) ?? current?.sourceName,
    };
    if (current && !isNewer(context.stamp, current.lastEvent)) {
      context.noteStaleIfOlder(current.lastEvent);
      return { ...current, ...known };
    }
    return {
      kind: 'records-sync',
      key: TASK_KEY.recordsSync(report.patientId, report.sourceId),
      sourceId: report.sourceId,
      ...known,
      lastEvent: context.stamp,
      result: report.result,
    };
  },
};
