// `npx medplum bot deploy` against the emulator: the CLI uploads each bot's
// source as a Binary (`POST /fhir/R4/Binary`, raw body with its Content-Type), updates the Bot with
// it as `sourceCode`, then calls `Bot/{id}/$deploy`. The emulator answered the upload 400, so the
// CLI said "Number of errors: 5". ADM-16 in docs/fidelity-ledger.md; the CLI run end to end, and
// the route's rules one by one.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Binary, Bot } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_BOTS } from '../../src/runtime/registry';
import { ensureBuilt } from '../../src/tools/cli/dev';
import { deployedCode } from '../../src/tools/emulator/admin-api';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';

const ROOT = new URL('../..', import.meta.url).pathname;
let emulator: RunningEmulator;
let token: string;

beforeAll(async () => {
  await ensureBuilt();
  emulator = await startEmulator();
  const { clientId, clientSecret } = emulator.adminClient;
  const answer = await fetch(`${emulator.url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
    }).toString(),
  });
  token = ((await answer.json()) as { access_token: string }).access_token;
});

afterAll(async () => {
  await emulator.close();
});

function upload(body: Uint8Array | string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${emulator.url}/fhir/R4/Binary?_filename=index.ts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, ...headers },
    body,
  });
}

describe('ADM-16 POST /fhir/R4/Binary', () => {
  it('takes the raw body with its Content-Type and answers 201 with the Binary and its url', async () => {
    const source = 'export async function handler(): Promise<string> { return "x"; }\n';
    const answer = await upload(source, { 'content-type': 'text/typescript', 'x-security-context': 'Patient/p1' });
    expect(answer.status).toBe(201);
    const binary = (await answer.json()) as Binary & { id: string; url: string };
    expect(binary).toMatchObject({
      resourceType: 'Binary',
      contentType: 'text/typescript',
      securityContext: { reference: 'Patient/p1' },
      url: `${emulator.url}/fhir/R4/Binary/${binary.id}`,
    });
    // The answer carries no content, as the server's (the bytes are in its storage).
    expect(binary.data).toBeUndefined();
    const back = await fetch(binary.url, { headers: { authorization: `Bearer ${token}`, accept: '*/*' } });
    expect(back.headers.get('content-type')).toBe('text/typescript');
    expect(await back.text()).toBe(source);
  });

  it('decodes gzip and deflate, and refuses any other Content-Encoding', async () => {
    const gz = await upload(gzipSync('zipped'), { 'content-type': 'text/plain', 'content-encoding': 'gzip' });
    expect(gz.status).toBe(201);
    const { url } = (await gz.json()) as { url: string };
    expect(await (await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: '*/*' } })).text()).toBe(
      'zipped'
    );
    const br = await upload('x', { 'content-type': 'text/plain', 'content-encoding': 'br' });
    expect(br.status).toBe(400);
    expect(JSON.stringify(await br.json())).toContain('Unsupported content encoding');
  });

  it('an application/fhir+json body: content, unless it is itself a Binary resource without an id', async () => {
    const asContent = await upload('{"resourceType":"Patient"}', { 'content-type': 'application/fhir+json' });
    expect(((await asContent.json()) as Binary).contentType).toBe('application/fhir+json');
    const asResource = await upload('{"resourceType":"Binary","contentType":"text/csv","data":"YSxi"}', {
      'content-type': 'application/fhir+json',
    });
    expect(asResource.status).toBe(201);
    expect(((await asResource.json()) as Binary).contentType).toBe('text/csv');
  });

  it('needs a token, as every authenticated route (ADM-8)', async () => {
    const answer = await fetch(`${emulator.url}/fhir/R4/Binary`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(answer.status).not.toBe(201);
  });
});

describe('npx medplum bot deploy against the emulator', () => {
  it('saves and deploys every bot: sourceCode and executableCode are the files', async () => {
    // A config holding the emulator's bot ids, beside the repository's files (the tracked
    // medplum.config.json stays as it is).
    const dir = mkdtempSync(join(tmpdir(), 'medblocks-bot-deploy-'));
    try {
      const bots = ALL_BOTS.map((spec) => ({
        name: spec.name,
        id: emulator.bot(spec.name).botId,
        source: join(ROOT, 'bots', `${spec.name}.ts`),
        dist: join(ROOT, spec.dist),
      }));
      writeFileSync(join(dir, 'medplum.config.json'), JSON.stringify({ bots }, null, 2));
      const { clientId, clientSecret } = emulator.adminClient;
      const { stdout } = await promisify(execFile)(
        join(ROOT, 'node_modules/.bin/medplum'),
        ['bot', 'deploy', 'medblocks-*'],
        {
          cwd: dir,
          env: {
            PATH: process.env.PATH,
            HOME: dir,
            MEDPLUM_BASE_URL: `${emulator.url}/`,
            MEDPLUM_CLIENT_ID: clientId,
            MEDPLUM_CLIENT_SECRET: clientSecret,
          },
          timeout: 60_000,
        }
      );
      expect(stdout).toContain(`Number of bots saved: ${String(bots.length)}`);
      expect(stdout).toContain(`Number of bots deployed: ${String(bots.length)}`);
      expect(stdout).toContain('Number of errors: 0');
      for (const b of bots) {
        const bot = await emulator.store.repo.readResource<Bot>('Bot', b.id);
        expect(bot.sourceCode).toMatchObject({ contentType: 'text/typescript', title: `${b.name}.ts` });
        const sourceId = /\/Binary\/([^/]+)$/.exec(bot.sourceCode?.url ?? '')?.[1] ?? '';
        const source = await emulator.store.repo.readResource<Binary>('Binary', sourceId);
        expect(Buffer.from(source.data ?? '', 'base64').toString('utf8')).toBe(readFileSync(b.source, 'utf8'));
        const deployed = await deployedCode(emulator.store, bot);
        expect(deployed && 'code' in deployed ? deployed.code : undefined).toBe(readFileSync(b.dist, 'utf8'));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
