// One page of records → what to write, purely (no I/O): the import's whole decision, so the tests
// of idempotency, newest-wins and reference rewriting need no server.
//
// A record is written as our copy: the EHR's resource without its `id` and `meta`, references
// rewritten (references.ts), our record identifier added beside the EHR's own identifiers, and the
// EHR's `meta.lastUpdated` kept in an extension. Then, against our stored copy:
//   none            → create (conditional on the record identifier, so two imports make one copy)
//   same content    → nothing (a replayed sync writes nothing)
//   older at source → nothing (an overtaken page never undoes a newer import: newest wins)
//   otherwise       → update, If-Match the version read, so a concurrent import is noticed
import type { Extension, Resource } from '@medplum/fhirtypes';
import {
  recordIdentifier,
  recordKeyValue,
  RECORD_SYSTEM,
  SOURCE_UPDATED_EXTENSION,
  sourceUpdatedOf,
  UNKNOWN_SOURCE,
} from './identity';
import type { RecordKey } from './identity';
import { rewriteReferences } from './references';

/** One item of Medblocks' `PatientRecords.data`. */
export interface RecordItem {
  readonly source: string | null;
  readonly resource: { readonly resourceType: string; readonly id?: string; readonly [field: string]: unknown };
}

export type StoredCopy = Resource & { readonly id: string; readonly meta?: { readonly versionId?: string } };

export interface PlannedImportWrite {
  readonly kind: 'create' | 'update';
  readonly key: RecordKey;
  readonly resource: Resource;
  /** The version an update was planned against (If-Match). */
  readonly ifMatch?: string;
  /** Targets named only logically when planned; a second pass points them at our copies. */
  readonly unresolved: readonly RecordKey[];
}

export interface PageCounts {
  unchanged: number;
  stale: number;
  /** The EHR's own Patient resources: the import writes no demographics (docs/records-import.md). */
  patientRecords: number;
  /** Items that are not a FHIR resource with a usable id, or of a type not imported. */
  malformed: number;
}

export interface PagePlan {
  readonly writes: readonly PlannedImportWrite[];
  readonly counts: PageCounts;
}

export interface PageContext {
  readonly patient: { readonly reference: string };
  readonly importTypes: ReadonlySet<string>;
  /** Our stored copies, by record key value. */
  readonly existing: ReadonlyMap<string, StoredCopy>;
  /** Our ids by record key value: the copies above and whatever this import wrote before. */
  readonly known: ReadonlyMap<string, string>;
}

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const RESOURCE_TYPE = /^[A-Z][A-Za-z]{1,63}$/;

export function emptyCounts(): PageCounts {
  return { unchanged: 0, stale: 0, patientRecords: 0, malformed: 0 };
}

/** The record key of an item; undefined when the item is not a resource we could key. */
export function keyOfItem(item: RecordItem): RecordKey | undefined {
  const { resourceType, id } = item.resource;
  if (
    typeof resourceType !== 'string' ||
    !RESOURCE_TYPE.test(resourceType) ||
    typeof id !== 'string' ||
    !FHIR_ID.test(id)
  ) {
    return undefined;
  }
  return { source: item.source ?? UNKNOWN_SOURCE, resourceType, id };
}

export function planPage(items: readonly RecordItem[], context: PageContext): PagePlan {
  const counts = emptyCounts();
  const writes: PlannedImportWrite[] = [];
  const seen = new Set<string>();
  for (const item of items) {
    const key = keyOfItem(item);
    if (!key) {
      counts.malformed++;
      continue;
    }
    if (key.resourceType === 'Patient') {
      counts.patientRecords++;
      continue;
    }
    const value = recordKeyValue(key);
    if (!context.importTypes.has(key.resourceType) || seen.has(value)) {
      if (!seen.has(value)) counts.malformed++;
      continue;
    }
    seen.add(value);
    const { resource, unresolved } = ourCopy(item, key, context);
    const stored = context.existing.get(value);
    if (!stored) {
      writes.push({ kind: 'create', key, resource, unresolved });
    } else if (sameContent(stored, resource)) {
      counts.unchanged++;
    } else if (isOlder(sourceUpdatedOf(withExtensions(resource)), sourceUpdatedOf(withExtensions(stored)))) {
      counts.stale++;
    } else {
      writes.push({
        kind: 'update',
        key,
        resource: { ...resource, id: stored.id },
        ifMatch: stored.meta?.versionId,
        unresolved,
      });
    }
  }
  return { writes, counts };
}

function ourCopy(
  item: RecordItem,
  key: RecordKey,
  context: PageContext
): { resource: Resource; unresolved: readonly RecordKey[] } {
  const { id: _ehrId, meta, ...content } = item.resource;
  const sourceUpdated =
    typeof meta === 'object' && meta !== null ? (meta as { lastUpdated?: unknown }).lastUpdated : undefined;
  const { resource, unresolved } = rewriteReferences(content, {
    source: key.source,
    patient: context.patient,
    resolve: (keyValue) => context.known.get(keyValue),
  });
  const identifiers = Array.isArray(resource.identifier) ? (resource.identifier as { system?: string }[]) : [];
  const extensions = Array.isArray(resource.extension) ? (resource.extension as { url?: string }[]) : [];
  const copy: Record<string, unknown> = {
    ...resource,
    identifier: [...identifiers.filter((i) => i.system !== RECORD_SYSTEM), recordIdentifier(key)],
    extension: [
      ...extensions.filter((e) => e.url !== SOURCE_UPDATED_EXTENSION),
      ...(typeof sourceUpdated === 'string' ? [{ url: SOURCE_UPDATED_EXTENSION, valueInstant: sourceUpdated }] : []),
    ],
  };
  if ((copy.extension as unknown[]).length === 0) delete copy.extension;
  return { resource: copy as unknown as Resource, unresolved };
}

function withExtensions(resource: Resource): { extension?: Extension[] } {
  return 'extension' in resource ? { extension: resource.extension } : {};
}

function isOlder(candidate: string | undefined, than: string | undefined): boolean {
  return candidate !== undefined && than !== undefined && Date.parse(candidate) < Date.parse(than);
}

/** Our copy against the stored one, ignoring what the server owns (id, meta) and key order. */
export function sameContent(stored: Resource, planned: Resource): boolean {
  const { id: _id, meta: _meta, ...a } = stored as Resource & Record<string, unknown>;
  const { id: _id2, meta: _meta2, ...b } = planned as Resource & Record<string, unknown>;
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value === undefined) return 'undefined';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}
