// What the Task kinds share: the model fields every Task has and the coded input/output
// and businessStatus shapes, so that each kind's codec reads as its own contract.
import type { CodeableConcept, Patient, Reference, Task, TaskInput, TaskOutput } from '@medplum/fhirtypes';
import { hasKnownPatient } from '../consent';
import { compareStamps } from '../stamp';
import { BUSINESS_STATUS_DISPLAY, SYSTEM } from '../systems';
import type { BusinessStatusCode } from '../systems';
import type { Activation } from './kind';

export interface TaskModelBase {
  readonly key: string;
  readonly patient: Reference<Patient> | undefined;
  /** Time of the first event that touched the Task. */
  readonly authoredOn: string;
}

/** What a Task shows, derived from its model; the frame (task.ts) adds identity and bookkeeping. */
export type VisibleTaskState = Partial<Task> & Pick<Task, 'status'>;

/** A businessStatus the Medplum app can show: the coding carries its display, the text says the same. */
export function businessStatus(code: BusinessStatusCode): CodeableConcept {
  const display = BUSINESS_STATUS_DISPLAY[code];
  return { coding: [{ system: SYSTEM.code, code, display }], text: display };
}

/** FHIR `integer` is 32-bit; a larger count is kept exactly as a decimal rather than clamped. */
export const MAX_FHIR_INTEGER = 2_147_483_647;

/** A count as a Task output value: `valueInteger` within int32, `valueDecimal` beyond it. */
export function countValue(n: number): Pick<TaskOutput, 'valueInteger' | 'valueDecimal'> {
  return Number.isInteger(n) && Math.abs(n) <= MAX_FHIR_INTEGER ? { valueInteger: n } : { valueDecimal: n };
}

/** The EHR name input: what the Task's texts call the source, kept so that it decodes back. */
export function ehrNameInput(name: string): TaskInput {
  return inputOf('ehr-name', { valueString: name });
}

export function ehrNamesOf(task: Task): string[] {
  return (task.input ?? []).flatMap((i) =>
    i.type.coding?.[0]?.code === 'ehr-name' && i.valueString ? [i.valueString] : []
  );
}

/** Names joined for a sentence: "A", "A or B", "A, B or C". */
export function orList(names: readonly string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
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

/** A known patient as a bare reference (what a Task's `for` holds), or undefined. */
export function knownPatient(patient: Reference | undefined): Reference<Patient> | undefined {
  return hasKnownPatient(patient) ? { reference: patient.reference } : undefined;
}

/**
 * A total order on the activations that resolve a Task, best first: the newest; on a tie (one flow
 * can activate two connections of one source with the same stamp), the Task's own connection; then
 * the lowest connection key. Total, so that the pick never depends on which Consent was seen first.
 */
export function bestActivation(
  activations: readonly Activation[],
  ownConnection: string | undefined
): Activation | undefined {
  return [...activations].sort(
    (a, b) =>
      compareStamps(b.stamp, a.stamp) ||
      Number(b.model.key.value === ownConnection) - Number(a.model.key.value === ownConnection) ||
      compareText(a.model.key.value, b.model.key.value)
  )[0];
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
