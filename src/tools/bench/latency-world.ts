// A diagnostic beside the emulator figures: the same new-flow delivery on the test World (MockClient
// over a fresh, empty in-memory store per delivery), with a fixed delay awaited before every FHIR
// request through the World's fault hook. No HTTP, no vm sandbox, no store growth: what is left is
// the bot's own work plus the simulated round trips. Both implementations run under the same
// type-only policy (no criteria, hidden fields or constraints): evaluating our policy is the server's CPU (about half of a delivery's
// 3 ms on the World), and the constraints themselves are pinned by the policy tests.
import { performance } from 'node:perf_hooks';
import type { AccessPolicy } from '@medplum/fhirtypes';
import { setTimeout as sleep } from 'node:timers/promises';
import { readSettings } from '../../runtime/settings';
import { World } from '../harness/world';
import { percentile } from './cpu';
import type { LatencyRow } from './latency';
import { medblocksEventHandler } from '../../runtime/events';
import { naiveApply, PER_RESOURCE_POLICY } from './naive';
import { benchFlow } from './scenarios';

/** Every type either implementation touches, without criteria or constraints. */
const TYPE_ONLY_POLICY: AccessPolicy = {
  ...PER_RESOURCE_POLICY,
  resource: [...(PER_RESOURCE_POLICY.resource ?? []), { resourceType: 'Organization' }],
};

export async function measureWorldLatency(
  implementation: LatencyRow['implementation'],
  concurrency: number,
  deliveries: number,
  fhirLatencyMs: number,
  connections = 1
): Promise<LatencyRow> {
  const settings = readSettings({});
  let requests = 0;
  const one = async (): Promise<number> => {
    const event = benchFlow(connections);
    const world = new World();
    const faults = async (): Promise<undefined> => {
      requests++;
      await sleep(fhirLatencyMs);
      return undefined;
    };
    const start = performance.now();
    if (implementation === 'ours') {
      // The bot's clock must be real here: the signature is made at the event's created_at.
      await world.bot('medblocks-patient-flow-completed', { faults, policy: TYPE_ONLY_POLICY }).deliver(event);
    } else {
      const bot = world.bot('medblocks-patient-flow-completed', { faults, policy: TYPE_ONLY_POLICY });
      await naiveApply(bot.medplum, event, medblocksEventHandler, settings);
    }
    return performance.now() - start;
  };
  for (let i = 0; i < 3; i++) await one();
  requests = 0;
  const samples: number[] = [];
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < deliveries) {
      started++;
      samples.push(await one());
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  samples.sort((a, b) => a - b);
  return {
    implementation,
    concurrency,
    deliveries,
    failures: 0,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    fhirRequestsPerDelivery: requests / deliveries,
  };
}
