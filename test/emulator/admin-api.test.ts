// The emulator's login and admin API (docs/fidelity-ledger.md ADM-7 … ADM-12), over HTTP, with the
// server's own answers: what provision and monitor meet on `npm run dev`.
import type { WithId } from '@medplum/core';
import type { Bot, Project, ProjectMembership } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMULATOR_PROJECT_ID } from '../../src/tools/emulator/identity';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';

let emulator: RunningEmulator;
let token: string;

const FORM = 'application/x-www-form-urlencoded';

async function tokenRequest(
  body: string,
  headers: Record<string, string> = { 'content-type': FORM }
): Promise<Response> {
  return fetch(`${emulator.url}/oauth2/token`, { method: 'POST', headers, body });
}

async function login(): Promise<string> {
  const { clientId, clientSecret } = emulator.adminClient;
  const answer = await tokenRequest(
    new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
    }).toString()
  );
  return ((await answer.json()) as { access_token: string }).access_token;
}

async function api(method: string, path: string, body?: unknown, bearer = token): Promise<Response> {
  return fetch(`${emulator.url}/${path}`, {
    method,
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

beforeAll(async () => {
  emulator = await startEmulator({ bots: [{ name: 'probe', code: 'exports.handler = async () => "seeded";' }] });
  token = await login();
});

afterAll(async () => {
  await emulator.close();
});

describe('ADM-7 client-credentials login', () => {
  it('answers a token shaped as the server sends it', async () => {
    const { clientId, clientSecret } = emulator.adminClient;
    const answer = await tokenRequest(
      new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_secret: clientSecret,
      }).toString()
    );
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      token_type: 'Bearer',
      expires_in: 3600,
      profile: { reference: `ClientApplication/${clientId}` },
    });
    const claims = JSON.parse(
      Buffer.from(String(body.access_token).split('.')[1] ?? '', 'base64url').toString()
    ) as Record<string, unknown>;
    expect(claims).toMatchObject({ cid: clientId });
    expect(typeof claims.login_id).toBe('string');
  });

  it('takes the credentials from a Basic header too', async () => {
    const { clientId, clientSecret } = emulator.adminClient;
    const answer = await tokenRequest('grant_type=client_credentials', {
      'content-type': FORM,
      authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
    });
    expect(answer.status).toBe(200);
  });

  it("refuses with the server's texts", async () => {
    const { clientId } = emulator.adminClient;
    const cases: [string, string][] = [
      ['', 'Missing grant_type'],
      ['grant_type=client_credentials', 'Missing client_id'],
      [`grant_type=client_credentials&client_id=${clientId}`, 'Missing client_secret'],
      ['grant_type=client_credentials&client_id=nobody&client_secret=x', 'Invalid client'],
      [`grant_type=client_credentials&client_id=${clientId}&client_secret=wrong`, 'Invalid secret'],
      ['grant_type=password', 'Unsupported grant_type'],
    ];
    for (const [body, description] of cases) {
      const answer = await tokenRequest(body);
      expect(answer.status, body).toBe(400);
      expect(await answer.json()).toEqual({ error: 'invalid_request', error_description: description });
    }
    const json = await tokenRequest('{}', { 'content-type': 'application/json' });
    expect(json.status).toBe(400);
    expect(await json.text()).toBe('Unsupported content type');
  });
});

describe('ADM-8 every authenticated route checks the token', () => {
  it('401 without, with an unknown and with a malformed token', async () => {
    for (const bearer of ['', 'not-a-token', `${token}x`]) {
      expect((await api('GET', 'auth/me', undefined, bearer)).status).toBe(401);
      expect((await api('GET', 'fhir/R4/Patient', undefined, bearer)).status).toBe(401);
      expect((await api('POST', `admin/projects/x/secrets`, [], bearer)).status).toBe(401);
    }
    expect((await api('GET', 'fhir/R4/Patient')).status).toBe(200);
  });
});

describe('ADM-9 /auth/me', () => {
  it('says which project and that the client is its admin, without the client secret', async () => {
    const answer = await api('GET', 'auth/me');
    const text = await answer.text();
    expect(text).not.toContain(emulator.adminClient.clientSecret);
    const me = JSON.parse(text) as { project: Project; membership: ProjectMembership };
    expect(me.project.features).toEqual(['bots', 'cron']);
    expect(me.membership).toMatchObject({
      admin: true,
      profile: { reference: `ClientApplication/${emulator.adminClient.clientId}` },
    });
  });
});

describe('ADM-10, ADM-11, ADM-12: the admin API and $deploy', () => {
  it('secrets replace Project.secret; a webhook run sees them', async () => {
    const answer = await api('POST', 'admin/projects/ignored/secrets', [{ name: 'X', valueString: 'y' }]);
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as Project).secret).toEqual([{ name: 'X', valueString: 'y' }]);
  });

  it('creates a bot with its membership in the token project, 201; a name is required', async () => {
    expect((await api('POST', 'admin/projects/any/bot', {})).status).toBe(400);
    const policy = (await (
      await api('POST', 'fhir/R4/AccessPolicy', { resourceType: 'AccessPolicy', resource: [] })
    ).json()) as { id: string };
    const answer = await api('POST', 'admin/projects/another-project/bot', {
      name: 'created',
      accessPolicy: { reference: `AccessPolicy/${policy.id}` },
    });
    expect(answer.status).toBe(201);
    const bot = (await answer.json()) as WithId<Bot>;
    expect(bot).toMatchObject({ runtimeVersion: 'vmcontext', meta: { project: EMULATOR_PROJECT_ID } });
    const [membership] = await emulator.store.all<ProjectMembership>('ProjectMembership', `profile=Bot/${bot.id}`);
    expect(membership?.accessPolicy?.reference).toBe(`AccessPolicy/${policy.id}`);
    expect(membership?.project.reference).toMatch(/^Project\//);
    expect(membership?.project.reference).not.toBe('Project/another-project');

    // Not deployed yet: its webhook has no code to run (vmcontext.ts).
    await api('PUT', `fhir/R4/Bot/${bot.id}`, { ...bot, publicWebhook: true });
    const before = await fetch(`${emulator.url}/webhook/${membership?.id ?? ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(before.status).toBe(400);

    expect((await api('POST', `fhir/R4/Bot/${bot.id}/$deploy`, {})).status).toBe(400);
    const deployed = await api('POST', `fhir/R4/Bot/${bot.id}/$deploy`, {
      code: 'exports.handler = async () => "deployed";',
      filename: 'created.js',
    });
    expect(deployed.status).toBe(200);
    const after = await fetch(`${emulator.url}/webhook/${membership?.id ?? ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(await after.text()).toBe('deployed');

    const read = (await (await api('GET', `fhir/R4/Bot/${bot.id}`)).json()) as Bot;
    expect(read.executableCode).toMatchObject({ contentType: 'text/javascript', title: 'created.js' });
    const code = await fetch(`${emulator.url}/fhir/R4/${read.executableCode?.url ?? ''}`, {
      headers: { authorization: `Bearer ${token}`, accept: '*/*' },
    });
    expect(await code.text()).toBe('exports.handler = async () => "deployed";');
  });

  it('$deploy of an awslambda bot stores the code, then fails for lack of AWS credentials', async () => {
    const bot = emulator.bot('probe');
    const current = (await (await api('GET', `fhir/R4/Bot/${bot.botId}`)).json()) as Bot;
    await api('PUT', `fhir/R4/Bot/${bot.botId}`, { ...current, runtimeVersion: 'awslambda' });
    const answer = await api('POST', `fhir/R4/Bot/${bot.botId}/$deploy`, { code: 'exports.handler = async () => 1;' });
    expect(answer.status).toBe(400);
    expect(await answer.text()).toContain('Could not load credentials from any providers');
    expect((await api('POST', 'fhir/R4/Bot/unknown/$deploy', { code: 'x' })).status).toBe(404);
  });

  it('members: another project or a mismatched body is forbidden', async () => {
    const bot = emulator.bot('probe');
    const membership = (await (
      await api('GET', `admin/projects/x/members/${bot.membershipId}`)
    ).json()) as ProjectMembership;
    expect(membership.profile.reference).toBe(`Bot/${bot.botId}`);
    expect(
      (await api('POST', `admin/projects/x/members/${bot.membershipId}`, { ...membership, id: 'other' })).status
    ).toBe(403);
    expect((await api('POST', `admin/projects/x/members/${bot.membershipId}`, membership)).status).toBe(200);
  });
});
