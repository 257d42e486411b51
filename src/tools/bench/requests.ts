// FHIR requests per delivery, counted on the test World (MockClient over one in-memory store,
// every request checked against the bot's AccessPolicy and counted): ours and the per-resource
// pattern, for a new delivery and for its duplicate.
import { readSettings } from '../../runtime/settings';
import { World } from '../harness/world';
import { medblocksEventHandler as handler } from '../../runtime/events';
import { naiveApply, PER_RESOURCE_POLICY } from './naive';
import type { BenchScenario } from './scenarios';
import { botForEvent } from '../../runtime/registry';

export interface RequestCounts {
  readonly new: number;
  readonly duplicate: number;
}

export interface RequestRow {
  readonly label: string;
  readonly type: string;
  readonly connections: number | undefined;
  readonly ours: RequestCounts;
  readonly perResource: RequestCounts;
}

async function prepared(scenario: BenchScenario, secrets: Record<string, string>): Promise<World> {
  const world = new World({ secrets });
  for (const event of scenario.before) {
    await world.bot(botForEvent(event)).deliver(event);
  }
  return world;
}

async function ours(scenario: BenchScenario, secrets: Record<string, string>): Promise<RequestCounts> {
  const world = await prepared(scenario, secrets);
  const bot = world.bot(botForEvent(scenario.target));
  const first = await bot.deliver(scenario.target);
  if (first.status !== 'processed') throw new Error(`${scenario.label}: expected processed, got ${first.status}`);
  const fresh = bot.lastRequestCount();
  const second = await bot.deliver(scenario.target);
  if (second.status !== 'duplicate') throw new Error(`${scenario.label}: expected duplicate, got ${second.status}`);
  return { new: fresh, duplicate: bot.lastRequestCount() };
}

async function perResource(scenario: BenchScenario): Promise<RequestCounts> {
  const world = await prepared(scenario, {});
  const bot = world.bot(botForEvent(scenario.target), { policy: PER_RESOURCE_POLICY });
  const settings = readSettings({});
  const fresh = await naiveApply(bot.medplum, scenario.target, handler, settings);
  const duplicate = await naiveApply(bot.medplum, scenario.target, handler, settings);
  if (bot.requests.length !== fresh + duplicate) throw new Error('request count mismatch');
  return { new: fresh, duplicate };
}

export async function countRequests(scenarios: readonly BenchScenario[]): Promise<RequestRow[]> {
  const rows: RequestRow[] = [];
  for (const scenario of scenarios) {
    rows.push({
      label: scenario.label,
      type: scenario.type,
      connections: scenario.connections,
      ours: await ours(scenario, {}),
      perResource: await perResource(scenario),
    });
  }
  return rows;
}
