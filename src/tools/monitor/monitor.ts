// `npm run monitor`: observe every bot (AuditEvents in a window, configuration) and, with
// MEDBLOCKS_API_KEY, the Medblocks endpoints; analyse with analyse.ts; report. Read-only; talks to
// Medplum through MedplumClient (../provision/medplum.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MedplumClient } from '@medplum/core';
import type { AccessPolicy, Task } from '@medplum/fhirtypes';
import { CODE, SYSTEM } from '../../runtime/fhir/systems';
import { SETTING_NAMES } from '../../runtime/settings';
import { ALL_BOTS } from '../../runtime/registry';
import type { BotEntry as DeployedBot } from '../../runtime/registry';
import type { Settings } from '../provision/env';
import { MedblocksApi } from '../provision/medblocks-api';
import { auditEvents, call, connectMedplum, membershipOf, readProject, SetupError } from '../provision/medplum';
import { byExactName, supportsRawBody, webhookUrl } from '../provision/plan';
import { secretIsTrue } from '../provision/preflight';
import { DEAD_LETTER_SEARCH, deadLetterEventType } from '../redeliver/redeliver';
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
  /** Per request, Medplum's and Medblocks' (30 s unless a test makes it short). */
  readonly requestTimeoutMs?: number;
  /** Told before each wait on Medblocks (a 429, an outage), which can last a minute; silent by default. */
  readonly onWait?: (line: string) => void;
}

export interface BotReport extends RunStats {
  readonly name: string;
  readonly id: string | undefined;
  readonly issues: readonly string[];
  /** Working, with a limit worth knowing (e.g. the parsed-body fallback); not counted as attention. */
  readonly warnings: readonly string[];
}

export interface MonitorReport {
  readonly since: string;
  readonly medplumVersion: string | undefined;
  /** Problems of the whole project (e.g. no `bots` feature: no bot can run). */
  readonly projectIssues: readonly string[];
  readonly bots: readonly BotReport[];
  /** Undefined when MEDBLOCKS_API_KEY is not set. */
  readonly endpoints: readonly EndpointStatus[] | undefined;
  /** Open dead-letter Tasks (quarantined events not applied yet), in total and per event type. */
  readonly quarantined: QuarantinedCount;
  /** The records import's Tasks that are not done: failed (parked until the next sync) and in progress. */
  readonly imports: ImportCount;
  readonly attention: boolean;
}

export interface ImportCount {
  readonly failed: number;
  readonly inProgress: number;
  /** True when a search hit its page size: the counts are lower bounds. */
  readonly more: boolean;
}

export const IMPORT_TASK_SEARCH = `code=${SYSTEM.code}|${CODE.recordsImport}`;

/**
 * Counts the records import's failed and unfinished Tasks. A failed import is parked until the next
 * sync of that patient, and its runs are AuditEvent successes: without this count it stays unseen.
 */
export async function countImports(medplum: MedplumClient): Promise<ImportCount> {
  const count = async (status: string): Promise<number> =>
    (
      await call('GET', 'fhir/R4/Task', () =>
        medplum.searchResources('Task', `${IMPORT_TASK_SEARCH}&status=${status}&_count=${String(DEAD_LETTER_PAGE)}`)
      )
    ).length;
  const [failed, inProgress] = [await count('failed'), await count('in-progress')];
  return { failed, inProgress, more: failed >= DEAD_LETTER_PAGE || inProgress >= DEAD_LETTER_PAGE };
}

/** The import lines: what waits and where to look. */
export function formatImports(imports: ImportCount): string[] {
  const plus = imports.more ? '+' : '';
  if (imports.failed === 0 && imports.inProgress === 0) return ['Records imports: none failed or in progress.'];
  const lines = [
    `Records imports: ${String(imports.failed)}${plus} failed, ${String(imports.inProgress)}${plus} in progress (medblocks-records-import continues those every 5 minutes).`,
  ];
  if (imports.failed > 0) {
    lines.push(
      `! ${String(imports.failed)}${plus} failed import${imports.failed === 1 ? '' : 's'}: see each Task's reason (Task?${IMPORT_TASK_SEARCH}&status=failed); docs/records-import.md "Failures"`
    );
  }
  return lines;
}

export interface QuarantinedCount {
  readonly total: number;
  /** True when the search hit its page size: the total is a lower bound. */
  readonly more: boolean;
  readonly byType: Readonly<Record<string, number>>;
  /**
   * Per reason; a recurring failure quarantined after 24 h of retries is its own class,
   * `retries_exhausted (cause: <reason>)`: a bug or a missing grant to fix, not a payload.
   */
  readonly byReason: Readonly<Record<string, number>>;
}

/** One page of dead-letters is plenty to count: more than this open at once is its own alarm. */
const DEAD_LETTER_PAGE = 1000;

/**
 * Counts the open dead-letters with one search. Quarantined events are answered 200, so Medblocks
 * and the AuditEvents call them successes: without this count they stay invisible until someone
 * opens the Medplum app.
 */
export async function countQuarantined(medplum: MedplumClient): Promise<QuarantinedCount> {
  const tasks = await call('GET', 'fhir/R4/Task', () =>
    medplum.searchResources('Task', `${DEAD_LETTER_SEARCH}&_count=${String(DEAD_LETTER_PAGE)}`)
  );
  const byType: Record<string, number> = {};
  const byReason: Record<string, number> = {};
  for (const task of tasks) {
    const type = deadLetterEventType(task);
    byType[type] = (byType[type] ?? 0) + 1;
    const reason = deadLetterReasonClass(task);
    byReason[reason] = (byReason[reason] ?? 0) + 1;
  }
  return { total: tasks.length, more: tasks.length >= DEAD_LETTER_PAGE, byType, byReason };
}

/** `reason`, or `retries_exhausted (cause: …)`, from the dead-letter's inputs; cleaned, as it came from Medplum. */
function deadLetterReasonClass(task: Task): string {
  const input = (name: string) => task.input?.find((i) => i.type.text === name)?.valueString;
  const clean = (text: string | undefined) => (text && /^[a-z_]{1,40}$/.test(text) ? text : 'unknown');
  const cause = input('cause');
  return `${clean(input('reason'))}${cause ? ` (cause: ${clean(cause)})` : ''}`;
}

/** Builds the report; `attention` is what the exit code reflects. */
export async function monitor(options: MonitorOptions): Promise<MonitorReport> {
  const { settings } = options;
  const bots = options.bots ?? ALL_BOTS;
  const since = new Date((options.now ?? Date.now)() - options.windowMs).toISOString();
  const session = await connectMedplum(settings, options.fetchFn, options.requestTimeoutMs);
  const { medplum } = session;
  const { project, readable } = await readProject(session);
  if (!readable) {
    throw new SetupError(
      `Could not read Project/${session.projectId}: the client MEDPLUM_CLIENT_ID=${session.clientId} must be a project admin (Project Admin → Clients → Admin)`
    );
  }
  const secrets = project.secret ?? [];
  const projectIssues = (project.features ?? []).includes('bots')
    ? []
    : [
        `Project/${session.projectId} lacks the "bots" feature: no bot can run or be deployed. Ask a super admin to add it (a project admin's edit is ignored).`,
      ];
  const rawBodySupported = supportsRawBody(session.version);
  const parsedBodyFallback = rawBodySupported === false && secretIsTrue(secrets, SETTING_NAMES.allowParsedBody);

  const reports: BotReport[] = [];
  const urls: Record<string, string> = {};
  for (const spec of bots) {
    const policyName =
      (JSON.parse(readFileSync(join(options.root, spec.policyFile), 'utf8')) as AccessPolicy).name ?? spec.name;
    const policy = byExactName(
      await call('GET', 'fhir/R4/AccessPolicy', () => medplum.searchResources('AccessPolicy', { name: policyName })),
      policyName
    );
    const bot = byExactName(
      await call('GET', 'fhir/R4/Bot', () => medplum.searchResources('Bot', { name: spec.name })),
      spec.name
    );
    const membership = bot?.id ? await membershipOf(medplum, bot.id) : undefined;
    if (membership?.id) urls[spec.name] = webhookUrl(session.baseUrl, membership.id);
    const { issues, warnings } = driftIssues(
      spec,
      { bot, membership, policyId: policy?.id },
      secrets,
      rawBodySupported
    );
    const stats = runStats(bot?.id ? await auditEvents(medplum, bot.id, since) : []);
    if (stats.failures > options.maxFailures) issues.push(`${stats.failures} failed run(s) since ${since}`);
    const mismatches = stats.failuresByReason['rejected:signature_mismatch'] ?? 0;
    if (parsedBodyFallback && mismatches > 0) {
      warnings.push(
        `${mismatches} signature_mismatch refusal(s): with the parsed-body fallback these may be genuine deliveries ` +
          'whose JSON was not compact, reordered or escaped; upgrading Medplum to 5.2+ removes the fallback'
      );
    }
    reports.push({ name: spec.name, id: bot?.id, ...stats, issues, warnings });
  }

  let endpoints: EndpointStatus[] | undefined;
  if (settings.medblocksApiKey) {
    const medblocks = new MedblocksApi(settings.medblocksBaseUrl, settings.medblocksApiKey, options.fetchFn, {
      timeoutMs: options.requestTimeoutMs,
      onWait: options.onWait,
    });
    const all = await medblocks.listEndpoints();
    endpoints = [];
    for (const spec of bots) {
      if (spec.kind !== 'webhook') continue;
      const url = urls[spec.name];
      // Every name of the bot's event (the flow event has two): an endpoint under either is the bot's.
      const names: readonly string[] = spec.eventTypes;
      const endpoint = url
        ? all.find((e) => e.url === url && e.events.some((n) => n === '*' || names.includes(n)))
        : undefined;
      const undelivered = endpoint ? await medblocks.undeliveredEvents(endpoint.id) : [];
      endpoints.push(endpointStatus(spec, endpoint, undelivered));
    }
  }

  const quarantined = await countQuarantined(medplum);
  const imports = await countImports(medplum);
  const attention =
    quarantined.total > 0 ||
    imports.failed > 0 ||
    projectIssues.length > 0 ||
    reports.some((r) => r.issues.length > 0) ||
    (endpoints ?? []).some((e) => e.issues.length > 0);
  return {
    since,
    medplumVersion: session.version,
    projectIssues,
    bots: reports,
    endpoints,
    quarantined,
    imports,
    attention,
  };
}

function status(bot: BotReport): string {
  if (bot.issues.length > 0) return 'ATTENTION';
  return bot.warnings.length > 0 ? 'ok (warning)' : 'ok';
}

function ms(value: number | undefined): string {
  return value === undefined ? '-' : `${value}ms`;
}

/** A readable table: one row per bot, then problems, then endpoints. */
export function formatMonitorReport(report: MonitorReport): string[] {
  const lines: string[] = [`Since ${report.since} (Medplum ${report.medplumVersion ?? 'version unknown'})`];
  for (const issue of report.projectIssues) lines.push(`! ${issue}`);
  lines.push('');
  lines.push(
    `${'bot'.padEnd(44)} ${'runs'.padStart(6)} ${'failed'.padStart(6)} ${'p50'.padStart(8)} ${'p95'.padStart(8)}  status`
  );
  for (const bot of report.bots) {
    lines.push(
      `${bot.name.padEnd(44)} ${String(bot.runs).padStart(6)} ${String(bot.failures).padStart(6)} ` +
        `${ms(bot.p50Ms).padStart(8)} ${ms(bot.p95Ms).padStart(8)}  ${status(bot)}`
    );
    for (const [reason, count] of Object.entries(bot.failuresByReason).sort((a, b) => b[1] - a[1])) {
      lines.push(`    ${String(count).padStart(5)} × ${reason}`);
    }
    for (const issue of bot.issues) lines.push(`    ! ${issue}`);
    for (const warning of bot.warnings) lines.push(`    ~ ${warning}`);
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
  lines.push('', ...formatQuarantined(report.quarantined));
  lines.push('', ...formatImports(report.imports));
  const warned = report.bots.some((b) => b.warnings.length > 0);
  lines.push('', report.attention ? 'Needs attention.' : warned ? 'All good (see ~ warnings).' : 'All good.');
  return lines;
}

/** The dead-letter lines: a count per event type and what to do about them. */
export function formatQuarantined(q: QuarantinedCount): string[] {
  if (q.total === 0) return ['Quarantined events (open dead-letter Tasks): none.'];
  const n = `${String(q.total)}${q.more ? '+' : ''}`;
  const lines = [`Quarantined events (open dead-letter Tasks): ${n}`];
  for (const [type, count] of Object.entries(q.byType).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) {
    lines.push(`    ${String(count).padStart(5)} × ${type}`);
  }
  const reasons = Object.entries(q.byReason).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  lines.push(`    by reason: ${reasons.map(([reason, count]) => `${String(count)} × ${reason}`).join(', ')}`);
  lines.push(
    `! ${n} quarantined event${q.total === 1 ? '' : 's'}: fix the cause (README "When something goes wrong"), then npm run redeliver -- --quarantined`
  );
  return lines;
}
