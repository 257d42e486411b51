// `npm run monitor`: observe every bot (AuditEvents in a window, configuration) and, with
// MEDBLOCKS_API_KEY, the Medblocks endpoints; analyse with analyse.ts; report. Read-only.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AccessPolicy, Bot } from '@medplum/fhirtypes';
import { DEPLOYED_BOTS } from '../provision/catalog';
import type { DeployedBot } from '../provision/catalog';
import type { Settings } from '../provision/env';
import { byExactName, supportsRawBody, webhookUrl } from '../provision/plan';
import { MedblocksApi, MedplumApi } from '../provision/remote';
import { driftIssues, endpointStatus, runStats } from './analyse';
import type { EndpointStatus, RunStats } from './analyse';

export interface MonitorOptions {
  readonly root: string;
  readonly settings: Settings;
  readonly windowMs: number;
  /** More failures than this (per bot, in the window) need attention. */
  readonly maxFailures: number;
  readonly now?: () => number;
  readonly bots?: readonly DeployedBot[];
  readonly fetchFn?: typeof fetch;
}

export interface BotReport extends RunStats {
  readonly name: string;
  readonly id: string | undefined;
  readonly issues: readonly string[];
}

export interface MonitorReport {
  readonly since: string;
  readonly medplumVersion: string | undefined;
  readonly bots: readonly BotReport[];
  /** Undefined when MEDBLOCKS_API_KEY is not set. */
  readonly endpoints: readonly EndpointStatus[] | undefined;
  readonly attention: boolean;
}

/** Builds the report; `attention` is what the exit code reflects. */
export async function monitor(options: MonitorOptions): Promise<MonitorReport> {
  const { settings } = options;
  const bots = options.bots ?? DEPLOYED_BOTS;
  const since = new Date((options.now ?? Date.now)() - options.windowMs).toISOString();
  const medplum = await MedplumApi.fromSettings(settings, options.fetchFn);
  const health = await medplum.healthcheck().catch(() => ({ version: undefined }));
  const secrets = await medplum.projectSecrets();

  const reports: BotReport[] = [];
  const urls: Record<string, string> = {};
  for (const spec of bots) {
    const policyName =
      (JSON.parse(readFileSync(join(options.root, spec.policyFile), 'utf8')) as AccessPolicy).name ?? spec.name;
    const policy = byExactName(await medplum.search<AccessPolicy>('AccessPolicy', { name: policyName }), policyName);
    const bot = byExactName(await medplum.search<Bot>('Bot', { name: spec.name }), spec.name);
    const membership = bot?.id ? await medplum.membershipOf(bot.id) : undefined;
    if (membership?.id) urls[spec.name] = webhookUrl(medplum.baseUrl, membership.id);
    const issues = driftIssues(
      spec,
      { bot, membership, policyId: policy?.id },
      secrets,
      supportsRawBody(health.version)
    );
    const stats = runStats(bot?.id ? await medplum.auditEvents(bot.id, since) : []);
    if (stats.failures > options.maxFailures) issues.push(`${stats.failures} failed run(s) since ${since}`);
    reports.push({ name: spec.name, id: bot?.id, ...stats, issues });
  }

  let endpoints: EndpointStatus[] | undefined;
  if (settings.medblocksApiKey) {
    const medblocks = new MedblocksApi(settings.medblocksBaseUrl, settings.medblocksApiKey, options.fetchFn);
    const all = await medblocks.listEndpoints();
    endpoints = [];
    for (const spec of bots.filter((b) => b.kind === 'webhook')) {
      const url = urls[spec.name];
      const event = spec.medblocksEvent ?? '';
      const endpoint = url
        ? all.find((e) => e.url === url && (e.events.includes(event) || e.events.includes('*')))
        : undefined;
      const undelivered = endpoint ? await medblocks.undeliveredEvents(endpoint.id) : [];
      endpoints.push(endpointStatus(spec, endpoint, undelivered));
    }
  }

  const attention = reports.some((r) => r.issues.length > 0) || (endpoints ?? []).some((e) => e.issues.length > 0);
  return { since, medplumVersion: health.version, bots: reports, endpoints, attention };
}

function ms(value: number | undefined): string {
  return value === undefined ? '-' : `${value}ms`;
}

/** A readable table: one row per bot, then problems, then endpoints. */
export function formatMonitorReport(report: MonitorReport): string[] {
  const lines: string[] = [`Since ${report.since} (Medplum ${report.medplumVersion ?? 'version unknown'})`, ''];
  lines.push(
    `${'bot'.padEnd(44)} ${'runs'.padStart(6)} ${'failed'.padStart(6)} ${'p50'.padStart(8)} ${'p95'.padStart(8)}  status`
  );
  for (const bot of report.bots) {
    lines.push(
      `${bot.name.padEnd(44)} ${String(bot.runs).padStart(6)} ${String(bot.failures).padStart(6)} ` +
        `${ms(bot.p50Ms).padStart(8)} ${ms(bot.p95Ms).padStart(8)}  ${bot.issues.length ? 'ATTENTION' : 'ok'}`
    );
    for (const [reason, count] of Object.entries(bot.failuresByReason).sort((a, b) => b[1] - a[1])) {
      lines.push(`    ${String(count).padStart(5)} × ${reason}`);
    }
    for (const issue of bot.issues) lines.push(`    ! ${issue}`);
  }
  if (report.endpoints) {
    lines.push('', 'Medblocks endpoints');
    for (const e of report.endpoints) {
      lines.push(
        `  ${e.event.padEnd(34)} ${e.id.padEnd(28)} ${e.status.padEnd(9)} undelivered=${e.undelivered}` +
          (e.oldestUndelivered ? ` oldest=${e.oldestUndelivered}` : '')
      );
      for (const issue of e.issues) lines.push(`    ! ${issue}`);
    }
  } else {
    lines.push('', 'Medblocks endpoints: not checked (set MEDBLOCKS_API_KEY).');
  }
  lines.push('', report.attention ? 'Needs attention.' : 'All good.');
  return lines;
}
