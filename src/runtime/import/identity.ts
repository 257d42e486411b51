// How an imported record is known again: one identifier system for every record Medblocks served,
// with the value `<fhirsrc id>/<resourceType>/<EHR id>` (Medblocks' own upsert key: patient,
// source, resource type, resource id; the patient is the record's subject). One system, not one per
// source, because an AccessPolicy can then say "only resources carrying it" in one criterion and one
// FHIRPath equality, and a search for a page of records is one token list per resource type.
import type { Extension, Resource } from '@medplum/fhirtypes';
import { EXTENSION, SYSTEM, token } from '../fhir/systems';

export const RECORD_SYSTEM = 'urn:medblocks:record';

/** Names the import run in each Provenance (beside the import Task it belongs to). */
export const IMPORT_RUN_SYSTEM = 'urn:medblocks:import-run';

/** When the EHR last changed the record (its `meta.lastUpdated`), kept on our copy: newest wins. */
export const SOURCE_UPDATED_EXTENSION = EXTENSION.sourceLastUpdated;

/** A record served without a source (Medblocks' `source: null`) is still keyed, under this name. */
export const UNKNOWN_SOURCE = 'unknown-source';

export interface RecordKey {
  readonly source: string;
  readonly resourceType: string;
  readonly id: string;
}

export function recordKeyValue(key: RecordKey): string {
  return `${key.source}/${key.resourceType}/${key.id}`;
}

export function recordIdentifier(key: RecordKey): { system: string; value: string } {
  return { system: RECORD_SYSTEM, value: recordKeyValue(key) };
}

/** The `identifier=` search value for a record key, escaped as every identifier search of the bots is. */
export function recordToken(key: RecordKey): string {
  return token(RECORD_SYSTEM, recordKeyValue(key));
}

/** The record key our copy carries; undefined for a resource the import did not write. */
export function recordKeyOf(resource: Resource): string | undefined {
  const identifiers = 'identifier' in resource ? (resource.identifier as { system?: string; value?: string }[]) : [];
  return (Array.isArray(identifiers) ? identifiers : []).find((i) => i.system === RECORD_SYSTEM)?.value;
}

export function sourceUpdatedOf(resource: { extension?: Extension[] }): string | undefined {
  return resource.extension?.find((e) => e.url === SOURCE_UPDATED_EXTENSION)?.valueInstant;
}

/** The EHR-source Organization as `npm run sources` writes it, referenced by identifier. */
export function sourceOrganization(source: string): {
  type: 'Organization';
  identifier: { system: string; value: string };
} {
  return { type: 'Organization', identifier: { system: SYSTEM.fhirSourceId, value: source } };
}
