// References in an EHR's record point into the EHR's own server ("Encounter/abc"). In Medplum they
// must point at our copies, or at nothing we could mistake for one: an EHR id read as a Medplum id
// would name whatever resource of ours happens to carry it. So every relative reference becomes
//   - the patient's own Patient, for any `Patient/…` (the records are one patient's; the EHR's
//     display, which may be the patient's name, is dropped: the import writes no demographics);
//   - `Type/<our id>` when our copy of the target is known (imported earlier or in this page);
//   - otherwise a logical reference, `{type, identifier: urn:medblocks:record|<key>}`, which names the
//     target without claiming it exists here (a later pass or import resolves it).
// Contained (`#…`), absolute and `urn:` references are kept as they are.
import type { Reference } from '@medplum/fhirtypes';
import { recordIdentifier, recordKeyValue } from './identity';
import type { RecordKey } from './identity';

const RELATIVE_REFERENCE = /^([A-Z][A-Za-z]{1,63})\/([A-Za-z0-9\-.]{1,64})(\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

export interface ReferenceContext {
  readonly source: string;
  readonly patient: { readonly reference: string };
  /** Our id for a record key value, when our copy exists. */
  readonly resolve: (keyValue: string) => string | undefined;
}

export interface RewrittenResource<T> {
  readonly resource: T;
  /** Targets named only logically: our copies did not exist when the resource was planned. */
  readonly unresolved: readonly RecordKey[];
}

/** The record keys a resource references (Patient excepted): what the read batch looks up. */
export function referencedKeys(resource: unknown, source: string): RecordKey[] {
  const keys: RecordKey[] = [];
  visitReferences(resource, (ref) => {
    const match = RELATIVE_REFERENCE.exec(ref.reference ?? '');
    if (match && match[1] !== 'Patient') keys.push({ source, resourceType: match[1] ?? '', id: match[2] ?? '' });
    return ref;
  });
  return keys;
}

/** A copy of the resource with every reference pointing where the header says. */
export function rewriteReferences<T>(resource: T, context: ReferenceContext): RewrittenResource<T> {
  const unresolved: RecordKey[] = [];
  const rewritten = visitReferences(resource, (ref) => {
    const match = RELATIVE_REFERENCE.exec(ref.reference ?? '');
    if (!match) return ref;
    const resourceType = match[1] ?? '';
    if (resourceType === 'Patient') {
      return { reference: context.patient.reference, ...(ref.type ? { type: ref.type } : {}) };
    }
    const key: RecordKey = { source: context.source, resourceType, id: match[2] ?? '' };
    const ours = context.resolve(recordKeyValue(key));
    if (ours) {
      return { ...ref, reference: `${resourceType}/${ours}` };
    }
    unresolved.push(key);
    const { reference: _dropped, ...rest } = ref;
    return { ...rest, type: resourceType as Reference['type'], identifier: recordIdentifier(key) };
  });
  return { resource: rewritten, unresolved };
}

/** Walks a JSON value depth-first; every object with a string `reference` is replaced by `visit`'s answer. */
function visitReferences<T>(value: T, visit: (ref: Reference) => Reference): T {
  const walk = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(walk);
    if (node === null || typeof node !== 'object') return node;
    const record = node as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) out[k] = walk(v);
    return typeof out.reference === 'string' ? visit(out) : out;
  };
  return walk(value) as T;
}
