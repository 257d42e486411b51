// The import's decision for one page of records, without a server: what a replay, a change at the
// source, an overtaken page and references into the EHR become.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RECORD_SYSTEM, SOURCE_UPDATED_EXTENSION } from '../../src/runtime/import/identity';
import { planPage } from '../../src/runtime/import/plan';
import type { PageContext, RecordItem, StoredCopy } from '../../src/runtime/import/plan';

const PATIENT = { reference: 'Patient/0b6f2c1e-6e0a-4d5b-9d40-8f3a6a1b2c3d' };
const TYPES = new Set(['Encounter', 'Observation', 'Condition', 'DiagnosticReport']);

function context(existing: StoredCopy[] = [], known: Record<string, string> = {}): PageContext {
  const byKey = new Map<string, StoredCopy>();
  for (const copy of existing) {
    const value = (copy as { identifier?: { system?: string; value?: string }[] }).identifier?.find(
      (i) => i.system === RECORD_SYSTEM
    )?.value;
    if (value) byKey.set(value, copy);
  }
  const ids = new Map(Object.entries(known));
  for (const [value, copy] of byKey) ids.set(value, copy.id);
  return { patient: PATIENT, importTypes: TYPES, existing: byKey, known: ids };
}

function observation(id: string, value: number, lastUpdated = '2026-11-01T10:00:00Z'): RecordItem {
  return {
    source: 'fhirsrc_epic',
    resource: {
      resourceType: 'Observation',
      id,
      meta: { lastUpdated, versionId: '7' },
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '2339-0', display: 'Glucose' }] },
      subject: { reference: 'Patient/ehr-123', display: 'Jane Example' },
      encounter: { reference: 'Encounter/enc-1' },
      valueQuantity: { value, unit: 'mg/dL' },
    },
  };
}

/** What the server would store for a planned create: the resource with an id and a version. */
function stored(resource: object, id: string, versionId = '1'): StoredCopy {
  return { ...(resource as StoredCopy), id, meta: { versionId, lastUpdated: '2026-12-01T00:00:00Z' } };
}

describe('a new record', () => {
  const plan = planPage([observation('obs-1', 95)], context());
  const write = plan.writes[0];

  it('is created as our copy: no EHR id or meta, our record identifier, the EHR’s change time kept', () => {
    expect(plan.writes).toHaveLength(1);
    expect(write?.kind).toBe('create');
    const resource = write?.resource as unknown as Record<string, unknown>;
    expect(resource.id).toBeUndefined();
    expect(resource.meta).toBeUndefined();
    expect(resource.identifier).toEqual([{ system: RECORD_SYSTEM, value: 'fhirsrc_epic/Observation/obs-1' }]);
    expect(resource.extension).toEqual([{ url: SOURCE_UPDATED_EXTENSION, valueInstant: '2026-11-01T10:00:00Z' }]);
  });

  it('points at our Patient, without the EHR’s display of the patient', () => {
    expect((write?.resource as { subject?: unknown }).subject).toEqual(PATIENT);
  });

  it('names a target we do not hold only logically, never as an id of ours', () => {
    expect((write?.resource as { encounter?: unknown }).encounter).toEqual({
      type: 'Encounter',
      identifier: { system: RECORD_SYSTEM, value: 'fhirsrc_epic/Encounter/enc-1' },
    });
    expect(write?.unresolved).toEqual([{ source: 'fhirsrc_epic', resourceType: 'Encounter', id: 'enc-1' }]);
  });

  it('points at our copy of a target we hold', () => {
    const withEncounter = planPage(
      [observation('obs-1', 95)],
      context([], { 'fhirsrc_epic/Encounter/enc-1': 'e-ours' })
    );
    expect((withEncounter.writes[0]?.resource as { encounter?: unknown }).encounter).toEqual({
      reference: 'Encounter/e-ours',
    });
    expect(withEncounter.writes[0]?.unresolved).toEqual([]);
  });
});

describe('against our stored copy', () => {
  const first = planPage([observation('obs-1', 95)], context());
  const copy = stored(first.writes[0]?.resource ?? {}, 'o-ours', '3');

  it('a replayed record writes nothing', () => {
    const replay = planPage([observation('obs-1', 95)], context([copy]));
    expect(replay.writes).toEqual([]);
    expect(replay.counts.unchanged).toBe(1);
  });

  it('a record changed at the source updates our one copy, If-Match the version read', () => {
    const changed = planPage([observation('obs-1', 101, '2026-11-02T08:00:00Z')], context([copy]));
    expect(changed.writes).toHaveLength(1);
    expect(changed.writes[0]).toMatchObject({ kind: 'update', ifMatch: '3', resource: { id: 'o-ours' } });
    expect((changed.writes[0]?.resource as { valueQuantity?: unknown }).valueQuantity).toEqual({
      value: 101,
      unit: 'mg/dL',
    });
  });

  it('an older version of the record (an overtaken page) never undoes a newer import', () => {
    const newer = stored(
      planPage([observation('obs-1', 101, '2026-11-02T08:00:00Z')], context()).writes[0]?.resource ?? {},
      'o-ours'
    );
    const old = planPage([observation('obs-1', 95, '2026-11-01T10:00:00Z')], context([newer]));
    expect(old.writes).toEqual([]);
    expect(old.counts.stale).toBe(1);
  });
});

describe('what is not written', () => {
  it('the EHR’s own Patient: the import writes no demographics', () => {
    const plan = planPage(
      [{ source: 'fhirsrc_epic', resource: { resourceType: 'Patient', id: 'ehr-123', name: [{ family: 'Example' }] } }],
      context()
    );
    expect(plan.writes).toEqual([]);
    expect(plan.counts.patientRecords).toBe(1);
  });

  it('items that are not a keyable resource, or of a type not imported', () => {
    const plan = planPage(
      [
        { source: 'fhirsrc_epic', resource: { resourceType: 'Observation' } },
        { source: 'fhirsrc_epic', resource: { resourceType: 'Observation', id: 'has spaces' } },
        { source: 'fhirsrc_epic', resource: { resourceType: 'lowercase', id: 'x' } },
        { source: 'fhirsrc_epic', resource: { resourceType: 'Coverage', id: 'c1' } },
      ],
      context()
    );
    expect(plan.writes).toEqual([]);
    expect(plan.counts.malformed).toBe(4);
  });

  it('a record Medblocks served twice in one page is written once', () => {
    expect(planPage([observation('obs-1', 95), observation('obs-1', 95)], context()).writes).toHaveLength(1);
  });
});

describe('properties', () => {
  const arbitraryItem = fc.record({
    id: fc.stringMatching(/^[A-Za-z0-9\-.]{1,20}$/),
    value: fc.integer({ min: 0, max: 500 }),
    day: fc.integer({ min: 1, max: 28 }),
    source: fc.constantFrom('fhirsrc_a', 'fhirsrc_b', null),
  });

  it('planning a page against what its own writes stored writes nothing (idempotent)', () => {
    fc.assert(
      fc.property(fc.array(arbitraryItem, { maxLength: 20 }), (raw) => {
        const items: RecordItem[] = raw.map((r) => ({
          ...observation(r.id, r.value, `2026-11-${String(r.day).padStart(2, '0')}T00:00:00Z`),
          source: r.source,
        }));
        const first = planPage(items, context());
        const copies = first.writes.map((w, i) => stored(w.resource, `id-${String(i)}`));
        const second = planPage(items, context(copies));
        expect(second.writes).toEqual([]);
      })
    );
  });
});
