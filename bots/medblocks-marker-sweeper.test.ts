import { readFileSync } from 'node:fs';
import type { BotEvent } from '@medplum/core';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import type { AccessPolicy, Basic, Bundle, ProjectSetting } from '@medplum/fhirtypes';
import { MockClient, MockFetchClient } from '@medplum/mock';
import { describe, expect, it } from 'vitest';
import { withAccessPolicy } from '../src/tools/emulator/access-policy-repository';
import type { PolicyDecision } from '../src/tools/emulator/access-policy-repository';
import { buildMarker } from '../src/runtime/fhir/marker';
import { SETTING_NAMES } from '../src/runtime/settings';
import { createSweeper } from '../src/runtime/sweeper/bot';
import { retentionCutoff } from '../src/runtime/sweeper/plan';
import { handler } from './medblocks-marker-sweeper';

const NOW = Date.parse('2026-08-01T03:00:00.000Z');
const policy = JSON.parse(
  readFileSync(new URL('../access-policies/medblocks-marker-sweeper.json', import.meta.url), 'utf8')
) as AccessPolicy;

function client(repo: MemoryRepository, router: FhirRouter): MockClient {
  const fetchClient = new MockFetchClient(router, repo, 'https://example.com/', { seedDefaultData: false });
  fetchClient.initialized = true;
  return new MockClient({ mockFetchOverride: { client: fetchClient, router, repo } });
}

async function setup(markerDates: string[]): Promise<{
  repo: MemoryRepository;
  sweeperClient: MockClient;
  decisions: PolicyDecision[];
  remaining: () => Promise<Basic[]>;
}> {
  const repo = new MemoryRepository();
  const router = new FhirRouter();
  const admin = client(repo, router);
  const patient = await admin.createResource({ resourceType: 'Patient' });
  let n = 0;
  for (const date of markerDates) {
    n++;
    const id = `evt_01J9YR9N3X4VZ6P2K5RH7M${String(n).padStart(4, '0')}`;
    await admin.createResource(
      buildMarker(id, 'records.sync.completed', `${date}T10:00:00.000Z`, { reference: `Patient/${patient.id}` })
    );
  }
  // An old Basic that is not a marker: outside the sweeper's policy and its purpose.
  await admin.createResource<Basic>({
    resourceType: 'Basic',
    code: { coding: [{ system: 'http://example.com/other', code: 'note' }] },
    created: '2020-01-01',
  });
  const decisions: PolicyDecision[] = [];
  const sweeperClient = client(
    withAccessPolicy(repo, policy, (d) => decisions.push(d)),
    router
  );
  const remaining = async (): Promise<Basic[]> => {
    const bundle = (await repo.search({ resourceType: 'Basic' })) as Bundle<Basic>;
    return (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
  };
  return { repo, sweeperClient, decisions, remaining };
}

function botEvent(secrets: Record<string, string> = {}): BotEvent {
  const settings: Record<string, ProjectSetting> = {};
  for (const [name, valueString] of Object.entries(secrets)) settings[name] = { name, valueString };
  return { bot: { reference: 'Bot/sweeper' }, contentType: 'application/json', input: {}, secrets: settings };
}

describe('medblocks-marker-sweeper', () => {
  it('deletes markers older than 90 days by default and keeps newer markers and other Basics', async () => {
    // Cut-off for NOW and 90 days is 2026-05-03: markers dated before it are expired.
    expect(retentionCutoff(NOW, 90)).toBe('2026-05-03');
    const { sweeperClient, remaining, decisions } = await setup([
      '2026-01-10',
      '2026-05-02',
      '2026-05-03',
      '2026-07-31',
    ]);
    const logs: string[] = [];
    const sweep = createSweeper({ now: () => NOW, log: (l) => logs.push(l) });
    const summary = await sweep(sweeperClient, botEvent());

    expect(summary).toMatchObject({ status: 'swept', cutoff: '2026-05-03', deleted: 2, failed: 0, more: false });
    const left = await remaining();
    expect(left.map((b) => b.created).sort()).toEqual(['2020-01-01', '2026-05-03', '2026-07-31']);
    expect(decisions.filter((d) => d.grantIndex === undefined)).toEqual([]);
    expect(decisions.some((d) => d.interaction === 'delete')).toBe(true);
    expect(logs).toEqual([
      expect.stringMatching(
        /^medblocks-sweeper cutoff=2026-05-03 outcome=swept deleted=2 failed=0 more=false fhir_requests=\d+ ms=\d+$/
      ),
    ]);
  });

  it('reads the retention from the project secret', async () => {
    const { sweeperClient, remaining } = await setup(['2026-07-20', '2026-07-30']);
    const sweep = createSweeper({ now: () => NOW, log: () => undefined });
    const summary = await sweep(sweeperClient, botEvent({ [SETTING_NAMES.markerRetentionDays]: ' 7 ' }));
    expect(summary).toMatchObject({ cutoff: '2026-07-25', retentionDays: 7, deleted: 1, more: false });
    expect((await remaining()).map((b) => b.created).sort()).toEqual(['2020-01-01', '2026-07-30']);
  });

  it('falls back to 90 days when the secret is not a positive integer', async () => {
    const { sweeperClient } = await setup(['2026-07-20']);
    const sweep = createSweeper({ now: () => NOW, log: () => undefined });
    const summary = await sweep(sweeperClient, botEvent({ [SETTING_NAMES.markerRetentionDays]: '-3' }));
    expect(summary).toMatchObject({ retentionDays: 90, deleted: 0, more: false });
  });

  it('bounds the work of one run and finishes on the next', async () => {
    const dates = Array.from({ length: 7 }, (_, i) => `2025-12-0${i + 1}`);
    const { sweeperClient, remaining } = await setup(dates);
    const sweep = createSweeper({ now: () => NOW, log: () => undefined, limits: { maxDeletions: 5, pageSize: 2 } });

    const first = await sweep(sweeperClient, botEvent());
    expect(first).toMatchObject({ deleted: 5, more: true });
    expect(await remaining()).toHaveLength(3);

    const second = await sweep(sweeperClient, botEvent());
    expect(second).toMatchObject({ deleted: 2, more: false });
    expect((await remaining()).map((b) => b.created)).toEqual(['2020-01-01']);
  });

  it('stops starting pages once the time budget is spent', async () => {
    const { sweeperClient, remaining } = await setup(['2025-12-01', '2025-12-02', '2025-12-03']);
    let clock = NOW;
    const sweep = createSweeper({
      now: () => (clock += 600),
      log: () => undefined,
      limits: { pageSize: 1, budgetMs: 1000 },
    });
    const summary = await sweep(sweeperClient, botEvent());
    expect(summary.more).toBe(true);
    expect(summary.deleted).toBeGreaterThan(0);
    expect(summary.deleted).toBeLessThan(3);
    expect((await remaining()).length).toBeGreaterThan(1);
  });

  it('fails loudly, without PHI, when its policy is missing the delete grant', async () => {
    const { repo } = await setup(['2025-12-01']);
    const searchOnly: AccessPolicy = {
      ...policy,
      resource: [{ resourceType: 'Basic', criteria: policy.resource?.[0]?.criteria, interaction: ['search'] }],
    };
    const logs: string[] = [];
    const sweep = createSweeper({ now: () => NOW, log: (l) => logs.push(l) });
    await expect(sweep(client(withAccessPolicy(repo, searchOnly), new FhirRouter()), botEvent())).rejects.toThrow(
      /Marker sweep stopped: failed:/
    );
    // Named by the failure table, like any other FHIR failure: the refused delete is a 403.
    expect(logs[0]).toMatch(/outcome=failed:access_denied deleted=0 failed=1 more=true/);
    expect(logs[0]).not.toMatch(/Patient|evt_/);
  });

  it('exports the default handler', () => {
    expect(typeof handler).toBe('function');
  });
});
