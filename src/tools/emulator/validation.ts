// What Medplum's server checks on every write that the in-memory store does not:
//
//   VAL-1  create and update validate the resource strictly against the FHIR definitions
//          (`validateResource` from @medplum/core) and answer 400 with the validator's
//          OperationOutcome (one `structure`/`invariant` issue per problem, with its `expression`).
//          Server: packages/server/src/fhir/repo.ts `updateResourceImpl` → `validateRepositoryResource`
//          (repository/validation.ts: `strictMode` → `validateRepositoryResourceStrictly` →
//          `validateResource`); projects are strict by default. Without this rule an int32 overflow,
//          an impossible date or a bad `code` is stored by the emulator and refused by a server.
//
//   SRCH-1 an `identifier` token search is answered as the server's token columns answer it
//          (token-column.ts `buildTokenColumnsSearchFilter`): the value is split on unescaped
//          commas and unescaped (`splitSearchOnComma`), each part trimmed, then split on its FIRST
//          `|` only (`splitN(query, '|', 2)`) into system and value; stored systems and values are
//          trimmed too (`buildTokenColumns`), and identifiers compare case-sensitively
//          (tokens.ts `getTokenIndexType`: `CASE_SENSITIVE` for identifiers). @medplum/core's
//          in-memory matcher splits on every `|` and lower-cases, so `MRN|12345` never matched and
//          `John` matched `john`.
//
// docs/fidelity-ledger.md lists both; test/emulator/validation.test.ts pins them.
import { Operator, splitN, splitSearchOnComma, validateResource } from '@medplum/core';
import type { Filter, SearchRequest } from '@medplum/core';
import type { Bundle, Identifier, Resource } from '@medplum/fhirtypes';

/** VAL-1: throws the validator's OperationOutcomeError (answered 400) when the server would refuse the write. */
export function validateWrite(resource: Resource): void {
  validateResource(resource);
}

type SearchSync = (request: SearchRequest) => Bundle;

function isIdentifierFilter(filter: Filter): boolean {
  return filter.code === 'identifier' && filter.operator === Operator.EQUALS;
}

/** SRCH-1: whether one stored identifier matches one `system|value` query as the server decides it. */
export function identifierMatches(identifier: Identifier, query: string): boolean {
  const storedSystem = identifier.system?.trim() ?? '';
  const storedValue = identifier.value?.trim() ?? '';
  const parts = splitN(query, '|', 2);
  if (parts.length < 2) {
    return storedValue === query;
  }
  const [system = '', value = ''] = parts;
  if (value === '') {
    return system !== '' && storedSystem === system;
  }
  return storedSystem === system && storedValue === value;
}

function filterMatches(resource: Resource, filter: Filter): boolean {
  const identifiers = (resource as { identifier?: Identifier[] }).identifier ?? [];
  const queries = splitSearchOnComma(filter.value).map((q) => q.trim());
  return identifiers.some((identifier) => queries.some((q) => identifierMatches(identifier, q)));
}

/**
 * Wraps MemoryRepository's synchronous search (which search, conditional create and conditional
 * update all use) so that `identifier=` filters follow SRCH-1; other filters, sorting, paging and
 * includes stay the mock's.
 */
export function withServerIdentifierSearch(inner: SearchSync): SearchSync {
  return (request) => {
    const identifierFilters = (request.filters ?? []).filter(isIdentifierFilter);
    if (identifierFilters.length === 0) {
      return inner(request);
    }
    const rest = (request.filters ?? []).filter((f) => !isIdentifierFilter(f));
    const all = inner({ ...request, filters: rest, offset: undefined, count: undefined });
    const matched = (all.entry ?? []).filter(
      (e) => e.resource !== undefined && identifierFilters.every((f) => filterMatches(e.resource as Resource, f))
    );
    const offset = request.offset ?? 0;
    const page = matched.slice(offset, request.count === undefined ? undefined : offset + request.count);
    return { ...all, entry: page.length > 0 ? page : undefined, total: matched.length };
  };
}
