// Load with serialisation conflicts and the server's CPU modelled (docs/fidelity-ledger.md TX-4,
// TX-12). The mixed workload: each patient connects 5 EHRs in one flow, then Medblocks reports a
// records sync per source (30 patients, 180 deliveries); and each kind of delivery alone, as the
// real-server runs played them (`scenarioWorkload`). 1, 8 or 16 in flight, through the emulator over
// HTTP, every bot run and FHIR request waiting for a core of a modelled 2-core server (fitted to a
// real one), SERIALIZABLE transactions holding their place and conflicting as Postgres' GIN setting
// decides. Ours beside the per-resource pattern on the same workload, and both beside what a real
// server did with it (REAL_SERVER_LOAD).
import { botForEvent } from '../../runtime/registry';
import type { RunningEmulator } from '../emulator/server';
import type { ServerWorkModel } from '../emulator/server-work';
import { connection, patientFlowCompleted, recordsSyncCompleted, serialise } from '../fixtures/events';
import type { MedblocksEvent } from '../../runtime/events';
import { percentile } from './cpu';
import type { LatencyRow } from './latency';
import { postSigned, startBenchEmulator } from './latency';
import { NAIVE_BOT_NAME } from './naive-bot';

/** One delivery of the workload; its bot is the one its event type's module names (`botForEvent`). */
export interface LoadDelivery {
  readonly event: MedblocksEvent;
}

/**
 * The workloads, as measured on a real server: the mix a clinic's onboarding sends (per patient its
 * flow, then a records sync per source), and each kind of delivery alone — flows of new patients,
 * records syncs of patients whose flow was applied, duplicates of applied flows.
 */
export const LOAD_SCENARIOS = ['mixed', 'flows', 'syncs', 'duplicates'] as const;
export type LoadScenario = (typeof LOAD_SCENARIOS)[number];

/** What a row's deliveries are, in budget names and tables. */
export const SCENARIO_LABEL: Readonly<Record<LoadScenario, string>> = {
  mixed: 'mixed deliveries',
  flows: 'flows of new patients',
  syncs: 'records syncs',
  duplicates: 'duplicates of applied flows',
};

export interface LoadRow {
  readonly scenario: LoadScenario;
  readonly implementation: LatencyRow['implementation'];
  readonly concurrency: number;
  /** The server's GIN `fastupdate` the row was measured under. */
  readonly ginFastUpdate: boolean;
  readonly deliveries: number;
  /** Deliveries answered outside 2xx (Medblocks would retry them later) or quarantined (not applied). */
  readonly failures: number;
  /** Status codes of the failed deliveries, e.g. `{ "400": 2, "200 quarantined": 1 }`. */
  readonly failureStatuses: Readonly<Record<string, number>>;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly fhirRequestsPerDelivery: number;
  /** 409s the store answered after the server's own retry (what a bot saw as a conflict). */
  readonly serializationFailures: number;
  /** The modelled server CPU per delivery (ServerCores), when the run modelled one. */
  readonly serverCpuMsPerDelivery?: number;
}

export interface LoadOptions {
  readonly scenario: LoadScenario;
  readonly patients: number;
  readonly connectionsPerFlow: number;
  readonly concurrency: number;
  readonly fhirLatencyMs: number;
  readonly transactionMs: number;
  /** The server's GIN `fastupdate` (ledger TX-9, TX-11): on, Postgres' default, or off, as docs/going-live.md advises. */
  readonly ginFastUpdate: boolean;
  /** The server's CPU (src/tools/emulator/server-work.ts); undefined: only `fhirLatencyMs`. */
  readonly serverWork: ServerWorkModel | undefined;
}

/**
 * The CPU a real self-hosted Medplum spent per delivery, fitted (ledger TX-12): 5.1.29 on 2 cores,
 * Postgres 15 beside it, one delivery at a time, machine CPU per delivery for both implementations
 * over four workloads, least squares over the work the emulator counts for the same deliveries.
 */
export const REAL_SERVER_WORK: ServerWorkModel = {
  cores: 2,
  perRunMs: 19,
  perRequestMs: 3.1,
  perEntryMs: 2,
  perWriteMs: 9.6,
};

/** On loopback, as the real server was measured: the modelled server CPU is what takes the time. */
export const LOAD_DEFAULTS: LoadOptions = {
  scenario: 'mixed',
  patients: 30,
  connectionsPerFlow: 5,
  concurrency: 8,
  fhirLatencyMs: 0,
  transactionMs: 10,
  ginFastUpdate: true,
  serverWork: REAL_SERVER_WORK,
};

/** What one implementation did with this workload on a real server, in one setting. */
export interface RealLoadFigure {
  readonly failed: number;
  readonly p90Ms: number;
}

export interface RealLoadRow {
  readonly scenario: LoadScenario;
  readonly ginFastUpdate: boolean;
  readonly concurrency: number;
  /** Interleaved rounds the figures are the median of. */
  readonly rounds: 1 | 3;
  readonly ours: RealLoadFigure;
  readonly perResource: RealLoadFigure;
}

const real = (
  scenario: LoadScenario,
  ginFastUpdate: boolean,
  concurrency: number,
  rounds: 1 | 3,
  ours: [failed: number, p90Ms: number],
  perResource: [failed: number, p90Ms: number]
): RealLoadRow => ({
  scenario,
  ginFastUpdate,
  concurrency,
  rounds,
  ours: { failed: ours[0], p90Ms: ours[1] },
  perResource: { failed: perResource[0], p90Ms: perResource[1] },
});

/**
 * These workloads on a real self-hosted Medplum 5.1.29, 2 cores, loopback, Postgres 15, the shipped
 * policies (ledger TX-11, TX-12, "Last check", 2026-12-04): [failed, p90 ms], ours then the
 * per-resource pattern, the median of the rounds. What the model's ranking is checked against
 * (`loadRankingBudgets`); duplicates were not measured with `fastupdate` on.
 */
export const REAL_SERVER_LOAD: readonly RealLoadRow[] = [
  real('mixed', false, 1, 3, [0, 93.5], [0, 121.8]),
  real('mixed', true, 8, 3, [0, 812.6], [5, 893.6]),
  real('mixed', true, 16, 3, [4, 3170.2], [39, 4898.9]),
  real('mixed', false, 8, 3, [0, 615.5], [0, 858.2]),
  real('mixed', false, 16, 3, [0, 1493.5], [0, 1584.8]),
  real('flows', false, 1, 3, [0, 124.4], [0, 166.8]),
  real('flows', true, 8, 1, [10, 3773.8], [50, 1670]),
  real('flows', true, 16, 1, [86, 6449.2], [71, 7811.3]),
  real('flows', false, 8, 3, [0, 737.2], [0, 754.4]),
  real('flows', false, 16, 3, [0, 1896.2], [0, 1746.1]),
  real('syncs', false, 1, 3, [0, 59.8], [0, 56.3]),
  real('syncs', true, 8, 1, [0, 812.2], [7, 594.6]),
  real('syncs', true, 16, 1, [1, 2230.7], [52, 1336.6]),
  real('syncs', false, 8, 3, [0, 474.3], [0, 381.5]),
  real('syncs', false, 16, 3, [0, 729.9], [0, 657.9]),
  real('duplicates', false, 1, 3, [0, 48.8], [0, 123.1]),
  real('duplicates', false, 8, 3, [0, 300.4], [0, 666.6]),
  real('duplicates', false, 16, 3, [0, 598.6], [0, 1066.7]),
];

/** Which did better: fewer failed deliveries, then the lower p90. */
export function leaderOf(ours: RealLoadFigure, perResource: RealLoadFigure): 'ours' | 'per-resource' {
  if (ours.failed !== perResource.failed) return ours.failed < perResource.failed ? 'ours' : 'per-resource';
  return ours.p90Ms <= perResource.p90Ms ? 'ours' : 'per-resource';
}

/** In flight at once: the concurrencies measured on a real server (docs/fidelity-ledger.md, "Last check"). */
export const LOAD_CONCURRENCIES = [1, 8, 16] as const;

/**
 * The GIN `fastupdate` settings a concurrency is played under: one delivery at a time, no two
 * transactions overlap, so the setting changes nothing (TX-9, TX-11) and it is played once, off.
 */
export function fastUpdateSettings(concurrency: number): readonly boolean[] {
  return concurrency === 1 ? [false] : [true, false];
}

let run = 0;

/**
 * Per patient: the flow, then one records sync per connected source, in the order Medblocks sends them.
 * Created now, as Medblocks' deliveries are: an event older than the bots' escalation age
 * (ESCALATE_AFTER_MS) that keeps failing is quarantined and answered 200, which would hide a
 * failure from the failed count.
 */
export function loadWorkload(patients: number, connectionsPerFlow: number, now = Date.now()): LoadDelivery[] {
  run++;
  const deliveries: LoadDelivery[] = [];
  let tick = 0;
  const createdAt = (): string => new Date(now + tick++).toISOString();
  for (let p = 0; p < patients; p++) {
    const patientId = `load_${String(run)}_${String(p)}`;
    const sources = Array.from({ length: connectionsPerFlow }, (_, i) => `fhirsrc_load${String(i)}`);
    deliveries.push({
      event: patientFlowCompleted(
        {
          id: `pf_${patientId}`,
          patient_id: patientId,
          connections: sources.map((source, i) =>
            connection({ id: `conn_${patientId}_${String(i)}`, connection_id: source })
          ),
        },
        { created_at: createdAt() }
      ),
    });
    for (const source of sources) {
      deliveries.push({
        event: recordsSyncCompleted({ patient_id: patientId, connection_id: source }, { created_at: createdAt() }),
      });
    }
  }
  return deliveries;
}

/** What a scenario plays: deliveries applied first and not measured, then the measured ones. */
export interface ScenarioWorkload {
  readonly warmup: readonly LoadDelivery[];
  readonly measured: readonly LoadDelivery[];
}

/**
 * The scenario's deliveries, sized as the real-server runs were for 30 patients: 90 flows of new
 * patients; 6 records syncs for each of 30 patients whose flow (6 connections) was applied first,
 * patient by patient; 90 applied flows resent once (the same bytes, a fresh signature).
 */
export function scenarioWorkload(
  scenario: LoadScenario,
  patients: number,
  connectionsPerFlow: number,
  now = Date.now()
): ScenarioWorkload {
  if (scenario === 'mixed') return { warmup: [], measured: loadWorkload(patients, connectionsPerFlow, now) };
  const onlyFlows = (mixed: readonly LoadDelivery[]): LoadDelivery[] =>
    mixed.filter((d) => d.event.type !== 'records.sync.completed');
  if (scenario === 'flows') {
    const flows = onlyFlows(loadWorkload(3 * patients, connectionsPerFlow, now));
    return { warmup: [], measured: flows };
  }
  if (scenario === 'duplicates') {
    const flows = onlyFlows(loadWorkload(3 * patients, connectionsPerFlow, now));
    return { warmup: flows, measured: flows };
  }
  const mixed = loadWorkload(patients, 6, now);
  return { warmup: onlyFlows(mixed), measured: mixed.filter((d) => d.event.type === 'records.sync.completed') };
}

/**
 * Why a delivery counts as failed, or undefined: an answer outside 2xx (Medblocks retries it), or a
 * 2xx quarantine (not applied: it waits for an operator's redelivery).
 */
export function failureOf(result: { status: number; answer: string }): string | undefined {
  if (result.status < 200 || result.status > 299) return String(result.status);
  return /"status"\s*:\s*"quarantined/.test(result.answer) ? `${String(result.status)} quarantined` : undefined;
}

/** Plays the workload through a fresh emulator (same empty store for both implementations). */
export async function measureLoad(
  implementation: LoadRow['implementation'],
  options: LoadOptions = LOAD_DEFAULTS,
  root = process.cwd()
): Promise<LoadRow> {
  const emulator: RunningEmulator = await startBenchEmulator(
    options.fhirLatencyMs,
    root,
    options.transactionMs,
    options.ginFastUpdate,
    options.serverWork
  );
  try {
    const { warmup, measured } = scenarioWorkload(options.scenario, options.patients, options.connectionsPerFlow);
    const target = (delivery: LoadDelivery) =>
      emulator.bot(implementation === 'ours' ? botForEvent(delivery.event) : NAIVE_BOT_NAME);
    const play = async (deliveries: readonly LoadDelivery[], concurrency: number) => {
      const results: { delivery: LoadDelivery; ms: number; failed: string | undefined }[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < deliveries.length) {
          const delivery = deliveries[next++];
          if (!delivery) break;
          const bot = target(delivery);
          const result = await postSigned(bot.webhookUrl, bot.secret ?? '', serialise(delivery.event));
          results.push({ delivery, ms: result.ms, failed: failureOf(result) });
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      return results;
    };
    // The warmup is applied as Medblocks would get it applied: what failed is sent again.
    let unapplied = warmup;
    for (let attempt = 0; unapplied.length > 0; attempt++) {
      if (attempt === 5) throw new Error(`load warmup: ${String(unapplied.length)} deliveries never applied`);
      unapplied = (await play(unapplied, Math.min(4, options.concurrency)))
        .filter((r) => r.failed)
        .map((r) => r.delivery);
    }
    const requestsBefore = emulator.store.requests;
    const busyBefore = emulator.store.cores?.served.busyMs ?? 0;
    const conflictsBefore = emulator.store.conflicts.failures;
    const results = await play(measured, options.concurrency);
    const samples = results.map((r) => r.ms);
    const failureStatuses: Record<string, number> = {};
    for (const { failed } of results) {
      if (failed) failureStatuses[failed] = (failureStatuses[failed] ?? 0) + 1;
    }
    samples.sort((a, b) => a - b);
    return {
      scenario: options.scenario,
      implementation,
      concurrency: options.concurrency,
      ginFastUpdate: options.ginFastUpdate,
      deliveries: measured.length,
      failures: Object.values(failureStatuses).reduce((a, b) => a + b, 0),
      failureStatuses,
      p50Ms: percentile(samples, 50),
      p90Ms: percentile(samples, 90),
      p99Ms: percentile(samples, 99),
      fhirRequestsPerDelivery: (emulator.store.requests - requestsBefore) / measured.length,
      serializationFailures: emulator.store.conflicts.failures - conflictsBefore,
      ...(emulator.store.cores
        ? { serverCpuMsPerDelivery: (emulator.store.cores.served.busyMs - busyBefore) / measured.length }
        : {}),
    };
  } finally {
    await emulator.close();
  }
}
