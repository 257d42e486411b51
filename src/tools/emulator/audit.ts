// The AuditEvent Medplum writes after every bot execution (createBotAuditEvent in
// packages/server/src/util/auditevent.ts), so that `AuditEvent?entity=Bot/{id}&outcome=4` and the
// monitor behave locally as they do on a server.
import { createReference } from '@medplum/core';
import type { AuditEvent, AuditEventAgent, Bot, ProjectMembership } from '@medplum/fhirtypes';

/** Medplum keeps the last 10 KiB of the console output in `outcomeDesc`. */
export const MAX_OUTCOME_DESC_LENGTH = 10 * 1024;

export const AUDIT_EVENT_TYPE = { system: 'https://medplum.com/CodeSystem/audit-event', code: 'execute' } as const;

export interface BotRunRecord {
  readonly bot: Bot & { id: string };
  readonly runAs: ProjectMembership;
  readonly requester?: AuditEventAgent['who'];
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

/** Builds the execution AuditEvent: outcome `0` or `4`, the run's period, `Bot/{id}` as observer and entity. */
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
    entity: [{ what: botRef, role: { code: '4', display: 'Domain' } }],
    outcome: run.success ? '0' : '4',
    outcomeDesc: run.logResult.substring(run.logResult.length - MAX_OUTCOME_DESC_LENGTH),
  };
}
