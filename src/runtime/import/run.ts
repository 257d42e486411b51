// One scheduled run of the records import: find the patients whose newest records sync is newer
// than what Medplum holds, and for each, page through Medblocks' records changed since the
// watermark, type by type, writing a page at a time (store.ts) as plan.ts decides. Progress is saved
// after every page, so a run that stops (time budget, Medblocks unavailable, a Medplum failure)
// is continued by the next one; the watermark moves only when every page of every type is in.
import { setTimeout as delay } from 'node:timers/promises';
import type { MedplumClient } from '@medplum/core';
import type { Provenance, Reference, Task } from '@medplum/fhirtypes';
import type { Secrets } from '../settings';
import { FhirFailureError } from '../store/errors';
import type { RequestCounter } from '../store/write';
import { recordKeyValue } from './identity';
import type { RecordKey } from './identity';
import { addCounts, decodeImportTask, encodeImportTask, zeroCounts } from './import-task';
import type { ImportCounts, ImportRun, ImportTaskModel } from './import-task';
import { CURSOR_LIFETIME_MS, fetchRecordsPage, MedblocksCallError } from './medblocks-records';
import type { MedblocksConnection, MedblocksFailureReason, RecordsPage } from './medblocks-records';
import { keyOfItem, planPage } from './plan';
import type { RecordItem, StoredCopy } from './plan';
import { referencedKeys } from './references';
import { readImportSettings } from './settings';
import {
  buildProvenance,
  readCopies,
  readPendingWork,
  recordProgress,
  reportOnSyncTasks,
  untracedCopies,
  writeRecords,
} from './store';
import type { PendingSync, WriteResult } from './store';

/** Records changed this long before the watermark are asked for again: clocks differ; re-reads are free. */
export const WATERMARK_OVERLAP_MS = 10 * 60 * 1000;
/** A run still failing this long after it started is parked (`failed`) until the next sync. */
export const GIVE_UP_AFTER_MS = 24 * 3600 * 1000;
/** Default work budget of one run, inside the bot's 120 s timeout. */
export const DEFAULT_BUDGET_MS = 90_000;
const PAGE_ATTEMPTS = 3;
/**
 * What one page costs of Medplum's FHIR quota, with room to spare: a real server metered a page of
 * 100 records at about 14,000 points (its default quota: 50,000 a minute per user). Below this, the
 * run stops before the page rather than have the server refuse the batch part-way.
 */
export const PAGE_QUOTA_POINTS = 20_000;

export interface ImportOptions {
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly budgetMs?: number;
  readonly fetch?: typeof fetch;
  readonly newRunId?: () => string;
}

export type ImportStatus = 'off' | 'idle' | 'done' | 'paused' | `failed:${string}`;

export interface ImportSummary {
  status: ImportStatus;
  /** Why the import is off, when it is. */
  why?: string;
  patientsDone: number;
  patientsPending: number;
  patientsFailed: number;
  counts: ImportCounts;
  fhirRequests: number;
  medblocksRequests: number;
  ignoredTypes: readonly string[];
}

interface RunContext {
  readonly medplum: MedplumClient;
  readonly connection: MedblocksConnection;
  readonly types: readonly string[];
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly deadline: number;
  readonly counter: RequestCounter;
  readonly summary: ImportSummary;
  readonly newRunId: () => string;
}

export async function runImport(
  medplum: MedplumClient,
  secrets: Secrets,
  options: ImportOptions = {}
): Promise<ImportSummary> {
  const now = options.now ?? Date.now;
  const settings = readImportSettings(secrets);
  const summary: ImportSummary = {
    status: 'idle',
    patientsDone: 0,
    patientsPending: 0,
    patientsFailed: 0,
    counts: zeroCounts(),
    fhirRequests: 0,
    medblocksRequests: 0,
    ignoredTypes: settings.enabled ? settings.ignoredTypes : [],
  };
  if (!settings.enabled) return { ...summary, status: 'off', why: settings.why };
  const counter: RequestCounter = { requests: 0 };
  const ctx: RunContext = {
    medplum,
    connection: { baseUrl: settings.baseUrl, apiKey: settings.apiKey, fetch: options.fetch ?? fetch },
    types: settings.types,
    now,
    // node:timers, not the global: Medplum's vmcontext sandbox has no setTimeout.
    sleep: options.sleep ?? ((ms) => delay(ms)),
    deadline: now() + (options.budgetMs ?? DEFAULT_BUDGET_MS),
    counter,
    summary,
    newRunId: options.newRunId ?? (() => `run-${new Date(now()).toISOString()}`),
  };
  try {
    const { syncs, importTasks } = await readPendingWork(medplum, now(), counter);
    const byPatient = new Map<string, Task>();
    for (const task of importTasks) {
      const model = decodeImportTask(task);
      if (model) byPatient.set(model.patientId, task);
    }
    const pending = syncs.filter((s) => isPending(s, byPatient.get(s.patientId)));
    summary.patientsPending = pending.length;
    for (const [index, sync] of pending.entries()) {
      // Every run does some work (its first patient, at least a page), however small the budget.
      if (index > 0 && ctx.now() >= ctx.deadline) {
        summary.status = 'paused';
        break;
      }
      const outcome = await importPatient(ctx, sync, byPatient.get(sync.patientId));
      if (outcome === 'done') summary.patientsDone++;
      if (outcome === 'failed') summary.patientsFailed++;
      if (outcome !== 'paused') summary.patientsPending--;
      if (outcome === 'paused') {
        summary.status = 'paused';
        break;
      }
    }
    if (summary.status === 'idle' && pending.length > 0) summary.status = 'done';
  } catch (err) {
    if (err instanceof FhirFailureError && err.reason === 'rate_limited') {
      // Medplum's FHIR quota (per user and minute): not a failure of the import, a reason to stop
      // for now. The next scheduled run continues where this one saved its place; a page stored
      // part-way is completed then, its Provenance included (untracedCopies).
      summary.status = 'paused';
      summary.why = "rate_limited: Medplum's FHIR quota is spent for this minute; the next run continues";
    } else {
      summary.status = `failed:${reasonOf(err)}`;
    }
  }
  summary.fhirRequests = counter.requests;
  return summary;
}

/**
 * The FHIR-interaction points Medplum says are left this window (its `RateLimit` header, which
 * MedplumClient keeps from the last answer); undefined when the server sends none (no quota).
 */
function quotaLeft(medplum: MedplumClient): { remaining: number; seconds: number } | undefined {
  // Older clients (a server's own @medplum/core) may lack the method: no pacing then.
  let status: ReturnType<MedplumClient['rateLimitStatus']>;
  try {
    status = typeof medplum.rateLimitStatus === 'function' ? medplum.rateLimitStatus() : [];
  } catch {
    return undefined; // a header MedplumClient cannot parse: no pacing rather than no import
  }
  const fhir = status.find((s) => s.name === 'fhirInteractions');
  return fhir ? { remaining: fhir.remainingUnits, seconds: fhir.secondsUntilReset } : undefined;
}

function reasonOf(err: unknown): string {
  if (err instanceof FhirFailureError || err instanceof MedblocksCallError) return err.reason;
  return 'internal';
}

/** A patient waits when the newest sync is newer than the watermark, or a run is in progress. */
function isPending(sync: PendingSync, task: Task | undefined): boolean {
  const model = task ? decodeImportTask(task) : undefined;
  if (!model) return true;
  if (model.state.status === 'in-progress') return true;
  const through = model.state.status === 'failed' ? model.state.run.target : model.coveredThrough;
  return through === undefined || Date.parse(sync.newest.at) > Date.parse(through);
}

function startOrResume(ctx: RunContext, sync: PendingSync, existing: Task | undefined): ImportTaskModel {
  const model = existing ? decodeImportTask(existing) : undefined;
  if (model?.state.status === 'in-progress') return model;
  const startedAt = new Date(ctx.now()).toISOString();
  const run: ImportRun = {
    id: ctx.newRunId(),
    startedAt,
    target: sync.newest.at,
    since: model?.coveredThrough
      ? new Date(Date.parse(model.coveredThrough) - WATERMARK_OVERLAP_MS).toISOString()
      : undefined,
    typeIndex: 0,
    cursor: undefined,
    cursorIssuedAt: undefined,
    eventId: sync.newest.eventId,
    counts: zeroCounts(),
  };
  return {
    patientId: sync.patientId,
    patient: sync.patient,
    coveredThrough: model?.coveredThrough,
    syncTasks: sync.syncTasks,
    state: { status: 'in-progress', run, lastFailure: undefined },
  };
}

type PatientOutcome = 'done' | 'paused' | 'failed' | 'busy';

async function importPatient(ctx: RunContext, sync: PendingSync, existing: Task | undefined): Promise<PatientOutcome> {
  let model = startOrResume(ctx, sync, existing);
  let stored = (
    await recordProgress(
      ctx.medplum,
      [],
      encodeImportTask(model, existing, new Date(ctx.now()).toISOString()),
      ctx.counter
    )
  ).task;
  if (!stored?.id) return 'busy';
  const taskRef: Reference = { reference: `Task/${stored.id}` };
  const known = new Map<string, string>();
  const save = async (next: ImportTaskModel, provenances: Provenance[] = []): Promise<boolean> => {
    const result = await recordProgress(
      ctx.medplum,
      provenances,
      encodeImportTask(next, stored, new Date(ctx.now()).toISOString()),
      ctx.counter
    );
    if (!result.task) return false;
    stored = result.task;
    model = next;
    return true;
  };
  for (let pages = 0; model.state.status === 'in-progress' && model.state.run.typeIndex < ctx.types.length; pages++) {
    const run = model.state.run;
    if (pages > 0 && ctx.now() >= ctx.deadline) return 'paused';
    const quota = quotaLeft(ctx.medplum);
    if (pages > 0 && quota !== undefined && quota.remaining < PAGE_QUOTA_POINTS) {
      ctx.summary.why = `paced: Medplum's FHIR quota has ${String(quota.remaining)} points left, renewed in ${String(quota.seconds)} s; the next run continues`;
      return 'paused';
    }
    const type = ctx.types[run.typeIndex] ?? '';
    const cursorUsable =
      run.cursor !== undefined &&
      run.cursorIssuedAt !== undefined &&
      ctx.now() - Date.parse(run.cursorIssuedAt) < CURSOR_LIFETIME_MS;
    let page: RecordsPage;
    try {
      page = await fetchWithRetry(ctx, {
        patientId: model.patientId,
        types: [type],
        since: run.since,
        cursor: cursorUsable ? run.cursor : undefined,
      });
    } catch (err) {
      if (err instanceof MedblocksCallError && err.reason === 'medblocks_cursor_rejected' && run.cursor) {
        // Expired or unknown at Medblocks: this type's pass starts again (what is in is found unchanged).
        if (
          !(await save({
            ...model,
            state: { ...model.state, run: { ...run, cursor: undefined, cursorIssuedAt: undefined } },
          }))
        )
          return 'busy';
        continue;
      }
      if (err instanceof MedblocksCallError && err.reason !== 'medblocks_unauthorized') {
        return parkOrDefer(ctx, model, save, err.reason);
      }
      throw err;
    }
    const { counts, provenances } = await importPage(ctx, page.items, model, taskRef, known);
    addCounts(ctx.summary.counts, counts);
    const nextCounts = { ...run.counts };
    addCounts(nextCounts, counts);
    const nextRun: ImportRun = page.nextCursor
      ? { ...run, counts: nextCounts, cursor: page.nextCursor, cursorIssuedAt: new Date(ctx.now()).toISOString() }
      : { ...run, counts: nextCounts, typeIndex: run.typeIndex + 1, cursor: undefined, cursorIssuedAt: undefined };
    const done = nextRun.typeIndex >= ctx.types.length;
    const next: ImportTaskModel = done
      ? { ...model, coveredThrough: run.target, state: { status: 'completed', run: nextRun } }
      : { ...model, state: { status: 'in-progress', run: nextRun, lastFailure: undefined } };
    if (!(await save(next, provenances))) return 'busy';
    if (done) await reportOnSyncTasks(ctx.medplum, sync.syncTaskResources, nextRun.counts, run.target, ctx.counter);
  }
  return model.state.status === 'completed' ? 'done' : 'failed';
}

async function parkOrDefer(
  ctx: RunContext,
  model: ImportTaskModel,
  save: (next: ImportTaskModel) => Promise<boolean>,
  reason: MedblocksFailureReason
): Promise<PatientOutcome> {
  const run = model.state.run;
  const givingUp = reason === 'medblocks_patient_unknown' || ctx.now() - Date.parse(run.startedAt) >= GIVE_UP_AFTER_MS;
  const text = `${reason}: ${givingUp ? 'parked until the next records sync' : 'the next scheduled run tries again'}`;
  await save({
    ...model,
    state: givingUp ? { status: 'failed', run, reason: text } : { status: 'in-progress', run, lastFailure: text },
  });
  return givingUp ? 'failed' : 'paused';
}

async function fetchWithRetry(ctx: RunContext, query: Parameters<typeof fetchRecordsPage>[1]): Promise<RecordsPage> {
  for (let attempt = 0; ; attempt++) {
    ctx.summary.medblocksRequests++;
    try {
      return await fetchRecordsPage(ctx.connection, query);
    } catch (err) {
      if (
        !(err instanceof MedblocksCallError) ||
        !err.transient ||
        attempt >= 2 ||
        ctx.now() + 2000 * 2 ** attempt >= ctx.deadline
      )
        throw err;
      await ctx.sleep(1000 * 2 ** attempt);
    }
  }
}

interface PageResult {
  readonly counts: Partial<ImportCounts>;
  readonly provenances: Provenance[];
}

/** Writes one page: read our copies, plan, write, point same-page references at what was created. */
async function importPage(
  ctx: RunContext,
  items: readonly RecordItem[],
  model: ImportTaskModel,
  taskRef: Reference,
  known: Map<string, string>
): Promise<PageResult> {
  const importTypes = new Set(ctx.types);
  const counts: ImportCounts = zeroCounts();
  const written = new Map<string, { stored: StoredCopy; unresolved: readonly RecordKey[]; item: RecordItem }>();
  const itemByKey = new Map<string, RecordItem>();
  for (const item of items) {
    const key = keyOfItem(item);
    if (key) itemByKey.set(recordKeyValue(key), item);
  }
  let todo: readonly RecordItem[] = items;
  for (let attempt = 0; todo.length > 0; attempt++) {
    const keys = todo.flatMap((item) => {
      const key = keyOfItem(item);
      if (!key) return [];
      return [key, ...referencedKeys(item.resource, key.source).filter((k) => importTypes.has(k.resourceType))];
    });
    const existing = await readCopies(ctx.medplum, keys, ctx.counter);
    for (const [value, copy] of existing) known.set(value, copy.id);
    const plan = planPage(todo, { patient: model.patient as { reference: string }, importTypes, existing, known });
    addCounts(counts, plan.counts);
    if (attempt === 0) {
      // Copies of this page left as they are, that no Provenance names yet: named in this page's.
      const planned = new Set(plan.writes.map((w) => recordKeyValue(w.key)));
      const kept = [...itemByKey.keys()].flatMap((value) => {
        const copy = existing.get(value);
        return copy && !planned.has(value) ? [copy] : [];
      });
      for (const copy of await untracedCopies(ctx.medplum, kept, ctx.counter)) {
        const value = [...itemByKey.keys()].find((v) => existing.get(v) === copy);
        const item = value ? itemByKey.get(value) : undefined;
        if (value && item) written.set(value, { stored: copy, unresolved: [], item });
      }
    }
    const results = await writeRecords(ctx.medplum, plan.writes, ctx.counter);
    const retry: RecordItem[] = [];
    let transient: WriteResult | undefined;
    for (const result of results) {
      const value = recordKeyValue(result.write.key);
      if (result.kind === 'written') {
        counts[result.write.kind === 'create' ? 'created' : 'updated']++;
        known.set(value, result.stored.id);
        const item = itemByKey.get(value);
        if (item) written.set(value, { stored: result.stored, unresolved: result.write.unresolved, item });
      } else if (result.kind === 'refused') {
        counts.refused++;
      } else {
        if (result.kind === 'transient') transient = result;
        const item = itemByKey.get(value);
        if (item) retry.push(item);
      }
    }
    if (retry.length > 0 && attempt + 1 >= PAGE_ATTEMPTS) {
      throw FhirFailureError.of(transient?.kind === 'transient' ? transient.status : 409, 'write');
    }
    if (retry.length > 0) await ctx.sleep(100 * 2 ** attempt + Math.floor(Math.random() * 100));
    todo = retry;
  }
  await resolveSamePageReferences(ctx, written, model, importTypes, known, counts);
  const bySource = new Map<string, StoredCopy[]>();
  for (const { stored, item } of written.values()) {
    const key = keyOfItem(item);
    if (!key) continue;
    bySource.set(key.source, [...(bySource.get(key.source) ?? []), stored]);
  }
  const recorded = new Date(ctx.now()).toISOString();
  const run = model.state.run;
  const provenances = [...bySource.entries()].map(([source, targets]) =>
    buildProvenance(source, targets, { id: run.id, eventId: run.eventId, task: taskRef }, recorded)
  );
  return { counts, provenances };
}

/**
 * Second pass: a record written with a logical reference to a target that this page created is
 * updated to point at our copy. What still points nowhere is counted as unresolved.
 */
async function resolveSamePageReferences(
  ctx: RunContext,
  written: Map<string, { stored: StoredCopy; unresolved: readonly RecordKey[]; item: RecordItem }>,
  model: ImportTaskModel,
  importTypes: ReadonlySet<string>,
  known: ReadonlyMap<string, string>,
  counts: ImportCounts
): Promise<void> {
  const fixable = [...written.entries()].filter(([, w]) => w.unresolved.some((k) => known.has(recordKeyValue(k))));
  if (fixable.length > 0) {
    const existing = new Map(fixable.map(([value, w]) => [value, w.stored]));
    const plan = planPage(
      fixable.map(([, w]) => w.item),
      { patient: model.patient as { reference: string }, importTypes, existing, known }
    );
    for (const result of await writeRecords(ctx.medplum, plan.writes, ctx.counter)) {
      const value = recordKeyValue(result.write.key);
      const entry = written.get(value);
      if (result.kind === 'written' && entry)
        written.set(value, { ...entry, stored: result.stored, unresolved: result.write.unresolved });
    }
  }
  for (const w of written.values()) if (w.unresolved.some((k) => !known.has(recordKeyValue(k)))) counts.unresolved++;
}
