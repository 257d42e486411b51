// The AccessPolicy files are generated (issue 21): what is checked in, and what provision installs,
// is exactly src/tools/policies/policies.ts's output. A hand edit of a JSON file, or a change to the
// generator not followed by `npm run policies`, fails here.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_BOTS } from '../src/runtime/registry';
import { policyFileText } from '../src/tools/cli/policies';
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
});
