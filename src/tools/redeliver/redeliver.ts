// Finds what Medblocks did not deliver to this project's endpoints (and, given a Medplum client,
// what the bots quarantined as dead-letters) and asks Medblocks to deliver it once more, within
// Medblocks' limit of one redelivery per event per minute. Only ids, types and status codes are
// printed: never payload values.
import type { MedplumClient } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import { deadLetterEventType as eventTypeOfDeadLetter } from '../../runtime/fhir/dead-letter';
import { WEBHOOK_BOTS } from '../../runtime/registry';
import {
  MedblocksApiError,
  type MedblocksApi,
  type MedblocksDelivery,
  type MedblocksEndpoint,
} from '../provision/medblocks-api';
import { Progress } from '../progress';

/** Event types the bots consume (the flow event under either of its names): the registry's, never a copy. */
export const PROJECT_EVENT_TYPES: readonly string[] = WEBHOOK_BOTS.flatMap((b) => b.eventTypes);

export const DEAD_LETTER_SEARCH = 'code=urn:medblocks:code|webhook-dead-letter&status=failed';
const DEAD_LETTER_SYSTEM = 'urn:medblocks:dead-letter';
/** Longest single wait on a Retry-After, and how many 429s per event before giving up. */
const MAX_WAIT_MS = 65_000;
const MAX_RATE_LIMITED = 3;

export interface RedeliverFilters {
  readonly sinceMs?: number;
  readonly type?: string;
  readonly statusCode?: number;
  readonly event?: string;
  readonly quarantinedOnly?: boolean;
}

export interface RedeliverOptions {
  readonly api: MedblocksApi;
  readonly medplum?: MedplumClient;
  readonly filters?: RedeliverFilters;
  readonly dryRun?: boolean;
  readonly force?: boolean;
  readonly reenable?: boolean;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly print: (line: string) => void;
  /** Where the waits are said, with a count and an estimate (the CLI: stderr); `print` by default. */
  readonly progress?: (line: string) => void;
}

export interface PlannedEvent {
  readonly id: string;
  readonly type: string;
  readonly endpointId?: string;
  readonly lastStatusCode: number | null;
  readonly source: 'undelivered' | 'quarantined';
}

export interface RedeliverSummary {
  readonly planned: PlannedEvent[];
  readonly skipped: { id: string; reason: string }[];
  readonly redelivered: number;
  readonly deliveredNow: number;
  readonly stillFailing: { id: string; status: number | null }[];
  /**
   * Delivered (200) but quarantined once more: the cause is not fixed yet. Medblocks calls it a
   * success, so without this the run would report it "delivered" while its dead-letter stays open.
   */
  readonly quarantinedAgain: string[];
}

/** Whether the bot's answer (`last_response_body`) says it quarantined the event. */
export function answeredQuarantined(body: string | null | undefined): boolean {
  if (!body) return false;
  try {
    const parsed = JSON.parse(body) as { status?: unknown };
    return parsed.status === 'quarantined';
  } catch {
    return false;
  }
}

/** An endpoint is ours when it is subscribed to one of the bots' event types (either flow name). */
export function isProjectEndpoint(endpoint: MedblocksEndpoint): boolean {
  return endpoint.events.some((e) => e === '*' || PROJECT_EVENT_TYPES.includes(e));
}

/** The event type a dead-letter Task names (its `event-type` input, written by the bots), or `unknown`. */
export function deadLetterEventType(task: Task): string {
  return eventTypeOfDeadLetter(task) ?? 'unknown';
}

/** Pages of open dead-letters read at most: 10 × 1,000, far past any backlog worth one run. */
const MAX_DEAD_LETTER_PAGES = 10;

/**
 * Open dead-letter Tasks as event ids, for `--quarantined`: every page of them (one page of 1,000
 * once planned 533 of 534 redeliverable events, silently). Pages by `_offset`, which both Medplum
 * and the models serve; nothing changes them while they are read. Past the page bound it stops
 * with an error rather than redeliver part of the backlog without saying so.
 */
export async function quarantinedEvents(
  medplum: MedplumClient,
  pageSize = 1000
): Promise<{ id: string; type: string }[]> {
  const out: { id: string; type: string }[] = [];
  for (let page = 0; ; page++) {
    if (page >= MAX_DEAD_LETTER_PAGES) {
      throw new Error(
        `more than ${String(MAX_DEAD_LETTER_PAGES * pageSize)} open dead-letters: redeliver them by type (--type) or fix the cause first`
      );
    }
    const query = `${DEAD_LETTER_SEARCH}&_count=${String(pageSize)}&_offset=${String(page * pageSize)}`;
    const tasks = await medplum.searchResources('Task', query, { cache: 'no-cache' });
    for (const task of tasks) {
      const id = task.identifier?.find((i) => i.system === DEAD_LETTER_SYSTEM)?.value;
      if (id?.startsWith('evt_')) out.push({ id, type: deadLetterEventType(task) });
    }
    if (tasks.length < pageSize) return out;
  }
}

/** How long redeliver watches the delivery records for the attempts it asked for. */
const SETTLE_MS = 12_000;
const SETTLE_POLL_MS = 250;

interface SentRedelivery {
  readonly index: number;
  readonly event: PlannedEvent;
  /** Medblocks' answer to the redeliver call: the record as it was when the attempt was enqueued. */
  readonly answer: MedblocksDelivery;
  readonly endpointId: string | undefined;
}

/**
 * The record of each redelivered event once it shows the new attempt: more attempts than the
 * answer counted, or delivered since the call. A server that answers after the attempt (as
 * Medblocks' guide page says) shows it at once; one that re-enqueues (as its API says) within a few
 * seconds. Past SETTLE_MS the last record read is used, and the line says so.
 */
async function settleRedeliveries(
  api: MedblocksApi,
  sent: readonly SentRedelivery[],
  sentAt: string
): Promise<{ index: number; event: PlannedEvent; record: MedblocksDelivery; seen: boolean }[]> {
  const latest = new Map(sent.map((s) => [s.event.id, s.answer]));
  const done = new Set<string>();
  const showsAttempt = (s: SentRedelivery, record: MedblocksDelivery): boolean =>
    (record.attempts ?? 0) > (s.answer.attempts ?? 0) ||
    (record.delivered_at !== null && record.delivered_at !== undefined && record.delivered_at >= sentAt);
  const deadline = Date.now() + SETTLE_MS;
  for (;;) {
    const pending = sent.filter((s) => !done.has(s.event.id) && s.endpointId !== undefined);
    if (pending.length === 0 || Date.now() > deadline) break;
    for (const endpointId of new Set(pending.map((s) => s.endpointId ?? ''))) {
      const records = new Map((await api.listEvents(endpointId)).map((r) => [r.id, r]));
      for (const s of pending.filter((p) => p.endpointId === endpointId)) {
        const record = records.get(s.event.id);
        if (!record) continue;
        latest.set(s.event.id, record);
        if (showsAttempt(s, record)) done.add(s.event.id);
      }
    }
    if (sent.every((s) => done.has(s.event.id) || s.endpointId === undefined)) break;
    await new Promise<void>((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }
  return sent.map((s) => ({
    index: s.index,
    event: s.event,
    record: latest.get(s.event.id) ?? s.answer,
    // Without an endpoint id the answer is all there is: taken as the attempt's outcome.
    seen: done.has(s.event.id) || s.endpointId === undefined || showsAttempt(s, s.answer),
  }));
}

/** Plans, then (unless a dry run) redelivers each event, one progress line each, and summarises. */
export async function redeliver(options: RedeliverOptions): Promise<RedeliverSummary> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const f = options.filters ?? {};
  const endpoints = (await options.api.listEndpoints()).filter(isProjectEndpoint);
  const skipped: { id: string; reason: string }[] = [];
  const planned = new Map<string, PlannedEvent>();
  const disabled = endpoints.filter((e) => e.status === 'disabled');

  if (!f.quarantinedOnly) {
    for (const endpoint of endpoints) {
      const events: MedblocksDelivery[] = await options.api.listEvents(endpoint.id, false);
      for (const e of events) {
        if (f.type && e.type !== f.type) continue;
        if (f.event && e.id !== f.event) continue;
        if (f.statusCode !== undefined && e.last_status_code !== f.statusCode) continue;
        if (f.sinceMs !== undefined && e.created_at && Date.parse(e.created_at) < f.sinceMs) continue;
        if (!options.force && e.next_attempt_at && Date.parse(e.next_attempt_at) > now()) {
          skipped.push({ id: e.id, reason: `Medblocks retries it at ${e.next_attempt_at} (--force to redeliver now)` });
          continue;
        }
        planned.set(e.id, {
          id: e.id,
          type: e.type,
          endpointId: endpoint.id,
          lastStatusCode: e.last_status_code ?? null,
          source: 'undelivered',
        });
      }
    }
  }
  if (options.medplum && (f.quarantinedOnly || f.event === undefined || f.event.startsWith('evt_'))) {
    const quarantined = await quarantinedEvents(options.medplum);
    options.print(`found ${String(quarantined.length)} open dead-letter(s) in Medplum`);
    for (const q of quarantined) {
      if (f.type && q.type !== f.type) continue;
      if (f.event && q.id !== f.event) continue;
      if (!planned.has(q.id)) planned.set(q.id, { id: q.id, type: q.type, lastStatusCode: 200, source: 'quarantined' });
    }
  }

  const list = [...planned.values()];
  for (const s of skipped) options.print(`skip  ${s.id}: ${s.reason}`);
  if (options.dryRun) {
    for (const e of disabled)
      options.print(
        `plan  endpoint ${e.id} is disabled${options.reenable ? ': would re-enable' : ' (--reenable to re-enable it)'}`
      );
    for (const e of list)
      options.print(`plan  ${e.id} ${e.type} (${e.source}, last status ${e.lastStatusCode ?? 'none'})`);
    options.print(`Dry run: ${list.length} event(s) would be redelivered, ${skipped.length} skipped.`);
    return { planned: list, skipped, redelivered: 0, deliveredNow: 0, stillFailing: [], quarantinedAgain: [] };
  }
  if (options.reenable) {
    for (const e of disabled) {
      await options.api.updateEndpoint(e.id, { status: 'active' });
      options.print(`re-enabled endpoint ${e.id}`);
    }
  } else if (disabled.length > 0) {
    options.print(`warning: ${disabled.length} endpoint(s) disabled; Medblocks will not deliver to them (--reenable)`);
  }

  let redelivered = 0;
  let deliveredNow = 0;
  const stillFailing: { id: string; status: number | null }[] = [];
  const quarantinedAgain: string[] = [];
  let budgetSpent = false;
  const sent: SentRedelivery[] = [];
  const sentAt = new Date(now()).toISOString();
  const progress = new Progress(list.length, now, 'events');
  const sayProgress = options.progress ?? options.print;
  for (const [index, e] of list.entries()) {
    if (budgetSpent) {
      stillFailing.push({ id: e.id, status: null });
      continue;
    }
    let result: MedblocksDelivery | undefined;
    for (let tries = 0; tries <= MAX_RATE_LIMITED; tries++) {
      try {
        result = await options.api.redeliver(e.id);
        break;
      } catch (err) {
        if (err instanceof MedblocksApiError && err.status === 429 && tries < MAX_RATE_LIMITED) {
          const waitMs = Math.min((err.retryAfterSeconds ?? 60) * 1000, MAX_WAIT_MS);
          if (!options.api.waitBudget.spend(waitMs)) {
            options.print(
              `stop  ${e.id}: Medblocks keeps rate-limiting and ${options.api.waitBudget.describe()}; run redeliver again later`
            );
            budgetSpent = true;
            stillFailing.push({ id: e.id, status: 429 });
            break;
          }
          sayProgress(
            `wait  ${e.id}: Medblocks allows one redelivery a minute; retrying in ${Math.ceil(waitMs / 1000)} s (${progress.describe(index, waitMs)})`
          );
          await sleep(waitMs);
          continue;
        }
        const status = err instanceof MedblocksApiError ? (err.status ?? null) : null;
        options.print(`[${index + 1}/${list.length}] ${e.id} ${e.type}: redelivery refused (${status ?? 'network'})`);
        stillFailing.push({ id: e.id, status });
        break;
      }
    }
    if (!result) continue;
    redelivered++;
    sent.push({ index, event: e, answer: result, endpointId: e.endpointId ?? result.webhook_endpoint_id ?? undefined });
  }

  // Medblocks' redeliver re-enqueues and answers the record as it was: the new attempt's outcome is
  // read from the delivery record once it shows that attempt (bounded; one list per endpoint a round).
  const settled = await settleRedeliveries(options.api, sent, sentAt);
  for (const { index, event: e, record, seen } of settled) {
    const code = record.last_status_code ?? null;
    const ok = code !== null && code >= 200 && code < 300;
    const again = ok && answeredQuarantined(record.last_response_body);
    if (again) quarantinedAgain.push(e.id);
    else if (ok) deliveredNow++;
    else stillFailing.push({ id: e.id, status: code });
    const what = again ? 'quarantined again, the cause is not fixed yet' : ok ? 'delivered' : 'still failing';
    const when = seen ? '' : `; no new attempt seen within ${String(SETTLE_MS / 1000)} s, last known`;
    options.print(`[${index + 1}/${list.length}] ${e.id} ${e.type}: ${what} (${code ?? 'no answer'}${when})`);
  }
  const codes = stillFailing.map((s) => `${s.id}=${s.status ?? 'none'}`).join(', ');
  const againText = quarantinedAgain.length > 0 ? `, quarantined again ${quarantinedAgain.length}` : '';
  options.print(
    `Redelivered ${redelivered}, delivered now ${deliveredNow}${againText}, still failing ${stillFailing.length}${codes ? `: ${codes}` : ''}, skipped ${skipped.length}.`
  );
  return { planned: list, skipped, redelivered, deliveredNow, stillFailing, quarantinedAgain };
}
