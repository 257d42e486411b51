// How provisioning, the monitor and `npm run verify` talk to Medplum: `@medplum/core`'s
// MedplumClient (client-credentials login, FHIR, admin API), plus the few calls it has no method
// for. Every failure becomes a SetupError whose message names the call, the server's answer and
// the variable or setting to change. Messages carry the server's OperationOutcome text only, never
// a request body: bodies here can carry signing secrets.
import { getStatus, MedplumClient, normalizeErrorString, OperationOutcomeError } from '@medplum/core';
import type { AuditEvent, Bot, OperationOutcome, Project, ProjectMembership, ProjectSetting } from '@medplum/fhirtypes';
import type { Settings } from './env';
import { explainedFetch, httpStatusOf, NotMedplumApiError } from './medplum-answers';
import { NoAnswerError, reachableFetch, REQUEST_TIMEOUT_MS, UnreachableError } from './reach';

/** A failure the user can fix; its message says how. */
export class SetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SetupError';
  }
}

/** What `GET /healthcheck` and `GET /auth/me` told us about the server and this client. */
export interface MedplumSession {
  readonly medplum: MedplumClient;
  readonly baseUrl: string;
  readonly clientId: string;
  readonly projectId: string;
  /** `Project` as `/auth/me` shows it (id, name, features, strictMode). */
  readonly project: Project;
  /** The client's own ProjectMembership; `admin` tells whether it may provision. */
  readonly membership: ProjectMembership | undefined;
  readonly superAdmin: boolean;
  /** `/healthcheck`'s `version`, e.g. `5.2.13-abc1234`; undefined when the server did not say. */
  readonly version: string | undefined;
}

/** At most this many AuditEvents per bot and window: 20 pages of Medplum's largest page size. */
const MAX_AUDIT_EVENTS = 20_000;

/**
 * A MedplumClient for a tool, not a browser: no caching (provisioning reads back what it just
 * wrote) and no `X-Medplum: extended` metadata (resources are compared and written back as read).
 * A server that does not answer at all is reported as `cannot reach MEDPLUM_BASE_URL=…: <cause>`;
 * an HTML page as not the API; an error answer with the HTTP status the server gave.
 */
export function newMedplumClient(
  baseUrl: string,
  fetchFn: typeof fetch = fetch,
  timeoutMs: number = REQUEST_TIMEOUT_MS
): MedplumClient {
  return new MedplumClient({
    baseUrl,
    fetch: explainedFetch(baseUrl, reachableFetch('MEDPLUM_BASE_URL', baseUrl, fetchFn, timeoutMs)),
    cacheTime: 0,
    extendedMode: false,
  });
}

/**
 * `Medplum GET /path failed with HTTP 400: <server text>` plus the fix, when one is known. The fix
 * a caller gives is about its settings (the URL, the credentials); when the server itself failed
 * (5xx, 429) the settings are not the cause, and saying they were sent people to the wrong place.
 */
export function medplumFailure(method: string, path: string, err: unknown, fix?: string): SetupError {
  if (err instanceof SetupError) return err;
  // The server never answered, or is not Medplum's API: which server and why is the whole story.
  if (err instanceof UnreachableError || err instanceof NoAnswerError || err instanceof NotMedplumApiError) {
    return new SetupError(err.message);
  }
  const status =
    err instanceof OperationOutcomeError ? (httpStatusOf(err.outcome) ?? getStatus(err.outcome)) : undefined;
  const text = normalizeErrorString(err).slice(0, 300);
  const serverFailed = status !== undefined && (status >= 500 || status === 429);
  const advice = serverFailed ? serverFix(status) : fix;
  return new SetupError(
    `Medplum ${method} /${path.replace(/^\//, '')} failed${status ? ` with HTTP ${status}` : ''}: ${text}` +
      (advice ? `. ${advice}` : '')
  );
}

function serverFix(status: number): string {
  return status === 429
    ? 'The server is rate-limiting this client: wait a minute and run again (the settings are not the cause)'
    : 'The Medplum server failed, not the settings: check its health and logs (or the proxy in front of it), then run again';
}

/** Runs one Medplum call, turning a failure into a SetupError that names the call and the fix. */
export async function call<T>(method: string, path: string, run: () => Promise<T>, fix?: string): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw medplumFailure(method, path, err, fix);
  }
}

interface SessionDetails {
  readonly project?: Project;
  readonly membership?: ProjectMembership;
}

/**
 * Reads the server version (public `/healthcheck`), logs in with client credentials and reads the
 * session (`/auth/me`, which MedplumClient calls after login). Read-only.
 */
export async function connectMedplum(
  settings: Pick<Settings, 'medplumBaseUrl' | 'clientId' | 'clientSecret'>,
  fetchFn?: typeof fetch,
  timeoutMs?: number
): Promise<MedplumSession> {
  const { medplumBaseUrl: baseUrl, clientId, clientSecret } = settings;
  if (!clientId || !clientSecret) {
    throw new SetupError(
      'MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET must be set (environment or .env): a ClientApplication of the ' +
        'project that is a project admin (Medplum app → Project Admin → Clients)'
    );
  }
  const medplum = newMedplumClient(baseUrl, fetchFn, timeoutMs);
  const health = await call(
    'GET',
    'healthcheck',
    () => medplum.get<{ version?: unknown }>('healthcheck'),
    `Check MEDPLUM_BASE_URL (now ${baseUrl}): it must be the Medplum API server's base URL, the one that serves ` +
      '/healthcheck, /oauth2/token and /fhir/R4 (e.g. https://api.medplum.com/), not the web app'
  );
  await call('POST', 'oauth2/token', () => medplum.startClientLogin(clientId, clientSecret), credentialsFix(baseUrl));
  let project = medplum.getProject();
  let membership = medplum.getProjectMembership();
  if (!project?.id) {
    // MedplumClient reads /auth/me itself only for tokens it recognises as Medplum's.
    const me = await call('GET', 'auth/me', () => medplum.get<SessionDetails>('auth/me'));
    project = me.project;
    membership = me.membership;
  }
  const projectId = project?.id ?? medplum.getActiveLogin()?.project.reference?.replace(/^Project\//, '');
  if (!project || !projectId) {
    throw new SetupError(
      `The client MEDPLUM_CLIENT_ID=${clientId} belongs to no project on ${baseUrl}: use a ClientApplication created in ` +
        'the project the bots go to (Project Admin → Clients)'
    );
  }
  return {
    medplum,
    baseUrl,
    clientId,
    projectId,
    project,
    membership,
    superAdmin: medplum.isSuperAdmin(),
    version: typeof health.version === 'string' ? health.version : undefined,
  };
}

function credentialsFix(baseUrl: string): string {
  return (
    `Check MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET: a ClientApplication's id and secret from Project Admin → ` +
    `Clients on ${baseUrl}`
  );
}

/**
 * The project as a project admin reads it (`GET fhir/R4/Project/{id}`: features and secrets
 * included); what `/auth/me` said when the read is refused (secrets then unknown).
 */
export async function readProject(session: MedplumSession): Promise<{ project: Project; readable: boolean }> {
  try {
    return { project: await session.medplum.readResource('Project', session.projectId), readable: true };
  } catch {
    return { project: session.project, readable: false };
  }
}

/** Replaces the whole `Project.secret` list (the admin API has no per-secret call). */
export async function setProjectSecrets(session: MedplumSession, secrets: readonly ProjectSetting[]): Promise<void> {
  const path = `admin/projects/${session.projectId}/secrets`;
  await call('POST', path, () => session.medplum.post(path, secrets));
}

/** The admin API creates the Bot and its ProjectMembership carrying the policy in one call. */
export async function createBot(
  session: MedplumSession,
  body: { name: string; description: string; accessPolicy: ProjectMembership['accessPolicy']; runtimeVersion: string }
): Promise<Bot> {
  const path = `admin/projects/${session.projectId}/bot`;
  return call('POST', path, () => session.medplum.post<Bot>(path, body));
}

export async function membershipOf(medplum: MedplumClient, botId: string): Promise<ProjectMembership | undefined> {
  return call('GET', `fhir/R4/ProjectMembership?profile=Bot/${botId}`, () =>
    medplum.searchOne('ProjectMembership', { profile: `Bot/${botId}` })
  );
}

/** Memberships are updated through the admin API, as the Medplum app does. */
export async function updateMembership(session: MedplumSession, membership: ProjectMembership): Promise<void> {
  const path = `admin/projects/${session.projectId}/members/${membership.id ?? ''}`;
  await call('POST', path, () => session.medplum.post(path, membership));
}

/**
 * What `medplum bot deploy` sends: the bundle's text and its file name. Returns the server's
 * warnings (e.g. a Bot without a ProjectMembership); a refusal becomes a SetupError with the fix.
 */
export async function deployCode(
  medplum: MedplumClient,
  botId: string,
  code: string,
  filename: string
): Promise<string[]> {
  const path = `fhir/R4/Bot/${botId}/$deploy`;
  let outcome: OperationOutcome | undefined;
  try {
    outcome = await medplum.post<OperationOutcome | undefined>(medplum.fhirUrl('Bot', botId, '$deploy'), {
      code,
      filename,
    });
  } catch (err) {
    throw medplumFailure('POST', path, err, deployFix(normalizeErrorString(err)));
  }
  return (outcome?.issue ?? [])
    .filter((i) => i.severity === 'warning')
    .map((i) => i.details?.text ?? i.diagnostics ?? i.code);
}

/** The fix for the `$deploy` refusals a fresh project meets, which the server's text alone does not say. */
export function deployFix(serverText: string): string | undefined {
  if (/Bots not enabled/i.test(serverText)) {
    return (
      'The project lacks the `bots` feature: ask a super admin to add `bots` to Project.features ' +
      '(a project admin cannot change features; the server ignores such an edit), then run provision again'
    );
  }
  if (/Could not load credentials|credential/i.test(serverText)) {
    return (
      'The bot runs on AWS Lambda (runtime awslambda) but this server has no AWS credentials: run ' +
      '`npm run provision -- --runtime vmcontext` (the server needs vmContextBotsEnabled: true)'
    );
  }
  return undefined;
}

/** Medplum FHIR ids: what a Binary id must look like before we ask for it. */
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/**
 * The Binary id of a Bot's deployed code. `Bot.executableCode.url` is `Binary/{id}` as written, but
 * a real server reads it back as a presigned URL, `{storageBaseUrl}{binaryId}/{versionId}?Expires=…
 * &Signature=…` (`{base}storage/…` self-hosted, `https://storage.medplum.com/binary/…` hosted), or
 * as `{base}fhir/R4/Binary/{id}`. Comparing those URLs would see a change on every run.
 */
export function binaryIdOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const reference = /^Binary\/([^/?#]+)/.exec(url);
  if (reference?.[1]) return FHIR_ID.test(reference[1]) ? reference[1] : undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const segments = parsed.pathname.split('/').filter((s) => s.length > 0);
  const binary = segments.lastIndexOf('Binary');
  const id = binary >= 0 ? segments[binary + 1] : segments.at(-2);
  return id && FHIR_ID.test(id) ? id : undefined;
}

/** The deployed code as text (`GET fhir/R4/Binary/{id}`), or undefined when there is none or it is unreadable. */
export async function readDeployedCode(medplum: MedplumClient, bot: Bot): Promise<string | undefined> {
  const id = binaryIdOf(bot.executableCode?.url);
  if (!id) return undefined;
  try {
    const response = await medplum.downloadResponse(`Binary/${id}`);
    return response.ok ? await response.text() : undefined;
  } catch {
    return undefined;
  }
}

/** A bot's runs since a time, newest first, following pages up to a fixed bound. */
export async function auditEvents(medplum: MedplumClient, botId: string, sinceIso: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  const query = { entity: `Bot/${botId}`, date: `ge${sinceIso}`, _sort: '-date', _count: '1000' };
  await call('GET', `fhir/R4/AuditEvent?entity=Bot/${botId}`, async () => {
    for await (const page of medplum.searchResourcePages('AuditEvent', query)) {
      out.push(...page);
      if (out.length >= MAX_AUDIT_EVENTS) break;
    }
  });
  return out;
}
