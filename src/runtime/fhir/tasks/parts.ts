// What the three Task codecs share: the model fields every Task has and the coded input/output
// and businessStatus shapes, so that each kind's codec reads as its own contract.
import type { CodeableConcept, Patient, Reference, Task, TaskInput, TaskOutput } from '@medplum/fhirtypes';
import { SYSTEM } from '../systems';

export interface TaskModelBase {
  readonly key: string;
  readonly patient: Reference<Patient> | undefined;
  /** Time of the first event that touched the Task. */
  readonly authoredOn: string;
}

/** What a Task shows, derived from its model; the frame (task.ts) adds identity and bookkeeping. */
export type VisibleTaskState = Partial<Task> & Pick<Task, 'status'>;

export function businessStatus(code: string): CodeableConcept {
  return { coding: [{ system: SYSTEM.code, code }], text: code };
}

export function inputOf(code: string, value: Omit<TaskInput, 'type'>): TaskInput {
  return { type: { coding: [{ system: SYSTEM.code, code }], text: code }, ...value };
}

export function outputOf(code: string, value: Omit<TaskOutput, 'type'>): TaskOutput {
  return { type: { coding: [{ system: SYSTEM.code, code }], text: code }, ...value };
}

/** The EHR source input every kind carries. */
export function sourceInput(sourceId: string): TaskInput {
  return inputOf('fhir-source', { valueIdentifier: { system: SYSTEM.fhirSourceId, value: sourceId } });
}

export function sourceOf(task: Task): string | undefined {
  return task.input?.find((i) => i.type.coding?.[0]?.code === 'fhir-source')?.valueIdentifier?.value;
}

export function inputValues(task: Task, code: string): string[] {
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
