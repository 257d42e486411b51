// `npm run sources`, the pure part: which sources the Consents name, and what each Organization needs.
import type { WithId } from '@medplum/core';
import type { Consent, Organization } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import {
  countActions,
  formatSources,
  isVerifySource,
  newOrganization,
  organizationQuery,
  organizationsBySource,
  planSources,
  sourceIdsOf,
  usableName,
  usablePortalUrl,
  withPortalUrl,
  type SourceLookup,
} from '../../src/tools/sources/plan';

const SYSTEM = 'urn:medblocks:fhir-source-id';
const A = 'fhirsrc_AAAA';
const B = 'fhirsrc_BBBB';
const C = 'fhirsrc_CCCC';

function consent(...actors: { system?: string; value?: string }[]): Consent {
  return {
    resourceType: 'Consent',
    status: 'active',
    scope: { text: 'patient-privacy' },
    category: [{ text: 'x' }],
    provision: { actor: actors.map((identifier) => ({ role: { text: 'custodian' }, reference: { identifier } })) },
  };
}

function org(id: string, name: string | undefined, ...values: string[]): WithId<Organization> {
  return {
    resourceType: 'Organization',
    id,
    ...(name === undefined ? {} : { name }),
    identifier: values.map((value) => ({ system: SYSTEM, value })),
  };
}

describe('sourceIdsOf', () => {
  it('collects the fhir-source-id actors, unique and sorted, and ignores other systems and odd values', () => {
    const ids = sourceIdsOf([
      consent({ system: SYSTEM, value: B }),
      consent({ system: SYSTEM, value: A }, { system: SYSTEM, value: B }),
      consent({ system: 'urn:other', value: C }),
      consent({ system: SYSTEM, value: 'fhirsrc_../../webhooks' }),
      consent({ system: SYSTEM, value: 'conn_123' }),
      consent({ system: SYSTEM }),
      { resourceType: 'Consent', status: 'active', scope: { text: 's' }, category: [{ text: 'c' }] },
    ]);
    expect(ids).toEqual([A, B]);
  });
});

describe('usableName', () => {
  it('normalises as the bots read names, and refuses blank or unclean ones', () => {
    expect(usableName('  Epic \n MyChart ')).toBe('Epic MyChart');
    expect(usableName('x'.repeat(200))).toHaveLength(120);
    expect(usableName('   ')).toBeUndefined();
    expect(usableName(undefined)).toBeUndefined();
    expect(usableName('Epic\u0000')).toBeUndefined();
    // Bidi controls (a hostile answer could put them in Organization.name) are dropped, the name kept.
    expect(usableName('Epic\u202e trahCyM\u2066x\u2069')).toBe('Epic trahCyMx');
    expect(usableName('\u202e\u200f')).toBeUndefined();
  });
});

describe('usablePortalUrl', () => {
  it('keeps an https address and nothing else', () => {
    expect(usablePortalUrl('https://mychart.example.org/MyChart/')).toBe('https://mychart.example.org/MyChart/');
    expect(usablePortalUrl('http://mychart.example.org/')).toBeUndefined();
    expect(usablePortalUrl('javascript:alert(1)')).toBeUndefined();
    expect(usablePortalUrl('https://example.org/a b')).toBeUndefined();
    expect(usablePortalUrl('https://example.org/\u202e')).toBeUndefined();
    expect(usablePortalUrl(`https://example.org/${'a'.repeat(600)}`)).toBeUndefined();
    expect(usablePortalUrl(null)).toBeUndefined();
  });
});

describe('the portal address', () => {
  const portal = 'https://mychart.example.org/';
  const named = new Map<string, SourceLookup>([[A, { kind: 'named', name: 'Epic MyChart', portalUrl: portal }]]);

  it('a new Organization carries it as its url telecom', () => {
    expect(planSources([A], named, new Map())).toEqual([
      { kind: 'create', sourceId: A, name: 'Epic MyChart', portalUrl: portal },
    ]);
    expect(newOrganization(A, 'Epic MyChart', portal).telecom).toEqual([{ system: 'url', value: portal, use: 'work' }]);
  });

  it('an Organization with the name but not the address is updated; with both, left alone', () => {
    const without = org('o1', 'Epic MyChart', A);
    expect(planSources([A], named, organizationsBySource([without]))[0]?.kind).toBe('update');
    const withIt = { ...without, telecom: [{ system: 'url' as const, value: portal }] };
    expect(planSources([A], named, organizationsBySource([withIt]))[0]?.kind).toBe('unchanged');
    // No address from Medblocks: the Organization's own is never taken away.
    const nameOnly = new Map<string, SourceLookup>([[A, { kind: 'named', name: 'Epic MyChart' }]]);
    expect(planSources([A], nameOnly, organizationsBySource([withIt]))[0]?.kind).toBe('unchanged');
  });

  it('an update replaces the web address and keeps the phone numbers someone added', () => {
    const organization = {
      ...org('o1', 'Epic MyChart', A),
      telecom: [
        { system: 'phone' as const, value: '+1 555 0100' },
        { system: 'url' as const, value: 'https://old.example.org/' },
      ],
    };
    expect(withPortalUrl(organization, portal)).toEqual([
      { system: 'phone', value: '+1 555 0100' },
      { system: 'url', value: portal, use: 'work' },
    ]);
    expect(withPortalUrl(organization, undefined)).toBe(organization.telecom);
  });
});

describe('planSources', () => {
  const lookups = new Map<string, SourceLookup>([
    [A, { kind: 'named', name: 'Epic MyChart' }],
    [B, { kind: 'named', name: 'Cerner' }],
    [C, { kind: 'not-found' }],
  ]);

  it('creates what is missing, updates a changed name, leaves an equal name, reports unknown sources', () => {
    const existing = organizationsBySource([org('o1', 'Cerner (old)', B)]);
    const actions = planSources([A, B, C], lookups, existing);
    expect(actions).toEqual([
      { kind: 'create', sourceId: A, name: 'Epic MyChart' },
      { kind: 'update', sourceId: B, name: 'Cerner', organizationId: 'o1', previousName: 'Cerner (old)' },
      { kind: 'not-found', sourceId: C },
    ]);
    expect(countActions(actions)).toEqual({
      created: 1,
      updated: 1,
      unchanged: 0,
      notFound: 1,
      unnamed: 0,
      shared: 0,
      verifySources: 0,
    });
  });

  it('is idempotent: once applied, the same inputs plan nothing but unchanged', () => {
    const existing = organizationsBySource([org('o1', 'Epic MyChart', A), org('o2', 'Cerner', B)]);
    const actions = planSources([A, B], lookups, existing);
    expect(actions.map((a) => a.kind)).toEqual(['unchanged', 'unchanged']);
    const text = formatSources(actions, { dryRun: false, consents: 2 }).join('\n');
    expect(text).toContain('created 0, updated 0, unchanged 2, not found at Medblocks 0.');
    expect(text).toContain('No changes:');
  });

  it('updates a name that differs only in whitespace (the bots would show the normalised one anyway)', () => {
    const existing = organizationsBySource([org('o1', 'Epic  MyChart ', A)]);
    expect(planSources([A], lookups, existing)[0]?.kind).toBe('update');
  });

  it('names every Organization of a source; leaves one that carries two sources (no flip-flop)', () => {
    const existing = organizationsBySource([
      org('o1', 'Epic MyChart', A),
      org('o2', undefined, A),
      org('o3', 'X', A, B),
    ]);
    const actions = planSources([A, B], lookups, existing);
    expect(actions.map((a) => [a.kind, 'organizationId' in a ? a.organizationId : '-'])).toEqual([
      ['unchanged', 'o1'],
      ['update', 'o2'],
      ['shared', 'o3'],
      ['shared', 'o3'],
    ]);
    expect(formatSources(actions, { dryRun: false, consents: 1 }).at(-1)).toBe(
      'created 0, updated 1, unchanged 1, not found at Medblocks 0, left as is 2.'
    );
  });

  it('leaves the Organization of a source Medblocks does not know or does not name', () => {
    const existing = organizationsBySource([org('o1', 'Named by hand', C)]);
    const actions = planSources([C, A], new Map([[A, { kind: 'unnamed' }]]), existing);
    expect(actions).toEqual([
      { kind: 'not-found', sourceId: C },
      { kind: 'unnamed', sourceId: A },
    ]);
  });
});

describe('npm run verify’s made-up sources', () => {
  it('are skipped, not counted as unknown to Medblocks, and do not trigger the wrong-account hint', () => {
    const verifySource = 'fhirsrc_verifyA01kqtest';
    expect(isVerifySource(verifySource)).toBe(true);
    expect(isVerifySource(A)).toBe(false);
    expect(isVerifySource('fhirsrc_verify_something_else')).toBe(false);
    const actions = planSources(
      [verifySource, A],
      new Map<string, SourceLookup>([
        [verifySource, { kind: 'verify-source' }],
        [A, { kind: 'named', name: 'Epic MyChart' }],
      ]),
      new Map()
    );
    expect(actions).toEqual([
      { kind: 'verify-source', sourceId: verifySource },
      { kind: 'create', sourceId: A, name: 'Epic MyChart' },
    ]);
    const lines = formatSources(actions, { dryRun: false, consents: 2 });
    expect(lines.join('\n')).toMatch(new RegExp(`${verifySource} +npm run verify's test source, skipped +-`));
    expect(lines).toContain(
      "created 1, updated 0, unchanged 0, not found at Medblocks 0, verify's test sources skipped 1."
    );
    expect(lines.join('\n')).not.toContain('MEDBLOCKS_API_KEY');
  });
});

describe('what is written and printed', () => {
  it('a new Organization carries the identifier the bots search for; the conditional query matches it', () => {
    expect(newOrganization(A, 'Epic MyChart')).toEqual({
      resourceType: 'Organization',
      active: true,
      identifier: [{ system: SYSTEM, value: A }],
      name: 'Epic MyChart',
    });
    expect(decodeURIComponent(organizationQuery(A))).toBe(`identifier=${SYSTEM}|${A}`);
  });

  it('a dry run says so and uses the conditional mood; the table lists every source', () => {
    const actions = planSources([A, C], new Map([[A, { kind: 'named', name: 'Epic MyChart' }]]), new Map());
    const lines = formatSources(actions, { dryRun: true, consents: 3 });
    expect(lines[0]).toBe('2 EHR source(s) on 3 Consent(s).');
    expect(lines).toContain('Dry run: nothing was changed.');
    const text = lines.join('\n');
    expect(text).toMatch(new RegExp(`${A} +would create +\\(new\\) +Epic MyChart`));
    expect(text).toMatch(new RegExp(`${C} +not found at Medblocks +-`));
    expect(text).toContain('planned: created 1, updated 0, unchanged 0, not found at Medblocks 1.');
  });

  it('no sources: says there is nothing to name', () => {
    expect(formatSources([], { dryRun: false, consents: 0 })).toEqual([
      '0 EHR source(s) on 0 Consent(s).',
      'No Consent names an EHR source yet: nothing to name.',
    ]);
  });
});
