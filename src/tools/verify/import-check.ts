// verify's check of the records import, on the project users point it at: after the story's records syncs, the
// import bot is run once through `Bot/{id}/$execute` (as an admin runs a bot by hand; its cron job
// would do the same within five minutes), then what it left for the story's patient is read back:
// its records-import Task, the import-* outputs on the records-sync Task, and whether every record
// it wrote for the patient is named by a Provenance. Prints statuses and counts only: the import's
// answer is its summary (counts, a reason), and no record's content is read into the output.
import type { MedplumClient } from '@medplum/core';
import { normalizeErrorString } from '@medplum/core';
import type { Patient, ResourceType, Task } from '@medplum/fhirtypes';
import { patientIdentifier, SYSTEM, TASK_KEY, token } from '../../runtime/fhir/systems';
import { recordKeyOf } from '../../runtime/import/identity';
import { decodeImportTask, zeroCounts } from '../../runtime/import/import-task';
import type { ImportCounts } from '../../runtime/import/import-task';
import { IMPORT_SETTING_NAMES, readImportSettings } from '../../runtime/import/settings';
import type { Secrets } from '../../runtime/settings';
import type { DemoIds } from '../fixtures/demo-story';
import type { CheckResult } from './verify';

/** Whether verify checks the import on this project: on, with the bot to run, or skipped and why. */
export type VerifyImport =
  | { readonly on: true; readonly botId: string; readonly types: readonly string[] }
  | { readonly on: false; readonly why: string };

/**
 * Decides from what provision leaves (the import bot, the project secret MEDBLOCKS_API_KEY) whether
 * the import is on; `secrets` undefined when the project's secrets cannot be read. Pure, so that
 * target.ts only gathers and this decides.
 */
export function importSetting(botId: string | undefined, secrets: Secrets | undefined): VerifyImport {
  if (!botId) {
    return { on: false, why: 'the bot medblocks-records-import is not in the project (npm run provision deploys it)' };
  }
  if (!secrets) {
    return {
      on: false,
      why: `the project's secrets cannot be read, so verify cannot tell whether ${IMPORT_SETTING_NAMES.apiKey} is set (a project-admin client can read them)`,
    };
  }
  if (!secrets[IMPORT_SETTING_NAMES.apiKey]?.valueString) {
    return {
      on: false,
      why: `${IMPORT_SETTING_NAMES.apiKey} is not a project secret: the import is off (npm run provision -- --import turns it on)`,
    };
  }
  const settings = readImportSettings(secrets);
  // A key with settings the bot refuses (a bad base URL, no importable type) is still "on": the
  // bot's answer then says what is wrong, and verify fails with it.
  return { on: true, botId, types: settings.enabled ? settings.types : [] };
}

/** What the import bot answered to `$execute`: its summary's status (and why), or the error text. */
export interface ImportAnswer {
  /** `done`, `idle`, `paused`, `off`, `failed:<reason>`, or `error` when the answer was no summary. */
  readonly status: string;
  readonly why?: string;
}

/** The FHIR state the import left for the story's patient, as plain data for the checks. */
export interface ImportState {
  /** The records-import Task's status and, when it failed or stopped, its reason (no PHI: a reason code and a sentence). */
  readonly task: { readonly status: string; readonly reason?: string; readonly counts: ImportCounts } | undefined;
  /** The import-created / -updated / -refused outputs on the records-sync Task; undefined when it has none. */
  readonly syncOutputs: { readonly created: number; readonly updated: number; readonly refused: number } | undefined;
  /** Resources of the imported types for the patient carrying the import's record identifier. */
  readonly imported: number;
  /** … of which no Provenance names. */
  readonly untraced: number;
}

/** The row verify prints when the import is off: not a failure, and it says why. */
export function skippedImportCheck(why: string): CheckResult {
  return { check: 'records import', expected: 'on, or skipped', actual: `skipped: ${why}`, ok: true, skipped: true };
}

/**
 * The import's rows for verify's table, and the fix when one fails: one skipped row when the import
 * is off; otherwise the bot run once, then the state read back. A failure to read the state is a
 * failed row with the reason rather than an abort, so the rest of verify's report still prints.
 */
export async function verifyImport(
  medplum: MedplumClient,
  setting: VerifyImport,
  ids: DemoIds
): Promise<{ checks: CheckResult[]; hint?: string }> {
  if (!setting.on) return { checks: [skippedImportCheck(setting.why)] };
  const answer = await runImportOnce(medplum, setting.botId);
  let state: ImportState;
  try {
    state = await readImportState(medplum, ids, setting.types);
  } catch (err) {
    const check = { check: 'records import state', expected: 'readable', actual: normalizeErrorString(err), ok: false };
    return { checks: [check] };
  }
  const checks = checkImport(answer, state);
  const hint = checks.every((c) => c.ok) ? undefined : importHint(answer, state);
  return { checks, ...(hint ? { hint } : {}) };
}

/** Runs the import bot once; a refusal (Medplum answers a throwing bot 400) is read, not thrown. */
export async function runImportOnce(medplum: MedplumClient, botId: string): Promise<ImportAnswer> {
  try {
    const answer: unknown = await medplum.executeBot(botId, {}, 'application/json');
    const summary = answer as { status?: unknown; why?: unknown } | undefined;
    if (typeof summary?.status !== 'string') return { status: 'error', why: 'the bot answered no import summary' };
    return { status: summary.status, ...(typeof summary.why === 'string' ? { why: summary.why } : {}) };
  } catch (err) {
    // The import's own failure: "Records import stopped: failed:<reason>; …" (bot.ts).
    const text = normalizeErrorString(err);
    const failed = /\b(failed:[a-z_]+)/.exec(text)?.[1];
    return failed ? { status: failed } : { status: 'error', why: text.slice(0, 200) };
  }
}

/** Reads the import's Task, the sync Task's outputs and the patient's imported records with their Provenance. */
export async function readImportState(
  medplum: MedplumClient,
  ids: DemoIds,
  types: readonly string[]
): Promise<ImportState> {
  const identifier = patientIdentifier(ids.patientId);
  const patient = (
    await medplum.searchResources<'Patient'>(
      'Patient',
      { identifier: token(identifier.system, identifier.value) },
      { cache: 'no-cache' }
    )
  )[0] as Patient | undefined;
  if (!patient?.id) return { task: undefined, syncOutputs: undefined, imported: 0, untraced: 0 };
  const byKey = async (key: string): Promise<Task | undefined> =>
    (await medplum.searchResources('Task', { identifier: token(SYSTEM.taskKey, key) }, { cache: 'no-cache' }))[0];
  const importTask = await byKey(TASK_KEY.recordsImport(ids.patientId));
  const syncTask = await byKey(TASK_KEY.recordsSync(ids.patientId, ids.sourceA));
  const model = importTask ? decodeImportTask(importTask) : undefined;
  const state = model?.state;
  const reason =
    state?.status === 'failed' ? state.reason : state?.status === 'in-progress' ? state.lastFailure : undefined;
  const copies: { resourceType: string; id: string }[] = [];
  for (const type of types) {
    const found = await medplum.searchResources(
      type as ResourceType,
      { patient: `Patient/${patient.id}`, _count: '1000' },
      { cache: 'no-cache' }
    );
    for (const resource of found) {
      if (resource.id && recordKeyOf(resource) !== undefined) copies.push({ resourceType: type, id: resource.id });
    }
  }
  const traced = importTask?.id ? await tracedBy(medplum, importTask.id) : new Set<string>();
  const untraced = copies.filter((c) => !traced.has(`${c.resourceType}/${c.id}`));
  return {
    task: importTask
      ? {
          status: importTask.status,
          ...(reason ? { reason } : {}),
          counts: model?.state.run.counts ?? zeroCounts(),
        }
      : undefined,
    syncOutputs: syncOutputsOf(syncTask),
    imported: copies.length,
    untraced: untraced.length,
  };
}

/**
 * What the Provenance of a patient's import name (each names the import Task it belongs to), as
 * `Type/id`. Searched by that Task, not `Provenance?target=Type/id`: a Provenance names the version
 * it traced (`Type/id/_history/v`), and a real Medplum matches a target search only to the
 * reference as written (observed on 5.1.31: the unversioned search finds none).
 */
async function tracedBy(medplum: MedplumClient, importTaskId: string): Promise<Set<string>> {
  const provenances = await medplum.searchResources(
    'Provenance',
    { entity: `Task/${importTaskId}`, _count: '1000', _elements: 'target' },
    { cache: 'no-cache' }
  );
  return new Set(provenances.flatMap((p) => p.target.map((t) => (t.reference ?? '').replace(/\/_history\/.*$/, ''))));
}

function syncOutputsOf(task: Task | undefined): ImportState['syncOutputs'] {
  const value = (code: string): number | undefined =>
    task?.output?.find((o) => o.type.coding?.some((c) => c.code === code))?.valueInteger;
  const created = value('import-created');
  const updated = value('import-updated');
  const refused = value('import-refused');
  if (created === undefined || updated === undefined || refused === undefined) return undefined;
  return { created, updated, refused };
}

/** Medblocks does not know the patient (404): the import parks it, as it should for verify's made-up one. */
const UNKNOWN_PATIENT = 'medblocks_patient_unknown';

/**
 * Pure: the import's checks. A synthetic patient Medblocks does not know (404), or knows with no
 * records (an empty list), passes and says so: that is what the import must do with them, and on a
 * real Medblocks verify's patient is never known. A refused key, a failed run, or a record without
 * Provenance fails, named.
 */
export function checkImport(answer: ImportAnswer, state: ImportState): CheckResult[] {
  const why = answer.why ? ` (${answer.why})` : '';
  const ranOk = answer.status === 'done' || answer.status === 'idle' || answer.status === 'paused';
  const task = state.task;
  const unknown = task?.status === 'failed' && (task.reason ?? '').startsWith(UNKNOWN_PATIENT);
  const completed = task?.status === 'completed';
  const empty = completed && Object.values(task.counts).every((n) => n === 0);
  const taskActual = !task
    ? 'none'
    : unknown
      ? `failed: ${UNKNOWN_PATIENT} (Medblocks does not know the synthetic patient: parked, as it should be)`
      : empty
        ? 'completed (0 records at Medblocks for the synthetic patient)'
        : `${task.status}${task.reason ? `: ${task.reason}` : ''}`;
  const outputs = state.syncOutputs;
  const created = task?.counts.created ?? 0;
  return [
    {
      check: 'records import bot run (Bot/$execute)',
      expected: 'done, idle or paused',
      actual: `${answer.status}${why}`,
      ok: ranOk,
    },
    {
      check: 'records-import Task of the patient',
      expected: 'completed, or failed: patient unknown at Medblocks',
      actual: taskActual,
      ok: completed || unknown,
    },
    unknown
      ? {
          check: 'import-* outputs on the records-sync Task',
          expected: 'none (nothing imported)',
          actual: outputs ? 'present' : 'none',
          ok: outputs === undefined,
        }
      : {
          check: 'import-* outputs on the records-sync Task',
          expected: completed ? `created=${String(created)}` : 'present, once imported',
          actual: outputs
            ? `created=${String(outputs.created)} updated=${String(outputs.updated)} refused=${String(outputs.refused)}`
            : 'none',
          ok: completed && outputs?.created === created,
        },
    {
      check: 'imported records of the patient',
      expected: String(created),
      actual: String(state.imported),
      ok: state.imported === created,
    },
    {
      check: 'imported records no Provenance names',
      expected: '0',
      actual: String(state.untraced),
      ok: state.untraced === 0,
    },
  ];
}

/** The fix for a failed import check, when one is known. */
export function importHint(answer: ImportAnswer, state: ImportState): string | undefined {
  if (answer.status === 'failed:medblocks_unauthorized') {
    return `Medblocks refused the project secret ${IMPORT_SETTING_NAMES.apiKey} (401/403): store a valid key with ${IMPORT_SETTING_NAMES.apiKey}=mb_sk_… npm run provision -- --import.`;
  }
  if (answer.status === 'off') {
    return `The import bot found its settings unusable (${answer.why ?? 'no reason given'}): fix the project secrets (npm run provision -- --import).`;
  }
  if (answer.status.startsWith('failed:') || answer.status === 'error') {
    return `The records import did not finish (${answer.status}): its AuditEvent (AuditEvent?entity=Bot/<import bot id>) has its summary line; docs/records-import.md says what each reason means.`;
  }
  if (answer.status === 'paused' && !state.task) {
    return "The import paused before the synthetic patient (its work budget or Medplum's FHIR quota went to other patients): run verify again in a few minutes.";
  }
  if (state.untraced > 0) {
    return 'Some imported records have no Provenance: the next import run of the patient names them (store.ts untracedCopies); if they stay, check the import bot’s AccessPolicy grants Provenance create.';
  }
  return undefined;
}
