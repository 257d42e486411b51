// The generated records are what the local Medblocks serves and the import bot's tests import: they
// must be valid FHIR R4 by Medplum's validator and HL7's schema, refer only to each other, and be
// the same every time for the same options.
import { validateResource } from '@medplum/core';
import type { Reference, Resource } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RECORD_TYPES, generatePatientRecords, secondSync } from '../../src/tools/fixtures/patient-records';
import type { PatientRecordItem } from '../../src/tools/medblocks-local/records';
import { hl7SchemaErrors } from '../support/hl7-schema';

const SOURCE = 'fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc';
const first = generatePatientRecords({ patientId: 'user_gen', source: SOURCE, seed: 7 });

/** Every `reference` string anywhere in the resource. */
function referencesOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) referencesOf(v, out);
  else if (value !== null && typeof value === 'object') {
    const ref = (value as Reference).reference;
    if (typeof ref === 'string') out.push(ref);
    for (const v of Object.values(value)) referencesOf(v, out);
  }
  return out;
}

function keyOf(r: Resource): string {
  return `${r.resourceType}/${r.id ?? ''}`;
}

function expectValidAndClosed(items: readonly PatientRecordItem[]): void {
  const ids = new Set(items.map((i) => keyOf(i.resource)));
  expect(ids.size, 'no two resources share a type and id').toBe(items.length);
  for (const { resource } of items) {
    expect(validateResource(resource), `${keyOf(resource)} passes validateResource`).toEqual([]);
    expect(hl7SchemaErrors(resource), `${keyOf(resource)} passes HL7's schema`).toEqual([]);
    expect(resource.meta?.lastUpdated, `${keyOf(resource)} has meta.lastUpdated`).toMatch(/^\d{4}-\d{2}-\d{2}T.*Z$/);
    for (const target of referencesOf(resource)) expect(ids, `${keyOf(resource)} → ${target}`).toContain(target);
  }
}

describe('generatePatientRecords', () => {
  it('a few hundred valid R4 resources of every default type plus the EHR Patient, all references inside the set', () => {
    expect(first).toHaveLength(300);
    expect(first.every((i) => i.source === SOURCE)).toBe(true);
    const types = new Set(first.map((i) => i.resource.resourceType));
    expect([...types].sort()).toEqual([...DEFAULT_RECORD_TYPES, 'Patient'].sort());
    expect(first.filter((i) => i.resource.resourceType === 'Patient')).toHaveLength(1);
    expectValidAndClosed(first);
  });

  it('links the way an importer must resolve: subject/patient, encounter, result, basedOn', () => {
    const patient = first.find((i) => i.resource.resourceType === 'Patient')?.resource;
    const ofType = (t: Resource['resourceType']) => first.map((i) => i.resource).filter((r) => r.resourceType === t);
    const subjectRefs = first
      .map((i) => i.resource)
      .filter((r) => r.resourceType !== 'Patient')
      .map((r) => ('subject' in r ? r.subject : 'patient' in r ? r.patient : undefined) as Reference | undefined);
    expect(new Set(subjectRefs.map((r) => r?.reference))).toEqual(new Set([`Patient/${patient?.id ?? ''}`]));
    for (const t of ['Observation', 'Condition', 'Procedure'] as const)
      for (const r of ofType(t)) expect((r as { encounter?: Reference }).encounter?.reference).toMatch(/^Encounter\//);
    const reports = ofType('DiagnosticReport') as { result?: Reference[] }[];
    expect(
      reports.every(
        (r) => (r.result?.length ?? 0) > 0 && r.result?.every((x) => x.reference?.startsWith('Observation/'))
      )
    ).toBe(true);
    const statements = ofType('MedicationStatement') as { basedOn?: Reference[] }[];
    expect(statements.some((s) => s.basedOn?.[0]?.reference?.startsWith('MedicationRequest/'))).toBe(true);
  });

  it('is deterministic by seed, patient and source, and honours count', () => {
    expect(generatePatientRecords({ patientId: 'user_gen', source: SOURCE, seed: 7 })).toEqual(first);
    const other = generatePatientRecords({ patientId: 'user_gen', source: SOURCE, seed: 8 });
    expect(other.map((i) => i.resource.id)).not.toEqual(first.map((i) => i.resource.id));
    const small = generatePatientRecords({ patientId: 'user_small', source: null, seed: 1, count: 24 });
    expect(small).toHaveLength(24);
    expect(new Set(small.map((i) => i.resource.resourceType)).size).toBe(DEFAULT_RECORD_TYPES.length + 1);
    expectValidAndClosed(small);
    expect(() => generatePatientRecords({ patientId: 'x', source: null, count: 5 })).toThrow(/count/);
  });

  it('the second sync: one Observation corrected, one Condition resolved, two added, the rest as it was', () => {
    const second = secondSync(first);
    expect(second.items).toHaveLength(first.length + 2);
    expectValidAndClosed(second.items);
    const [observation, condition] = second.changed.map((i) => i.resource);
    expect(observation).toMatchObject({ resourceType: 'Observation', status: 'corrected' });
    expect(condition).toMatchObject({ resourceType: 'Condition', clinicalStatus: { coding: [{ code: 'resolved' }] } });
    const before = new Map(first.map((i) => [keyOf(i.resource), i.resource]));
    expect(
      second.changed.every((i) => before.has(keyOf(i.resource)) && before.get(keyOf(i.resource)) !== i.resource)
    ).toBe(true);
    expect(second.added.map((i) => i.resource.resourceType)).toEqual(['Encounter', 'Observation']);
    expect(second.added.every((i) => !before.has(keyOf(i.resource)))).toBe(true);
    // Everything else is the very same resource: only the two changed ones differ from the first set.
    const differing = second.items
      .filter((i) => before.has(keyOf(i.resource)) && before.get(keyOf(i.resource)) !== i.resource)
      .map((i) => keyOf(i.resource));
    expect(differing.sort()).toEqual(second.changed.map((i) => keyOf(i.resource)).sort());
  });
});
