// `npm run demo`: builds dist/ from bots/, starts the emulator in-process, plays the story of
// ./demo-story through real signed HTTP deliveries, prints what happened and the resulting FHIR
// state (ids and statuses only), and exits 0 only when every step and every check matched.
import type { AuditEvent, Consent, Identifier, Patient, Task } from '@medplum/fhirtypes';
import { startEmulator } from '../emulator/server';
import type { RunningEmulator } from '../emulator/server';
import { SYSTEM } from '../../runtime/fhir/systems';
import { serialise } from '../fixtures/events';
import { deliver } from '../sender/sender';
import { DEMO_CONNECTION_A, DEMO_PATIENT_ID, demoStory } from '../fixtures/demo-story';
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
  readonly consents: { id: string; key: string; status: string }[];
  readonly tasks: { id: string; code: string; status: string; businessStatus: string }[];
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
    const state = await readState(emulator);
    const checks = checkState(state, story.length, story.filter((s) => s.expectedStatus !== 200).length);
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

async function readState(emulator: RunningEmulator): Promise<DemoState> {
  const store = emulator.store;
  const patients = await store.all<Patient>('Patient', `identifier=${SYSTEM.patientId}|${DEMO_PATIENT_ID}`);
  const consents = await store.all<Consent>('Consent');
  const tasks = await store.all<Task>('Task');
  const audits = await store.all<AuditEvent>('AuditEvent');
  return {
    patients: patients.map((p) => ({ id: p.id })),
    consents: consents.map((c) => ({ id: c.id, key: identifierValue(c.identifier), status: c.status })),
    tasks: tasks.map((t) => ({
      id: t.id,
      code: t.code?.coding?.[0]?.code ?? '-',
      status: t.status,
      businessStatus: t.businessStatus?.text ?? t.businessStatus?.coding?.[0]?.code ?? '-',
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
  const others = state.consents.filter((c) => c.key !== DEMO_CONNECTION_A);
  const task = (code: string): string =>
    state.tasks
      .filter((t) => t.code === code)
      .map((t) => t.status)
      .join(',') || 'none';
  const checks: [string, string, string][] = [
    ['one Patient for the patient id', '1', String(state.patients.length)],
    ['Consents', '2', String(state.consents.length)],
    ['EHR A Consent (refresh failed; late event ignored)', 'inactive', consentA?.status ?? 'none'],
    ['EHR B attempt Consent', 'rejected', others.map((c) => c.status).join(',') || 'none'],
    ['reconnect-ehr Task', 'requested', task('reconnect-ehr')],
    ['records-sync Task (failed, then recovered)', 'completed', task('records-sync')],
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
    'builds the bots from bots/, starts the Medplum emulator in-process on a free loopback port, plays a story of nine signed deliveries (a new connection, a redelivery, a forged signature, a replayed timestamp, a records sync, a token refresh failure, a late older event, a failed and a recovered sync), prints each step, the FHIR state left behind (ids and statuses only) and the checks, then stops the emulator.',
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
