// Readable lookups and checks for bot tests: find resources by their business keys, and validate
// everything the bots wrote with Medplum's own validator.
import { validateResource } from '@medplum/core';
import type { WithId } from '@medplum/core';
import type { Basic, Consent, Task } from '@medplum/fhirtypes';
import { expect } from 'vitest';
import { readStamp } from '../../src/runtime/fhir/stamp';
import { CODE, EXTENSION, SYSTEM } from '../../src/runtime/fhir/systems';
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

/** What says that an event was applied: its Basic marker, or the stamp its records sync left on the sync Task. */
export interface AppliedMark {
  readonly eventId: string;
  /** The marker's subject, or the sync Task's patient. */
  readonly subject: string | undefined;
}

/**
 * The events the store says were applied, as each bot marks them: a Basic per event, except for the
 * records-sync bots, whose marker is the sync Task's `last-applied-event` (src/runtime/handlers/records-sync.ts).
 * Only the current versions: a sync Task shows the newest sync applied to it.
 */
export async function appliedMarks(world: World): Promise<AppliedMark[]> {
  const basics = (await markers(world)).map((m) => ({
    eventId: m.identifier?.find((i) => i.system === SYSTEM.eventId)?.value ?? '',
    subject: m.subject?.reference,
  }));
  const stamps = (await world.tasks()).flatMap((task) => {
    const isSync = task.code?.coding?.some((c) => c.system === SYSTEM.code && c.code === CODE.recordsSync);
    const stamp = isSync ? readStamp(task, EXTENSION.lastEvent) : undefined;
    return stamp ? [{ eventId: stamp.eventId, subject: task.for?.reference }] : [];
  });
  return [...basics, ...stamps];
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
