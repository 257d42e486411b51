// One write judged twice: by Medplum's own evaluation (`satisfiedAccessPolicy` picks the grant,
// the write constraints run with %before/%after as the server's `Repository.isResourceWriteable`
// does) and through the emulator's access model. The abuse suites of every bot use both.
import { satisfiedAccessPolicy } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import type { AccessPolicy, Resource } from '@medplum/fhirtypes';
import { expect } from 'vitest';
import { satisfiesWriteConstraints, withAccessPolicy } from '../../src/tools/emulator/access-policy-repository';

/** Medplum's own decision for a write: the grant the new version satisfies, then its writeConstraints. */
export function medplumAllows(
  policy: AccessPolicy,
  interaction: 'create' | 'update',
  after: Resource,
  before?: Resource
) {
  const grant = satisfiedAccessPolicy(after, interaction, policy);
  if (interaction === 'update' && before && !satisfiedAccessPolicy(before, 'update', policy)) return false;
  return grant !== undefined && satisfiesWriteConstraints(grant, before, after);
}

/** The same write through the emulator's access model, on a store of its own. */
export async function emulatorAllows(policy: AccessPolicy, resource: Resource, existing?: Resource): Promise<boolean> {
  const base = new MemoryRepository();
  try {
    if (existing) {
      const stored = await base.createResource(existing);
      await withAccessPolicy(base, policy).updateResource({ ...resource, id: stored.id, meta: stored.meta });
    } else {
      await withAccessPolicy(base, policy).createResource(resource);
    }
    return true;
  } catch (err) {
    // An update of a resource outside the grant's criteria is not found at all (AC-2), as on the server.
    expect(String(err)).toMatch(existing ? /Forbidden|Not found/ : /Forbidden/);
    return false;
  }
}
