// A bot run's AuditEvent as Medplum writes it (ledger AUD-1): what monitor reads, for its tests.
import type { AuditEvent } from '@medplum/fhirtypes';

/** A run of `botId` that started `minutesAgo` before `now`, lasted `ms`, with its summary line. */
export function botRunAuditEvent(
  now: number,
  botId: string,
  minutesAgo: number,
  ms: number,
  outcome: '0' | '4',
  line: string
): AuditEvent {
  const start = new Date(now - minutesAgo * 60_000);
  return {
    resourceType: 'AuditEvent',
    type: { system: 'https://medplum.com/CodeSystem/audit-event', code: 'execute' },
    recorded: new Date(start.getTime() + ms).toISOString(),
    period: { start: start.toISOString(), end: new Date(start.getTime() + ms).toISOString() },
    outcome,
    outcomeDesc: line,
    source: { observer: { reference: `Bot/${botId}` } },
    agent: [{ requestor: false }],
    entity: [{ what: { reference: `Bot/${botId}` } }],
  };
}
