// A reduced benchmark as a test: the request-count budgets (not timings — those live in
// `npm run bench`, where the machine and the load are known). Ours: at most 3 FHIR requests per new
// delivery, 1 per duplicate, the same for 1, 5 and 20 connections;
// the per-resource comparator really is per resource (3 requests each), so the ratio means something.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { impliedResources } from '../src/tools/bench/naive';
import { medblocksEventHandler } from '../src/runtime/events';
import { BUDGETS, importBudgets, loadBudgets, loadRankingBudgets, requestBudgets } from '../src/tools/bench/report';
import type { ImportRow } from '../src/tools/bench/import';
import type { LoadDelivery, LoadRow, RealLoadFigure, RealLoadRow } from '../src/tools/bench/load';
import {
  failureOf,
  fastUpdateSettings,
  LOAD_CONCURRENCIES,
  leaderOf,
  loadWorkload,
  REAL_SERVER_LOAD,
  REAL_SERVER_WORK,
  scenarioWorkload,
} from '../src/tools/bench/load';
import { serialise } from '../src/tools/fixtures/events';
import { ESCALATE_AFTER_MS } from '../src/runtime/failures';
import { countRequests } from '../src/tools/bench/requests';
import { benchScenarios, FLOW_SIZES } from '../src/tools/bench/scenarios';
import { readSettings } from '../src/runtime/settings';

/** A load row of 180 deliveries at 8 in flight: what the load budgets judge. */
function loadRow(
  implementation: LoadRow['implementation'],
  failures: number,
  p90Ms: number,
  ginFastUpdate: boolean
): LoadRow {
  return {
    scenario: 'mixed',
    implementation,
    concurrency: 8,
    ginFastUpdate,
    deliveries: 180,
    failures,
    failureStatuses: failures > 0 ? { '409': failures } : {},
    p50Ms: 100,
    p90Ms,
    p99Ms: 900,
    fhirRequestsPerDelivery: 3,
    serializationFailures: 0,
  };
}

describe('bench: FHIR requests per delivery', () => {
  it('meets every request-count budget, flat in the number of connections', async () => {
    const scenarios = benchScenarios();
    const rows = await countRequests(scenarios);
    expect(rows.map((r) => r.label)).toEqual(scenarios.map((s) => s.label));
    for (const row of rows) {
      expect(row.ours.new, row.label).toBeLessThanOrEqual(BUDGETS.requestsPerNewDelivery);
      expect(row.ours.duplicate, row.label).toBe(1);
    }
    const flows = rows.filter((r) => r.connections !== undefined);
    expect(flows.map((r) => r.connections)).toEqual([...FLOW_SIZES]);
    expect(new Set(flows.map((r) => r.ours.new)).size).toBe(1);
    expect(requestBudgets(rows).filter((b) => !b.pass)).toEqual([]);

    // The comparator: 3 requests per implied resource, for the new delivery and again for the duplicate.
    const settings = readSettings({});
    for (const [i, scenario] of scenarios.entries()) {
      const resources = impliedResources(scenario.target, medblocksEventHandler, settings).length;
      expect(rows[i]?.perResource, scenario.label).toEqual({ new: 3 * resources, duplicate: 3 * resources });
    }
    const [one, , twenty] = flows;
    expect(twenty?.perResource.new ?? 0).toBeGreaterThan((10 * (one?.perResource.new ?? Infinity)) / 3);
  });

  it('a budget check fails when a count is over budget', () => {
    const row = {
      label: 'x',
      type: 'records.sync.completed',
      connections: undefined,
      ours: { new: 4, duplicate: 2 },
      perResource: { new: 6, duplicate: 6 },
    };
    expect(
      requestBudgets([row])
        .filter((b) => !b.pass)
        .map((b) => b.name)
    ).toEqual(['requests per new delivery, x', 'requests per duplicate, x']);
  });

  it('the load budgets fail on a failed delivery of ours, or on a p90 worse than the per-resource pattern', () => {
    const row = (implementation: LoadRow['implementation'], failures: number, p90Ms: number): LoadRow =>
      loadRow(implementation, failures, p90Ms, true);
    const failed = (rows: LoadRow[]) => loadBudgets(rows).filter((b) => !b.pass).length;
    expect(failed([row('ours', 0, 300), row('per-resource', 5, 500)])).toBe(0);
    expect(failed([row('ours', 1, 300), row('per-resource', 0, 500)])).toBe(1);
    expect(failed([row('ours', 0, 501), row('per-resource', 0, 500)])).toBe(1);
    // Each concurrency and server setting is judged on its own rows.
    const at16 = (r: LoadRow): LoadRow => ({ ...r, concurrency: 16 });
    const off = (r: LoadRow): LoadRow => ({ ...r, ginFastUpdate: false });
    expect(
      failed([
        row('ours', 0, 300),
        row('per-resource', 0, 500),
        at16(row('ours', 2, 300)),
        at16(row('per-resource', 0, 500)),
        off(row('ours', 0, 300)),
        off(row('per-resource', 0, 200)),
      ])
    ).toBe(2);
  });
});

describe("bench: the load model is judged by the real server's ranking", () => {
  const row = (implementation: LoadRow['implementation'], failures: number, p90Ms: number): LoadRow =>
    loadRow(implementation, failures, p90Ms, false);
  const real = (ours: RealLoadFigure, perResource: RealLoadFigure): RealLoadRow[] => [
    { scenario: 'mixed', ginFastUpdate: false, concurrency: 8, rounds: 3, ours, perResource },
  ];
  const passes = (rows: LoadRow[], measured: RealLoadRow[]) => loadRankingBudgets(rows, measured).map((b) => b.pass);

  it('passes when the model puts the same implementation ahead as the real server, and only then', () => {
    const oursAhead = real({ failed: 0, p90Ms: 615 }, { failed: 0, p90Ms: 858 });
    expect(passes([row('ours', 0, 300), row('per-resource', 0, 400)], oursAhead)).toEqual([true]);
    expect(passes([row('ours', 0, 500), row('per-resource', 0, 400)], oursAhead)).toEqual([false]);
  });

  it('fewer failed deliveries lead before a lower p90, on the real server as in the model', () => {
    expect(leaderOf({ failed: 10, p90Ms: 3700 }, { failed: 50, p90Ms: 1700 })).toBe('ours');
    const perResourceFailsMore = real({ failed: 10, p90Ms: 3700 }, { failed: 50, p90Ms: 1700 });
    expect(passes([row('ours', 1, 900), row('per-resource', 4, 400)], perResourceFailsMore)).toEqual([true]);
    expect(passes([row('ours', 5, 300), row('per-resource', 4, 400)], perResourceFailsMore)).toEqual([false]);
  });

  it('judges only the settings the real server was measured in', () => {
    const at16 = (r: LoadRow): LoadRow => ({ ...r, concurrency: 16 });
    const measured = real({ failed: 0, p90Ms: 615 }, { failed: 0, p90Ms: 858 });
    expect(loadRankingBudgets([at16(row('ours', 0, 300)), at16(row('per-resource', 0, 400))], measured)).toEqual([]);
  });

  it('judges each workload by its own real figures', () => {
    const flows = (r: LoadRow): LoadRow => ({ ...r, scenario: 'flows' });
    const measured = real({ failed: 0, p90Ms: 615 }, { failed: 0, p90Ms: 858 });
    expect(loadRankingBudgets([flows(row('ours', 0, 300)), flows(row('per-resource', 0, 400))], measured)).toEqual([]);
  });

  it("the server model's costs are the ones the ledger gives with their source (TX-12)", () => {
    const ledger = readFileSync(join(import.meta.dirname, '..', 'docs', 'fidelity-ledger.md'), 'utf8');
    const row = ledger.split('\n').find((line) => line.startsWith('| TX-12 '));
    const w = REAL_SERVER_WORK;
    expect(row).toContain(
      `${String(w.cores)} cores, per bot run ${String(w.perRunMs)} ms, per FHIR request ${String(w.perRequestMs)} ms, ` +
        `per entry (a batch's entries, 1 for a plain request) ${String(w.perEntryMs)} ms, per version written ${String(w.perWriteMs)} ms`
    );
  });

  it('every real figure it is judged by is in the ledger, where its source is named (TX-12)', () => {
    const ledger = readFileSync(join(import.meta.dirname, '..', 'docs', 'fidelity-ledger.md'), 'utf8');
    const row = ledger.split('\n').find((line) => line.startsWith('| TX-12 ')) ?? '';
    const figures = REAL_SERVER_LOAD.flatMap((r) => [r.ours.p90Ms, r.perResource.p90Ms]).map(String);
    expect(figures.filter((f) => !row.includes(f))).toEqual([]);
  });

  it('plays one delivery at a time once: with nothing overlapping, GIN fastupdate changes nothing', () => {
    expect(fastUpdateSettings(1)).toEqual([false]);
    expect(fastUpdateSettings(8)).toEqual([true, false]);
  });

  it('one real row per measured workload and setting, at the concurrencies the bench plays', () => {
    const settings = REAL_SERVER_LOAD.map((r) => `${r.scenario} ${String(r.ginFastUpdate)} ${String(r.concurrency)}`);
    expect(new Set(settings).size).toBe(REAL_SERVER_LOAD.length);
    const played = (r: RealLoadRow) =>
      (LOAD_CONCURRENCIES as readonly number[]).includes(r.concurrency) &&
      fastUpdateSettings(r.concurrency).includes(r.ginFastUpdate);
    expect(REAL_SERVER_LOAD.filter((r) => !played(r))).toEqual([]);
  });
});

describe('bench: what a failed delivery under load is', () => {
  it('an answer outside 2xx, or a 2xx quarantine (not applied); applied, duplicate and stale answers are not', () => {
    expect(failureOf({ status: 400, answer: '{"resourceType":"OperationOutcome"}' })).toBe('400');
    expect(failureOf({ status: 200, answer: '{"status":"quarantined:retries_exhausted"}' })).toBe('200 quarantined');
    for (const status of ['processed', 'duplicate', 'stale']) {
      expect(failureOf({ status: 200, answer: JSON.stringify({ status }) })).toBeUndefined();
    }
  });

  it('the workload is created now, so that a delivery that keeps failing is failed, not quarantined as too old to retry', () => {
    const now = Date.parse('2026-12-04T00:00:00.000Z');
    const workload = loadWorkload(2, 3, now);
    expect(workload).toHaveLength(2 * (1 + 3));
    for (const { event } of workload) {
      const age = now - Date.parse(event.created_at);
      expect(Math.abs(age)).toBeLessThan(ESCALATE_AFTER_MS / 1000);
    }
    const times = workload.map(({ event }) => event.created_at);
    expect([...times].sort()).toEqual(times);
  });
});

describe('bench: the load workloads are those measured on the real server', () => {
  const types = (deliveries: readonly LoadDelivery[]) => deliveries.map((d) => d.event.type);
  const connections = (d: LoadDelivery) =>
    d.event.type === 'patient_flow.completed' ? d.event.data.object.connections.length : 0;

  it('flows: 90 flows of 5 connections for 90 new patients, nothing before them', () => {
    const { warmup, measured } = scenarioWorkload('flows', 30, 5);
    expect(warmup).toEqual([]);
    expect(new Set(types(measured))).toEqual(new Set(['patient_flow.completed']));
    expect(measured.map(connections)).toEqual(Array.from({ length: 90 }, () => 5));
    const patients = measured.map((d) =>
      d.event.type === 'patient_flow.completed' ? d.event.data.object.patient_id : ''
    );
    expect(new Set(patients).size).toBe(90);
  });

  it("syncs: 6 records syncs for each of 30 patients, after each patient's flow of 6 connections", () => {
    const { warmup, measured } = scenarioWorkload('syncs', 30, 5);
    expect(warmup.map(connections)).toEqual(Array.from({ length: 30 }, () => 6));
    expect(measured).toHaveLength(180);
    expect(new Set(types(measured))).toEqual(new Set(['records.sync.completed']));
  });

  it('duplicates: 90 applied flows, each sent again as it was', () => {
    const { warmup, measured } = scenarioWorkload('duplicates', 30, 5);
    expect(measured).toHaveLength(90);
    expect(measured.map((d) => serialise(d.event))).toEqual(warmup.map((d) => serialise(d.event)));
  });

  it('mixed: the flow, then a sync per source, patient by patient, nothing before', () => {
    const { warmup, measured } = scenarioWorkload('mixed', 2, 3);
    expect(warmup).toEqual([]);
    expect(types(measured)).toEqual([
      ...['patient_flow.completed', 'records.sync.completed', 'records.sync.completed', 'records.sync.completed'],
      ...['patient_flow.completed', 'records.sync.completed', 'records.sync.completed', 'records.sync.completed'],
    ]);
  });
});

describe('bench: the records import', () => {
  const row = (implementation: ImportRow['implementation'], overrides: Partial<ImportRow> = {}): ImportRow => ({
    implementation,
    records: 199,
    imported: 199,
    ms: 1000,
    recordsPerSecond: 199,
    fhirRequestsPerRecord: implementation === 'ours' ? 0.17 : 2,
    fhirRequests: implementation === 'ours' ? 33 : 398,
    pages: 10,
    ...overrides,
  });
  const missed = (rows: ImportRow[]): string[] =>
    importBudgets(rows)
      .filter((b) => !b.pass)
      .map((b) => b.name);

  it('passes when ours imports everything, cheaply, at least as fast as per-resource', () => {
    expect(missed([row('ours'), row('per-resource', { recordsPerSecond: 22 })])).toEqual([]);
  });

  it('fails on a record not imported, too many requests per record, or a slower import', () => {
    expect(missed([row('ours', { imported: 198 }), row('per-resource')])).toEqual([
      'records not imported, ours, 199 records',
    ]);
    const overBudget = BUDGETS.importRequestsPerRun + BUDGETS.importRequestsPerPage * 10 + 1;
    expect(missed([row('ours', { fhirRequests: overBudget }), row('per-resource')])).toEqual([
      'import FHIR requests, ours, 199 records in 10 pages',
    ]);
    expect(missed([row('ours', { recordsPerSecond: 20 }), row('per-resource', { recordsPerSecond: 22 })])).toEqual([
      'import records/s, per-resource vs ours, 199 records',
    ]);
  });
});
