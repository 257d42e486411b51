// CPU time per delivery for what the bot does besides waiting on FHIR: verify the signature, parse
// and validate the body, and plan the writes against the state the batch read returned.
// Synchronous work, timed per iteration with performance.now (p50, p99) and over the whole loop
// with process.cpuUsage (mean CPU per delivery).
import { performance } from 'node:perf_hooks';
import { botForEvent, REGISTRY } from '../../runtime/registry';
import { receiveDelivery } from '../../runtime/receive';
import { medblocksEventHandler as handler } from '../../runtime/events';
import type { MedblocksEvent } from '../../runtime/events';
import { readState } from '../../runtime/store/read';
import { medplumBotEvent, World } from '../harness/world';
import type { BenchScenario } from './scenarios';

export interface CpuRow {
  readonly label: string;
  readonly iterations: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** process.cpuUsage (user + system) over the loop, divided by the iterations. */
  readonly meanCpuMs: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

export async function measureCpu(scenarios: readonly BenchScenario[], iterations: number): Promise<CpuRow[]> {
  const rows: CpuRow[] = [];
  for (const scenario of scenarios) {
    const world = new World();
    for (const event of scenario.before) {
      await world.bot(botForEvent(event)).deliver(event);
    }
    const spec = REGISTRY[botForEvent(scenario.target)];
    const signedAt = Date.parse(scenario.target.created_at);
    const botEvent = medplumBotEvent(scenario.target, { signedAt, secretName: spec.secretName });
    // The state a real delivery would plan against: one batch read, done once, outside the timing.
    const state = await readState(world.admin, handler.reads(scenario.target));
    const now = (): number => signedAt;
    let uuid = 0;
    const once = (): void => {
      const { event, settings } = receiveDelivery<MedblocksEvent>(botEvent, spec, { now });
      const reads = handler.reads(event);
      if (reads.eventId !== event.id) throw new Error('unexpected read request');
      handler.plan(event, state, {
        stamp: { at: event.created_at, eventId: event.id },
        settings,
        newUuid: () => `00000000-0000-4000-8000-${String(++uuid).padStart(12, '0')}`,
        appliedAt: event.created_at,
      });
    };
    for (let i = 0; i < Math.min(200, iterations); i++) once();
    const samples: number[] = [];
    const cpuStart = process.cpuUsage();
    for (let i = 0; i < iterations; i++) {
      const start = performance.now();
      once();
      samples.push(performance.now() - start);
    }
    const cpu = process.cpuUsage(cpuStart);
    samples.sort((a, b) => a - b);
    rows.push({
      label: scenario.label,
      iterations,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
      meanCpuMs: (cpu.user + cpu.system) / 1000 / iterations,
    });
  }
  return rows;
}
