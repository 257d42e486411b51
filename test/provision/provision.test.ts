import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessPolicy, Bot, ProjectMembership } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BOTS } from '../../src/bot/catalog';
import { runProvision } from '../../src/cli/provision';
import { DEPLOYED_BOTS, SWEEPER_CRON, SWEEPER_NAME } from '../../src/provision/catalog';
import { parseDotEnv } from '../../src/provision/env';
import type { MedplumConfig } from '../../src/provision/plan';
import { ACCESS_TOKEN, CLIENT_SECRET, FakeMedblocks, FakeMedplum, MEDBLOCKS_KEY } from '../support/fake-servers';
import { fakeEnv, makeRoot } from '../support/provision-root';

let medplum: FakeMedplum;
let medblocks: FakeMedblocks;
let root: string;
let cleanup: () => void;

beforeEach(async () => {
  medplum = await new FakeMedplum().start();
  medblocks = await new FakeMedblocks().start();
  ({ root, cleanup } = makeRoot());
});

afterEach(async () => {
  await medplum.stop();
  await medblocks.stop();
  cleanup();
});

async function run(args: string[] = [], withMedblocks = true): Promise<{ code: number; output: string }> {
  const lines: string[] = [];
  const code = await runProvision(args, {
    root,
    env: fakeEnv(medplum.url, withMedblocks ? medblocks.url : undefined),
    print: (l) => lines.push(l),
  });
  return { code, output: lines.join('\n') };
}

function expectNoSecrets(output: string): void {
  const secrets = [CLIENT_SECRET, ACCESS_TOKEN, MEDBLOCKS_KEY, ...medblocks.endpoints.map((e) => e.secret)];
  for (const secret of secrets) expect(output).not.toContain(secret);
  expect(output).not.toMatch(/whsec_/);
}

describe('npm run provision', () => {
  it('first run creates policies, bots, memberships, config, deployments, endpoints and secrets', async () => {
    const { code, output } = await run();
    expect(code).toBe(0);

    expect(medplum.all<AccessPolicy>('AccessPolicy')).toHaveLength(5);
    for (const spec of DEPLOYED_BOTS) {
      const bot = medplum.bot(spec.name);
      const membership = medplum.membership(bot.id);
      const policy = medplum
        .all<AccessPolicy>('AccessPolicy')
        .find((p) => `AccessPolicy/${p.id}` === membership.accessPolicy?.reference);
      const file = JSON.parse(readFileSync(join(root, spec.policyFile), 'utf8')) as AccessPolicy;
      expect(policy?.resource).toEqual(file.resource);
      expect(bot).toMatchObject({
        runtimeVersion: 'awslambda',
        auditEventTrigger: 'always',
        auditEventDestination: ['resource'],
      });
      // What is deployed is exactly the bundle in dist/.
      const binaryId = bot.executableCode?.url?.replace('Binary/', '') ?? '';
      expect((medplum.store.get('Binary')?.get(binaryId) as { data?: string } | undefined)?.data).toBe(
        readFileSync(join(root, spec.dist), 'utf8')
      );
      if (spec.kind === 'webhook') {
        expect(bot).toMatchObject({ publicWebhook: true, rawBody: true, timeout: 4 });
        expect(output).toContain(`${medplum.url}webhook/${membership.id}`);
      }
    }
    expect(medplum.bot(SWEEPER_NAME)).toMatchObject({ cronString: SWEEPER_CRON, publicWebhook: false, timeout: 60 });

    const config = JSON.parse(readFileSync(join(root, 'medplum.config.json'), 'utf8')) as MedplumConfig;
    expect(config.bots?.map((b) => [b.name, b.id])).toEqual(DEPLOYED_BOTS.map((b) => [b.name, medplum.bot(b.name).id]));

    // One Medblocks endpoint per event type, pointing at its bot; its secret stored under the bot's name.
    expect(medblocks.endpoints).toHaveLength(4);
    for (const bot of BOTS) {
      const url = `${medplum.url}webhook/${medplum.membership(medplum.bot(bot.name).id).id}`;
      const endpoint = medblocks.endpoints.find((e) => e.url === url);
      expect(endpoint?.events).toEqual([bot.medblocksEvent]);
      expect(medplum.secrets.find((s) => s.name === bot.secretName)?.valueString).toBe(endpoint?.secret);
    }
    expect(output).toMatch(/Medplum .* \(server 5\.2\.13-abc1234\)/);
    expectNoSecrets(output);
  });

  it('a second run changes nothing and says so', async () => {
    await run();
    const configBefore = readFileSync(join(root, 'medplum.config.json'), 'utf8');
    const medplumCount = medplum.requests.length;
    const medblocksCount = medblocks.requests.length;

    const { code, output } = await run();
    expect(code).toBe(0);
    expect(output).toContain('No changes: everything was already provisioned.');
    expect(
      medplum.requests.slice(medplumCount).filter((r) => r.method !== 'GET' && r.path !== '/oauth2/token')
    ).toEqual([]);
    expect(medblocks.requests.slice(medblocksCount).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(readFileSync(join(root, 'medplum.config.json'), 'utf8')).toBe(configBefore);
    expectNoSecrets(output);
  });

  it('repairs a drifted setup and reports each repair', async () => {
    await run();
    const flow = medplum.bot('medblocks-patient-flow-completed');
    const { rawBody: _raw, ...withoutRawBody } = flow;
    medplum.put<Bot>({ ...withoutRawBody, publicWebhook: false });
    const sync = medplum.bot('medblocks-records-sync-failed');
    const { accessPolicy: _policy, ...membership } = medplum.membership(sync.id);
    medplum.put<ProjectMembership>(membership);
    const refresh = BOTS.find((b) => b.name === 'medblocks-connection-token-refresh-failed');
    medplum.secrets = medplum.secrets.filter((s) => s.name !== refresh?.secretName);
    medblocks.endpoints[2] = {
      ...(medblocks.endpoints[2] ?? { id: '', url: '', events: [], secret: '' }),
      status: 'disabled',
    };
    writeFileSync(
      join(root, 'dist/medblocks-records-sync-completed.js'),
      '"use strict";exports.handler=async()=>"v2";\n'
    );

    const { code, output } = await run();
    expect(code).toBe(0);
    expect(output).toMatch(
      /update\s+Bot\/\S+ \(medblocks-patient-flow-completed\)\s+\(publicWebhook false → true, rawBody unset → true\)/
    );
    expect(output).toMatch(
      /update\s+ProjectMembership\/\S+ \(medblocks-records-sync-failed\)\s+\(no access policy → own policy\)/
    );
    expect(output).toMatch(/re-enable\s+Medblocks endpoint wh_3/);
    expect(output).toMatch(/rotate signing secret\s+Medblocks endpoint wh_2/);
    expect(output).toMatch(/deploy\s+Bot\/\S+ \(medblocks-records-sync-completed\)/);

    expect(medplum.bot('medblocks-patient-flow-completed')).toMatchObject({ publicWebhook: true, rawBody: true });
    expect(medplum.membership(sync.id).accessPolicy?.reference).toMatch(/^AccessPolicy\//);
    expect(medblocks.endpoints.find((e) => e.id === 'wh_3')?.status).toBe('active');
    const rotated = medblocks.endpoints.find((e) => e.id === 'wh_2');
    expect(medplum.secrets.find((s) => s.name === refresh?.secretName)?.valueString).toBe(rotated?.secret);
    // The other secrets are untouched.
    expect(medplum.secrets).toHaveLength(4);
    expectNoSecrets(output);

    expect((await run()).output).toContain('No changes');
  });

  it('--dry-run prints the plan and writes nothing', async () => {
    const { code, output } = await run(['--dry-run']);
    expect(code).toBe(0);
    expect(output).toContain('Dry run: nothing was changed.');
    expect(output).toMatch(/would create\s+AccessPolicy "Medblocks: marker sweeper bot"/);
    expect(output).toMatch(/would create\s+Bot "medblocks-records-sync-failed"/);
    expect(medplum.writes()).toEqual([]);
    expect(medblocks.writes()).toEqual([]);
  });

  it('--runtime vmcontext is applied to existing bots', async () => {
    await run();
    const { output } = await run(['--runtime', 'vmcontext']);
    expect(output).toMatch(/runtimeVersion "awslambda" → "vmcontext"/);
    for (const spec of DEPLOYED_BOTS) expect(medplum.bot(spec.name).runtimeVersion).toBe('vmcontext');
    // Without --runtime the chosen runtime is kept.
    expect((await run()).output).toContain('No changes');
  });

  it('warns clearly on a server that predates Bot.rawBody, and does not send the field', async () => {
    medplum.version = '5.1.38-0f1e2d3';
    const { code, output } = await run([], false);
    expect(code).toBe(0);
    expect(output).toMatch(/WARNING: Medplum 5\.1\.38-0f1e2d3 predates Bot\.rawBody/);
    expect(medplum.bot('medblocks-records-sync-failed').rawBody).toBeUndefined();
    // Without MEDBLOCKS_API_KEY, missing signing secrets are named (never valued).
    expect(output).toMatch(/Project secret MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED is not set/);
  });

  it('fails with a clear message and exit 1 on bad credentials, without echoing them', async () => {
    const lines: string[] = [];
    const code = await runProvision([], {
      root,
      env: { ...fakeEnv(medplum.url), MEDPLUM_CLIENT_SECRET: 'wrong-secret-xyz' },
      print: (l) => lines.push(l),
    });
    expect(code).toBe(1);
    expect(lines.join('\n')).toMatch(/provision failed: Medplum POST \/oauth2\/token failed with HTTP 400/);
    expect(lines.join('\n')).not.toContain('wrong-secret-xyz');
  });

  it('reads credentials from .env when the environment lacks them', () => {
    expect(parseDotEnv('# c\nexport MEDPLUM_CLIENT_ID="abc"\nMEDPLUM_BASE_URL=http://x/ # note\nEMPTY=\n')).toEqual({
      MEDPLUM_CLIENT_ID: 'abc',
      MEDPLUM_BASE_URL: 'http://x/',
      EMPTY: '',
    });
  });
});
