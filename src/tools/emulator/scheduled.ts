// Medplum's cron worker (packages/server/src/workers/cron.ts), run on demand: the emulator keeps no
// clock and no BullMQ queue, so a test or the demo asks for "the job that fires now" and gets
// exactly what the worker's `execBot` would do with it. Whether a job exists at all is decided
// where Medplum decides it, in `addCronJobs`: only for a Bot with a valid `cronTiming` or
// `cronString` in a project with the `cron` feature. A bot Medplum would never schedule is not run.
import { ContentType } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Bot, Project, ProjectMembership } from '@medplum/fhirtypes';
import { isValidCron } from 'cron-validator';
import { executeBot } from './execute';
import type { BotExecution, ExecutionContext } from './execute';

export const SCHEDULED_MESSAGES = {
  /** `addCronJobs`' debug line when the project lacks the feature; no job is created. */
  cronDisabled: 'Cron not enabled. Cron needs to be enabled in project to create cron job for bot',
  /** `getCronStringForBot` found nothing valid: `addCronJobs` creates (or keeps) no job. */
  notScheduled: 'Bot has no valid cronTiming or cronString, so Medplum schedules no cron job for it',
  /** What `execBot` throws (the job fails; no AuditEvent) when the bot has no membership. */
  noMembership: 'Could not find project membership for bot',
} as const;

/** Why a scheduled run did not happen: Medplum would have no job, or its job would throw before running. */
export type ScheduledRefusal = 'cron-not-enabled' | 'not-scheduled' | 'no-membership';

export type ScheduledRun =
  | ({ readonly ran: true } & BotExecution)
  | { readonly ran: false; readonly reason: ScheduledRefusal; readonly message: string };

/**
 * One firing of the bot's cron job, as `execBot` runs it: the Bot read fresh, its membership found
 * by project and profile, `executeBot` with the Bot itself as input, `application/fhir+json`, and no
 * requester, headers or trace id. A failed bot still counts as run (`ran: true`, `success: false`):
 * the worker's job completes, and the failure is in the AuditEvent.
 */
export async function runScheduledBot(ctx: ExecutionContext, botId: string): Promise<ScheduledRun> {
  const { store } = ctx;
  const bot = (await store.repo.readResource<Bot>('Bot', botId)) as WithId<Bot>;
  const projectId = bot.meta?.project ?? '';
  const project = await store.repo.readResource<Project>('Project', projectId);
  if (!project.features?.includes('cron')) {
    return { ran: false, reason: 'cron-not-enabled', message: SCHEDULED_MESSAGES.cronDisabled };
  }
  if (!hasCronJob(bot)) {
    return { ran: false, reason: 'not-scheduled', message: SCHEDULED_MESSAGES.notScheduled };
  }
  const runAs = await findProjectMembership(ctx, projectId, `Bot/${bot.id}`);
  if (!runAs) {
    return { ran: false, reason: 'no-membership', message: SCHEDULED_MESSAGES.noMembership };
  }
  const execution = await executeBot(ctx, { bot, runAs, input: bot, contentType: ContentType.FHIR_JSON });
  return { ran: true, ...execution };
}

/**
 * Whether `getCronStringForBot` finds a pattern, i.e. whether Medplum keeps a cron job for the bot:
 * a `cronTiming` with a `repeat` (`convertTimingToCron` yields a pattern exactly then), or a
 * `cronString` that `cron-validator`'s `isValidCron` accepts with its default options — the same
 * package and call the server makes (5 fields, numbers only, no seconds).
 */
export function hasCronJob(bot: Bot): boolean {
  return bot.cronTiming?.repeat !== undefined || (bot.cronString !== undefined && isValidCron(bot.cronString));
}

/** `findProjectMembership` (workers/utils.ts): the membership in the bot's project whose profile is the bot. */
export async function findProjectMembership(
  ctx: ExecutionContext,
  projectId: string,
  profile: string
): Promise<ProjectMembership | undefined> {
  const memberships = await ctx.store.repo.searchResources<ProjectMembership>({
    resourceType: 'ProjectMembership',
    count: 1000,
  });
  return memberships.find((m) => m.project.reference === `Project/${projectId}` && m.profile.reference === profile);
}
