// The authenticated part of the emulator: what `npm run provision` and `npm run monitor` call on a
// Medplum server beyond plain FHIR, each rule taken from Medplum's server source (5.1.29) and
// listed in docs/fidelity-ledger.md (ADM-9 … ADM-12):
//   GET  /auth/me                                   auth/me.ts `meHandler`
//   GET  /admin/projects/:projectId                 admin/project.ts
//   POST /admin/projects/:projectId/bot             admin/bot.ts → fhir/operations/botinit.ts `createBot`
//   POST /admin/projects/:projectId/secrets         admin/project.ts (replaces Project.secret)
//   GET|POST /admin/projects/:projectId/members/:id admin/project.ts
//   POST /fhir/R4/Bot/:id/$deploy                   fhir/operations/deploy.ts `deployHandler`
//   GET  /fhir/R4/Binary/:id (not fhir+json)        fhir/binary.ts: the stored bytes
//   POST /fhir/R4/Binary                            fhir/binary.ts `handleBinaryWriteRequest` (ADM-16)
// The admin router runs for project admins only (admin/utils.ts `verifyProjectAdmin`: 403
// otherwise) and acts on the project of the caller's token: the `:projectId` in the path does not
// decide (observed on 5.1.29, ADM-6). Everything else under /fhir/R4 with a token is plain FHIR
// over the project's store, read-write, as a project admin without an AccessPolicy has it.
import { gunzipSync, inflateSync } from 'node:zlib';
import { allOk, badRequest, ContentType, created, forbidden, getReferenceString, notFound } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Attachment, Binary, Bot, OperationOutcome, Project, ProjectMembership } from '@medplum/fhirtypes';
import { EMULATOR_PROJECT_ID } from './identity';
import { authState, profileOf } from './oauth';
import type { AuthState, EmulatorLogin } from './oauth';
import type { EmulatorStore } from './store';
import type { HttpAnswer } from './webhook';

/** The runtime `$deploy` cannot deploy to without AWS credentials (ADM-3: observed on 5.1.29). */
export const AWS_CREDENTIALS_MESSAGE = 'Could not load credentials from any providers';

/** What the server's `createBot` writes as `Bot.sourceCode` when none is given (botinit.ts `defaultBotCode`). */
const DEFAULT_BOT_CODE = `import { BotEvent, MedplumClient } from '@medplum/core';

export async function handler(medplum: MedplumClient, event: BotEvent): Promise<any> {
  // Your code here
}
`;

const ADMIN_ROUTE = /^\/admin\/projects\/([^/]+)(?:\/(bot|secrets|members)(?:\/([^/]+))?)?\/?$/;
const DEPLOY_ROUTE = /^\/fhir\/R4\/Bot\/([^/]+)\/\$deploy$/;
const BINARY_ROUTE = /^\/fhir\/R4\/Binary\/([^/]+)$/;
const BINARY_UPLOAD_ROUTE = '/fhir/R4/Binary';

export interface AuthenticatedRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Uint8Array;
}

function json(status: number, body: unknown, contentType: string = ContentType.JSON): HttpAnswer {
  return { status, contentType, body: JSON.stringify(body) };
}

/** An OperationOutcome answer, or (`resource`) the resource it goes with, as the server's `sendResponse` sends it. */
function outcome(o: OperationOutcome, status?: number, resource?: unknown): HttpAnswer {
  const code = status ?? statusOf(o);
  return json(code, resource ?? o, ContentType.FHIR_JSON);
}

function statusOf(o: OperationOutcome): number {
  if (o === forbidden) return 403;
  if (o === notFound) return 404;
  if (o === allOk) return 200;
  return 400;
}

function parseJson(body: Uint8Array): unknown {
  const text = new TextDecoder().decode(body);
  return text.trim() ? (JSON.parse(text) as unknown) : undefined;
}

/** Whether a request is one of the routes answered here (the rest of /fhir/R4 is plain FHIR). */
export function isAdminRoute(method: string, pathname: string, accept: string | undefined): boolean {
  if (pathname === '/auth/me') return true;
  if (ADMIN_ROUTE.test(pathname)) return true;
  if (method === 'POST' && DEPLOY_ROUTE.test(pathname)) return true;
  if (method === 'POST' && pathname === BINARY_UPLOAD_ROUTE) return true;
  return method === 'GET' && BINARY_ROUTE.test(pathname) && !accept?.startsWith(ContentType.FHIR_JSON);
}

/** Answers one admin route for an authenticated caller; `baseUrl` (`http://host:port/`) makes the URLs it answers. */
export async function handleAdminRoute(
  store: EmulatorStore,
  login: EmulatorLogin,
  req: AuthenticatedRequest,
  baseUrl = ''
): Promise<HttpAnswer> {
  const state = await authState(store, login);
  const path = req.url.pathname;
  if (path === '/auth/me' && req.method === 'GET') return me(store, state);

  const admin = ADMIN_ROUTE.exec(path);
  if (admin) {
    if (!state.membership.admin && !state.project.superAdmin) return outcome(forbidden);
    return adminProject(store, state, req.method, admin[2], admin[3], req.body);
  }
  if (path === BINARY_UPLOAD_ROUTE && req.method === 'POST') return uploadBinary(store, state, req, baseUrl);
  const deploy = DEPLOY_ROUTE.exec(path);
  if (deploy) return deployBot(store, decodeURIComponent(deploy[1] ?? ''), req.body);
  const binary = BINARY_ROUTE.exec(path);
  if (binary) return binaryContent(store, decodeURIComponent(binary[1] ?? ''));
  return outcome(notFound);
}

/** `/auth/me`: the project, the caller's membership and profile (me.ts `meHandler`). */
async function me(store: EmulatorStore, state: AuthState): Promise<HttpAnswer> {
  const { project, membership } = state;
  return json(200, {
    project: {
      resourceType: 'Project',
      id: project.id,
      name: project.name,
      features: project.features,
      description: project.description,
      strictMode: project.strictMode,
      superAdmin: project.superAdmin,
    },
    membership: {
      resourceType: 'ProjectMembership',
      id: membership.id,
      identifier: membership.identifier,
      user: membership.user,
      profile: membership.profile,
      admin: membership.admin,
    },
    profile: await profileOf(store, state),
    config: { resourceType: 'UserConfiguration' },
  });
}

async function adminProject(
  store: EmulatorStore,
  state: AuthState,
  method: string,
  sub: string | undefined,
  id: string | undefined,
  body: Uint8Array
): Promise<HttpAnswer> {
  const { project } = state;
  if (method === 'GET' && !sub) {
    return json(200, {
      project: {
        id: project.id,
        name: project.name,
        setting: project.setting,
        secret: project.secret,
        site: project.site,
      },
    });
  }
  if (method === 'POST' && sub === 'secrets') {
    const updated = await store.repo.updateResource<Project>({
      ...project,
      secret: parseJson(body) as Project['secret'],
    });
    return json(200, updated);
  }
  if (method === 'POST' && sub === 'bot') return createBot(store, project, parseJson(body));
  if (sub === 'members' && id && (method === 'GET' || method === 'POST')) {
    const membership = await store.repo.readResource<ProjectMembership>('ProjectMembership', id).catch(() => undefined);
    if (!membership) return outcome(notFound);
    if (membership.project.reference !== getReferenceString(project)) return outcome(forbidden);
    if (method === 'GET') return json(200, membership);
    const resource = parseJson(body) as Partial<ProjectMembership> | undefined;
    if (resource?.resourceType !== 'ProjectMembership' || resource.id !== id) return outcome(forbidden);
    return json(200, await store.repo.updateResource(resource as ProjectMembership));
  }
  return outcome(notFound);
}

interface CreateBotBody {
  readonly name?: unknown;
  readonly description?: string;
  readonly accessPolicy?: ProjectMembership['accessPolicy'];
  readonly runtimeVersion?: Bot['runtimeVersion'];
}

/**
 * botinit.ts `createBot`: a default TypeScript `sourceCode` Binary, the Bot with `meta.project`
 * and `runtimeVersion` (default: the server's `defaultBotRuntimeVersion`, vmcontext on a
 * self-hosted server without AWS), then its ProjectMembership carrying the given policy; 201 Bot.
 */
async function createBot(store: EmulatorStore, project: WithId<Project>, raw: unknown): Promise<HttpAnswer> {
  const params = (raw ?? {}) as CreateBotBody;
  if (typeof params.name !== 'string' || params.name === '') {
    return json(
      400,
      {
        resourceType: 'OperationOutcome',
        issue: [
          { severity: 'error', code: 'invalid', details: { text: 'Bot name is required' }, expression: ['name'] },
        ],
      },
      ContentType.FHIR_JSON
    );
  }
  const source = await store.repo.createResource<Binary>({
    resourceType: 'Binary',
    meta: { project: project.id },
    contentType: ContentType.TYPESCRIPT,
    data: Buffer.from(DEFAULT_BOT_CODE).toString('base64'),
  });
  const bot = await store.repo.createResource<Bot>({
    resourceType: 'Bot',
    meta: { project: project.id },
    name: params.name,
    description: params.description,
    runtimeVersion: params.runtimeVersion ?? 'vmcontext',
    sourceCode: { contentType: ContentType.TYPESCRIPT, url: `Binary/${source.id}`, title: 'index.ts' },
  });
  await store.repo.createResource<ProjectMembership>({
    resourceType: 'ProjectMembership',
    meta: { project: project.id },
    project: { reference: `Project/${project.id}` },
    user: { reference: `Bot/${bot.id}` },
    profile: { reference: `Bot/${bot.id}`, display: params.name },
    accessPolicy: params.accessPolicy,
  });
  return json(201, bot);
}

/**
 * deploy.ts `deployHandler` / `deployBot`: 404 for an unknown bot; `Bot missing executable code`;
 * `Bots not enabled` without the project feature; the code is stored as a Binary and
 * `Bot.executableCode` points at it before the runtime deploy, which for `awslambda` fails here
 * as on a server without AWS (ADM-3); a bot without a membership deploys with a warning.
 */
async function deployBot(store: EmulatorStore, botId: string, body: Uint8Array): Promise<HttpAnswer> {
  const bot = await store.repo.readResource<Bot>('Bot', botId).catch(() => undefined);
  if (!bot) return outcome(notFound);
  const params = (parseJson(body) ?? {}) as { code?: unknown; filename?: unknown };
  const code = typeof params.code === 'string' ? params.code : undefined;
  const filename = typeof params.filename === 'string' ? params.filename : 'index.js';
  if (!code && !bot.executableCode?.url) return outcome(badRequest('Bot missing executable code'));
  const projectId = bot.meta?.project ?? EMULATOR_PROJECT_ID;
  const project = await store.repo.readResource<Project>('Project', projectId);
  if (!project.features?.includes('bots')) return outcome(badRequest('Bots not enabled'));

  const warnings: string[] = [];
  const memberships = await store.all<ProjectMembership>('ProjectMembership', `profile=Bot/${botId}`);
  if (memberships.length === 0) warnings.push('Could not find ProjectMembership for Bot');

  let latest = bot;
  if (code) {
    const binary = await store.repo.createResource<Binary>({
      resourceType: 'Binary',
      meta: { project: projectId },
      contentType: ContentType.JAVASCRIPT,
      data: Buffer.from(code, 'utf8').toString('base64'),
    });
    const executableCode: Attachment = {
      contentType: ContentType.JAVASCRIPT,
      url: `Binary/${binary.id}`,
      title: filename,
    };
    latest = await store.repo.updateResource<Bot>({ ...bot, executableCode });
  }
  if (latest.runtimeVersion === 'awslambda') return outcome(badRequest(AWS_CREDENTIALS_MESSAGE));
  if (warnings.length === 0) return outcome(allOk);
  return outcome({
    ...allOk,
    issue: [
      ...allOk.issue,
      ...warnings.map((text) => ({ severity: 'warning' as const, code: 'business-rule' as const, details: { text } })),
    ],
  });
}

function header(req: AuthenticatedRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * fhir/binary.ts `handleBinaryWriteRequest` for a create (ADM-16), what `medplum bot deploy` and
 * MedplumClient's `createAttachment` send: the body as it is, whatever its type, becomes the
 * Binary's content, `contentType` the request's Content-Type, `securityContext` the
 * X-Security-Context header; `Content-Encoding` gzip or deflate is decoded, any other is 400
 * `Unsupported content encoding`; an `application/fhir+json` body that is itself a Binary resource
 * without an id is created as that resource (the spec's special case). Answered 201 with the
 * Binary and its `url`. The server keeps the bytes in its storage and answers a presigned storage
 * URL; the emulator keeps them in `Binary.data` and answers `{base}fhir/R4/Binary/{id}`, which
 * ADM-14 serves and `binaryIdOf` reads.
 */
async function uploadBinary(
  store: EmulatorStore,
  state: AuthState,
  req: AuthenticatedRequest,
  baseUrl: string
): Promise<HttpAnswer> {
  const encoding = header(req, 'content-encoding')?.toLowerCase();
  let bytes: Uint8Array;
  try {
    if (!encoding) bytes = req.body;
    else if (encoding === 'gzip') bytes = gunzipSync(req.body);
    else if (encoding === 'deflate') bytes = inflateSync(req.body);
    else return outcome(badRequest('Unsupported content encoding'));
  } catch {
    return outcome(badRequest('Unsupported content encoding'));
  }
  const contentType = header(req, 'content-type');
  const securityContext = header(req, 'x-security-context');
  const meta = { project: state.project.id };
  let binary: Binary | undefined;
  if (contentType === ContentType.FHIR_JSON) {
    try {
      const body = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Binary>;
      if (body.resourceType === 'Binary' && body.id === undefined) binary = { ...(body as Binary), meta };
    } catch {
      binary = undefined;
    }
  }
  binary ??= {
    resourceType: 'Binary',
    meta,
    contentType: contentType ?? '',
    ...(securityContext ? { securityContext: { reference: securityContext } } : {}),
    data: Buffer.from(bytes).toString('base64'),
  };
  const stored = await store.repo.createResource<Binary>(binary);
  const { data: _data, ...answered } = stored;
  return outcome(created, 201, { ...answered, url: `${baseUrl}fhir/R4/Binary/${stored.id}` });
}

/** A Binary's bytes with its own content type, as the server's Binary route answers a non-FHIR Accept. */
async function binaryContent(store: EmulatorStore, id: string): Promise<HttpAnswer> {
  const binary = await store.repo.readResource<Binary>('Binary', id).catch(() => undefined);
  if (!binary) return outcome(notFound);
  return {
    status: 200,
    contentType: binary.contentType,
    body: new Uint8Array(Buffer.from(binary.data ?? '', 'base64')),
  };
}

/**
 * The code a webhook run executes: the Binary `Bot.executableCode` points at (vmcontext.ts), or
 * undefined when the bot has none. A `url` that is not `Binary/…` is refused as the server does.
 */
export async function deployedCode(
  store: EmulatorStore,
  bot: Bot
): Promise<{ code: string; filename: string } | { error: string } | undefined> {
  const url = bot.executableCode?.url;
  if (!url) return undefined;
  if (!url.startsWith('Binary/')) return { error: 'Executable code is not a Binary' };
  const binary = await store.repo.readReference<Binary>({ reference: url });
  return {
    code: Buffer.from(binary.data ?? '', 'base64').toString('utf8'),
    filename: bot.executableCode?.title ?? `${bot.name ?? bot.id ?? 'bot'}.js`,
  };
}
