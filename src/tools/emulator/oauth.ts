// Client-credentials login as Medplum's server answers it (packages/server/src/oauth/token.ts,
// oauth/middleware.ts), so that `npm run provision` and `npm run monitor` log in to `npm run dev`
// with @medplum/core's MedplumClient exactly as they log in to a server (ADM-7, ADM-8 in
// docs/fidelity-ledger.md):
//   - `POST /oauth2/token` takes a form-encoded body only; `grant_type=client_credentials` with
//     `client_id`/`client_secret` in the body or an `Authorization: Basic` header; the server's
//     error texts (`Missing grant_type`, `Missing client_id`, `Invalid client`, `Invalid secret`…)
//     as `{error: "invalid_request", error_description}` with HTTP 400;
//   - the answer: `{token_type: "Bearer", expires_in, scope, access_token, project, profile}`, the
//     access token a JWT carrying `login_id` and `cid` (MedplumClient checks `cid` and, seeing
//     `login_id`, reads `/auth/me`);
//   - every authenticated route checks the Bearer token: missing, unknown or expired → 401.
// The emulator seeds one ClientApplication, a project admin of the emulated project, with an id
// and secret derived like every other emulator id (stable across restarts, printed by
// `npm run dev`; loopback only, dev use only).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { WithId } from '@medplum/core';
import type { ClientApplication, Project, ProjectMembership } from '@medplum/fhirtypes';
import { EMULATOR_PROJECT_ID, stableId } from './identity';
import type { EmulatorStore } from './store';
import type { HttpAnswer } from './webhook';

/** The credentials of the emulator's project-admin client: what MEDPLUM_CLIENT_ID/SECRET are set to. */
export interface AdminClient {
  readonly clientId: string;
  readonly clientSecret: string;
}

/** Medplum's default access token lifetime for a ClientApplication without `accessTokenLifetime`. */
export const ACCESS_TOKEN_LIFETIME_SECONDS = 3600;

export const ADMIN_CLIENT_ID = stableId('client:admin');
export const ADMIN_CLIENT_SECRET = createHash('sha256').update('medblocks-emulator-admin-client-secret').digest('hex');
export const ADMIN_CLIENT_MEMBERSHIP_ID = stableId('membership:client:admin');

/** Who a token belongs to: the server's Login, reduced to what the emulator's routes need. */
export interface EmulatorLogin {
  readonly loginId: string;
  readonly clientId: string;
  readonly membershipId: string;
  readonly expiresAt: number;
}

/**
 * Writes the admin ClientApplication and its ProjectMembership (`admin: true`), as
 * `POST /admin/projects/{id}/client` followed by ticking "Admin" in the app would.
 */
export async function seedAdminClient(store: EmulatorStore): Promise<AdminClient> {
  await store.repo.createResource<ClientApplication>({
    resourceType: 'ClientApplication',
    id: ADMIN_CLIENT_ID,
    meta: { project: EMULATOR_PROJECT_ID },
    name: 'Emulator admin client',
    description: 'Project admin of the emulated project: npm run provision and npm run monitor log in with it',
    secret: ADMIN_CLIENT_SECRET,
  });
  await store.repo.createResource<ProjectMembership>({
    resourceType: 'ProjectMembership',
    id: ADMIN_CLIENT_MEMBERSHIP_ID,
    meta: { project: EMULATOR_PROJECT_ID },
    project: { reference: `Project/${EMULATOR_PROJECT_ID}` },
    user: { reference: `ClientApplication/${ADMIN_CLIENT_ID}` },
    profile: { reference: `ClientApplication/${ADMIN_CLIENT_ID}`, display: 'Emulator admin client' },
    admin: true,
  });
  return { clientId: ADMIN_CLIENT_ID, clientSecret: ADMIN_CLIENT_SECRET };
}

function base64Url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function equalStrings(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function tokenError(description: string, status = 400): HttpAnswer {
  return {
    status,
    contentType: 'application/json',
    body: JSON.stringify({ error: 'invalid_request', error_description: description }),
  };
}

/** Issued tokens and the login each stands for; tokens live as long as the emulator. */
export class TokenService {
  private readonly logins = new Map<string, EmulatorLogin>();

  constructor(
    private readonly store: EmulatorStore,
    private readonly issuer: () => string,
    private readonly now: () => number = Date.now
  ) {}

  /** `POST /oauth2/token` (token.ts `tokenHandler`, `handleClientCredentials`). */
  async token(contentType: string, authorization: string | undefined, body: string): Promise<HttpAnswer> {
    if (contentType.split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
      return { status: 400, contentType: 'text/html; charset=utf-8', body: 'Unsupported content type' };
    }
    const form = new URLSearchParams(body);
    const grantType = form.get('grant_type');
    if (!grantType) return tokenError('Missing grant_type');
    if (grantType !== 'client_credentials') {
      // The server knows more grants (authorization_code, refresh_token, token exchange); the
      // tools use only this one, and the emulator has no users to log in.
      return tokenError('Unsupported grant_type');
    }
    let clientId = form.get('client_id') ?? undefined;
    let clientSecret = form.get('client_secret') ?? undefined;
    if (authorization?.startsWith('Basic ')) {
      const decoded = Buffer.from(authorization.slice('Basic '.length), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return tokenError('Invalid authorization header');
      clientId = decoded.slice(0, colon);
      clientSecret = decoded.slice(colon + 1);
    }
    if (!clientId) return tokenError('Missing client_id');
    if (!clientSecret) return tokenError('Missing client_secret');

    const client = await this.store.repo
      .readResource<ClientApplication>('ClientApplication', clientId)
      .catch(() => undefined);
    if (!client || (client.status && client.status !== 'active') || !client.secret) {
      return tokenError('Invalid client');
    }
    if (!equalStrings(client.secret, clientSecret)) return tokenError('Invalid secret');
    const membership = (
      await this.store.all<ProjectMembership>('ProjectMembership', `profile=ClientApplication/${clientId}`)
    )[0];
    if (!membership) return tokenError('Invalid client');

    const issuedAt = Math.floor(this.now() / 1000);
    const expiresAt = issuedAt + ACCESS_TOKEN_LIFETIME_SECONDS;
    const loginId = randomBytes(16).toString('hex');
    const accessToken = [
      base64Url({ alg: 'HS256', typ: 'JWT' }),
      base64Url({
        iss: this.issuer(),
        sub: clientId,
        login_id: loginId,
        client_id: clientId,
        cid: clientId,
        profile: `ClientApplication/${clientId}`,
        scope: form.get('scope') ?? 'openid',
        iat: issuedAt,
        exp: expiresAt,
      }),
      randomBytes(32).toString('base64url'),
    ].join('.');
    this.logins.set(accessToken, { loginId, clientId, membershipId: membership.id, expiresAt: expiresAt * 1000 });
    return {
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({
        token_type: 'Bearer',
        expires_in: expiresAt - issuedAt,
        scope: form.get('scope') ?? 'openid',
        access_token: accessToken,
        project: membership.project,
        profile: membership.profile,
      }),
    };
  }

  /** The login behind `Authorization: Bearer …`; undefined for a missing, unknown or expired token. */
  authenticate(authorization: string | undefined): EmulatorLogin | undefined {
    const [scheme, token] = (authorization ?? '').split(' ');
    if (scheme !== 'Bearer' || !token) return undefined;
    const login = this.logins.get(token);
    if (!login) return undefined;
    if (login.expiresAt <= this.now()) {
      this.logins.delete(token);
      return undefined;
    }
    return login;
  }
}

/** What `/auth/me` and the admin routes know about the caller (the server's AuthState). */
export interface AuthState {
  readonly login: EmulatorLogin;
  readonly project: WithId<Project>;
  readonly membership: WithId<ProjectMembership>;
}

/** Resolves a login to its project and membership, as the server's middleware does per request. */
export async function authState(store: EmulatorStore, login: EmulatorLogin): Promise<AuthState> {
  const membership = (await store.repo.readResource<ProjectMembership>(
    'ProjectMembership',
    login.membershipId
  )) as WithId<ProjectMembership>;
  const project = await store.repo.readReference<Project>(membership.project);
  return { login, project, membership };
}

/** The client as `/auth/me` shows it: its secret stays out of answers. */
export async function profileOf(store: EmulatorStore, state: AuthState): Promise<unknown> {
  const profile = await store.repo.readReference(state.membership.profile);
  if (profile.resourceType === 'ClientApplication') {
    const { secret: _secret, retiringSecret: _retiring, ...rest } = profile;
    return rest;
  }
  return profile;
}
