// Records sync (`records-sync`, key `records-sync/<patient_id>/<fhirsrc id>`): one Task per patient
// and EHR source showing the newest pull, `completed` or `failed`; a later success heals a failure.
//
// Invariant: last-applied-event is the newest sync event applied; the result is read back from the
// status (`failed` → the failure with its bounded statusReason; otherwise the integer outputs).
import type { Task } from '@medplum/fhirtypes';
import type { EventStamp } from '../stamp';
import type { CODE } from '../systems';
import { businessStatus, outputOf, sourceInput, sourceOf } from './parts';
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
  readonly lastEvent: EventStamp;
  readonly result: SyncResult;
}

export function encodeRecordsSync(model: RecordsSyncTaskModel): VisibleTaskState {
  const result = model.result;
  const common = {
    description: `Records pull from EHR source ${model.sourceId}.`,
    input: [sourceInput(model.sourceId)],
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

export function decodeRecordsSync(
  task: Task,
  base: TaskModelBase,
  lastEvent: EventStamp
): RecordsSyncTaskModel | undefined {
  const source = sourceOf(task);
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
  return { ...base, kind: 'records-sync', sourceId: source, lastEvent, result };
}

function boundedReason(message: string | undefined): string {
  const text = (message ?? '').trim();
  if (text === '') {
    return 'Records sync failed (Medblocks gave no message)';
  }
  return text.length > MAX_STATUS_REASON_LENGTH ? `${text.slice(0, MAX_STATUS_REASON_LENGTH - 1)}…` : text;
}
