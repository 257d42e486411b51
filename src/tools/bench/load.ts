// Load with serialisation conflicts and the server's CPU modelled (docs/fidelity-ledger.md TX-4,
// TX-12). Each patient connects 5 EHRs in one flow, then Medblocks reports a records sync per
// source: 30 patients, 180 deliveries, 8 or 16 in flight at a time, through the emulator over HTTP,
// every bot run and FHIR request waiting for a core of a modelled 2-core server (fitted to a real
// one), SERIALIZABLE transactions holding their place and conflicting as Postgres' GIN setting
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

export interface LoadRow {
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
 * over five workloads, least squares over the work the emulator counts for the same deliveries.
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
  readonly ginFastUpdate: boolean;
  readonly concurrency: number;
  readonly ours: RealLoadFigure;
  readonly perResource: RealLoadFigure;
}

/**
 * This workload (`loadWorkload`, 30 patients, 180 deliveries) on a real self-hosted Medplum 5.1.29,
 * 2 cores, loopback, Postgres 15 (ledger TX-12, 2026-12-04): the median of 3 interleaved rounds per
 * row. What the model's ranking is checked against (`loadRankingBudgets`).
 */
export const REAL_SERVER_LOAD: readonly RealLoadRow[] = [
  { ginFastUpdate: true, concurrency: 8, ours: { failed: 0, p90Ms: 812.6 }, perResource: { failed: 5, p90Ms: 893.6 } },
  {
    ginFastUpdate: true,
    concurrency: 16,
    ours: { failed: 4, p90Ms: 3170.2 },
    perResource: { failed: 39, p90Ms: 4898.9 },
  },
  { ginFastUpdate: false, concurrency: 8, ours: { failed: 0, p90Ms: 615.5 }, perResource: { failed: 0, p90Ms: 858.2 } },
  {
    ginFastUpdate: false,
    concurrency: 16,
    ours: { failed: 0, p90Ms: 1493.5 },
    perResource: { failed: 0, p90Ms: 1584.8 },
  },
];

/** Which did better: fewer failed deliveries, then the lower p90. */
export function leaderOf(ours: RealLoadFigure, perResource: RealLoadFigure): 'ours' | 'per-resource' {
  if (ours.failed !== perResource.failed) return ours.failed < perResource.failed ? 'ours' : 'per-resource';
  return ours.p90Ms <= perResource.p90Ms ? 'ours' : 'per-resource';
}

/** In flight at once: the concurrencies measured on a real server (docs/fidelity-ledger.md, "Last check"). */
export const LOAD_CONCURRENCIES = [8, 16] as const;

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
    const workload = loadWorkload(options.patients, options.connectionsPerFlow);
    const target = (delivery: LoadDelivery) =>
      emulator.bot(implementation === 'ours' ? botForEvent(delivery.event) : NAIVE_BOT_NAME);
    const samples: number[] = [];
    const failureStatuses: Record<string, number> = {};
    let next = 0;
    const requestsBefore = emulator.store.requests;
    const busyBefore = emulator.store.cores?.served.busyMs ?? 0;
    const worker = async (): Promise<void> => {
      while (next < workload.length) {
        const delivery = workload[next++];
        if (!delivery) break;
        const bot = target(delivery);
        const result = await postSigned(bot.webhookUrl, bot.secret ?? '', serialise(delivery.event));
        samples.push(result.ms);
        const failed = failureOf(result);
        if (failed) failureStatuses[failed] = (failureStatuses[failed] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    samples.sort((a, b) => a - b);
    return {
      implementation,
      concurrency: options.concurrency,
      ginFastUpdate: options.ginFastUpdate,
      deliveries: workload.length,
      failures: Object.values(failureStatuses).reduce((a, b) => a + b, 0),
      failureStatuses,
      p50Ms: percentile(samples, 50),
      p90Ms: percentile(samples, 90),
      p99Ms: percentile(samples, 99),
      fhirRequestsPerDelivery: (emulator.store.requests - requestsBefore) / workload.length,
      serializationFailures: emulator.store.conflicts.failures,
      ...(emulator.store.cores
        ? { serverCpuMsPerDelivery: (emulator.store.cores.served.busyMs - busyBefore) / workload.length }
        : {}),
    };
  } finally {
    await emulator.close();
  }
}
