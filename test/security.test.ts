// SECURITY.md's grant tables are the reasons each grant carries in src/tools/policies/policies.ts,
// rendered (src/tools/policies/grant-tables.ts): kept equal here, cell by cell, so that neither a
// table nor a grant's reasons can change alone. `npm run policies` rewrites them.
import { getDataType } from '@medplum/core';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_BOTS } from '../src/runtime/registry';
import { indexFhirDefinitions } from '../src/tools/emulator/definitions';
import { grantTableMarkdown, grantTableRegions, withGrantTables } from '../src/tools/policies/grant-tables';
import { explainedPolicies } from '../src/tools/policies/policies';
import { cells } from './support/markdown';

const security = readFileSync(new URL('../SECURITY.md', import.meta.url), 'utf8');
const lines = security.split('\n');

/** A region's lines as compared: table rows by cell (no separator row), other lines trimmed. */
function comparable(text: readonly string[]): (string | string[])[] {
  return text
    .filter((line) => !/^\|[\s:|-]+\|$/.test(line))
    .map((line) => (line.startsWith('|') ? cells(line) : line.trim()));
}

describe('SECURITY.md', () => {
  const regions = grantTableRegions(lines);

  it('has one rendered grant table per registered bot, in the registry’s order', () => {
    expect(regions.map((r) => r.bot)).toEqual(ALL_BOTS.map((b) => b.name));
  });

  it.each(explainedPolicies().map((p) => p.bot))('%s: its heading and table are its grants’ reasons', (bot) => {
    const region = regions.find((r) => r.bot === bot);
    expect(region, `no grant table marker for ${bot}`).toBeDefined();
    if (!region) return;
    expect(comparable(lines.slice(region.marker + 1, region.end))).toEqual(
      comparable(['', ...grantTableMarkdown(bot).split('\n')])
    );
  });

  it('a bot without a table gets one, before the next bot’s, the prose around it kept', () => {
    const without = lines.filter((_, i) => {
      const region = regions[1];
      return !region || i < region.marker || i >= region.end;
    });
    const rendered = withGrantTables(without.join('\n')).split('\n');
    expect(grantTableRegions(rendered).map((r) => r.bot)).toEqual(ALL_BOTS.map((b) => b.name));
    const prose = (text: readonly string[]): string[] => text.filter((l) => l !== '' && !/^(\||<!--|###)/.test(l));
    expect(prose(rendered)).toEqual(prose(lines));
  });
});

describe('the grants’ reasons', () => {
  it('the Patient read grant hides every field but id and meta, as its reason says', () => {
    indexFhirDefinitions();
    const hidden = explainedPolicies()
      .flatMap((p) => p.policy.grants)
      .find((g) => g.kind === 'patient-read')?.grant.hiddenFields;
    const shown = Object.keys(getDataType('Patient').elements).filter((field) => !hidden?.includes(field));
    expect(shown.sort()).toEqual(['id', 'meta']);
  });
});
