import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessPolicy, AuditEvent, Bot, Consent, ProjectMembership } from '@medplum/fhirtypes';
import { encodeConsent } from '../../src/runtime/fhir/consent';
import { activeConnectionConsent } from '../support/consent-model';
import { SYSTEM } from '../../src/runtime/fhir/systems';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WEBHOOK_BOTS } from '../../src/runtime/registry';
import { runProvision } from '../../src/tools/cli/provision';
import { ALL_BOTS, REGISTRY } from '../../src/runtime/registry';

const SWEEPER_NAME = REGISTRY['medblocks-marker-sweeper'].name;
const SWEEPER_CRON = REGISTRY['medblocks-marker-sweeper'].schedule;
import { parseDotEnv, readSettings } from '../../src/tools/provision/env';
import { provision } from '../../src/tools/provision/provision';
import type { MedplumConfig } from '../../src/tools/provision/plan';
import { EMULATOR_PROJECT_ID } from '../../src/tools/emulator/identity';
import { EMULATOR_VERSION, startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import {
  ACCESS_TOKEN,
  CLIENT_ID,
  CLIENT_SECRET,
  FakeMedplum,
  fakeFetch,
  LocalMedblocks,
  LoopbackService,
  MEDBLOCKS_KEY,
} from '../support/fake-servers';
import { EmulatorProject } from '../support/emulator-project';
import { fakeEnv, makeRoot } from '../support/provision-root';

// Provision against the emulator started empty (`bots: []`: a fresh project, as on a new server),
// which models what these runs meet — login ADM-7/8, /auth/me ADM-9, the admin API ADM-10/11,
// $deploy and its refusals ADM-12, code read back ADM-14; and against FakeMedplum only what the
// emulator does not model: a settable /healthcheck version (ADM-1, and before 5.2 the refusal of
// Bot.rawBody, ADM-4), executableCode read back presigned (ADM-2), hosted Medplum with AWS, a client
// that is not a project admin, and a real server's medplum.config.json (the emulator's is left as
// shipped). Requests are logged client-side (LoopbackService) or by FakeMedplum, the same way.
let emulator: RunningEmulator;
let project: EmulatorProject;
let fake: FakeMedplum;
/** The Medplum the run talks to: the emulator over loopback, or FakeMedplum. */
let medplum: LoopbackService | FakeMedplum;
let credentials: { readonly id: string; readonly secret: string };
let medblocks: LocalMedblocks;
/** How far Medblocks' clock (what `GET /health` says) is ahead of this machine's. */
let medblocksAheadMs: number;
let root: string;
let cleanup: () => void;

beforeEach(() => {
  medblocksAheadMs = 0;
  medblocks = new LocalMedblocks({ now: () => Date.now() + medblocksAheadMs });
  ({ root, cleanup } = makeRoot());
});

afterEach(() => {
  cleanup();
});

/** Runs against the emulator, started empty, for the tests of this block. */
function onTheEmulator(): void {
  beforeEach(async () => {
    emulator = await startEmulator({ root, bots: [] });
    project = new EmulatorProject(emulator);
    medplum = new LoopbackService(emulator.url);
    credentials = { id: emulator.adminClient.clientId, secret: emulator.adminClient.clientSecret };
  });
  afterEach(async () => {
    await emulator.close();
  });
}

/** Runs against FakeMedplum, for what the emulator does not model. */
function onFakeMedplum(): void {
  beforeEach(() => {
    fake = new FakeMedplum();
    medplum = fake;
    credentials = { id: CLIENT_ID, secret: CLIENT_SECRET };
  });
}

function env(withMedblocks = true, extraEnv: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    MEDPLUM_BASE_URL: medplum.url,
    MEDPLUM_CLIENT_ID: credentials.id,
    MEDPLUM_CLIENT_SECRET: credentials.secret,
    ...(withMedblocks ? { MEDBLOCKS_API_KEY: MEDBLOCKS_KEY, MEDBLOCKS_API_BASE_URL: medblocks.url } : {}),
    ...extraEnv,
  };
}

async function run(
  args: string[] = [],
  withMedblocks = true,
  extraEnv: NodeJS.ProcessEnv = {}
): Promise<{ code: number; output: string }> {
  const lines: string[] = [];
  const code = await runProvision(args, {
    root,
    env: env(withMedblocks, extraEnv),
    fetchFn: fakeFetch(medplum, medblocks),
    print: (l) => lines.push(l),
  });
  return { code, output: lines.join('\n') };
}

function expectNoSecrets(output: string): void {
  const secrets = [
    credentials.secret,
    ACCESS_TOKEN,
    MEDBLOCKS_KEY,
    ...medblocks.local.endpoints().map((e) => e.secret),
  ];
  for (const secret of secrets) expect(output).not.toContain(secret);
  expect(output).not.toMatch(/whsec_/);
  expect(output).not.toMatch(/eyJ[\w-]+\.eyJ/); // no access token (a JWT)
}

const escaped = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('npm run provision, against the emulator', () => {
  onTheEmulator();

  it('first run creates policies, bots, memberships, deployments, endpoints and secrets', async () => {
    const config = join(root, 'medplum.config.json');
    const configBefore = existsSync(config) ? readFileSync(config, 'utf8') : undefined;
    const { code, output } = await run();
    expect(code).toBe(0);

    const policies = await project.all<AccessPolicy>('AccessPolicy');
    expect(policies).toHaveLength(ALL_BOTS.length);
    for (const spec of ALL_BOTS) {
      const bot = await project.bot(spec.name);
      const membership = await project.membership(bot.id);
      const policy = policies.find((p) => `AccessPolicy/${p.id}` === membership.accessPolicy?.reference);
      const file = JSON.parse(readFileSync(join(root, spec.policyFile), 'utf8')) as AccessPolicy;
      expect(policy?.resource).toEqual(file.resource);
      expect(bot).toMatchObject({
        // A self-hosted server: vmcontext unless told (hosted Medplum gets awslambda; see preflight.test.ts).
        runtimeVersion: 'vmcontext',
        auditEventTrigger: 'always',
        auditEventDestination: ['resource'],
      });
      // What is deployed is exactly the bundle in dist/.
      expect(await project.deployedCode(bot)).toBe(readFileSync(join(root, spec.dist), 'utf8'));
      if (spec.kind === 'webhook') {
        expect(bot).toMatchObject({ publicWebhook: true, rawBody: true, timeout: 4 });
        expect(output).toContain(`${medplum.url}webhook/${membership.id}`);
      }
    }
    expect(await project.bot(SWEEPER_NAME)).toMatchObject({
      cronString: SWEEPER_CRON,
      publicWebhook: false,
      timeout: 60,
    });
    // The emulator's ids never reach the tracked file (a real server's do: see FakeMedplum below).
    expect(existsSync(config) ? readFileSync(config, 'utf8') : undefined).toBe(configBefore);
    expect(output).toMatch(/NOTE: medplum\.config\.json left as it is: this is the local emulator/);

    // One Medblocks endpoint per event type, pointing at its bot; its secret stored under the bot's name.
    expect(medblocks.local.endpoints()).toHaveLength(WEBHOOK_BOTS.length);
    const secrets = await project.secrets();
    for (const bot of WEBHOOK_BOTS) {
      const url = `${medplum.url}webhook/${(await project.membership((await project.bot(bot.name)).id)).id}`;
      const endpoint = medblocks.local.endpoints().find((e) => e.url === url);
      expect(endpoint?.events).toEqual([bot.medblocksEvent]);
      expect(secrets.find((s) => s.name === bot.secretName)?.valueString).toBe(endpoint?.secret);
    }
    expect(output).toMatch(new RegExp(`Medplum .* \\(server ${escaped(EMULATOR_VERSION)}\\)`));
    const name = (await project.project()).name ?? '';
    expect(output).toContain(
      `Preflight (read-only): Medplum ${EMULATOR_VERSION} at ${medplum.url} (self-hosted), Project/${EMULATOR_PROJECT_ID} "${name}" features [bots, cron], client is a project admin, runtime vmcontext`
    );
    expectNoSecrets(output);
  });

  it('reads everything it needs before its first write', async () => {
    await run();
    const firstWrite = medplum.requests.findIndex((r) => r.method !== 'GET' && r.path !== '/oauth2/token');
    const before = medplum.requests.slice(0, firstWrite).map((r) => `${r.method} ${r.path}`);
    expect(before.slice(0, 6)).toEqual([
      'GET /healthcheck',
      'POST /oauth2/token',
      'GET /auth/me',
      `GET /fhir/R4/Project/${EMULATOR_PROJECT_ID}`,
      // The bots' Consents, for those that predate the package's own category (consent-category.ts).
      'GET /fhir/R4/Consent',
      'GET /fhir/R4/AccessPolicy',
    ]);
  });

  it('a second run changes nothing and says so', async () => {
    await run();
    const medplumCount = medplum.requests.length;
    const medblocksCount = medblocks.requests.length;
    const { code, output } = await run();
    expect(code).toBe(0);
    expect(output).toContain('No changes: everything was already provisioned.');
    expect(
      medplum.requests.slice(medplumCount).filter((r) => r.method !== 'GET' && r.path !== '/oauth2/token')
    ).toEqual([]);
    expect(medblocks.requests.slice(medblocksCount).filter((r) => r.method !== 'GET')).toEqual([]);
    expectNoSecrets(output);
  });

  it('on vmcontext, says it cannot see vmContextBotsEnabled before any run, and warns once a run shows it off', async () => {
    const first = await run();
    expect(first.output).toMatch(/NOTE: .*medblocks-patient-flow-completed.* run on vmcontext.*cannot tell/);
    const flow = await project.bot('medblocks-patient-flow-completed');
    await project.put<AuditEvent>({
      resourceType: 'AuditEvent',
      type: { code: 'execute' },
      recorded: new Date().toISOString(),
      source: { observer: { reference: `Bot/${flow.id}` } },
      agent: [{ requestor: false }],
      entity: [{ what: { reference: `Bot/${flow.id}` } }],
      outcome: '4',
      outcomeDesc: 'VM Context bots not enabled on this server',
    });
    const second = await run();
    expect(second.code).toBe(0);
    expect(second.output).toMatch(
      /WARNING: This server does not run vmcontext bots: the newest run of medblocks-patient-flow-completed \(AuditEvent\/[\w-]+/
    );
    expect(second.output).not.toMatch(/NOTE: medblocks-patient-flow-completed/);
  });

  it('warns when Medblocks’ clock (GET /health) is far from this machine’s, naming the tolerance setting', async () => {
    medblocksAheadMs = 10 * 60_000;
    const { code, output } = await run();
    expect(code).toBe(0);
    expect(output).toMatch(
      /WARNING: Medblocks' clock \(GET \/health server_time\) is (599|600|601) s ahead of this machine's\..*MEDBLOCKS_SIGNATURE_TOLERANCE_SECONDS/
    );
    medblocksAheadMs = 0;
    expect((await run()).output).not.toMatch(/Medblocks' clock/);
  });

  it('repairs a drifted setup and reports each repair', async () => {
    await run();
    const flow = await project.bot('medblocks-patient-flow-completed');
    const { rawBody: _raw, ...withoutRawBody } = flow;
    await project.put<Bot>({ ...withoutRawBody, publicWebhook: false });
    const sync = await project.bot('medblocks-records-sync-failed');
    const { accessPolicy: _policy, ...membership } = await project.membership(sync.id);
    await project.put<ProjectMembership>(membership);
    const refresh = WEBHOOK_BOTS.find((b) => b.name === 'medblocks-connection-token-refresh-failed');
    await project.setSecrets((await project.secrets()).filter((s) => s.name !== refresh?.secretName));
    const [, second, third] = medblocks.local.endpoints();
    if (!second || !third) throw new Error('provision made too few endpoints');
    third.status = 'disabled';
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
    expect(output).toMatch(new RegExp(`re-enable\\s+Medblocks endpoint ${third.id}`));
    expect(output).toMatch(new RegExp(`rotate signing secret\\s+Medblocks endpoint ${second.id}`));
    expect(output).toMatch(/deploy\s+Bot\/\S+ \(medblocks-records-sync-completed\)/);

    expect(await project.bot('medblocks-patient-flow-completed')).toMatchObject({
      publicWebhook: true,
      rawBody: true,
    });
    expect((await project.membership(sync.id)).accessPolicy?.reference).toMatch(/^AccessPolicy\//);
    expect(medblocks.local.endpoint(third.id)?.status).toBe('active');
    const rotated = medblocks.local.endpoint(second.id);
    const secrets = await project.secrets();
    expect(secrets.find((s) => s.name === refresh?.secretName)?.valueString).toBe(rotated?.secret);
    // The other secrets are untouched.
    expect(secrets).toHaveLength(WEBHOOK_BOTS.length);
    expectNoSecrets(output);

    expect((await run()).output).toContain('No changes');
  });

  it("gives this package's category to its Consents from before it (the policies now confine Consents by it), before the policies take effect", async () => {
    await run();
    const current = encodeConsent(activeConnectionConsent('conn_before', 'fhirsrc_before'));
    const twoCategories = current.category.slice(0, 2);
    expect(twoCategories).toHaveLength(2);
    const older = await project.put<Consent>({ ...current, category: twoCategories });
    const others = await project.put<Consent>({
      ...current,
      identifier: [{ system: 'urn:x', value: '1' }],
      category: twoCategories,
    });
    // Our key, but a scope the old policies never let the bots see: it stays out of their reach.
    const research = await project.put<Consent>({
      ...current,
      identifier: [{ system: SYSTEM.connectionId, value: 'conn_research' }],
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] },
      category: twoCategories,
    });

    const dry = await run(['--dry-run']);
    expect(dry.output).toMatch(
      /would add the category\s+Consent\s+\(urn:medblocks:code\|ehr-connection to 1 of this package's Consents \(before the policies\)\)/
    );
    expect((await project.all<Consent>('Consent')).find((c) => c.id === older.id)?.category).toEqual(twoCategories);

    const { code, output } = await run();
    expect(code).toBe(0);
    expect(output).toMatch(
      /add the category\s+Consent\s+\(urn:medblocks:code\|ehr-connection to 1 of this package's Consents \(before the policies\)\)/
    );
    const stored = await project.all<Consent>('Consent');
    const { meta: _olderMeta, ...olderContent } = older;
    const { meta: _migratedMeta, ...migrated } = stored.find((c) => c.id === older.id) ?? older;
    expect(migrated).toEqual({ ...olderContent, category: current.category });
    expect(stored.find((c) => c.id === others.id)?.category).toEqual(twoCategories);
    expect(stored.find((c) => c.id === research.id)?.category).toEqual(twoCategories);
    expect((await run()).output).toContain('No changes');
  });

  it('builds missing bundles after the preflight, then deploys them', async () => {
    const sweeper = ALL_BOTS.find((b) => b.name === SWEEPER_NAME);
    if (!sweeper) throw new Error('no sweeper');
    rmSync(join(root, sweeper.dist));
    const built: string[] = [];
    const report = await provision({
      root,
      settings: readSettings(env(false), root),
      dryRun: false,
      fetchFn: fakeFetch(medplum),
      build: (dir) => {
        built.push(`${String(medplum.requests.length)} requests before`);
        writeFileSync(join(dir, sweeper.dist), '"use strict";exports.handler=async()=>"built";\n');
        return Promise.resolve();
      },
    });
    expect(built).toEqual(['4 requests before']);
    expect(report.changes[0]).toEqual({ target: 'dist/', action: 'build', detail: '1 bundle(s) missing' });
    expect(await project.deployedCode(await project.bot(SWEEPER_NAME))).toContain('"built"');
  });

  it('--dry-run prints the plan and writes nothing', async () => {
    const { code, output } = await run(['--dry-run']);
    expect(code).toBe(0);
    expect(output).toContain('Dry run: nothing was changed.');
    expect(output).toMatch(/would create\s+AccessPolicy "Medblocks: marker sweeper bot"/);
    expect(output).toMatch(/would create\s+Bot "medblocks-records-sync-failed"\s+\(vmcontext/);
    // The real run lists more lines than the plan (a new bot's configure and deploy): it says so.
    expect(output).toMatch(
      /\d+ change\(s\) planned\. The run itself lists more: each new bot is then also configured and deployed, and each new bundle deployed, a line each\./
    );
    expect(medplum.writes()).toEqual([]);
    expect(medblocks.writes()).toEqual([]);
  });

  it('explains a $deploy refused for lack of AWS credentials with the runtime fix', async () => {
    const { code, output } = await run(['--runtime', 'awslambda']);
    expect(code).toBe(1);
    expect(output).toMatch(/WARNING: --runtime awslambda on a self-hosted server/);
    expect(output).toMatch(
      /provision failed: Medplum POST \/fhir\/R4\/Bot\/\S+\/\$deploy failed with HTTP 400: Could not load credentials from any providers\. .*--runtime vmcontext/
    );
    // The next run, as told, repairs it.
    const repaired = await run(['--runtime', 'vmcontext']);
    expect(repaired.code).toBe(0);
    expect((await project.bot(SWEEPER_NAME)).runtimeVersion).toBe('vmcontext');
  });

  it('the records import stays off unless asked: --import stores MEDBLOCKS_API_KEY as a project secret, never printed', async () => {
    const first = await run();
    expect(first.code).toBe(0);
    expect((await project.secrets()).find((s) => s.name === 'MEDBLOCKS_API_KEY')).toBeUndefined();
    const { code, output } = await run(['--import'], true, { MEDBLOCKS_IMPORT_TYPES: 'Condition,Observation' });
    expect(code).toBe(0);
    const secrets = await project.secrets();
    expect(secrets.find((s) => s.name === 'MEDBLOCKS_API_KEY')?.valueString).toBe(MEDBLOCKS_KEY);
    expect(secrets.find((s) => s.name === 'MEDBLOCKS_IMPORT_TYPES')?.valueString).toBe('Condition,Observation');
    expect(output).toMatch(/MEDBLOCKS_API_KEY \(from the environment\)/);
    expectNoSecrets(output);
    expect((await run(['--import'], true, { MEDBLOCKS_IMPORT_TYPES: 'Condition,Observation' })).output).toContain(
      'No changes'
    );
  });

  it('with MEDBLOCKS_API_KEY, takes signing secrets from Medblocks only, not from the environment', async () => {
    const extra = { MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED: 'whsec_stale_from_env_DO_NOT_PRINT' };
    const { code, output } = await run([], true, extra);
    expect(code).toBe(0);
    expect(output).toMatch(
      /WARNING: MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED from the environment is ignored: with MEDBLOCKS_API_KEY, Medblocks issues the signing secrets/
    );
    const endpoint = medblocks.local.endpoints().find((e) => e.events.includes('records.sync.failed'));
    const stored = (await project.secrets()).find((s) => s.name === 'MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED');
    expect(stored?.valueString).toBe(endpoint?.secret);
    expect(output).not.toContain('whsec_stale_from_env');
    expect((await run([], true, extra)).output).toContain('No changes');
  });

  it('fails with a clear message and exit 1 on bad credentials, without echoing them', async () => {
    const { code, output } = await run([], false, { MEDPLUM_CLIENT_SECRET: 'wrong-secret-xyz' });
    expect(code).toBe(1);
    expect(output).toMatch(/provision failed: Medplum POST \/oauth2\/token failed with HTTP 400/);
    expect(output).toMatch(/Check MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET/);
    expect(output).not.toContain('wrong-secret-xyz');
  });

  it('--help prints the usage and the runtime rule', async () => {
    const { code, output } = await run(['--help']);
    expect(code).toBe(0);
    expect(output).toMatch(/Usage: npm run provision/);
    expect(output).toMatch(/awslambda on hosted Medplum .* vmcontext on a self-hosted server/s);
    expect(medplum.requests).toEqual([]);
  });
});

describe('npm run provision, on what the emulator does not model (FakeMedplum)', () => {
  onFakeMedplum();

  it('against a real server, writes the bot ids to medplum.config.json', async () => {
    expect((await run()).code).toBe(0);
    const config = JSON.parse(readFileSync(join(root, 'medplum.config.json'), 'utf8')) as MedplumConfig;
    const ids = await Promise.all(ALL_BOTS.map(async (b) => [b.name, (await fake.bot(b.name)).id]));
    expect(config.bots?.map((b) => [b.name, b.id])).toEqual(ids);
  });

  // Ledger ADM-2.
  it('a second run changes nothing and says so, although the server reads code back as a presigned URL', async () => {
    await run();
    const flow = await fake.bot('medblocks-patient-flow-completed');
    const read = await fake.fetch(`${fake.url}fhir/R4/Bot/${flow.id}`, {
      headers: { authorization: `Bearer ${ACCESS_TOKEN}` },
    });
    expect(((await read.json()) as Bot).executableCode?.url).toMatch(/\/storage\/[^/]+\/v1\?Expires=.*&Signature=/);

    const configBefore = readFileSync(join(root, 'medplum.config.json'), 'utf8');
    const medplumCount = fake.requests.length;
    const medblocksCount = medblocks.requests.length;

    const { code, output } = await run();
    expect(code).toBe(0);
    expect(output).toContain('No changes: everything was already provisioned.');
    expect(fake.requests.slice(medplumCount).filter((r) => r.method !== 'GET' && r.path !== '/oauth2/token')).toEqual(
      []
    );
    expect(medblocks.requests.slice(medblocksCount).filter((r) => r.method !== 'GET')).toEqual([]);
    expect(readFileSync(join(root, 'medplum.config.json'), 'utf8')).toBe(configBefore);
    expectNoSecrets(output);
  });

  it('--runtime is applied to existing bots; without it their runtime is kept', async () => {
    fake.aws = true;
    await run(['--runtime', 'awslambda']);
    for (const spec of ALL_BOTS) expect((await fake.bot(spec.name)).runtimeVersion).toBe('awslambda');
    const { output } = await run(['--runtime', 'vmcontext']);
    expect(output).toMatch(/runtimeVersion "awslambda" → "vmcontext"/);
    for (const spec of ALL_BOTS) expect((await fake.bot(spec.name)).runtimeVersion).toBe('vmcontext');
    // Without --runtime the chosen runtime is kept.
    expect((await run()).output).toContain('No changes');
  });

  it('switching to awslambda redeploys, since only $deploy creates the Lambda', async () => {
    fake.aws = true;
    await run();
    const { output } = await run(['--runtime', 'awslambda']);
    expect(output).toMatch(/runtimeVersion "vmcontext" → "awslambda"/);
    expect(output).toMatch(/deploy\s+Bot\/\S+ \(medblocks-records-sync-failed\)/);
    expect((await run()).output).toContain('No changes');
  });

  // Ledger ADM-4.
  it('warns clearly on a server that predates Bot.rawBody, explains the fallback, and does not send the field', async () => {
    fake.version = '5.1.38-0f1e2d3';
    const { code, output } = await run([], false);
    expect(code).toBe(0);
    expect(output).toMatch(/WARNING: Medplum 5\.1\.38-0f1e2d3 predates Bot\.rawBody/);
    expect(output).toMatch(/Every delivery is refused with body_not_raw/);
    expect(output).toMatch(/MEDBLOCKS_ALLOW_PARSED_BODY=true/);
    expect(output).toMatch(
      /compact JSON with the same key order and no escapes \(such as \\u00e9\) or pretty-printing/
    );
    expect((await fake.bot('medblocks-records-sync-failed')).rawBody).toBeUndefined();
    // Without MEDBLOCKS_API_KEY, missing signing secrets are named (never valued).
    expect(output).toMatch(/Project secret MEDBLOCKS_WEBHOOK_SECRET_RECORDS_SYNC_FAILED is not set/);
  });

  it('stores project secrets given in the environment, never printing them', async () => {
    fake.version = '5.1.29-abcdef0';
    const extra = {
      MEDBLOCKS_ALLOW_PARSED_BODY: 'true',
      ...Object.fromEntries(WEBHOOK_BOTS.map((b, i) => [b.secretName, `whsec_from_env_${i}_DO_NOT_PRINT`])),
    };
    const { code, output } = await run([], false, extra);
    expect(code).toBe(0);
    expect(output).toMatch(
      /set\s+Project secrets\s+\(MEDBLOCKS_WEBHOOK_SECRET_PATIENT_FLOW_COMPLETED \(from the environment\)/
    );
    expect(output).toMatch(
      /MEDBLOCKS_ALLOW_PARSED_BODY=true is set, so the bots verify the signature against JSON\.stringify/
    );
    expect(output).not.toMatch(/is not set: /);
    const secrets = await fake.secrets();
    expect(secrets.find((s) => s.name === 'MEDBLOCKS_ALLOW_PARSED_BODY')?.valueString).toBe('true');
    expect(secrets.find((s) => s.name === WEBHOOK_BOTS[0]?.secretName)?.valueString).toBe(
      'whsec_from_env_0_DO_NOT_PRINT'
    );
    expectNoSecrets(output);
    expect((await run([], false, extra)).output).toContain('No changes');
  });
});

it('reads credentials from .env when the environment lacks them', () => {
  expect(parseDotEnv('# c\nexport MEDPLUM_CLIENT_ID="abc"\nMEDPLUM_BASE_URL=http://x/ # note\nEMPTY=\n')).toEqual({
    MEDPLUM_CLIENT_ID: 'abc',
    MEDPLUM_BASE_URL: 'http://x/',
    EMPTY: '',
  });
});

describe('the preflight stops before any change', () => {
  describe('on the emulator', () => {
    onTheEmulator();

    // Ledger ADM-5.
    it('when the project lacks the bots feature, naming the super-admin fix', async () => {
      await project.setFeatures([]);
      const { code, output } = await run();
      expect(code).toBe(1);
      expect(output).toContain(
        `ERROR: Project/${EMULATOR_PROJECT_ID} does not have the "bots" feature: every $deploy would fail with "Bots not enabled"`
      );
      expect(output).toMatch(/Ask a super admin to add "bots"/);
      expect(output).toMatch(
        /A project admin cannot change Project\.features: the server answers 200 and silently ignores the edit/
      );
      expect(output).toContain('provision stopped before changing anything.');
      expect(medplum.writes()).toEqual([]);
      expect(medblocks.requests).toEqual([]);
    });

    it('when MEDPLUM_BASE_URL does not answer, naming it', async () => {
      const lines: string[] = [];
      const code = await runProvision([], {
        root,
        env: fakeEnv('https://nowhere.test/'),
        fetchFn: fakeFetch(medplum),
        print: (l) => lines.push(l),
      });
      expect(code).toBe(1);
      // The variable, its value and the cause; nothing written.
      expect(lines.join('\n')).toMatch(
        /provision failed: cannot reach MEDPLUM_BASE_URL=https:\/\/nowhere\.test\/: fetch failed: no fake answers/
      );
      expect(medplum.requests).toEqual([]);
    });

    it('when credentials are missing, naming both variables', async () => {
      const lines: string[] = [];
      const code = await runProvision([], {
        root,
        env: { MEDPLUM_BASE_URL: medplum.url },
        fetchFn: fakeFetch(medplum),
        print: (l) => lines.push(l),
      });
      expect(code).toBe(1);
      expect(lines.join('\n')).toMatch(/MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET must be set/);
      expect(medplum.requests).toEqual([]);
    });
  });

  describe('on FakeMedplum (a client that is not an admin, a version the emulator does not have)', () => {
    onFakeMedplum();

    it('when the client is not a project admin, naming MEDPLUM_CLIENT_ID', async () => {
      fake.admin = false;
      const { code, output } = await run();
      expect(code).toBe(1);
      expect(output).toMatch(
        /ERROR: The client MEDPLUM_CLIENT_ID=client-123 is not a project admin of Project\/proj-1/
      );
      expect(fake.writes()).toEqual([]);
    });

    it('when the server version is unreadable, naming MEDPLUM_BASE_URL', async () => {
      fake.version = undefined;
      const { code, output } = await run();
      expect(code).toBe(1);
      expect(output).toMatch(/healthcheck did not say the server version.*Check MEDPLUM_BASE_URL/);
      expect(fake.writes()).toEqual([]);
    });
  });
});
