// The scheduled reconciler (`medblocks-reconciler`, daily): `npm run reconcile` as a Medplum bot,
// with the Medblocks API key in a project secret, and an ops Task for each of this package's
// endpoints Medblocks disabled (./endpoints.ts). Medblocks pushes a connection's refresh failure
// but never its expiry or disconnection; this run is what makes such a Consent `inactive` without
// anyone running a command. One PHI-free line of counts becomes its AuditEvent's text; a failed
// run throws after logging, so the AuditEvent is a failure and `npm run monitor` counts it.
import type { BotEvent, MedplumClient } from '@medplum/core';
import { IMPORT_SETTING_NAMES, DEFAULT_MEDBLOCKS_API_BASE_URL } from '../import/settings';
import { MedblocksCallError } from '../medblocks/http';
import { patientsOverFetch } from '../medblocks/patients';
import { readSettings, readString } from '../settings';
import { FhirFailureError } from '../store/errors';
import { checkEndpoints } from './endpoints';
import type { EndpointCheck } from './endpoints';
import { scheduledBot } from '../scheduled-bot';
import { reconcile } from './reconcile';
import type { ReconcileSummary } from './reconcile';

/** Default work budget of one run, inside the bot's 120 s timeout; the next day's run goes on. */
export const RECONCILE_BUDGET_MS = 90_000;

export interface ReconcilerOptions {
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
  readonly budgetMs?: number;
  /** Where the summary line goes; Medplum captures console.log. */
  readonly log?: (line: string) => void;
}

export type ReconcilerStatus = 'off' | 'done' | 'partial' | `failed:${string}`;

export interface ReconcilerResult {
  readonly status: ReconcilerStatus;
  /** Why the run is off, when it is. */
  readonly why?: string;
  readonly endpoints?: EndpointCheck;
  readonly summary?: ReconcileSummary;
}

/** The run's one line: status and counts; no patient, connection or source id. */
export function reconcilerSummaryLine(result: ReconcilerResult, ms: number, why?: string): string {
  const s = result.summary;
  const e = result.endpoints;
  const endpoints = e
    ? ` endpoints_disabled=${String(e.disabled)} ops_tasks_opened=${String(e.opened)} ops_tasks_closed=${String(e.closed)}`
    : '';
  const counts = s
    ? ` patients=${String(s.patients)} not_reached=${String(s.notReached)} connections=${String(s.connections)} changed=${String(s.changed)} unknown_status=${String(s.unknownStatus)} writes=${String(s.writes)}`
    : '';
  return `medblocks-reconcile status=${result.status}${why ? ` why="${why}"` : ''}${endpoints}${counts} ms=${String(ms)}`;
}

/** One reconciliation run: the endpoints first, then every patient within the budget. */
async function runReconciler(
  medplum: MedplumClient,
  event: BotEvent,
  options: ReconcilerOptions
): Promise<ReconcilerResult> {
  const now = options.now ?? Date.now;
  const apiKey = readString(event.secrets, IMPORT_SETTING_NAMES.apiKey);
  if (!apiKey) return { status: 'off', why: `${IMPORT_SETTING_NAMES.apiKey} is not set` };
  const baseUrl = readString(event.secrets, IMPORT_SETTING_NAMES.apiBaseUrl) ?? DEFAULT_MEDBLOCKS_API_BASE_URL;
  const deadline = now() + (options.budgetMs ?? RECONCILE_BUDGET_MS);
  const connection = { baseUrl, apiKey, fetch: options.fetch ?? fetch };
  let endpoints: EndpointCheck | undefined;
  try {
    // The endpoints first: a disabled one loses every event, the worst news this run can bring.
    endpoints = await checkEndpoints(medplum, connection, new Date(now()).toISOString(), { requests: 0 });
    const summary = await reconcile({
      medplum,
      api: patientsOverFetch(connection),
      settings: readSettings(event.secrets),
      dryRun: false,
      // One line per changed connection is the CLI's; the bot's AuditEvent keeps the counts only.
      print: () => undefined,
      shouldStop: () => now() >= deadline,
    });
    return { status: summary.notReached > 0 ? 'partial' : 'done', endpoints, summary };
  } catch (err) {
    const reason = err instanceof FhirFailureError || err instanceof MedblocksCallError ? err.reason : 'internal';
    return { status: `failed:${reason}`, endpoints };
  }
}

/** Builds the reconciler's `handler`. Options exist for tests (clock, fetch, budget, log sink). */
export function createReconciler(
  options: ReconcilerOptions = {}
): (medplum: MedplumClient, event: BotEvent) => Promise<ReconcilerResult> {
  return scheduledBot(
    {
      run: (medplum, event) => runReconciler(medplum, event, options),
      line: (result, ms) => reconcilerSummaryLine(result, ms, result.why),
      failure: (result) =>
        result.status.startsWith('failed:')
          ? `Reconciliation stopped: ${result.status}; the next scheduled run starts again`
          : undefined,
    },
    options
  );
}
