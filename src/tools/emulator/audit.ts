// The AuditEvent Medplum writes after every bot execution (createBotAuditEvent in
// packages/server/src/util/auditevent.ts), so that `AuditEvent?entity=Bot/{id}&outcome=4` and the
// monitor behave locally as they do on a server.
import { createReference, isResourceWithId } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type {
  AuditEvent,
  AuditEventAgent,
  AuditEventEntity,
  Bot,
  ProjectMembership,
  Resource,
} from '@medplum/fhirtypes';

/** Medplum keeps the last 10 KiB of the console output in `outcomeDesc`. */
export const MAX_OUTCOME_DESC_LENGTH = 10 * 1024;

export const AUDIT_EVENT_TYPE = { system: 'https://medplum.com/CodeSystem/audit-event', code: 'execute' } as const;

export interface BotRunRecord {
  readonly bot: WithId<Bot>;
  readonly runAs: ProjectMembership;
  readonly requester?: AuditEventAgent['who'];
  /** The bot's input: when it is a resource with an id (a cron run's input is the Bot itself), it is an entity too. */
  readonly input?: unknown;
  readonly startTime: string;
  readonly endTime: string;
  readonly success: boolean;
  readonly logResult: string;
}

/** Whether Medplum would write an AuditEvent for this run, per `Bot.auditEventTrigger`. */
export function shouldAudit(bot: Bot, success: boolean, logResult: string): boolean {
  const trigger = bot.auditEventTrigger ?? 'always';
  if (trigger === 'never') return false;
  if (trigger === 'on-error') return !success;
  if (trigger === 'on-output') return logResult.length > 0;
  return true;
}

/**
 * Builds the execution AuditEvent: outcome `0` or `4`, the run's period, `Bot/{id}` as observer and
 * entity, then the input as an entity when it is a resource with an id — Medplum's
 * `createAuditEventEntities(bot, input, …)`, which does not deduplicate, so a scheduled run (whose
 * input is the Bot) names the Bot twice (CRON-4).
 */
export function botAuditEvent(run: BotRunRecord): AuditEvent {
  const botRef = createReference(run.bot);
  return {
    resourceType: 'AuditEvent',
    meta: { project: run.runAs.project.reference?.replace(/^Project\//, '') },
    period: { start: run.startTime, end: run.endTime },
    recorded: run.endTime,
    type: { ...AUDIT_EVENT_TYPE },
    agent: [
      { who: run.requester, requestor: true },
      { who: run.runAs.profile, requestor: false },
    ],
    source: { observer: botRef },
    entity: [run.bot, run.input].flatMap((r) => (isResourceWithId(r) ? [auditEntity(r)] : [])),
    outcome: run.success ? '0' : '4',
    outcomeDesc: run.logResult.substring(run.logResult.length - MAX_OUTCOME_DESC_LENGTH),
  };
}

/** Medplum's `getAuditEventEntityRole`: Patient `1`, Subscription `9`, anything else `4` Domain. */
function auditEntity(resource: Resource): AuditEventEntity {
  const role =
    resource.resourceType === 'Patient'
      ? { code: '1', display: 'Patient' }
      : resource.resourceType === 'Subscription'
        ? { code: '9', display: 'Subscriber' }
        : { code: '4', display: 'Domain' };
  return { what: createReference(resource), role };
}
