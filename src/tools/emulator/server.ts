// The local stand-in for a Medplum server: Medplum's public webhook route over the built bundles,
// and the in-memory FHIR store at /fhir/R4 for anyone who wants to look. Loopback only: the FHIR
// API has no authentication and the dev signing secrets are predictable.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getStatus, MEDPLUM_VERSION, notFound, unauthorized } from '@medplum/core';
import type { AccessPolicy, Bundle } from '@medplum/fhirtypes';
import { handleAdminRoute, isAdminRoute } from './admin-api';
import { DEFAULT_EMULATOR_HOST } from './identity';
import { seedAdminClient, TokenService } from './oauth';
import type { AdminClient } from './oauth';
import { discoverBots, projectSecrets, seedProject } from './project';
import type { EmulatedBotSpec, SeededBot } from './project';
import { runScheduledBot } from './scheduled';
import type { ScheduledRun } from './scheduled';
import { EmulatorStore, FHIR_PATH } from './store';
import type { StoreOptions } from './store';
import { handleExecute, handleWebhook, MAX_WEBHOOK_BODY_BYTES } from './webhook';
import type { HttpAnswer, WebhookContext } from './webhook';

export interface EmulatorOptions {
  /** 0 (the default) picks a free port; `npm run dev` uses 8913, a port no Medplum or Medblocks default takes (Medplum's own is 8103). */
  readonly port?: number;
  /** Must be a loopback address. */
  readonly host?: string;
  /** Simulated network latency added to every FHIR request a bot makes, in milliseconds. */
  readonly latencyMs?: number;
  /** Simulated database time of a SERIALIZABLE transaction, in milliseconds (see StoreOptions). */
  readonly transactionMs?: number;
  /** The database's GIN `fastupdate` (see StoreOptions); default on, as Postgres ships. */
  readonly ginFastUpdate?: boolean;
  /** The server's CPU as a model (see StoreOptions); default none. */
  readonly serverWork?: StoreOptions['serverWork'];
  /** `Project.features` of the emulated project; default `['bots', 'cron']`. */
  readonly features?: StoreOptions['features'];
  /**
   * The server setting `vmContextBotsEnabled`; default true. Off, every vmcontext run fails as on
   * such a server (WH-6), which `$deploy` does not check.
   */
  readonly vmContextBotsEnabled?: boolean;
  /** Project secrets (signing secrets and settings); bot signing secrets not given get dev values. */
  readonly secrets?: Record<string, string>;
  /** The bots to load; every `dist/*.js` with its `access-policies/<name>.json` by default. */
  readonly bots?: readonly EmulatedBotSpec[];
  /** Replace a bot's AccessPolicy (e.g. a narrower one in a test); `null` removes it. */
  readonly policies?: Readonly<Record<string, AccessPolicy | null>>;
  /** Allow writes through the unauthenticated /fhir/R4 API (reads only by default). */
  readonly fhirWrites?: boolean;
  /** Project root holding dist/ and access-policies/. */
  readonly root?: string;
  /** Called after each webhook run (the dev server prints one line per run). */
  readonly onRun?: WebhookContext['onRun'];
}

export interface EmulatorBot {
  readonly name: string;
  readonly botId: string;
  readonly membershipId: string;
  readonly webhookUrl: string;
  readonly secretName: string | undefined;
  readonly secret: string | undefined;
}

export interface RunningEmulator {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8913`. */
  readonly url: string;
  readonly fhirUrl: string;
  readonly bots: readonly EmulatorBot[];
  /** A membership whose profile is a Practitioner: its webhook URL answers 403. */
  readonly adminMembershipId: string;
  /**
   * The project-admin ClientApplication: MEDPLUM_CLIENT_ID / MEDPLUM_CLIENT_SECRET for
   * `npm run provision` and `npm run monitor` against the emulator (stable across restarts).
   */
  readonly adminClient: AdminClient;
  readonly store: EmulatorStore;
  /** Looks a bot up by name; throws when it is not loaded. */
  readonly bot: (name: string) => EmulatorBot;
  /**
   * Fires the named bot's cron job once, now, as Medplum's cron worker would (scheduled.ts, CRON-1 …
   * CRON-5): nothing runs when Medplum would have no job for it (no `cron` feature, no valid
   * `cronString`/`cronTiming`). The emulator never fires jobs on the clock; tests and the demo call
   * this instead. Throws when the bot is not loaded.
   */
  readonly runScheduled: (botName: string) => Promise<ScheduledRun>;
  readonly close: () => Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const WEBHOOK_ROUTE = /^\/(?:api\/)?(?:projects\/[^/]+\/)?webhook\/([^/]+)\/?$/;
/** The emulator's own route (no Medplum counterpart): fire a bot's cron job now, for `npm run dev`. */
const RUN_SCHEDULED_ROUTE = /^\/emulator\/run-scheduled\/([^/]+)\/?$/;
/** Medplum's `Bot/{id}/$execute`: a write, so only as the logged-in admin or with --fhir-writes. */
const EXECUTE_ROUTE = new RegExp(`^/${FHIR_PATH}/Bot/([^/]+)/\\$execute$`);

/**
 * Starts the emulator and resolves once it listens. Tests, the demo and the benchmark start it
 * in-process on port 0 and call `close()` when done.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const host = options.host ?? DEFAULT_EMULATOR_HOST;
  if (!LOOPBACK.has(host)) {
    throw new Error(`The emulator binds to loopback only (got ${host}): its FHIR API has no authentication`);
  }
  const specs = (options.bots ?? discoverBots(options.root)).map((spec) =>
    options.policies && spec.name in options.policies ? { ...spec, policy: options.policies[spec.name] } : spec
  );
  const store = new EmulatorStore({
    latencyMs: options.latencyMs,
    transactionMs: options.transactionMs,
    ginFastUpdate: options.ginFastUpdate,
    serverWork: options.serverWork,
    features: options.features,
  });
  const secrets = projectSecrets(specs, options.secrets ?? {});
  const seeded = await seedProject(store, specs, secrets);
  const adminClient = await seedAdminClient(store);
  const byBotId = new Map<string, SeededBot>(seeded.bots.map((b) => [b.botId, b]));

  let baseUrl = '';
  const tokens = new TokenService(store, () => `${baseUrl}/`);
  const context = (): WebhookContext => ({
    store,
    baseUrl: `${baseUrl}/`,
    bots: byBotId,
    onRun: options.onRun,
    vmContextBotsEnabled: options.vmContextBotsEnabled,
  });
  const server = createServer((req, res) => {
    route(context(), tokens, options.fhirWrites === true, req)
      .catch((err: unknown) => {
        console.error('emulator: internal error', err instanceof Error ? err.message : 'unknown');
        return json(500, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] });
      })
      .then(
        (answer) => {
          send(res, answer);
        },
        () => undefined
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  baseUrl = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  const secretValue = new Map(secrets.map((s) => [s.name, s.valueString]));
  const bots: EmulatorBot[] = seeded.bots.map((b) => ({
    name: b.name,
    botId: b.botId,
    membershipId: b.membershipId,
    webhookUrl: `${baseUrl}/webhook/${b.membershipId}`,
    secretName: b.secretName,
    secret: b.secretName ? secretValue.get(b.secretName) : undefined,
  }));
  return {
    url: baseUrl,
    fhirUrl: `${baseUrl}/${FHIR_PATH}`,
    bots,
    adminMembershipId: seeded.adminMembershipId,
    adminClient,
    store,
    bot: (name) => {
      const found = bots.find((b) => b.name === name);
      if (!found) throw new Error(`bot ${name} is not loaded in the emulator`);
      return found;
    },
    runScheduled: (name) => {
      const seededBot = seeded.bots.find((b) => b.name === name);
      if (!seededBot) return Promise.reject(new Error(`bot ${name} is not loaded in the emulator`));
      return runScheduledBot(context(), seededBot.botId);
    },
    close: () => closeServer(server),
  };
}

/** `{version}-emulator`: a 5.2 version, since the emulator implements Bot.rawBody (WH-3, ADM-13). */
export const EMULATOR_VERSION = `${MEDPLUM_VERSION.split('-')[0] ?? MEDPLUM_VERSION}-emulator`;

async function route(
  ctx: WebhookContext,
  tokens: TokenService,
  fhirWrites: boolean,
  req: IncomingMessage
): Promise<HttpAnswer> {
  const url = new URL(req.url ?? '/', 'http://emulator.local');
  const method = req.method ?? 'GET';
  if (url.pathname === '/oauth2/token' && method === 'POST') {
    const body = await readBody(req);
    if (!body) return tooLarge();
    return tokens.token(req.headers['content-type'] ?? '', req.headers.authorization, new TextDecoder().decode(body));
  }
  const isFhir = url.pathname === `/${FHIR_PATH}` || url.pathname.startsWith(`/${FHIR_PATH}/`);
  const admin = isAdminRoute(method, url.pathname, req.headers.accept);
  // Authenticated routes (ADM-8): the admin API and /auth/me always; /fhir/R4 whenever a token is
  // sent (read-write, as the project admin). /fhir/R4 without a token stays the emulator's
  // read-only window for people (documented in the ledger's divergences).
  if (admin || (isFhir && req.headers.authorization !== undefined)) {
    const login = tokens.authenticate(req.headers.authorization);
    if (!login) return json(401, unauthorized, 'application/fhir+json');
    if (admin) {
      const body = method === 'GET' ? new Uint8Array() : await readBody(req);
      if (!body) return tooLarge();
      return handleAdminRoute(ctx.store, login, { method, url, headers: req.headers, body }, ctx.baseUrl);
    }
    return fhirRoute(ctx, true, req, method, url);
  }
  const webhook = WEBHOOK_ROUTE.exec(url.pathname);
  if (webhook && method === 'POST') {
    const body = await readBody(req);
    if (!body) {
      return json(413, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'too-costly' }] });
    }
    return handleWebhook(ctx, { membershipId: decodeURIComponent(webhook[1] ?? ''), headers: req.headers, body });
  }
  const scheduled = RUN_SCHEDULED_ROUTE.exec(url.pathname);
  if (scheduled && method === 'POST') {
    return runScheduledRoute(ctx, decodeURIComponent(scheduled[1] ?? ''));
  }
  if (url.pathname === `/${FHIR_PATH}` || url.pathname.startsWith(`/${FHIR_PATH}/`)) {
    return fhirRoute(ctx, fhirWrites, req, method, url);
  }
  if (url.pathname === '/' || url.pathname === '/healthcheck') {
    return json(200, {
      ok: true,
      version: EMULATOR_VERSION,
      emulator: 'medblocks-medplum-bots',
      fhir: `${ctx.baseUrl}${FHIR_PATH}`,
    });
  }
  return json(404, notFound);
}

/**
 * `POST /emulator/run-scheduled/<bot name>`: 200 with the run (the bot may still have failed:
 * `success` and the AuditEvent say so), 409 when Medplum would have no job to run, 404 for an
 * unknown bot. Unauthenticated like /fhir/R4 reads: the emulator binds to loopback only.
 */
async function runScheduledRoute(ctx: WebhookContext, name: string): Promise<HttpAnswer> {
  const seededBot = [...ctx.bots.values()].find((b) => b.name === name);
  if (!seededBot) return json(404, notFound);
  const run = await runScheduledBot(ctx, seededBot.botId);
  if (!run.ran) return json(409, { bot: name, ran: false, reason: run.reason, message: run.message });
  return json(200, {
    bot: name,
    ran: true,
    success: run.result.success,
    returnValue: run.result.returnValue,
    logResult: run.result.logResult,
    auditEvent: run.auditEvent?.id ? `AuditEvent/${run.auditEvent.id}` : undefined,
  });
}

/** /fhir/R4 without authentication, over the unrestricted store: reads (and batches of reads) unless writes are enabled. */
async function fhirRoute(
  ctx: WebhookContext,
  fhirWrites: boolean,
  req: IncomingMessage,
  method: string,
  url: URL
): Promise<HttpAnswer> {
  const raw = method === 'GET' || method === 'HEAD' ? new Uint8Array() : await readBody(req);
  if (!raw) {
    return json(413, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'too-costly' }] });
  }
  let body: unknown;
  try {
    body = raw.length > 0 ? (JSON.parse(new TextDecoder().decode(raw)) as unknown) : undefined;
  } catch {
    return json(400, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] });
  }
  if (!fhirWrites && !isReadOnly(method, body)) {
    return json(405, {
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: 'forbidden',
          details: { text: 'The emulator serves /fhir/R4 read-only; start it with --fhir-writes to allow writes' },
        },
      ],
    });
  }
  const execute = EXECUTE_ROUTE.exec(url.pathname);
  if (execute && method === 'POST') {
    return handleExecute(ctx, { botId: decodeURIComponent(execute[1] ?? ''), headers: req.headers, body: raw });
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string') headers[name] = value;
  }
  const path = url.pathname.slice(`/${FHIR_PATH}`.length) + url.search;
  const answer = await ctx.store.handle({ method, path, body, headers });
  return json(answer.status || getStatus(notFound), answer.body, 'application/fhir+json');
}

function isReadOnly(method: string, body: unknown): boolean {
  if (method === 'GET' || method === 'HEAD') return true;
  if (method !== 'POST' || typeof body !== 'object' || body === null) return false;
  const bundle = body as Partial<Bundle>;
  return bundle.resourceType === 'Bundle' && (bundle.entry ?? []).every((e) => e.request?.method === 'GET');
}

/** Reads the whole body, or resolves undefined once it exceeds the limit. */
function readBody(req: IncomingMessage): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_WEBHOOK_BODY_BYTES) {
        tooLarge = true;
        chunks.length = 0;
      } else if (!tooLarge) {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      resolve(tooLarge ? undefined : new Uint8Array(Buffer.concat(chunks)));
    });
    req.on('error', reject);
  });
}

function tooLarge(): HttpAnswer {
  return json(413, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'too-costly' }] });
}

function json(status: number, body: unknown, contentType = 'application/json'): HttpAnswer {
  return { status, contentType, body: JSON.stringify(body) };
}

function send(res: ServerResponse, answer: HttpAnswer): void {
  res.writeHead(answer.status, {
    'content-type': answer.contentType,
    'content-length': Buffer.byteLength(answer.body),
  });
  res.end(answer.body);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => {
      if (err) reject(err);
      else resolve();
    });
    server.closeAllConnections();
  });
}
