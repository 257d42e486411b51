// Load with serialisation conflicts modelled (docs/fidelity-ledger.md TX-4): what a real server was
// seen to do at concurrency 8. Each patient connects 5 EHRs in one flow, then Medblocks reports a
// records sync per source: 30 patients, 180 deliveries, 8 in flight at a time, through the emulator
// over HTTP with simulated FHIR latency and SERIALIZABLE transactions that hold their place and
// conflict per resource type. Ours beside the per-resource pattern, on the same workload.
import { botForEvent } from '../../runtime/registry';
import type { RunningEmulator } from '../emulator/server';
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
}

export interface LoadOptions {
  readonly patients: number;
  readonly connectionsPerFlow: number;
  readonly concurrency: number;
  readonly fhirLatencyMs: number;
  readonly transactionMs: number;
  /** The server's GIN `fastupdate` (ledger TX-9, TX-11): on, Postgres' default, or off, as docs/going-live.md advises. */
  readonly ginFastUpdate: boolean;
}

export const LOAD_DEFAULTS: LoadOptions = {
  patients: 30,
  connectionsPerFlow: 5,
  concurrency: 8,
  fhirLatencyMs: 20,
  transactionMs: 10,
  ginFastUpdate: true,
};

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
    options.ginFastUpdate
  );
  try {
    const workload = loadWorkload(options.patients, options.connectionsPerFlow);
    const target = (delivery: LoadDelivery) =>
      emulator.bot(implementation === 'ours' ? botForEvent(delivery.event) : NAIVE_BOT_NAME);
    const samples: number[] = [];
    const failureStatuses: Record<string, number> = {};
    let next = 0;
    const requestsBefore = emulator.store.requests;
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
    };
  } finally {
    await emulator.close();
  }
}
