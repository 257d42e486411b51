// Pure analysis for `npm run monitor`: AuditEvents → runs, failures by reason and latency; observed
// configuration → drift; Medblocks endpoints → delivery problems. No I/O, so every rule is testable.
import type { AuditEvent, Bot, ProjectMembership, ProjectSetting } from '@medplum/fhirtypes';
import { SETTING_NAMES } from '../../runtime/settings';
import type { BotEntry as DeployedBot } from '../../runtime/registry';
import type { MedblocksDelivery, MedblocksEndpoint } from '../provision/medblocks-api';
import { hasSecret, membershipDrift } from '../provision/plan';
import { secretIsTrue } from '../provision/preflight';
import { outcomeOfConsole } from '../../runtime/summary';

export interface RunStats {
  readonly runs: number;
  readonly failures: number;
  /** Failures keyed by the summary line's outcome (e.g. `rejected:signature_mismatch`), or `unknown`. */
  readonly failuresByReason: Readonly<Record<string, number>>;
  readonly p50Ms: number | undefined;
  readonly p95Ms: number | undefined;
  /** The same, per hour (UTC, `2026-12-03T08`), oldest first: when failures started, and latency over time. */
  readonly hourly: readonly HourStats[];
}

export interface HourStats {
  readonly hour: string;
  readonly runs: number;
  readonly failures: number;
  readonly failuresByReason: Readonly<Record<string, number>>;
  readonly p50Ms: number | undefined;
  readonly p95Ms: number | undefined;
}

function isFailure(event: AuditEvent, outcome: string | undefined): boolean {
  if (outcome) return outcome.startsWith('rejected:') || outcome.startsWith('failed:');
  return event.outcome !== undefined && event.outcome !== '0';
}

/** Nearest-rank percentile over sorted values. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

export function runStats(events: readonly AuditEvent[]): RunStats {
  const whole = bucketStats(events);
  const byHour = new Map<string, AuditEvent[]>();
  for (const event of events) {
    // `recorded` is required on an AuditEvent: the hour the run was recorded in.
    const hour = event.recorded.slice(0, 13);
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}$/.test(hour)) continue;
    byHour.set(hour, [...(byHour.get(hour) ?? []), event]);
  }
  const hourly = [...byHour.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([hour, inHour]) => ({ hour, ...bucketStats(inHour) }));
  return { ...whole, hourly };
}

function bucketStats(events: readonly AuditEvent[]): Omit<RunStats, 'hourly'> {
  const failuresByReason: Record<string, number> = {};
  let failures = 0;
  const durations: number[] = [];
  for (const event of events) {
    const outcome = outcomeOfConsole(event.outcomeDesc);
    if (isFailure(event, outcome)) {
      failures++;
      const reason = outcome ?? 'unknown';
      failuresByReason[reason] = (failuresByReason[reason] ?? 0) + 1;
    }
    const start = Date.parse(event.period?.start ?? '');
    const end = Date.parse(event.period?.end ?? '');
    if (Number.isFinite(start) && Number.isFinite(end) && end >= start) durations.push(end - start);
  }
  durations.sort((a, b) => a - b);
  return {
    runs: events.length,
    failures,
    failuresByReason,
    p50Ms: percentile(durations, 50),
    p95Ms: percentile(durations, 95),
  };
}

export interface ObservedBot {
  readonly bot: Bot | undefined;
  readonly membership: ProjectMembership | undefined;
  /** The id of the AccessPolicy named in the bot's policy file, when it exists. */
  readonly policyId: string | undefined;
}

/** Problems (need attention) and warnings (work, with limits) in a bot's configuration. */
export interface Drift {
  readonly issues: string[];
  readonly warnings: string[];
}

/**
 * Configuration problems that make a bot refuse or miss deliveries. On a server that predates
 * Bot.rawBody with MEDBLOCKS_ALLOW_PARSED_BODY=true, the bots verify the re-serialised parsed body
 * and deliveries succeed: that is a warning about the fallback's limits, not a broken bot.
 */
export function driftIssues(
  spec: DeployedBot,
  observed: ObservedBot,
  secrets: readonly ProjectSetting[],
  rawBodySupported: boolean | undefined
): Drift {
  const { bot, membership, policyId } = observed;
  if (!bot) return { issues: ['bot missing: run npm run provision'], warnings: [] };
  const issues: string[] = [];
  const warnings: string[] = [];
  if (spec.kind === 'webhook') {
    if (bot.publicWebhook !== true) issues.push('publicWebhook is off: Medplum answers 403');
    if (rawBodySupported === false) {
      if (secretIsTrue(secrets, SETTING_NAMES.allowParsedBody)) {
        warnings.push(
          `server predates Bot.rawBody; ${SETTING_NAMES.allowParsedBody}=true verifies the re-serialised parsed body, ` +
            "which matches only compact JSON in Medblocks' key order without escapes (\\u00e9) or pretty-printing: upgrade Medplum to 5.2+"
        );
      } else {
        issues.push(
          'server predates Bot.rawBody: deliveries are refused with body_not_raw. Upgrade Medplum to 5.2+ ' +
            `(stopgap: project secret ${SETTING_NAMES.allowParsedBody}=true, see docs/going-live.md)`
        );
      }
    } else if (bot.rawBody !== true) {
      issues.push('rawBody is off: deliveries are refused with body_not_raw');
    }
    if (spec.secretName && !hasSecret(secrets, spec.secretName)) {
      issues.push(`project secret ${spec.secretName} missing: deliveries are refused with no_secret_configured`);
    }
  } else if (spec.schedule && bot.cronString !== spec.schedule) {
    issues.push(`schedule is ${bot.cronString ?? 'unset'}, expected ${spec.schedule}`);
  }
  if (!membership) {
    issues.push('no ProjectMembership for the bot');
  } else if (!membership.accessPolicy && !membership.access?.length) {
    issues.push('no access policy on the membership: Medplum answers 403');
  } else if (!policyId) {
    issues.push('the bot’s AccessPolicy is missing');
  } else if (membershipDrift(membership, policyId)) {
    issues.push('membership carries a different access policy');
  }
  return { issues, warnings };
}

export interface EndpointStatus {
  readonly id: string;
  readonly event: string;
  readonly bot: string;
  readonly status: string;
  readonly undelivered: number;
  readonly oldestUndelivered: string | undefined;
  readonly issues: readonly string[];
}

/**
 * Medblocks disables an endpoint silently once an event exhausts its retries, so this is the only
 * place the problem shows; undelivered events are what a re-enable plus redelivery must recover.
 */
export function endpointStatus(
  spec: DeployedBot,
  endpoint: MedblocksEndpoint | undefined,
  undelivered: readonly MedblocksDelivery[]
): EndpointStatus {
  const event = spec.medblocksEvent ?? '';
  if (!endpoint) {
    return {
      id: '-',
      event,
      bot: spec.name,
      status: 'missing',
      undelivered: 0,
      oldestUndelivered: undefined,
      issues: ['no Medblocks endpoint points at this bot: run npm run provision with MEDBLOCKS_API_KEY'],
    };
  }
  const issues: string[] = [];
  if (endpoint.status !== 'active') {
    issues.push(`endpoint ${endpoint.status}: re-enable it (npm run provision) after fixing the cause`);
  }
  if (undelivered.length > 0) issues.push(`${undelivered.length} undelivered event(s)`);
  const oldest = undelivered
    .map((d) => d.created_at)
    .filter((d): d is string => Boolean(d))
    .sort()[0];
  return {
    id: endpoint.id,
    event,
    bot: spec.name,
    status: endpoint.status,
    undelivered: undelivered.length,
    oldestUndelivered: oldest,
    issues,
  };
}

/** `24h`, `30m`, `7d` → milliseconds. */
export function parseWindow(text: string): number {
  const match = /^(\d+)\s*([mhd])$/.exec(text.trim());
  if (!match) throw new Error(`--since must look like 30m, 24h or 7d (got "${text}")`);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
