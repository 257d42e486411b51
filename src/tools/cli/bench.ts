// `npm run bench [-- --json] [--quick]`: FHIR requests per delivery (ours vs the per-resource
// pattern), CPU for verify + parse + plan, bundle sizes, end-to-end latency through the emulator
// with simulated FHIR latency, and a mixed load at concurrency 8 and 16 with serialisation conflicts
// modelled — each figure against its budget. Exits 1 when a budget is
// missed. Everything runs in-process on 127.0.0.1.
import { availableParallelism } from 'node:os';
import {
  bundleBudgets,
  cpuBudgets,
  formatReport,
  importBudgets,
  latencyBudgets,
  loadBudgets,
  loadRankingBudgets,
  requestBudgets,
} from '../bench/report';
import { measureImport } from '../bench/import';
import type { ImportRow } from '../bench/import';
import {
  fastUpdateSettings,
  LOAD_CONCURRENCIES,
  LOAD_DEFAULTS,
  LOAD_SCENARIOS,
  measureLoad,
  REAL_SERVER_LOAD,
} from '../bench/load';
import type { LoadRow } from '../bench/load';
import type { BenchResult } from '../bench/report';
import { measureCpu } from '../bench/cpu';
import { measureLatency, startBenchEmulator } from '../bench/latency';
import type { LatencyRow } from '../bench/latency';
import { countRequests } from '../bench/requests';
import { measureWorldLatency } from '../bench/latency-world';
import { benchScenarios } from '../bench/scenarios';
import { indexFhirDefinitions } from '../emulator/definitions';
import { buildBots } from '../bundling';
import { CONSOLE_IO, exitWith, isEntryPoint, runCommand } from './args';
import type { CommandIo, CommandSpec } from './args';
import { buildBeforeRun } from './prebuild';

export interface BenchOptions {
  /** Fewer iterations and deliveries (a smoke run). */
  readonly quick?: boolean;
  readonly fhirLatencyMs?: number;
  readonly progress?: (line: string) => void;
}

export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const progress = options.progress ?? (() => undefined);
  const fhirLatencyMs = options.fhirLatencyMs ?? 20;
  indexFhirDefinitions();
  const scenarios = benchScenarios();

  progress('counting FHIR requests…');
  const requests = await countRequests(scenarios);

  progress('measuring verify + parse + plan…');
  const cpu = await measureCpu(scenarios, options.quick ? 300 : 3000);

  progress('building bundles…');
  const bundles = await buildBots();

  progress(`end to end through the emulator (${String(fhirLatencyMs)} ms per FHIR request)…`);
  const latency: LatencyRow[] = [];
  for (const implementation of ['ours', 'per-resource'] as const) {
    for (const concurrency of [1, 32]) {
      // A fresh emulator per row: its in-memory store is searched by linear scan, so every row
      // starts from the same (empty) store and ours and the per-resource pattern compare fairly.
      const emulator = await startBenchEmulator(fhirLatencyMs);
      try {
        const deliveries = concurrency === 1 ? (options.quick ? 10 : 40) : options.quick ? 32 : 96;
        latency.push(await measureLatency(emulator, implementation, concurrency, deliveries));
      } finally {
        await emulator.close();
      }
    }
  }

  progress(
    `the same on the test World, a fresh store per delivery, ${String(fhirLatencyMs)} ms per FHIR request (diagnostic)…`
  );
  const worldLatency: LatencyRow[] = [];
  for (const implementation of ['ours', 'per-resource'] as const) {
    for (const concurrency of [1, 32]) {
      const deliveries = concurrency === 1 ? (options.quick ? 10 : 40) : options.quick ? 32 : 96;
      worldLatency.push(await measureWorldLatency(implementation, concurrency, deliveries, fhirLatencyMs));
    }
  }

  const loadOptions = options.quick ? { ...LOAD_DEFAULTS, patients: 10 } : LOAD_DEFAULTS;
  progress(
    `under load with conflicts and the server's CPU modelled: ${String(loadOptions.patients)} patients, concurrency ${LOAD_CONCURRENCIES.join(', ')}…`
  );
  const loadRows: LoadRow[] = [];
  // Each workload with Postgres' default first, then GIN fastupdate off, as docs/going-live.md advises a busy server.
  for (const scenario of LOAD_SCENARIOS) {
    for (const ginFastUpdate of [true, false]) {
      for (const concurrency of LOAD_CONCURRENCIES.filter((c) => fastUpdateSettings(c).includes(ginFastUpdate))) {
        for (const implementation of ['ours', 'per-resource'] as const) {
          loadRows.push(await measureLoad(implementation, { ...loadOptions, scenario, concurrency, ginFastUpdate }));
        }
      }
    }
  }

  const importRecords = options.quick ? 60 : 200;
  progress(`the records import: ${String(importRecords)} records, ours and per-resource…`);
  const importRows: ImportRow[] = [];
  for (const implementation of ['ours', 'per-resource'] as const) {
    importRows.push(await measureImport(implementation, importRecords, fhirLatencyMs));
  }

  return {
    environment: {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cpus: availableParallelism(),
    },
    fhirLatencyMs,
    requests,
    cpu,
    bundles,
    latency,
    worldLatency,
    load: { options: loadOptions, rows: loadRows, real: options.quick ? [] : REAL_SERVER_LOAD },
    import: importRows,
    budgets: [
      ...requestBudgets(requests),
      ...cpuBudgets(cpu),
      ...bundleBudgets(bundles),
      ...latencyBudgets(latency, worldLatency),
      ...loadBudgets(loadRows),
      // The real figures are of the full-size workloads: a quick run's smaller ones are not compared.
      ...loadRankingBudgets(loadRows, options.quick ? [] : REAL_SERVER_LOAD),
      ...importBudgets(importRows),
    ],
  };
}

/**
 * `--emulator-growth`: ours through one emulator with no simulated latency, in consecutive batches,
 * to show how the emulator's own cost per delivery grows with its in-memory store.
 */
async function emulatorGrowth(batches: number, size: number): Promise<void> {
  indexFhirDefinitions();
  const emulator = await startBenchEmulator(0);
  try {
    for (let batch = 1; batch <= batches; batch++) {
      const row = await measureLatency(emulator, 'ours', 1, size);
      const stored = (await emulator.store.all('Patient')).length;
      console.log(
        `batch ${String(batch)}: ${String(size)} deliveries at 0 ms FHIR latency, p50 ${row.p50Ms.toFixed(1)} ms, p99 ${row.p99Ms.toFixed(1)} ms; Patients stored after it: ${String(stored)}`
      );
    }
  } finally {
    await emulator.close();
  }
}

export const BENCH_SPEC = {
  name: 'bench',
  summary:
    'measures, against budgets: FHIR requests per delivery (ours vs the per-resource pattern), CPU for verify + parse + plan, bundle sizes (it builds dist/ from bots/ first), end-to-end latency through the emulator with simulated FHIR latency, load at concurrency 1, 8 and 16 (a mixed workload, and flows, records syncs and duplicates alone) with serialisation conflicts and the CPU of a 2-core server modelled, each beside what a real Medplum did with it and judged by whether the model ranks ours and the per-resource pattern as the real server did, and the records import (ours vs a per-resource import). Everything runs in-process on 127.0.0.1; about 10 minutes (--quick: about 3, without the real-server comparison, whose workloads it shrinks).',
  options: {
    quick: { type: 'boolean', description: 'fewer iterations and deliveries (a smoke run)' },
    json: { type: 'boolean', description: 'the result as JSON on stdout (progress lines are not printed)' },
    'emulator-growth': {
      type: 'boolean',
      description: "instead: how the emulator's own cost per delivery grows with its in-memory store",
    },
  },
  examples: [
    'npm run bench',
    'npm run bench -- --quick',
    "npm run --silent bench -- --json > bench.json   (--silent: npm's header lines would make the file invalid JSON)",
  ],
  exitCodes: { 0: 'every budget met', 1: 'a budget was missed (the report marks it)' },
} as const satisfies CommandSpec;

/** Runs `npm run bench` in-process; returns the exit code. */
export function runBenchCommand(argv: readonly string[], io: CommandIo = CONSOLE_IO): Promise<number> {
  return runCommand(
    BENCH_SPEC,
    argv,
    async (values) => {
      if (values['emulator-growth']) {
        await buildBeforeRun();
        await emulatorGrowth(4, 25);
        return 0;
      }
      const result = await runBench({
        quick: values.quick,
        progress: (line) => {
          if (!values.json) io.printError(line);
        },
      });
      io.print(values.json ? JSON.stringify(result, null, 2) : formatReport(result));
      return result.budgets.every((b) => b.pass) ? 0 : 1;
    },
    io
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runBenchCommand(process.argv.slice(2)));
}
