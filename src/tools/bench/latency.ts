// End-to-end latency through the emulator: a signed HTTP POST to /webhook/:id on loopback, the
// bundle run in the vm sandbox, every FHIR request it makes delayed by the emulator's simulated
// network latency, until the answer is back. Ours and the per-resource pattern, at a given
// concurrency, each delivery a new patient_flow.completed for a new patient.
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { discoverBots } from '../emulator/project';
import type { EmulatedBotSpec } from '../emulator/project';
import { startEmulator } from '../emulator/server';
import type { RunningEmulator } from '../emulator/server';
import type { ServerWorkModel } from '../emulator/server-work';
import { serialise } from '../fixtures/events';
import { signatureHeader } from '../../runtime/medblocks/signature';
import { bundleToString } from '../bundling';
import { PER_RESOURCE_POLICY } from './naive';
import { percentile } from './cpu';
import { NAIVE_BOT_NAME, NAIVE_SECRET_NAME } from './naive-bot';
import { benchFlow } from './scenarios';

export interface LatencyRow {
  readonly implementation: 'ours' | 'per-resource';
  readonly concurrency: number;
  readonly deliveries: number;
  readonly failures: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** FHIR requests the emulator answered, per delivery. */
  readonly fhirRequestsPerDelivery: number;
  /**
   * CPU of this whole process (client, emulator, sandbox, bot) per delivery during the run. At
   * concurrency N on one event loop, N deliveries queue for about N times this.
   */
  readonly cpuMsPerDelivery?: number;
}

export async function startBenchEmulator(
  latencyMs: number,
  root = process.cwd(),
  transactionMs = 0,
  ginFastUpdate = true,
  serverWork?: ServerWorkModel
): Promise<RunningEmulator> {
  const naive: EmulatedBotSpec = {
    name: NAIVE_BOT_NAME,
    code: await bundleToString(join(root, 'src', 'tools', 'bench', 'naive-bot.ts')),
    policy: PER_RESOURCE_POLICY,
    publicWebhook: true,
    rawBody: true,
    secretName: NAIVE_SECRET_NAME,
  };
  return startEmulator({ latencyMs, transactionMs, ginFastUpdate, serverWork, bots: [...discoverBots(root), naive] });
}

/** One delivery signed as Medblocks signs it, timed from send to the answer's last byte. */
export async function postSigned(
  url: string,
  secret: string,
  body: string
): Promise<{ ms: number; status: number; answer: string }> {
  const start = performance.now();
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'medblocks-signature': signatureHeader(secret, Math.floor(Date.now() / 1000), body),
    },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const answer = await response.text();
  return { ms: performance.now() - start, status: response.status, answer };
}

export async function measureLatency(
  emulator: RunningEmulator,
  implementation: LatencyRow['implementation'],
  concurrency: number,
  deliveries: number,
  connections = 1
): Promise<LatencyRow> {
  const bot = emulator.bot(implementation === 'ours' ? 'medblocks-patient-flow-completed' : NAIVE_BOT_NAME);
  const secret = bot.secret ?? '';
  // Warm up (first compilation of the bundle, JIT), not measured.
  for (let i = 0; i < 3; i++) await postSigned(bot.webhookUrl, secret, serialise(benchFlow(connections)));
  const bodies = Array.from({ length: deliveries }, () => serialise(benchFlow(connections)));
  const samples: number[] = [];
  let failures = 0;
  let next = 0;
  const requestsBefore = emulator.store.requests;
  const cpuBefore = process.cpuUsage();
  const worker = async (): Promise<void> => {
    while (next < bodies.length) {
      const body = bodies[next++] ?? '';
      const result = await postSigned(bot.webhookUrl, secret, body);
      samples.push(result.ms);
      if (result.status < 200 || result.status > 299) failures++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const cpu = process.cpuUsage(cpuBefore);
  samples.sort((a, b) => a - b);
  return {
    cpuMsPerDelivery: (cpu.user + cpu.system) / 1000 / deliveries,
    implementation,
    concurrency,
    deliveries,
    failures,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    fhirRequestsPerDelivery: (emulator.store.requests - requestsBefore) / deliveries,
  };
}
