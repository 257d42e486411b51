// `npm run verify`: the demo story, freshly identified (./story.ts), delivered to a provisioned
// Medplum project's webhook URLs signed as Medblocks signs, then the resulting FHIR state read back
// with the admin client and checked. The checks are those of the demo, for one patient: that is what
// makes it safe to run against a staging project that holds other data. Prints ids, statuses and
// outcomes only: the story's patients are synthetic, and no secret is ever printed.
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { MedplumClient } from '@medplum/core';
import type { AuditEvent, Basic, Consent, Patient, Task } from '@medplum/fhirtypes';
import type { WebhookBotName } from '../../runtime/registry';
import type { DemoIds, DemoStep, StepResult as DemoStepResult } from '../fixtures/demo-story';
import { CODE, EXTENSION, patientIdentifier, SYSTEM, TASK_KEY, token } from '../../runtime/fhir/systems';
import { readStamp } from '../../runtime/fhir/stamp';
import { serialise } from '../fixtures/events';
import { deliver } from '../sender/sender';
import { answerOutcome, answerText, hintFor } from './outcome';
import { freshStory } from './story';
import type { FreshStory } from './story';
import { verifyImport } from './import-check';
import type { VerifyImport } from './import-check';
import { textTable } from '../text-table';

/** A provisioned webhook bot as verify reaches it. */
export interface VerifyBot {
  readonly name: WebhookBotName;
  readonly botId: string;
  readonly webhookUrl: string;
  /** The signing secret to sign with (never printed). */
  readonly secret: string | undefined;
}

export interface VerifyTarget {
  readonly bots: readonly VerifyBot[];
  /** Reads the FHIR state; as a project admin on a real server. */
  readonly medplum: MedplumClient;
  /** Whether the server knows Bot.rawBody (>= 5.2); undefined when unknown. */
  readonly rawBodySupported: boolean | undefined;
  /**
   * False when the project's MEDBLOCKS_CREATE_MISSING_PATIENTS is false: verify then creates its
   * synthetic patient first, as an operator creates a patient before Medblocks reports on it.
   * Undefined when the project's secrets could not be read (the bots' default, true, is assumed).
   */
  readonly createsMissingPatients?: boolean;
  /** Whether the records import is on (then verify runs its bot once and checks it), or why not. */
  readonly recordsImport: VerifyImport;
}

export interface VerifyOptions {
  readonly target: VerifyTarget;
  readonly log?: (line: string) => void;
  /** Medblocks' deadline per delivery by default (5 s). */
  readonly deadlineMs?: number;
  /** How long to wait for the runs' AuditEvents to become searchable. */
  readonly auditWaitMs?: number;
  readonly now?: () => number;
  readonly fetch?: typeof fetch;
  /** The story to play; a fresh one by default (a test passes one to give its patient records at Medblocks first). */
  readonly story?: FreshStory;
}

export interface StepResult extends DemoStepResult {
  readonly ms: number;
  /** What to change when the step did not go as expected. */
  readonly hint?: string;
}

export interface CheckResult {
  readonly check: string;
  readonly expected: string;
  readonly actual: string;
  readonly ok: boolean;
  /** Shown with "skip", not counted, never a failure (the import when it is off). */
  readonly skipped?: boolean;
}

/** The FHIR state of one verify run's patient, as plain data for the checks. */
export interface VerifyState {
  readonly patients: number;
  readonly consents: readonly { readonly key: string; readonly status: string }[];
  readonly tasks: readonly { readonly key: string; readonly status: string }[];
  /** Event ids of this run marked applied: by a Basic marker, or by a sync Task version's stamp. */
  readonly markedEvents: readonly string[];
  /** Event ids of this run named by an AuditEvent summary line, one entry per AuditEvent. */
  readonly auditedEvents: readonly string[];
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly ids: DemoIds;
  readonly steps: readonly StepResult[];
  readonly checks: readonly CheckResult[];
  readonly hints: readonly string[];
  /** Dead-letter Tasks of this run's events that verify closed (`cancelled`), by event id. */
  readonly closedDeadLetters: readonly string[];
  /** The import bot verify ran once, when the import is on. */
  readonly importBotId?: string;
}

const FORGED_SECRET = 'whsec_forged_0000000000000000000000000000';

/** Plays the story against the target, reads the state back, checks it and reports. */
export async function runVerify(options: VerifyOptions): Promise<VerifyResult> {
  const log = options.log ?? (() => undefined);
  const now = options.now ?? Date.now;
  const { target } = options;
  const startedAt = new Date(now() - 60_000).toISOString();
  const story = options.story ?? freshStory(now());
  log(`Patient ${story.ids.patientId}, connection ${story.ids.connectionA}: fresh ids for this run.`);
  if (target.createsMissingPatients === false) {
    await createPatient(target.medplum, story.ids.patientId);
    log(
      `The project has MEDBLOCKS_CREATE_MISSING_PATIENTS=false: verify created its patient first, as you would before Medblocks reports on one.`
    );
  }

  const steps: StepResult[] = [];
  for (const [index, step] of story.steps.entries()) {
    steps.push(await play(target, index + 1, step, options));
  }
  const expectation = expectedState(story.ids, story.steps);
  const state = await readState(target, story.ids, expectation.allEvents, startedAt, {
    wantAudits: expectation.audits,
    waitMs: options.auditWaitMs ?? 10_000,
  });
  // After the story's records syncs and after the state above is read, so that the import's own
  // Task is not counted among the story's.
  const recordsImport = await verifyImport(target.medplum, target.recordsImport, story.ids);
  const checks = [...checkState(state, expectation), ...recordsImport.checks];
  const hints = [...new Set([...steps.map((s) => s.hint), recordsImport.hint].filter((h): h is string => Boolean(h)))];
  // After the state is read (the checks see what the bots left), before the report: a dead-letter
  // of verify's own event would keep monitor at "Needs attention", and redeliver could never clear
  // it (Medblocks never sent the event).
  const closedDeadLetters = await closeOwnDeadLetters(target.medplum, expectation.allEvents, now, log);
  const result = {
    ok: steps.every((s) => s.ok) && checks.every((c) => c.ok),
    ids: story.ids,
    steps,
    checks,
    hints,
    closedDeadLetters,
    ...(target.recordsImport.on ? { importBotId: target.recordsImport.botId } : {}),
  };
  report(result, log);
  return result;
}

/** Verify's synthetic patient, by identifier only (what the bots would have created); a second call finds it. */
async function createPatient(medplum: MedplumClient, patientId: string): Promise<void> {
  const identifier = patientIdentifier(patientId);
  await medplum.createResourceIfNoneExist<Patient>(
    { resourceType: 'Patient', identifier: [identifier] },
    `identifier=${encodeURIComponent(token(identifier.system, identifier.value))}`
  );
}

/** What a closed dead-letter says, in the Medplum app and to anyone who searches for it. */
export const VERIFY_CLOSED_REASON =
  "Closed by npm run verify: its own test event, which Medblocks never sent, so npm run redeliver could never clear it. Verify's output says why the bot quarantined it.";

/**
 * Closes (status `cancelled`, the reason above) the open dead-letters of this run's events, and
 * returns their event ids. Cancelled, not deleted: the record of what the bot refused stays, while
 * monitor and redeliver, which look at `status=failed` only, no longer see it. A failure to close
 * is said with the search to close them by hand; it does not change verify's verdict.
 */
export async function closeOwnDeadLetters(
  medplum: MedplumClient,
  events: readonly string[],
  now: () => number,
  log: (line: string) => void
): Promise<string[]> {
  if (events.length === 0) return [];
  const search = {
    identifier: events.map((id) => token(SYSTEM.deadLetter, id)).join(','),
    code: token(SYSTEM.code, CODE.webhookDeadLetter),
    status: 'failed',
    _count: '100',
  };
  const closed: string[] = [];
  try {
    const open = await medplum.searchResources('Task', search, { cache: 'no-cache' });
    for (const task of open) {
      const eventId = task.identifier?.find((i) => i.system === SYSTEM.deadLetter)?.value ?? '';
      await medplum.updateResource<Task>({
        ...task,
        status: 'cancelled',
        statusReason: { text: VERIFY_CLOSED_REASON },
        lastModified: new Date(now()).toISOString(),
      });
      closed.push(eventId);
    }
  } catch (err) {
    log(
      `warning: verify could not close the dead-letters of its own events (${err instanceof Error ? err.message : 'unknown error'}); ` +
        `close them by hand (status cancelled): Task?identifier=${SYSTEM.deadLetter}|<event id>&status=failed for ${events.join(', ')}`
    );
  }
  return closed;
}

async function play(target: VerifyTarget, number: number, step: DemoStep, options: VerifyOptions): Promise<StepResult> {
  const bot = target.bots.find((b) => b.name === step.bot);
  const expected = `${step.expectedStatus} ${step.expectedOutcome}`;
  const base = { step: number, title: step.title, eventType: step.event.type, expected };
  if (!bot) {
    return { ...base, status: undefined, outcome: 'bot missing', ms: 0, ok: false, hint: 'Run npm run provision.' };
  }
  const delivery = await deliver({
    url: bot.webhookUrl,
    body: serialise(step.event),
    secret: step.send?.wrongSecret ? FORGED_SECRET : (bot.secret ?? ''),
    clockSkewSeconds: step.send?.skewSeconds ?? 0,
    maxAttempts: 1,
    ...(options.deadlineMs ? { deadlineMs: options.deadlineMs } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const attempt = delivery.attempts[0];
  const body = attempt?.responseBody ?? '';
  const outcome = answerOutcome(attempt?.status, body, attempt?.error);
  const ok = attempt?.status === step.expectedStatus && outcome === step.expectedOutcome;
  const hint = ok ? undefined : hintFor(outcome, step.expectedOutcome, answerText(body), target.rawBodySupported);
  return { ...base, status: attempt?.status, outcome, ms: attempt?.durationMs ?? 0, ok, ...(hint ? { hint } : {}) };
}

/** What the story must leave behind, derived from the story itself. */
export interface Expectation {
  readonly ids: DemoIds;
  /** Every event id of the run, accepted or not. */
  readonly allEvents: readonly string[];
  /** Events the bots accepted (processed, duplicate or stale): each is marked applied. */
  readonly accepted: readonly string[];
  /** Events only ever refused (bad signature, stale timestamp): none may be marked applied. */
  readonly refused: readonly string[];
  /** Deliveries that reached a bot's handler: each leaves an AuditEvent naming its event. */
  readonly audits: number;
}

export function expectedState(ids: DemoIds, steps: readonly DemoStep[]): Expectation {
  const allEvents = [...new Set(steps.map((s) => s.event.id))];
  const accepted = [...new Set(steps.filter((s) => s.expectedStatus === 200).map((s) => s.event.id))];
  return {
    ids,
    allEvents,
    accepted,
    refused: allEvents.filter((id) => !accepted.includes(id)),
    audits: steps.filter((s) => s.expectedStatus === 200).length,
  };
}

/** Pure: the demo's checks, for this run's patient only. */
export function checkState(state: VerifyState, expected: Expectation): CheckResult[] {
  const { ids } = expected;
  const statusOf = (list: VerifyState['consents'], key: string | ((k: string) => boolean)): string =>
    list
      .filter((x) => (typeof key === 'string' ? x.key === key : key(x.key)))
      .map((x) => x.status)
      .join(',') || 'none';
  const marked = expected.accepted.filter((id) => state.markedEvents.includes(id)).length;
  const wronglyMarked = expected.refused.filter((id) => state.markedEvents.includes(id)).length;
  const checks: [string, string, string][] = [
    ['one Patient for the patient id', '1', String(state.patients)],
    ['Consents for the patient', '2', String(state.consents.length)],
    ['EHR A Consent (refresh failed; late event ignored)', 'inactive', statusOf(state.consents, ids.connectionA)],
    ['EHR B attempt Consent', 'rejected', statusOf(state.consents, (k) => k !== ids.connectionA)],
    ['reconnect-ehr Task', 'requested', statusOf(state.tasks, TASK_KEY.reconnect(ids.connectionA))],
    [
      'records-sync Task (failed, then recovered)',
      'completed',
      statusOf(state.tasks, TASK_KEY.recordsSync(ids.patientId, ids.sourceA)),
    ],
    ['Tasks for the patient (no follow-up)', '2', String(state.tasks.length)],
    ['accepted events marked applied', String(expected.accepted.length), String(marked)],
    ['refused events marked applied', '0', String(wronglyMarked)],
    ['AuditEvents naming this run’s events', String(expected.audits), String(state.auditedEvents.length)],
  ];
  return checks.map(([check, want, actual]) => ({ check, expected: want, actual, ok: want === actual }));
}

/** Reads the run's patient, its Consents and Tasks, the run's markers and AuditEvents. */
async function readState(
  target: VerifyTarget,
  ids: DemoIds,
  events: readonly string[],
  since: string,
  audit: { wantAudits: number; waitMs: number }
): Promise<VerifyState> {
  const { medplum } = target;
  const identifier = patientIdentifier(ids.patientId);
  const patients = await medplum.searchResources('Patient', { identifier: token(identifier.system, identifier.value) });
  const patient = patients[0];
  const consents: Consent[] = patient
    ? await medplum.searchResources('Consent', { patient: `Patient/${patient.id}`, _count: '100' })
    : [];
  const tasks: Task[] = patient
    ? await medplum.searchResources('Task', { subject: `Patient/${patient.id}`, _count: '100' })
    : [];
  const markers: Basic[] = await medplum.searchResources('Basic', {
    identifier: events.map((id) => token(SYSTEM.eventId, id)).join(','),
    _count: '100',
  });
  const markedEvents = [
    ...markers.flatMap((m) =>
      (m.identifier ?? []).filter((i) => i.system === SYSTEM.eventId && i.value).map((i) => i.value ?? '')
    ),
    ...(await stampedSyncEvents(medplum, tasks)),
  ];
  const auditedEvents = await readAudits(target, events, since, audit);
  return {
    patients: patients.length,
    consents: consents.map((c) => ({
      key: keyOf(c.identifier, [SYSTEM.connectionId, SYSTEM.connectionAttempt]),
      status: c.status,
    })),
    tasks: tasks.map((t) => ({ key: keyOf(t.identifier, [SYSTEM.taskKey]), status: t.status })),
    markedEvents,
    auditedEvents,
  };
}

/**
 * The sync events applied to the run's records-sync Tasks: a sync's marker is its stamp on the Task
 * (src/runtime/handlers/records-sync.ts), so each event applied is named by one version's stamp.
 */
async function stampedSyncEvents(medplum: MedplumClient, tasks: readonly Task[]): Promise<string[]> {
  const syncTasks = tasks.filter(
    (t) => t.id && t.code?.coding?.some((c) => c.system === SYSTEM.code && c.code === CODE.recordsSync)
  );
  const stamped: string[] = [];
  for (const task of syncTasks) {
    const history = await medplum.readHistory('Task', task.id ?? '');
    for (const entry of history.entry ?? []) {
      const eventId = entry.resource ? readStamp(entry.resource, EXTENSION.lastEvent)?.eventId : undefined;
      if (eventId && !stamped.includes(eventId)) stamped.push(eventId);
    }
  }
  return stamped;
}

/**
 * AuditEvents whose summary line names one of the run's events. A server may write them a moment
 * after answering, so this polls until the expected number shows or the wait is over.
 */
async function readAudits(
  target: VerifyTarget,
  events: readonly string[],
  since: string,
  { wantAudits, waitMs }: { wantAudits: number; waitMs: number }
): Promise<string[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const found: string[] = [];
    for (const bot of target.bots) {
      const audits: AuditEvent[] = await target.medplum.searchResources('AuditEvent', {
        entity: `Bot/${bot.botId}`,
        date: `ge${since}`,
        _count: '1000',
      });
      for (const a of audits) {
        const named = /\bevt=(\S+)/.exec(a.outcomeDesc ?? '')?.[1];
        if (named && events.includes(named)) found.push(named);
      }
    }
    if (found.length >= wantAudits || Date.now() >= deadline) return found;
    await sleepFor(500);
  }
}

function keyOf(identifiers: { system?: string; value?: string }[] | undefined, systems: readonly string[]): string {
  return identifiers?.find((i) => i.system && systems.includes(i.system))?.value ?? '-';
}

function report(result: VerifyResult, log: (line: string) => void): void {
  table(
    ['#', 'step', 'event', 'expected', 'HTTP', 'outcome', 'ms', ''],
    result.steps.map((s) => [
      String(s.step),
      s.title,
      s.eventType,
      s.expected,
      s.status === undefined ? '-' : String(s.status),
      s.outcome,
      String(s.ms),
      s.ok ? 'pass' : 'FAIL',
    ]),
    log
  );
  log('');
  table(
    ['check', 'expected', 'actual', ''],
    result.checks.map((c) => [c.check, c.expected, c.actual, c.skipped ? 'skip' : c.ok ? 'pass' : 'FAIL']),
    log
  );
  if (result.hints.length > 0) {
    log('');
    for (const hint of result.hints) log(`hint: ${hint}`);
  }
  const refusedOnPurpose = result.steps.filter((s) => s.ok && s.outcome.startsWith('rejected:')).length;
  if (refusedOnPurpose > 0) {
    log('');
    log(
      `note: the ${String(refusedOnPurpose)} refused ${refusedOnPurpose === 1 ? 'delivery above was' : 'deliveries above were'} forged or replayed on purpose; npm run monitor ` +
        'counts them as failed runs until they leave its --since window (24h by default).'
    );
  }
  if (result.closedDeadLetters.length > 0) {
    log('');
    log(
      `note: closed ${String(result.closedDeadLetters.length)} dead-letter(s) of this run's own events (status cancelled), so that ` +
        `monitor and redeliver do not wait on events Medblocks never sent: ${result.closedDeadLetters.join(', ')}`
    );
  }
  if (result.importBotId) {
    log('');
    log(
      `note: verify ran the records import once (Bot/${result.importBotId}/$execute), as its cron job does every 5 minutes: ` +
        'that run imports for every patient whose records wait, not only verify’s.'
    );
  }
  const failed = result.steps.filter((s) => !s.ok).length + result.checks.filter((c) => !c.ok).length;
  log('');
  log(
    result.ok
      ? `verify: PASS — ${result.steps.length} deliveries and ${result.checks.filter((c) => !c.skipped).length} checks as expected (patient ${result.ids.patientId})`
      : `verify: FAIL — ${failed} mismatch(es) (patient ${result.ids.patientId})`
  );
}

export function table(header: string[], rows: string[][], log: (line: string) => void): void {
  for (const line of textTable(header, rows)) log(line);
}
