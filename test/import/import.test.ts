// The records import, end to end on the models: a records.sync.completed applied by its bot, then
// the import bot's run under its own AccessPolicy, against the local Medblocks serving generated
// records in the published shapes. What a clinic sees: the records in Medplum, each with its
// Provenance, pointing at our Patient and at each other; a replay writes nothing; a change at the
// EHR updates the one copy.
import { validateResource } from '@medplum/core';
import type { Provenance, Resource, Task } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RECORD_SYSTEM } from '../../src/runtime/import/identity';
import { runImport } from '../../src/runtime/import/run';
import type { ImportOptions } from '../../src/runtime/import/run';
import { DEFAULT_IMPORT_TYPES } from '../../src/runtime/import/settings';
import { generatePatientRecords, secondSync } from '../../src/tools/fixtures/patient-records';
import { recordsSyncCompleted } from '../../src/tools/fixtures/events';
import { World } from '../../src/tools/harness/world';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import type { RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import type { PatientRecordItem } from '../../src/tools/medblocks-local/records';

const PATIENT_ID = 'pt_import_1';
const SOURCE = 'fhirsrc_epic_sandbox';
const FIRST_PULL = '2026-11-20T09:00:00.000Z';

let clock = Date.parse(FIRST_PULL);
let mb: RunningLocalMedblocks;
let world: World;

beforeEach(async () => {
  clock = Date.parse(FIRST_PULL);
  mb = await startLocalMedblocks({ now: () => clock });
  world = new World();
});

afterEach(async () => {
  await mb.close();
});

function settings(extra: Record<string, string> = {}): Record<string, { name: string; valueString: string }> {
  const values = { MEDBLOCKS_API_KEY: mb.apiKey, MEDBLOCKS_API_BASE_URL: mb.url, ...extra };
  return Object.fromEntries(Object.entries(values).map(([name, valueString]) => [name, { name, valueString }]));
}

/** Lands records at the local Medblocks and applies the sync event they stand for. */
async function sync(items: readonly PatientRecordItem[], at: string): Promise<void> {
  clock = Date.parse(at);
  mb.putRecords(PATIENT_ID, items);
  const event = recordsSyncCompleted(
    { patient_id: PATIENT_ID, connection_id: SOURCE, total: items.length },
    { created_at: new Date(clock + 1000).toISOString() }
  );
  const answer = await world.bot('medblocks-records-sync-completed').deliver(event);
  expect(answer.status).toBe('processed');
  clock += 60_000;
}

async function runTheImport(options: ImportOptions = {}) {
  const importer = world.scheduled('medblocks-records-import');
  const summary = await runImport(importer.medplum, settings(), {
    now: () => clock,
    sleep: () => Promise.resolve(),
    ...options,
  });
  return { summary, requests: importer.requests };
}

async function imported(): Promise<Resource[]> {
  const all: Resource[] = [];
  for (const type of DEFAULT_IMPORT_TYPES) all.push(...(await world.all(type)));
  return all;
}

const isProvenanceWrite = (r: { method: string; body: unknown }): boolean =>
  r.method !== 'GET' && JSON.stringify(r.body ?? '').includes('"resourceType":"Provenance"');

const isClinicalWrite = (r: { method: string; body: unknown }): boolean =>
  r.method !== 'GET' &&
  JSON.stringify(r.body ?? '').includes(RECORD_SYSTEM) &&
  !JSON.stringify(r.body ?? '').includes('"resourceType":"Provenance"');

describe('after records.sync.completed', () => {
  const first = generatePatientRecords({ patientId: PATIENT_ID, source: SOURCE, count: 150 });

  it('the patient’s records are in Medplum: every one once, valid, pointing at our Patient and at our copies', async () => {
    await sync(first, FIRST_PULL);
    const { summary } = await runTheImport();
    expect(summary.status).toBe('done');
    const clinical = first.filter((i) => i.resource.resourceType !== 'Patient');
    expect(summary.counts).toEqual({
      created: clinical.length,
      updated: 0,
      unchanged: 0,
      stale: 0,
      refused: 0,
      unresolved: 0,
      // The EHR’s Patient is never asked for (the import writes no demographics).
      patientRecords: 0,
      malformed: 0,
    });
    const copies = await imported();
    expect(copies).toHaveLength(clinical.length);
    const [patient] = await world.patients();
    const ids = new Set(copies.map((c) => `${c.resourceType}/${c.id ?? ''}`));
    for (const copy of copies) {
      expect(validateResource(copy), `${copy.resourceType} is valid`).toEqual([]);
      // Every relative reference names our Patient or one of our copies: never an EHR id.
      for (const match of JSON.stringify(copy).matchAll(/"reference":"([A-Za-z]+\/[^"]+)"/g)) {
        const target = match[1] ?? '';
        expect(target === `Patient/${patient?.id ?? ''}` || ids.has(target), `${target} in ${copy.resourceType}`).toBe(
          true
        );
      }
    }
    // The generator's cross-references (encounter, result, basedOn) all resolve in one run.
    expect(summary.counts.unresolved).toBe(0);
  });

  it('every imported record is named by a Provenance that names the EHR, the event and the import run', async () => {
    await sync(first, FIRST_PULL);
    await runTheImport();
    const provenances = await world.all<Provenance>('Provenance');
    const targeted = new Set(
      provenances.flatMap((p) => p.target.map((t) => (t.reference ?? '').replace(/\/_history\/.*$/, '')))
    );
    for (const copy of await imported()) expect(targeted.has(`${copy.resourceType}/${copy.id ?? ''}`)).toBe(true);
    const [task] = (await world.tasks()).filter((t) => t.code?.coding?.[0]?.code === 'records-sync');
    const syncEventId = task?.extension?.[0]?.extension?.find((e) => e.url === 'eventId')?.valueString;
    for (const p of provenances) {
      expect(p.agent[0]?.who.identifier).toEqual({ system: 'urn:medblocks:fhir-source-id', value: SOURCE });
      expect(p.entity?.find((e) => e.role === 'source')?.what.identifier?.value).toBe(syncEventId);
      expect(p.entity?.find((e) => e.role === 'derivation')?.what.reference).toMatch(/^Task\//);
      expect(validateResource(p)).toEqual([]);
    }
  });

  it('the records-sync Task shows what the import made of its sync, beside the sync’s own counts', async () => {
    await sync(first, FIRST_PULL);
    await runTheImport();
    const [syncTask] = (await world.tasks()).filter((t) => t.code?.coding?.[0]?.code === 'records-sync');
    const output = (code: string) => syncTask?.output?.find((o) => o.type.coding?.[0]?.code === code)?.valueInteger;
    expect([output('import-created'), output('import-updated'), output('import-refused')]).toEqual([
      first.length - 1,
      0,
      0,
    ]);
    expect(output('total')).toBe(first.length);
    expect(syncTask?.status).toBe('completed');
    // The next sync event rewrites the Task: its outputs are the new sync's until its import ran.
    await sync(first, '2026-11-21T09:00:00.000Z');
    const [resynced] = (await world.tasks()).filter((t) => t.code?.coding?.[0]?.code === 'records-sync');
    expect(resynced?.output?.some((o) => o.type.coding?.[0]?.code === 'import-created')).toBe(false);
    await runTheImport();
    const [reported] = (await world.tasks()).filter((t) => t.code?.coding?.[0]?.code === 'records-sync');
    expect(reported?.output?.find((o) => o.type.coding?.[0]?.code === 'import-created')?.valueInteger).toBe(0);
  });

  it('the import Task shows the outcome and the watermark; the next run has nothing to do', async () => {
    await sync(first, FIRST_PULL);
    await runTheImport();
    const importTask = (await world.tasks()).find((t: Task) => t.code?.coding?.[0]?.code === 'records-import');
    expect(importTask).toMatchObject({ status: 'completed', businessStatus: { text: 'Records imported' } });
    expect(importTask?.output?.find((o) => o.type.text === 'created')?.valueInteger).toBe(first.length - 1);
    const again = await runTheImport();
    expect(again.summary.status).toBe('idle');
    // Two read batches (the syncs, the import Tasks) and nothing else.
    expect(again.requests).toHaveLength(2);
    for (const request of again.requests) {
      const entries = (request.body as { entry?: { request?: { method?: string } }[] }).entry ?? [];
      expect(entries.map((e) => e.request?.method)).toEqual(entries.map(() => 'GET'));
    }
  });

  it('the import Task’s executionPeriod runs from the run’s start to its end, never before its start (FHIR per-1)', async () => {
    // Found on a real Medplum 5.1.x server: `end` was the sync time the run covered, always earlier
    // than the run's start; the server stored the Task but logged `Error building range column:
    // Period start must be less than or equal to end` on every write and left its range empty.
    await sync(first, FIRST_PULL);
    const ticking = { at: clock };
    await runTheImport({ now: () => (ticking.at += 1000) });
    const importTask = (await world.tasks()).find((t: Task) => t.code?.coding?.[0]?.code === 'records-import');
    const period = importTask?.executionPeriod;
    const target = importTask?.input?.find((i) => i.type.coding?.[0]?.code === 'run-target')?.valueDateTime ?? '';
    expect(importTask?.status).toBe('completed');
    expect(Date.parse(period?.start ?? '')).toBeGreaterThan(Date.parse(target));
    expect(Date.parse(period?.end ?? '')).toBeGreaterThan(Date.parse(period?.start ?? ''));
    expect(Date.parse(period?.end ?? '')).toBeLessThanOrEqual(ticking.at);
  });

  // Ledger SRCH-3.
  it('replaying the same sync (a new event, the same records) writes no record and no Provenance', async () => {
    await sync(first, FIRST_PULL);
    await runTheImport();
    const provenances = (await world.all<Provenance>('Provenance')).length;
    await sync(first, '2026-11-21T09:00:00.000Z');
    const { summary, requests } = await runTheImport();
    expect(summary.status).toBe('done');
    expect(summary.counts.created + summary.counts.updated).toBe(0);
    expect(requests.filter(isClinicalWrite)).toEqual([]);
    // Every copy is already named by the Provenance of the page that wrote it (its version).
    expect(requests.filter(isProvenanceWrite)).toEqual([]);
    expect(await world.all<Provenance>('Provenance')).toHaveLength(provenances);
    expect(await imported()).toHaveLength(first.length - 1);
  });

  it('a record changed at the EHR updates our one copy; new ones are added', async () => {
    await sync(first, FIRST_PULL);
    await runTheImport();
    const second = secondSync(first, { at: '2026-11-22T09:00:00.000Z' });
    await sync(second.items, '2026-11-22T10:00:00.000Z');
    const { summary } = await runTheImport();
    expect(summary.counts).toMatchObject({ updated: second.changed.length, created: second.added.length });
    const copies = await imported();
    expect(copies).toHaveLength(first.length - 1 + second.added.length);
    for (const changed of second.changed) {
      const key = `${SOURCE}/${changed.resource.resourceType}/${changed.resource.id ?? ''}`;
      const ours = copies.filter((c) => JSON.stringify(c).includes(`"value":"${key}"`));
      expect(ours).toHaveLength(1);
      const { id: _id, meta: _meta, ...content } = changed.resource as Resource & Record<string, unknown>;
      for (const field of ['status', 'clinicalStatus', 'valueQuantity'] as const) {
        if (field in content) expect((ours[0] as unknown as Record<string, unknown>)[field]).toEqual(content[field]);
      }
    }
  });
});

describe('every record traced, however a run ended', () => {
  const records = generatePatientRecords({ patientId: PATIENT_ID, source: SOURCE, count: 80 });

  async function untraced(): Promise<string[]> {
    const targets = new Set(
      (await world.all<Provenance>('Provenance')).flatMap((p) =>
        p.target.map((t) => (t.reference ?? '').replace(/\/_history\/.*$/, ''))
      )
    );
    return (await imported()).map((c) => `${c.resourceType}/${c.id ?? ''}`).filter((ref) => !targets.has(ref));
  }

  // Ledger QUOTA-2.
  it('records stored without their Provenance (a batch refused part-way) get it from the next pass', async () => {
    await sync(records, FIRST_PULL);
    await runTheImport();
    expect(await untraced()).toEqual([]);
    // What a real server showed under its FHIR quota: entries stored, the page's Provenance never written.
    const [lost] = await world.all<Provenance>('Provenance');
    await world.admin.deleteResource('Provenance', lost?.id ?? '');
    expect((await untraced()).length).toBeGreaterThan(0);
    await sync(records, '2026-11-21T09:00:00.000Z');
    const { summary, requests } = await runTheImport();
    expect(summary.counts.created + summary.counts.updated).toBe(0);
    expect(requests.filter(isClinicalWrite)).toEqual([]);
    expect(await untraced()).toEqual([]);
  });

  // Ledger QUOTA-1.
  it("Medplum's FHIR quota pauses the run instead of failing it; the next run finishes, every record traced", async () => {
    await sync(records, FIRST_PULL);
    let seen = 0;
    const importer = world.scheduled('medblocks-records-import', {
      // MedplumClient retries a 429 twice itself: three in a row reach the bot.
      faults: () => (++seen >= 6 && seen <= 8 ? { status: 429 } : undefined),
    });
    const first = await runImport(importer.medplum, settings(), { now: () => clock, sleep: () => Promise.resolve() });
    expect(first.status).toBe('paused');
    expect(first.why).toMatch(/^rate_limited/);
    const { summary } = await runTheImport();
    expect(summary.status).toBe('done');
    expect(await imported()).toHaveLength(records.length - 1);
    expect(await untraced()).toEqual([]);
  });
});

describe('paced by Medplum’s FHIR quota', () => {
  // Ledger QUOTA-3.
  it('stops before a page the quota left would not cover, and the next run continues', async () => {
    const records = generatePatientRecords({ patientId: PATIENT_ID, source: SOURCE, count: 80 });
    await sync(records, FIRST_PULL);
    const importer = world.scheduled('medblocks-records-import');
    // What MedplumClient keeps from a server's `RateLimit` header: few points left this minute.
    importer.medplum.rateLimitStatus = () => [
      { name: 'fhirInteractions', remainingUnits: 5000, secondsUntilReset: 42, resetsAfter: Date.now() + 42_000 },
    ];
    const paced = await runImport(importer.medplum, settings(), { now: () => clock, sleep: () => Promise.resolve() });
    expect(paced.status).toBe('paused');
    expect(paced.why).toBe("paced: Medplum's FHIR quota has 5000 points left, renewed in 42 s; the next run continues");
    // Every run does one page: the first type's.
    expect(paced.counts.created).toBeGreaterThan(0);
    expect(paced.counts.created).toBeLessThan(records.length - 1);
    const { summary } = await runTheImport();
    expect(summary.status).toBe('done');
    expect(await imported()).toHaveLength(records.length - 1);
  });
});

describe('off, paused, refused', () => {
  it('without MEDBLOCKS_API_KEY the import is off and makes no request', async () => {
    const importer = world.scheduled('medblocks-records-import');
    const summary = await runImport(importer.medplum, {}, { now: () => clock });
    expect(summary).toMatchObject({ status: 'off', why: 'MEDBLOCKS_API_KEY is not set' });
    expect(importer.requests).toEqual([]);
  });

  it('a run out of time stops after a page and the next run continues: the same records, never twice', async () => {
    const items = generatePatientRecords({ patientId: PATIENT_ID, source: SOURCE, count: 260 });
    await sync(items, FIRST_PULL);
    let runs = 0;
    for (;;) {
      runs++;
      // Each page takes the run past its budget: every run imports one page and stops.
      const start = clock;
      const { summary } = await runTheImport({
        budgetMs: 1,
        now: () => (clock += 1) && start + (clock - start) * 1000,
      });
      if (summary.status !== 'paused') break;
      expect(runs).toBeLessThan(40);
    }
    expect(runs).toBeGreaterThan(2);
    expect(await imported()).toHaveLength(items.length - 1);
  });

  it('a record Medplum refuses is counted, and the rest of the page is imported', async () => {
    const items = generatePatientRecords({ patientId: PATIENT_ID, source: SOURCE, count: 40 });
    const broken = items.findIndex((i) => i.resource.resourceType === 'Observation');
    // Observation.code is required (1..1): Medplum's validator refuses the record without it.
    const { code: _code, ...withoutCode } = items[broken]?.resource as unknown as { code?: unknown };
    const bad = { source: SOURCE, resource: withoutCode } as unknown as PatientRecordItem;
    await sync([...items.slice(0, broken), bad, ...items.slice(broken + 1)], FIRST_PULL);
    const { summary } = await runTheImport();
    expect(summary.status).toBe('done');
    expect(summary.counts.refused).toBe(1);
    expect(await imported()).toHaveLength(items.length - 2);
    const importTask = (await world.tasks()).find((t) => t.code?.coding?.[0]?.code === 'records-import');
    expect(importTask?.businessStatus?.text).toBe('Records imported; Medplum refused some');
  });

  it('the policy: no write of a record without our identifier, and never a delete', async () => {
    const importer = world.scheduled('medblocks-records-import');
    await expect(
      importer.medplum.createResource({ resourceType: 'Observation', status: 'final', code: { text: 'x' } })
    ).rejects.toThrow(/Forbidden|forbidden|access/i);
    await sync(generatePatientRecords({ patientId: PATIENT_ID, source: SOURCE, count: 30 }), FIRST_PULL);
    await runTheImport();
    const [copy] = await world.all('Condition');
    await expect(importer.medplum.deleteResource('Condition', copy?.id ?? '')).rejects.toThrow();
    await expect(importer.medplum.searchResources('Patient', {})).rejects.toThrow();
  });
});
