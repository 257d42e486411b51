// Medplum's `executeBot` (packages/server/src/bots/execute.ts) with its vmcontext runtime
// (bots/vmcontext.ts), as one function both of the emulator's triggers call: the webhook route
// (webhook.ts) and the cron worker (scheduled.ts). Keeping one copy is the point: whatever a
// webhook run gets right (the bots feature, the vmContextBotsEnabled setting, the deployed code,
// the membership's policy, the secrets, the AuditEvent) a scheduled run gets right too.
import { badRequest, createReference } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { AccessPolicy, AuditEvent, Bot, Project, ProjectMembership, ProjectSetting } from '@medplum/fhirtypes';
import type { MemoryRepository } from '@medplum/fhir-router';
import { createFakeJwt } from '@medplum/mock';
import { readFileSync } from 'node:fs';
import { deployedCode } from './admin-api';
import { botAuditEvent, shouldAudit } from './audit';
import type { BotRunRecord } from './audit';
import type { SeededBot } from './project';
import { runInSandbox } from './sandbox';
import type { BotExecutionResult, SandboxEvent } from './sandbox';
import type { EmulatorStore } from './store';

export const EXECUTION_MESSAGES = {
  /** `executeBot`'s whole log when `isBotEnabledForProject` is false. */
  botsDisabled: 'Bots not enabled',
  /** `runInVmContext`'s whole log when the server setting is off (packages/server/src/bots/vmcontext.ts). */
  vmContextDisabled: 'VM Context bots not enabled on this server',
  noCode: 'No executable code',
} as const;

/** What any trigger needs to run a bot: the store, the emulator's address and the seeded bundles. */
export interface ExecutionContext {
  readonly store: EmulatorStore;
  /** The emulator's own base URL: the bot's MedplumClient talks to `{baseUrl}fhir/R4`. */
  readonly baseUrl: string;
  /** Seeded bots by Bot id: where a never-deployed bot's code comes from. */
  readonly bots: ReadonlyMap<string, SeededBot>;
  /** The server setting `vmContextBotsEnabled`; undefined counts as on (the emulator exists to run bots). */
  readonly vmContextBotsEnabled?: boolean;
}

/** Medplum's `BotExecutionRequest`, the fields its two callers here fill in. */
export interface BotExecutionRequest {
  readonly bot: WithId<Bot>;
  readonly runAs: ProjectMembership;
  readonly input: unknown;
  readonly contentType: string;
  /** The caller's profile; the cron worker passes none, so the AuditEvent's requestor agent has no `who`. */
  readonly requester?: BotRunRecord['requester'];
  /** The HTTP request's headers; the cron worker passes none (`event.headers` is undefined). */
  readonly headers?: SandboxEvent['headers'];
  /** The request's trace id; the cron worker runs outside a request and passes none. */
  readonly traceId?: string;
  /** When the request arrived (Medplum's `requestTime`); the AuditEvent's period starts here. */
  readonly requestTime?: string;
}

export interface BotExecution {
  readonly result: BotExecutionResult;
  /** The AuditEvent written for this run, unless `Bot.auditEventTrigger` said not to (AUD-1). */
  readonly auditEvent?: AuditEvent;
}

/**
 * Runs one bot as Medplum's `executeBot` does and writes its AuditEvent, whatever the outcome —
 * including the refusals that happen before any code runs (`Bots not enabled`, the vmcontext
 * setting), which Medplum audits too. Never throws for a bot failure.
 */
export async function executeBot(ctx: ExecutionContext, request: BotExecutionRequest): Promise<BotExecution> {
  const startTime = request.requestTime ?? new Date().toISOString();
  const result = await run(ctx, request);
  const { bot, runAs } = request;
  if (!shouldAudit(bot, result.success, result.logResult)) {
    return { result };
  }
  const auditEvent = await ctx.store.repo.createResource(
    botAuditEvent({
      bot,
      runAs,
      requester: request.requester,
      input: request.input,
      startTime,
      endTime: new Date().toISOString(),
      success: result.success,
      logResult: result.logResult,
    })
  );
  return { result, auditEvent };
}

async function run(ctx: ExecutionContext, request: BotExecutionRequest): Promise<BotExecutionResult> {
  const { store } = ctx;
  const { bot, runAs } = request;
  // As Medplum: the runAs membership's project must have the feature, not the bot's.
  const project = await store.repo.readReference<Project>(runAs.project);
  if (!project.features?.includes('bots')) {
    return failure(EXECUTION_MESSAGES.botsDisabled);
  }
  // As Medplum's runInVmContext: the server setting is read on every run, before the code is loaded.
  if (ctx.vmContextBotsEnabled === false && bot.runtimeVersion === 'vmcontext') {
    return failure(EXECUTION_MESSAGES.vmContextDisabled);
  }
  // As Medplum: the code `$deploy` stored (Bot.executableCode → Binary). A bot seeded from dist/
  // and never deployed runs its bundle file, re-read on every run so that a rebuild applies at once.
  const deployed = await deployedCode(store, bot);
  if (deployed && 'error' in deployed) {
    return failure(deployed.error);
  }
  const seeded = ctx.bots.get(bot.id);
  const code =
    deployed?.code ??
    seeded?.source.code ??
    (seeded?.source.file ? readFileSync(seeded.source.file, 'utf8') : undefined);
  if (code === undefined) {
    return failure(EXECUTION_MESSAGES.noCode);
  }
  const view = await membershipView(store, runAs);
  return runInSandbox({
    code,
    filename: deployed?.filename ?? seeded?.source.file ?? `${bot.name ?? bot.id}.js`,
    timeoutMs: bot.timeout ? bot.timeout * 1000 : undefined,
    fetch: store.fetchFor(ctx.baseUrl, view),
    event: {
      bot: createReference(bot),
      baseUrl: ctx.baseUrl,
      accessToken: createFakeJwt({ sub: bot.id, profile: `Bot/${bot.id}`, exp: Math.floor(Date.now() / 1000) + 3600 }),
      requester: request.requester,
      input: request.input,
      contentType: request.contentType,
      secrets: secretsOf(project),
      traceId: request.traceId,
      headers: request.headers,
    },
  });
}

function failure(message: string): BotExecutionResult {
  return { success: false, logResult: message, errorOutcome: badRequest(message) };
}

/**
 * The store as the membership's token sees it. Several `access` entries are merged the way Medplum
 * combines them (union of grants). A membership with no policy at all gets Medplum's "legacy null
 * access policy", a single `{resourceType: '*'}` grant (server `fhir/accesspolicy.ts` `buildAccessPolicy`),
 * evaluated by core like any other grant; only the cron path can get here, since the webhook route
 * refuses such a membership first (WH-1).
 */
async function membershipView(store: EmulatorStore, runAs: ProjectMembership): Promise<MemoryRepository> {
  const refs = runAs.accessPolicy ? [runAs.accessPolicy] : (runAs.access ?? []).map((a) => a.policy);
  const policies = await Promise.all(refs.map((ref) => store.repo.readReference<AccessPolicy>(ref)));
  const resource = refs.length === 0 ? [{ resourceType: '*' }] : policies.flatMap((p) => p.resource ?? []);
  return store.viewFor({ resourceType: 'AccessPolicy', resource });
}

function secretsOf(project: Project): Record<string, ProjectSetting> {
  return Object.fromEntries((project.secret ?? []).map((s) => [s.name, s]));
}
