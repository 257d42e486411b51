// `npm run demo`: builds dist/ from bots/, starts the emulator in-process, plays the story of
// ./demo-story through real signed HTTP deliveries, then the quarantine story through an in-process
// local Medblocks (a poison event quarantined, the cause fixed, `npm run redeliver -- --quarantined`,
// applied) and a reconciliation (an expired connection no webhook reports, `npm run reconcile`), prints what happened and the resulting FHIR state (ids and statuses only), and exits 0
// only when every step and every check matched.
import type { AuditEvent, Consent, Identifier, Patient, Project, Provenance, Task } from '@medplum/fhirtypes';
import { IMPORT_SETTING_NAMES } from '../../runtime/import/settings';
import { generatePatientRecords, secondSync } from '../fixtures/patient-records';
import type { PatientRecordItem } from '../medblocks-local/records';
import { startEmulator } from '../emulator/server';
import type { RunningEmulator } from '../emulator/server';
import { SYSTEM } from '../../runtime/fhir/systems';
import { serialise } from '../fixtures/events';
import { deliver } from '../sender/sender';
import { DEMO_CONNECTION_A, DEMO_PATIENT_ID, DEMO_SOURCE_A, demoStory } from '../fixtures/demo-story';
import { connection, patientFlowCompleted, recordsSyncCompleted } from '../fixtures/events';
import { reconcile } from '../reconcile/reconcile';
import { readSettings as readBotSettings } from '../../runtime/settings';
import { startLocalMedblocksFor, subscribeEmulatorBots } from '../medblocks-local/wire';
import { MedblocksApi } from '../provision/medblocks-api';
import { redeliver } from '../redeliver/redeliver';
import { SETTING_NAMES } from '../../runtime/settings';
import type { DemoStep, StepResult } from '../fixtures/demo-story';

import { CONSOLE_IO, exitWith, isEntryPoint, runCommand } from './args';
import type { CommandIo, CommandSpec } from './args';
import { buildBeforeRun, describePrebuild } from './prebuild';
import { outcomeOfAnswer } from '../../runtime/summary';
import { textTable } from '../text-table';

export interface CheckResult {
  readonly check: string;
  readonly expected: string;
  readonly actual: string;
  readonly ok: boolean;
}

export interface DemoState {
  readonly patients: { id: string }[];
  /** The Patient the operator created in the quarantine story. */
  readonly createdByOperator: { id: string }[];
  readonly consents: { id: string; key: string; status: string }[];
  readonly tasks: { id: string; code: string; status: string; businessStatus: string; for: string }[];
  readonly auditEvents: { total: number; success: number; failure: number };
}

export interface DemoResult {
  readonly ok: boolean;
  readonly steps: readonly StepResult[];
  readonly checks: readonly CheckResult[];
  readonly state: DemoState;
}

export interface DemoOptions {
  /** Where the report goes; silent when omitted. */
  readonly log?: (line: string) => void;
  readonly root?: string;
}

/** Plays the whole story against a fresh emulator and returns what happened; always stops the emulator. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const log = options.log ?? (() => undefined);
  // Always build first: a stale dist/ once let a handler changed to throw "pass" the demo.
  log(describePrebuild(await buildBeforeRun(options.root)));
  const emulator = await startEmulator({ root: options.root });
  try {
    const steps: StepResult[] = [];
    const story = demoStory();
    for (const [index, step] of story.entries()) {
      steps.push(await play(emulator, index + 1, step));
    }
    steps.push(...(await playQuarantine(emulator, steps.length + 1)));
    steps.push(...(await playReconcile(emulator, steps.length + 1)));
    steps.push(...(await playImport(emulator, steps.length + 1)));
    const state = await readState(emulator);
    const deliveries = story.length + QUARANTINE_DELIVERIES + RECONCILE_DELIVERIES + IMPORT_RUNS;
    const checks = checkState(state, deliveries, story.filter((s) => s.expectedStatus !== 200).length);
    const result = { ok: steps.every((s) => s.ok) && checks.every((c) => c.ok), steps, checks, state };
    report(result, log);
    return result;
  } finally {
    await emulator.close();
  }
}

async function play(emulator: RunningEmulator, number: number, step: DemoStep): Promise<StepResult> {
  const bot = emulator.bot(step.bot);
  const delivery = await deliver({
    url: bot.webhookUrl,
    body: serialise(step.event),
    secret: step.send?.wrongSecret ? 'whsec_forged_0000000000000000000000000000' : (bot.secret ?? ''),
    clockSkewSeconds: step.send?.skewSeconds ?? 0,
    maxAttempts: 1,
  });
  const attempt = delivery.attempts[0];
  const outcome = outcomeOfAnswer(attempt?.status, attempt?.responseBody ?? '');
  return {
    step: number,
    title: step.title,
    eventType: step.event.type,
    expected: `${step.expectedStatus} ${step.expectedOutcome}`,
    status: attempt?.status,
    outcome,
    ok: attempt?.status === step.expectedStatus && outcome === step.expectedOutcome,
  };
}

/** A story's step result, numbered from `first`: what was expected (HTTP status and outcome) beside what happened. */
function stepRow(first: number) {
  return (
    offset: number,
    title: string,
    eventType: string,
    expected: [number | undefined, string],
    actual: { status: number | undefined; outcome: string }
  ): StepResult => ({
    step: first + offset,
    title,
    eventType,
    expected: `${expected[0] === undefined ? '-' : String(expected[0])} ${expected[1]}`,
    status: actual.status,
    outcome: actual.outcome,
    ok: actual.status === expected[0] && actual.outcome === expected[1],
  });
}

/** The patient of the quarantine story: Medplum does not know it when its sync arrives. */
export const DEMO_UNKNOWN_PATIENT_ID = 'demo_patient_0002';
/** Deliveries the quarantine story makes (the poison one, then its redelivery): one AuditEvent each. */
const QUARANTINE_DELIVERIES = 2;

/**
 * The quarantine story, through a local Medblocks as in production: with creation of unknown
 * patients turned off, a sync for a patient Medplum does not know is answered 200 quarantined (so
 * Medblocks keeps the endpoint enabled) and kept as an open dead-letter Task; the operator creates
 * the Patient; `npm run redeliver -- --quarantined` has Medblocks deliver it again, and it is
 * applied. The retry clock is scaled so the story takes milliseconds.
 */
async function playQuarantine(emulator: RunningEmulator, first: number): Promise<StepResult[]> {
  const admin = emulator.store.client();
  const medblocks = await startLocalMedblocksFor(emulator, { timeScale: 1e6 });
  try {
    const endpoints = await subscribeEmulatorBots(medblocks, emulator);
    const endpoint = endpoints.find((e) => e.description === 'medblocks-records-sync-completed');
    const api = new MedblocksApi(medblocks.url, medblocks.apiKey);
    const event = recordsSyncCompleted(
      { patient_id: DEMO_UNKNOWN_PATIENT_ID, connection_id: DEMO_SOURCE_A },
      { created_at: '2026-05-23T09:00:00.000Z' }
    );
    const lastDelivery = async (): Promise<{ status: number | undefined; outcome: string }> => {
      const record = endpoint ? (await api.listEvents(endpoint.id, true)).find((r) => r.id === event.id) : undefined;
      const status = record?.last_status_code ?? undefined;
      return { status, outcome: outcomeOfAnswer(status, record?.last_response_body ?? '') };
    };
    const step = stepRow(first);

    await setProjectSecret(emulator, SETTING_NAMES.createMissingPatients, 'false');
    medblocks.emit(event);
    await medblocks.idle();
    const quarantined = await lastDelivery();
    // The answer alone is not the point: the event must also wait as an open dead-letter.
    const open = (await emulator.store.all<Task>('Task', `identifier=${SYSTEM.deadLetter}|${event.id}`)).filter(
      (t) => t.status === 'failed'
    );
    const poisoned = step(
      0,
      'unknown patient, creation off: quarantined',
      event.type,
      [200, 'quarantined:patient_not_found'],
      {
        ...quarantined,
        outcome: open.length === 1 ? quarantined.outcome : `${quarantined.outcome} (no open dead-letter)`,
      }
    );

    const patient = await admin.createResource<Patient>({
      resourceType: 'Patient',
      identifier: [{ system: SYSTEM.patientId, value: DEMO_UNKNOWN_PATIENT_ID }],
    });
    const fixed = step(1, 'the fix: the operator creates the Patient', '-', [undefined, 'Patient created'], {
      status: undefined,
      outcome: patient.id ? 'Patient created' : 'not created',
    });

    const summary = await redeliver({
      api,
      medplum: admin,
      filters: { quarantinedOnly: true },
      print: () => undefined,
    });
    const redelivered = await lastDelivery();
    const applied = step(2, 'npm run redeliver -- --quarantined: applied', event.type, [200, 'processed'], {
      ...redelivered,
      outcome: summary.redelivered === 1 ? redelivered.outcome : `redelivered ${String(summary.redelivered)}`,
    });
    return [poisoned, fixed, applied];
  } finally {
    await medblocks.close();
  }
}

/** The patient of the reconcile story, and its connection that expires without a webhook. */
const DEMO_RECONCILE_PATIENT_ID = 'user_demo_reconcile';
const DEMO_RECONCILE_CONNECTION = 'conn_01DEMORECONCILE0000000000C';
/** Deliveries the reconcile story makes (its flow): one AuditEvent. */
const RECONCILE_DELIVERIES = 1;

/**
 * What Medblocks never pushes: a connection reported active by a flow expires later, which only
 * `GET /patients/{id}` shows. `npm run reconcile` makes its Consent inactive; a second run writes nothing.
 */
async function playReconcile(emulator: RunningEmulator, first: number): Promise<StepResult[]> {
  const medblocks = await startLocalMedblocksFor(emulator, { timeScale: 1e6 });
  try {
    await subscribeEmulatorBots(medblocks, emulator);
    // The quarantine story turned creation off; this patient is a new one, created as by default.
    await setProjectSecret(emulator, SETTING_NAMES.createMissingPatients, 'true');
    const flow = patientFlowCompleted(
      {
        patient_id: DEMO_RECONCILE_PATIENT_ID,
        connections: [connection({ id: DEMO_RECONCILE_CONNECTION, connection_id: DEMO_SOURCE_A, status: 'active' })],
      },
      { created_at: '2026-05-24T10:00:00.000Z', type: 'patient_session.completed' }
    );
    medblocks.emit(flow);
    await medblocks.idle();
    const consentStatus = async (): Promise<string> =>
      (
        await emulator.store.all<Consent>('Consent', `identifier=${SYSTEM.connectionId}|${DEMO_RECONCILE_CONNECTION}`)
      )[0]?.status ?? 'none';
    const before = await consentStatus();
    medblocks.setPatient(DEMO_RECONCILE_PATIENT_ID, [
      {
        id: DEMO_RECONCILE_CONNECTION,
        connection_id: DEMO_SOURCE_A,
        status: 'expired',
        created_at: '2026-05-24T09:58:00.000Z',
        updated_at: '2026-06-20T08:00:00.000Z',
      },
    ]);
    const run = async () =>
      reconcile({
        medplum: emulator.store.client(),
        api: new MedblocksApi(medblocks.url, medblocks.apiKey),
        settings: readBotSettings({}),
        dryRun: false,
        patientIds: [DEMO_RECONCILE_PATIENT_ID],
        print: () => undefined,
      });
    const firstRun = await run();
    const after = await consentStatus();
    const secondRun = await run();
    const row = (offset: number, title: string, expected: string, actual: string): StepResult => ({
      step: first + offset,
      title,
      eventType: offset === 0 ? flow.type : '-',
      expected: `- ${expected}`,
      status: undefined,
      outcome: actual,
      ok: expected === actual,
    });
    return [
      row(0, 'a flow reports a new connection active', 'Consent active', `Consent ${before}`),
      row(
        1,
        'it expires (no webhook); npm run reconcile',
        'Consent inactive, 1 write',
        `Consent ${after}, ${String(firstRun.writes)} write${firstRun.writes === 1 ? '' : 's'}`
      ),
      row(
        2,
        'npm run reconcile again',
        'nothing to change',
        secondRun.changed === 0 ? 'nothing to change' : `${String(secondRun.changed)} changed`
      ),
    ];
  } finally {
    await medblocks.close();
  }
}

/** AuditEvents the import story makes: two sync deliveries and three scheduled runs. */
const IMPORT_RUNS = 5;
/** Records the EHR holds for the story's patient at the first pull (its own Patient among them). */
const IMPORT_RECORDS = 120;

/**
 * The records import, through a local Medblocks as in production: records land for the story's
 * patient and Medblocks sends records.sync.completed; the scheduled import bot (fired as Medplum's
 * cron worker would) brings them in, each with Provenance; the EHR corrects two and adds two, the
 * next sync and run update and add exactly those; a run after that has nothing to do.
 */
async function playImport(emulator: RunningEmulator, first: number): Promise<StepResult[]> {
  const medblocks = await startLocalMedblocksFor(emulator, { timeScale: 1e6 });
  try {
    const endpoints = await subscribeEmulatorBots(medblocks, emulator);
    const endpoint = endpoints.find((e) => e.description === 'medblocks-records-sync-completed');
    const api = new MedblocksApi(medblocks.url, medblocks.apiKey);
    await setProjectSecret(emulator, IMPORT_SETTING_NAMES.apiKey, medblocks.apiKey);
    await setProjectSecret(emulator, IMPORT_SETTING_NAMES.apiBaseUrl, medblocks.url);
    // The quarantine story's patient had a sync too: Medblocks knows it, with no records.
    medblocks.putRecords(DEMO_UNKNOWN_PATIENT_ID, []);
    const records = generatePatientRecords({
      patientId: DEMO_PATIENT_ID,
      source: DEMO_SOURCE_A,
      count: IMPORT_RECORDS,
    });
    const land = async (
      items: readonly PatientRecordItem[]
    ): Promise<{ status: number | undefined; outcome: string }> => {
      const put = medblocks.putRecords(DEMO_PATIENT_ID, items, { syncCompleted: true });
      await medblocks.idle();
      const ids = new Set(put.events.map((e) => e.id));
      const record = endpoint ? (await api.listEvents(endpoint.id, true)).find((r) => ids.has(r.id)) : undefined;
      const status = record?.last_status_code ?? undefined;
      return { status, outcome: outcomeOfAnswer(status, record?.last_response_body ?? '') };
    };
    const runImportNow = async (): Promise<string> => {
      const run = await emulator.runScheduled('medblocks-records-import');
      if (!run.ran) return `not run: ${run.message}`;
      if (!run.result.success) return 'run failed';
      const count = (name: string): number =>
        Number(new RegExp(`\\b${name}=(\\d+)`).exec(run.result.logResult)?.[1] ?? 0);
      const [created, updated] = [count('created'), count('updated')];
      return created + updated === 0 ? 'nothing to do' : `${String(created)} imported, ${String(updated)} updated`;
    };
    const row = stepRow(first);
    const firstSync = await land(records);
    const firstRun = await runImportNow();
    const provenanced = new Set(
      (await emulator.store.all<Provenance>('Provenance')).flatMap((p) => p.target.map((t) => t.reference ?? ''))
    ).size;
    const second = secondSync(records);
    const secondSyncAnswer = await land(second.items);
    const secondRun = await runImportNow();
    const idleRun = await runImportNow();
    const clinical = IMPORT_RECORDS - 1;
    return [
      row(
        0,
        `${String(IMPORT_RECORDS)} records land at Medblocks`,
        'records.sync.completed',
        [200, 'processed'],
        firstSync
      ),
      row(
        1,
        'the scheduled import runs',
        '-',
        [undefined, `${String(clinical)} imported, 0 updated; ${String(clinical)} with Provenance`],
        {
          status: undefined,
          outcome: `${firstRun}; ${String(provenanced)} with Provenance`,
        }
      ),
      row(2, 'the EHR corrects 2 records, adds 2', 'records.sync.completed', [200, 'processed'], secondSyncAnswer),
      row(3, 'the next scheduled run', '-', [undefined, '2 imported, 2 updated'], {
        status: undefined,
        outcome: secondRun,
      }),
      row(4, 'and the one after', '-', [undefined, 'nothing to do'], { status: undefined, outcome: idleRun }),
    ];
  } finally {
    await medblocks.close();
  }
}

/** Sets one project secret (a setting) as an operator would in the Medplum app. */
async function setProjectSecret(emulator: RunningEmulator, name: string, value: string): Promise<void> {
  const [project] = await emulator.store.all<Project>('Project');
  if (!project) throw new Error('the emulator has no Project');
  const secret = (project.secret ?? []).filter((s) => s.name !== name);
  await emulator.store
    .client()
    .updateResource<Project>({ ...project, secret: [...secret, { name, valueString: value }] });
}

async function readState(emulator: RunningEmulator): Promise<DemoState> {
  const store = emulator.store;
  const patients = await store.all<Patient>('Patient', `identifier=${SYSTEM.patientId}|${DEMO_PATIENT_ID}`);
  const createdByOperator = await store.all<Patient>(
    'Patient',
    `identifier=${SYSTEM.patientId}|${DEMO_UNKNOWN_PATIENT_ID}`
  );
  const consents = await store.all<Consent>('Consent');
  const tasks = await store.all<Task>('Task');
  const audits = await store.all<AuditEvent>('AuditEvent');
  return {
    patients: patients.map((p) => ({ id: p.id })),
    createdByOperator: createdByOperator.map((p) => ({ id: p.id })),
    consents: consents.map((c) => ({ id: c.id, key: identifierValue(c.identifier), status: c.status })),
    tasks: tasks.map((t) => ({
      id: t.id,
      code: t.code?.coding?.[0]?.code ?? '-',
      status: t.status,
      businessStatus: t.businessStatus?.text ?? t.businessStatus?.coding?.[0]?.code ?? '-',
      for: t.for?.reference ?? '-',
    })),
    auditEvents: {
      total: audits.length,
      success: audits.filter((a) => a.outcome === '0').length,
      failure: audits.filter((a) => a.outcome === '4').length,
    },
  };
}

function identifierValue(identifiers: Identifier[] | undefined): string {
  const id = identifiers?.find((i) => i.system === SYSTEM.connectionId) ?? identifiers?.[0];
  return id?.value ?? '-';
}

function checkState(state: DemoState, runs: number, failures: number): CheckResult[] {
  const consentA = state.consents.find((c) => c.key === DEMO_CONNECTION_A);
  const others = state.consents.filter((c) => c.key !== DEMO_CONNECTION_A && c.key !== DEMO_RECONCILE_CONNECTION);
  const task = (code: string, patients: readonly { id: string }[] = state.patients): string =>
    state.tasks
      .filter((t) => t.code === code && patients.some((p) => t.for === `Patient/${p.id}`))
      .map((t) => t.status)
      .join(',') || 'none';
  const deadLetters =
    state.tasks
      .filter((t) => t.code === 'webhook-dead-letter')
      .map((t) => `${t.status}/${t.businessStatus}`)
      .join(',') || 'none';
  const checks: [string, string, string][] = [
    ['one Patient for the patient id', '1', String(state.patients.length)],
    ['Consents (the story’s two, the reconciled one)', '3', String(state.consents.length)],
    ['EHR A Consent (refresh failed; late event ignored)', 'inactive', consentA?.status ?? 'none'],
    ['EHR B attempt Consent', 'rejected', others.map((c) => c.status).join(',') || 'none'],
    ['reconnect-ehr Task', 'requested', task('reconnect-ehr')],
    ['records-sync Task (failed, then recovered)', 'completed', task('records-sync')],
    ['dead-letter Task (quarantined, then applied)', 'completed/applied-after-redelivery', deadLetters],
    ['records-sync Task of the redelivered event', 'completed', task('records-sync', state.createdByOperator)],
    ['AuditEvents (one per run)', String(runs), String(state.auditEvents.total)],
    ['AuditEvents with outcome 4', String(failures), String(state.auditEvents.failure)],
  ];
  return checks.map(([check, expected, actual]) => ({ check, expected, actual, ok: expected === actual }));
}

function report(result: DemoResult, log: (line: string) => void): void {
  const rows = result.steps.map((s) => [
    String(s.step),
    s.title,
    s.eventType,
    s.expected,
    s.status === undefined ? '-' : String(s.status),
    s.outcome,
    s.ok ? 'ok' : 'MISMATCH',
  ]);
  table(['#', 'step', 'event', 'expected', 'HTTP', 'outcome', ''], rows, log);
  log('');
  log('FHIR state');
  for (const p of result.state.patients) log(`  Patient/${p.id}`);
  for (const p of result.state.createdByOperator) log(`  Patient/${p.id}  (created by the operator)`);
  for (const c of result.state.consents) log(`  Consent/${c.id}  ${c.key}  status=${c.status}`);
  for (const t of result.state.tasks)
    log(`  Task/${t.id}  ${t.code}  status=${t.status}  business=${t.businessStatus}`);
  const a = result.state.auditEvents;
  log(`  AuditEvents: ${a.total} (outcome 0: ${a.success}, outcome 4: ${a.failure})`);
  log('');
  table(
    ['check', 'expected', 'actual', ''],
    result.checks.map((c) => [c.check, c.expected, c.actual, c.ok ? 'ok' : 'MISMATCH']),
    log
  );
  log('');
  log(result.ok ? 'demo: every step met its expectation' : 'demo: FAILED — see MISMATCH rows');
}

function table(header: string[], rows: string[][], log: (line: string) => void): void {
  for (const line of textTable(header, rows)) log(line);
}

export const DEMO_SPEC = {
  name: 'demo',
  summary:
    'builds the bots from bots/, starts the Medplum emulator in-process on a free loopback port, plays a story of nine signed deliveries (a new connection, a redelivery, a forged signature, a replayed timestamp, a records sync, a token refresh failure, a late older event, a failed and a recovered sync), then through an in-process local Medblocks a quarantine (a sync for an unknown patient with creation off, the Patient created, npm run redeliver -- --quarantined, applied), and a reconciliation (a connection a flow reported active expires, which no webhook reports; npm run reconcile makes its Consent inactive, and a second run writes nothing), prints each step, the FHIR state left behind (ids and statuses only) and the checks, then stops the emulator.',
  options: {},
  examples: ['npm run demo', 'npm install && npm run demo   # the first thing to run after a clone'],
  exitCodes: { 0: 'every step and every check met its expectation', 1: 'a step or a check did not (MISMATCH rows)' },
} as const satisfies CommandSpec;

/** Runs `npm run demo` in-process; returns the exit code. */
export function runDemoCommand(argv: readonly string[], io: CommandIo = CONSOLE_IO, root?: string): Promise<number> {
  return runCommand(
    DEMO_SPEC,
    argv,
    async () => {
      const result = await runDemo({ log: io.print, root });
      return result.ok ? 0 : 1;
    },
    io
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runDemoCommand(process.argv.slice(2)));
}
