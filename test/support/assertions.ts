// Readable lookups and checks for bot tests: find resources by their business keys, and validate
// everything the bots wrote with Medplum's own validator.
import { validateResource } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Basic, Consent, Task } from '@medplum/fhirtypes';
import { expect } from 'vitest';
import { SYSTEM } from '../../src/runtime/fhir/systems';
import type { World } from '../../src/tools/harness/world';

export async function consentFor(world: World, connectionKey: string): Promise<WithId<Consent> | undefined> {
  const matches = (await world.consents()).filter((c) =>
    c.identifier?.some(
      (i) => (i.system === SYSTEM.connectionId || i.system === SYSTEM.connectionAttempt) && i.value === connectionKey
    )
  );
  expect(matches.length, `one Consent per connection key ${connectionKey}`).toBeLessThanOrEqual(1);
  return matches[0];
}

export async function taskFor(world: World, key: string): Promise<WithId<Task> | undefined> {
  const matches = (await world.tasks()).filter((t) =>
    t.identifier?.some((i) => i.system === SYSTEM.taskKey && i.value === key)
  );
  expect(matches.length, `one Task per key ${key}`).toBeLessThanOrEqual(1);
  return matches[0];
}

export async function markers(world: World): Promise<WithId<Basic>[]> {
  return world.all<Basic>('Basic');
}

/** Every resource in the store passes Medplum's validator, and no business key has two resources. */
export async function expectStoreValid(world: World): Promise<void> {
  for (const type of ['Patient', 'Consent', 'Task', 'Basic'] as const) {
    const resources = await world.all(type);
    const keys = new Set<string>();
    for (const resource of resources) {
      expect(validateResource(resource), `${type}/${resource.id} is valid`).toEqual([]);
      const identifiers = 'identifier' in resource && Array.isArray(resource.identifier) ? resource.identifier : [];
      for (const identifier of identifiers as { system?: string; value?: string }[]) {
        if (identifier.system?.startsWith('urn:medblocks:')) {
          const key = `${type}|${identifier.system}|${identifier.value ?? ''}`;
          expect(keys.has(key), `business key ${key} is unique`).toBe(false);
          keys.add(key);
        }
      }
    }
  }
}
