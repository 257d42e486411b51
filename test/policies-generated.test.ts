// The AccessPolicy files and medplum.config.json's bot list are generated: what is checked in, and
// what provision installs, is exactly src/tools/policies/policies.ts's and the registry's output. A hand edit of a JSON file, or a change to the
// generator not followed by `npm run policies`, fails here.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SYSTEM } from '../src/runtime/fhir/systems';
import { ALL_BOTS } from '../src/runtime/registry';
import { policyFileText, writeBotConfig } from '../src/tools/cli/policies';
import { botIdFor } from '../src/tools/emulator/identity';
import { allPolicies, POLICY_SHAPES, webhookPolicy } from '../src/tools/policies/policies';

const ROOT = resolve(import.meta.dirname, '..');

describe('access-policies/*.json', () => {
  it.each(allPolicies().map((p) => [p.file, p] as const))(
    '%s is the generator’s output, byte for byte',
    async (file, { policy }) => {
      expect(readFileSync(join(ROOT, file), 'utf8')).toBe(await policyFileText(ROOT, file, policy));
    }
  );

  it('there is one policy per registered bot, and no other', () => {
    expect(
      allPolicies()
        .map((p) => p.file)
        .sort()
    ).toEqual(ALL_BOTS.map((b) => b.policyFile).sort());
  });

  it('each webhook bot gets only the grants its shape names: no Consent grant for a records-sync bot', () => {
    for (const name of Object.keys(POLICY_SHAPES) as (keyof typeof POLICY_SHAPES)[]) {
      const types = (webhookPolicy(name).resource ?? []).map((g) => g.resourceType);
      expect(types.includes('Consent'), name).toBe(POLICY_SHAPES[name].consents);
      // Its Tasks (when its shape names a kind), its dead-letters.
      expect(types.filter((t) => t === 'Task')).toHaveLength(POLICY_SHAPES[name].taskCodes.length > 0 ? 2 : 1);
    }
  });

  it.each([
    ['Task', 'code', 5],
    ['Consent', 'category', 2],
  ] as const)(
    'no %s grant confines by identifier: the bots create them conditionally on their key, and a criterion on that index makes concurrent creates conflict (ledger TX-10; without one, nothing of ours conflicted with `fastupdate` off: TX-11); they confine by our own %s',
    (resourceType, confinedBy, atLeast) => {
      const criteria = allPolicies().flatMap(({ file, policy }) =>
        (policy.resource ?? []).flatMap((g) =>
          g.resourceType === resourceType && g.criteria ? [{ file, criteria: g.criteria }] : []
        )
      );
      expect(criteria.length).toBeGreaterThan(atLeast);
      for (const { file, criteria: query } of criteria) {
        const params = [...new URLSearchParams(query.split('?')[1] ?? '')];
        expect({
          file,
          identifier: params.some(([name]) => name.startsWith('identifier')),
          ours: params.some(([name, value]) => name === confinedBy && value.includes(SYSTEM.code)),
        }).toEqual({ file, identifier: false, ours: true });
      }
    }
  );
});

describe('medplum.config.json', () => {
  it('is written by `npm run policies` with every registry bot: a new bot gets its emulator id, ids and other bots kept', () => {
    const root = mkdtempSync(join(tmpdir(), 'bot-config-'));
    try {
      const [first, ...rest] = ALL_BOTS;
      const foreign = { name: 'someone-elses-bot', id: 'b1', source: 'x.ts', dist: 'x.js' };
      writeFileSync(
        join(root, 'medplum.config.json'),
        JSON.stringify({ bots: [foreign, { ...first, id: 'server-id' }] }),
        'utf8'
      );
      expect(writeBotConfig(root)).toEqual(['medplum.config.json']);
      const config = JSON.parse(readFileSync(join(root, 'medplum.config.json'), 'utf8')) as {
        bots: { name: string; id: string }[];
      };
      expect(config.bots.map((b) => [b.name, b.id])).toEqual([
        [foreign.name, 'b1'],
        [first?.name, 'server-id'],
        ...rest.map((b) => [b.name, botIdFor(b.name)]),
      ]);
      expect(writeBotConfig(root)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('as checked in, is what `npm run policies` leaves it', () => {
    const root = mkdtempSync(join(tmpdir(), 'bot-config-'));
    try {
      copyFileSync(join(ROOT, 'medplum.config.json'), join(root, 'medplum.config.json'));
      expect(writeBotConfig(root)).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
