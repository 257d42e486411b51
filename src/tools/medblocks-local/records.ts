// The local Medblocks' store of patients' FHIR records and its `GET /patients/{id}/records` paging
// (operationId `api.getPatientRecords`), kept out of server.ts so that the route only delegates.
// Facts follow Medblocks' published API description (2026-04-25): the `PatientRecords` answer, the
// `type` / `since` / `count` / `starting_after` / `ending_before` query, 12-character cursors valid
// 7 days, and the `urn:medblocks:patient-id` identifier on every FHIR Patient. Where the description
// says nothing (the order, what `has_more` means when paging back, a cursor used with other
// filters), this model picks the strict reading and docs/medblocks-contract.md (MB-11) says so.
import { randomBytes } from 'node:crypto';
import type { Identifier, Resource } from '@medplum/fhirtypes';
import { SYSTEM } from '../../runtime/fhir/systems';
import type { RecordsSyncCompletedEvent } from '../../runtime/events';
import { eventId, recordsSyncCompleted } from '../fixtures/events';

/** One item of `PatientRecords.data`: the EHR (`fhirsrc_…`, or null) and the resource as that EHR holds it. */
export interface PatientRecordItem {
  readonly source: string | null;
  readonly resource: Resource;
}

/** A stored item and the server-clock time its content last changed (what `since` and the order use). */
export interface StoredPatientRecord extends PatientRecordItem {
  readonly changedAt: string;
}

/** The published `PatientRecords` answer: all six fields required. */
export interface PatientRecordsPage {
  readonly resource_type: 'list';
  readonly patient_id: string;
  readonly data: PatientRecordItem[];
  readonly has_more: boolean;
  readonly next_cursor: string | null;
  readonly previous_cursor: string | null;
}

export interface PutRecordsResult {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  /** The change time stamped on this put's created and updated items (ISO): a `since` just before it finds them. */
  readonly changedAt: string;
}

export interface PutRecordsOptions {
  /**
   * Also emit one `records.sync.completed` per source among the items (through the server's
   * `emit`, so only subscribed active endpoints get it), as Medblocks does when a pull lands:
   * `total` is that source's item count in this put. Off by default, so putting records alone never
   * delivers anything and existing event behaviour is untouched.
   */
  readonly syncCompleted?: boolean | { readonly errors?: number; readonly duration_ms?: number | null };
}

/** A query the published description refuses: answered 400 `invalid_request_error` naming `param`. */
export class RecordsQueryError extends Error {
  constructor(
    readonly param: 'type' | 'since' | 'count' | 'starting_after' | 'ending_before',
    message: string
  ) {
    super(message);
  }
}

export interface LocalRecordsStore {
  /** Upserts by (source, resourceType, id); only items whose content changed get a new change time. */
  put(patientId: string, items: readonly PatientRecordItem[]): PutRecordsResult;
  /** Every stored item of the patient, in the order the API pages them. */
  records(patientId: string): StoredPatientRecord[];
  /** One page of `GET /patients/{id}/records`; throws `RecordsQueryError` for what the API refuses. */
  page(patientId: string, query: URLSearchParams): PatientRecordsPage;
}

export const RECORDS_DEFAULT_COUNT = 100;
export const RECORDS_MAX_COUNT = 100;
export const RECORD_CURSOR_LENGTH = 12;
export const RECORD_CURSOR_TTL_MS = 7 * 24 * 60 * 60 * 1000;

const CURSOR_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

interface SortKey {
  readonly changedMs: number;
  readonly source: string | null;
  readonly resourceType: string;
  readonly id: string;
}

interface Entry extends SortKey {
  resource: Resource;
  /** Key-order-independent JSON of the resource: "unchanged" compares content, not key order. */
  canonical: string;
}

interface Cursor {
  readonly patientId: string;
  /** `starting_after` for a `next_cursor`, `ending_before` for a `previous_cursor`. */
  readonly param: 'starting_after' | 'ending_before';
  /** The `type` and `since` the cursor's listing was asked with: filters stay identical across pages. */
  readonly filters: string;
  readonly key: SortKey;
  readonly issuedMs: number;
}

function compareKeys(a: SortKey, b: SortKey): number {
  if (a.changedMs !== b.changedMs) return a.changedMs < b.changedMs ? -1 : 1;
  // null (no source) first; plain code-unit order, never locale-dependent
  if (a.source !== b.source) {
    if (a.source === null) return -1;
    if (b.source === null) return 1;
    return a.source < b.source ? -1 : 1;
  }
  if (a.resourceType !== b.resourceType) return a.resourceType < b.resourceType ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return 0;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** As published: every FHIR Patient served carries the caller's patient id under `urn:medblocks:patient-id`. */
function withMedblocksIdentifier(patientId: string, resource: Resource): Resource {
  if (resource.resourceType !== 'Patient') return resource;
  const others = (resource.identifier ?? []).filter((i: Identifier) => i.system !== SYSTEM.patientId);
  return { ...resource, identifier: [...others, { system: SYSTEM.patientId, value: patientId }] };
}

function recordKey(source: string | null, resourceType: string, id: string): string {
  return JSON.stringify([source, resourceType, id]);
}

function parseCount(raw: string | null): number {
  if (raw === null || raw === '') return RECORDS_DEFAULT_COUNT;
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > RECORDS_MAX_COUNT)
    throw new RecordsQueryError('count', `count must be an integer from 1 to ${RECORDS_MAX_COUNT}`);
  return n;
}

function parseTypes(raw: string | null): string[] | null {
  if (raw === null || raw.trim() === '') return null;
  const types = [...new Set(raw.split(',').map((t) => t.trim()))].filter((t) => t !== '');
  const bad = types.find((t) => !RESOURCE_TYPE.test(t));
  if (bad !== undefined) throw new RecordsQueryError('type', 'type must be comma-separated FHIR resource types');
  return types.sort();
}

function parseSince(raw: string | null): number | null {
  if (raw === null || raw === '') return null;
  // An unencoded `+02:00` offset arrives form-decoded as ` 02:00`.
  const text = raw.replace(/ (\d{2}:\d{2})$/, '+$1');
  const ms = DATE.test(text) ? Date.parse(`${text}T00:00:00.000Z`) : DATE_TIME.test(text) ? Date.parse(text) : NaN;
  if (!Number.isFinite(ms)) throw new RecordsQueryError('since', 'since must be an ISO 8601 date or date-time');
  return ms;
}

function validateItem(item: PatientRecordItem): void {
  const r = item.resource as Partial<Resource> | null;
  if (!r || typeof r.resourceType !== 'string' || typeof r.id !== 'string' || r.id === '')
    throw new Error('A record needs a resource with a resourceType and the EHR id');
  if (item.source !== null && typeof item.source !== 'string') throw new Error('A record source is a string or null');
}

/**
 * The records a local Medblocks holds, per patient. `now` is the server's injectable clock: change
 * times and cursor expiry both read it, so tests can age a cursor past 7 days without waiting.
 */
export function createRecordsStore(now: () => number): LocalRecordsStore {
  const byPatient = new Map<string, Map<string, Entry>>();
  const cursors = new Map<string, Cursor>();
  const lastStamp = new Map<string, number>(); // patient id → change time of its newest put

  function sorted(patientId: string): Entry[] {
    return [...(byPatient.get(patientId)?.values() ?? [])].sort(compareKeys);
  }

  function issue(cursor: Omit<Cursor, 'issuedMs'>): string {
    const fresh = (): string =>
      [...randomBytes(RECORD_CURSOR_LENGTH)].map((b) => CURSOR_ALPHABET[b % CURSOR_ALPHABET.length]).join('');
    let id = fresh();
    while (cursors.has(id)) id = fresh();
    cursors.set(id, { ...cursor, issuedMs: now() });
    return id;
  }

  function redeem(param: Cursor['param'], raw: string, patientId: string, filters: string): SortKey {
    const cursor = cursors.get(raw);
    const from = param === 'starting_after' ? 'next_cursor' : 'previous_cursor';
    if (!cursor || cursor.patientId !== patientId || cursor.param !== param)
      throw new RecordsQueryError(param, `${param} is not a ${from} of this patient's records`);
    if (now() - cursor.issuedMs > RECORD_CURSOR_TTL_MS) {
      cursors.delete(raw);
      throw new RecordsQueryError(param, `${param} has expired: cursors are valid for 7 days`);
    }
    if (cursor.filters !== filters)
      throw new RecordsQueryError(param, `${param} was issued for other type/since filters: keep them identical`);
    return cursor.key;
  }

  return {
    put(patientId, items) {
      for (const item of items) validateItem(item);
      // The server clock, moved on by 1 ms when two puts of one patient share a millisecond, so
      // that a `since` at one put's time finds every later put's changes.
      const stamp = Math.max(now(), (lastStamp.get(patientId) ?? -Infinity) + 1);
      const store = byPatient.get(patientId) ?? new Map<string, Entry>();
      byPatient.set(patientId, store);
      let created = 0;
      let updated = 0;
      let unchanged = 0;
      for (const item of items) {
        const resource = withMedblocksIdentifier(patientId, structuredClone(item.resource));
        const id = resource.id ?? '';
        const key = recordKey(item.source, resource.resourceType, id);
        const canonical = canonicalJson(resource);
        const existing = store.get(key);
        if (existing?.canonical === canonical) {
          unchanged += 1;
          continue;
        }
        if (existing) updated += 1;
        else created += 1;
        store.set(key, {
          changedMs: stamp,
          source: item.source,
          resourceType: resource.resourceType,
          id,
          resource,
          canonical,
        });
      }
      if (created + updated > 0) lastStamp.set(patientId, stamp);
      return { created, updated, unchanged, changedAt: new Date(stamp).toISOString() };
    },

    records(patientId) {
      return sorted(patientId).map((e) => ({
        source: e.source,
        resource: structuredClone(e.resource),
        changedAt: new Date(e.changedMs).toISOString(),
      }));
    },

    page(patientId, query) {
      const count = parseCount(query.get('count'));
      const types = parseTypes(query.get('type'));
      const since = parseSince(query.get('since'));
      const after = query.get('starting_after') || null;
      const before = query.get('ending_before') || null;
      if (after !== null && before !== null)
        throw new RecordsQueryError('ending_before', 'Pass starting_after or ending_before, not both');
      const filters = JSON.stringify([types, since]);
      const all = sorted(patientId).filter(
        (e) => (types === null || types.includes(e.resourceType)) && (since === null || e.changedMs > since)
      );

      let begin = 0;
      let end = Math.min(count, all.length);
      if (after !== null) {
        const key = redeem('starting_after', after, patientId, filters);
        begin = all.findIndex((e) => compareKeys(e, key) > 0);
        if (begin < 0) begin = all.length;
        end = Math.min(begin + count, all.length);
      } else if (before !== null) {
        const key = redeem('ending_before', before, patientId, filters);
        end = all.findIndex((e) => compareKeys(e, key) >= 0);
        if (end < 0) end = all.length;
        begin = Math.max(0, end - count);
      }
      const items = all.slice(begin, end);
      const first = items[0];
      const last = items.at(-1);
      const moreBefore = begin > 0;
      const moreAfter = end < all.length;
      const cursorOf = (param: Cursor['param'], e: Entry): string =>
        issue({
          patientId,
          param,
          filters,
          key: { changedMs: e.changedMs, source: e.source, resourceType: e.resourceType, id: e.id },
        });
      return {
        resource_type: 'list',
        patient_id: patientId,
        data: items.map((e) => ({ source: e.source, resource: structuredClone(e.resource) })),
        // Paging back (`ending_before`), "more" is what lies further back, as in Stripe-style lists.
        has_more: before !== null ? moreBefore : moreAfter,
        next_cursor: moreAfter && last ? cursorOf('starting_after', last) : null,
        previous_cursor: moreBefore && first ? cursorOf('ending_before', first) : null,
      };
    },
  };
}

/**
 * The `records.sync.completed` events a put stands for (none unless asked), so a test or the demo
 * can land records and have the import bot's webhook fire for them in one step, as in production.
 */
export function syncCompletedEvents(
  patientId: string,
  items: readonly PatientRecordItem[],
  options: PutRecordsOptions,
  at: string
): RecordsSyncCompletedEvent[] {
  const sync = options.syncCompleted;
  if (!sync) return [];
  const perSource = new Map<string, number>();
  for (const item of items) if (item.source !== null) perSource.set(item.source, (perSource.get(item.source) ?? 0) + 1);
  return [...perSource].map(([source, total]) =>
    recordsSyncCompleted(
      {
        patient_id: patientId,
        connection_id: source,
        total,
        errors: sync === true ? 0 : (sync.errors ?? 0),
        duration_ms: sync === true ? null : (sync.duration_ms ?? null),
      },
      { id: eventId(at), created_at: at }
    )
  );
}
