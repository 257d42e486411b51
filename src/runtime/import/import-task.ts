// The records import's Task, one per patient (key `records-import/<patient_id>`): where a person in
// the Medplum app sees the import (status, what was imported, updated, refused) and where the import
// keeps its own state — the watermark it resumes from, the type pass and cursor of a run in
// progress — so an interrupted run continues where it stopped, and a finished one is never redone.
//
// Invariants: `covered-through` is the time of the newest records sync whose records are all in
// Medplum (the next run asks Medblocks for records changed since shortly before it); a run in
// progress is `in-progress` with its `target` (the sync time it will cover once done); only a
// finished run moves `covered-through`.
import type { Reference, Task, TaskInput, TaskOutput } from '@medplum/fhirtypes';
import { CODE, packageCode, SYSTEM, TASK_KEY } from '../fhir/systems';
import { businessStatus, countValue, inputOf, outputOf } from '../fhir/tasks/parts';

export interface ImportCounts {
  created: number;
  updated: number;
  unchanged: number;
  stale: number;
  refused: number;
  unresolved: number;
  patientRecords: number;
  malformed: number;
}

export const COUNT_NAMES: readonly (keyof ImportCounts)[] = [
  'created',
  'updated',
  'unchanged',
  'stale',
  'refused',
  'unresolved',
  'patientRecords',
  'malformed',
];

export function zeroCounts(): ImportCounts {
  return { created: 0, updated: 0, unchanged: 0, stale: 0, refused: 0, unresolved: 0, patientRecords: 0, malformed: 0 };
}

export function addCounts(into: ImportCounts, more: Partial<ImportCounts>): void {
  for (const name of COUNT_NAMES) into[name] += more[name] ?? 0;
}

export interface ImportRun {
  readonly id: string;
  readonly startedAt: string;
  /** The sync time this run covers once done. */
  readonly target: string;
  /** Records changed after this are asked for; undefined on a patient's first import (everything). */
  readonly since: string | undefined;
  /** Index into the run's type order, and the cursor within that type's pages. */
  readonly typeIndex: number;
  readonly cursor: string | undefined;
  readonly cursorIssuedAt: string | undefined;
  /** The records-sync event this run follows (named in each Provenance). */
  readonly eventId: string;
  readonly counts: ImportCounts;
}

export type ImportTaskState =
  | { readonly status: 'in-progress'; readonly run: ImportRun; readonly lastFailure: string | undefined }
  | { readonly status: 'completed'; readonly run: ImportRun }
  | { readonly status: 'failed'; readonly run: ImportRun; readonly reason: string };

export interface ImportTaskModel {
  readonly patientId: string;
  readonly patient: Reference;
  readonly coveredThrough: string | undefined;
  readonly syncTasks: readonly Reference[];
  readonly state: ImportTaskState;
}

/** The Task.output code of each count (defined in provision's CodeSystem, checked by its test). */
export const OUTPUT_CODE: Readonly<Record<keyof ImportCounts, string>> = {
  created: 'created',
  updated: 'updated',
  unchanged: 'unchanged',
  stale: 'stale',
  refused: 'refused',
  unresolved: 'unresolved-references',
  patientRecords: 'ehr-patient-records',
  malformed: 'malformed',
};

/**
 * `writtenAt` is the time of this write: a finished run's `executionPeriod.end`. (It was the sync time
 * the run covered, always before the run's start: FHIR's per-1 says start ≤ end, and Medplum, which
 * stores such a Period anyway, logs `Error building range column` and leaves its range empty.)
 */
export function encodeImportTask(model: ImportTaskModel, existing: Task | undefined, writtenAt: string): Task {
  const { run } = model.state;
  const input: TaskInput[] = [
    inputOf('patient-id', { valueString: model.patientId }),
    ...(model.coveredThrough ? [inputOf('covered-through', { valueDateTime: model.coveredThrough })] : []),
    inputOf('run-id', { valueString: run.id }),
    inputOf('run-target', { valueDateTime: run.target }),
    ...(run.since ? [inputOf('since', { valueDateTime: run.since })] : []),
    inputOf('event-id', { valueIdentifier: { system: SYSTEM.eventId, value: run.eventId } }),
    inputOf('type-pass', { valueInteger: run.typeIndex }),
    ...(run.cursor ? [inputOf('cursor', { valueString: run.cursor })] : []),
    ...(run.cursorIssuedAt ? [inputOf('cursor-issued', { valueDateTime: run.cursorIssuedAt })] : []),
  ];
  const output: TaskOutput[] = COUNT_NAMES.map((name) => outputOf(OUTPUT_CODE[name], countValue(run.counts[name])));
  const state = model.state;
  const visible =
    state.status === 'in-progress'
      ? {
          status: 'in-progress' as const,
          businessStatus: businessStatus('importing'),
          description: 'Importing the records Medblocks synced; the next scheduled run continues if this one stopped.',
          statusReason: state.lastFailure ? { text: state.lastFailure } : undefined,
        }
      : state.status === 'completed'
        ? {
            status: 'completed' as const,
            businessStatus: businessStatus(run.counts.refused > 0 ? 'imported-with-refusals' : 'imported'),
            description:
              run.counts.refused > 0
                ? 'Records imported; Medplum refused some as invalid (counted in "refused"): nothing to do unless they matter.'
                : 'Records imported; nothing to do.',
            statusReason: undefined,
          }
        : {
            status: 'failed' as const,
            businessStatus: businessStatus('import-failed'),
            description: 'The records import stopped; it is tried again after the next records sync. See the reason.',
            statusReason: { text: state.reason },
          };
  const task: Task = {
    ...existing,
    resourceType: 'Task',
    identifier: [{ system: SYSTEM.taskKey, value: TASK_KEY.recordsImport(model.patientId) }],
    intent: 'order',
    code: packageCode(CODE.recordsImport),
    for: model.patient,
    basedOn: model.syncTasks.length > 0 ? [...model.syncTasks] : undefined,
    authoredOn: existing?.authoredOn ?? run.startedAt,
    lastModified: run.startedAt,
    executionPeriod: {
      start: run.startedAt,
      ...(state.status === 'in-progress' ? {} : { end: writtenAt < run.startedAt ? run.startedAt : writtenAt }),
    },
    input,
    output,
    ...visible,
  };
  return JSON.parse(JSON.stringify(task)) as Task;
}

export function decodeImportTask(task: Task): ImportTaskModel | undefined {
  const inputs = new Map((task.input ?? []).map((i) => [i.type.coding?.[0]?.code, i]));
  const patientId = inputs.get('patient-id')?.valueString;
  const runId = inputs.get('run-id')?.valueString;
  const target = inputs.get('run-target')?.valueDateTime;
  const eventId = inputs.get('event-id')?.valueIdentifier?.value;
  const startedAt = task.executionPeriod?.start;
  if (!patientId || !runId || !target || !eventId || !startedAt || !task.for) return undefined;
  const outputs = new Map((task.output ?? []).map((o) => [o.type.coding?.[0]?.code, o.valueInteger ?? o.valueDecimal]));
  const counts = zeroCounts();
  for (const name of COUNT_NAMES) counts[name] = outputs.get(OUTPUT_CODE[name]) ?? 0;
  const run: ImportRun = {
    id: runId,
    startedAt,
    target,
    since: inputs.get('since')?.valueDateTime,
    typeIndex: inputs.get('type-pass')?.valueInteger ?? 0,
    cursor: inputs.get('cursor')?.valueString,
    cursorIssuedAt: inputs.get('cursor-issued')?.valueDateTime,
    eventId,
    counts,
  };
  const state: ImportTaskState =
    task.status === 'completed'
      ? { status: 'completed', run }
      : task.status === 'failed'
        ? { status: 'failed', run, reason: task.statusReason?.text ?? 'unknown' }
        : { status: 'in-progress', run, lastFailure: task.statusReason?.text };
  return {
    patientId,
    patient: task.for,
    coveredThrough: inputs.get('covered-through')?.valueDateTime,
    syncTasks: task.basedOn ?? [],
    state,
  };
}

/** The sync's own outputs (records-sync codec), kept as they are beside the import's. */
const IMPORT_OUTCOME_CODES = ['import-created', 'import-updated', 'import-refused'] as const;

/**
 * The records-sync Task showing what the import made of its sync: three outputs beside the sync's
 * own (which, like everything else on it, are kept). The next sync event rewrites the Task's
 * outputs, so they always describe the newest sync's import.
 */
export function withImportOutcome(task: Task, counts: ImportCounts): Task {
  const own = (task.output ?? []).filter(
    (o) => !(IMPORT_OUTCOME_CODES as readonly (string | undefined)[]).includes(o.type.coding?.[0]?.code)
  );
  return {
    ...task,
    output: [
      ...own,
      outputOf('import-created', countValue(counts.created)),
      outputOf('import-updated', countValue(counts.updated)),
      outputOf('import-refused', countValue(counts.refused)),
    ],
  };
}
