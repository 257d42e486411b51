// Shared by the property, fault and fuzz suites: a canonical view of the store that names every
// resource by its business key (so that a Consent pointing at the wrong Patient is a difference,
// which `World.snapshot()` cannot see since it replaces every reference by `Type/*`), a cheap
// "no business key twice" check to run after every delivery, and the bot that takes each event type.
export { botForEvent } from '../../src/runtime/registry';
import { SYSTEM } from '../../src/runtime/fhir/systems';
import type { World } from '../../src/tools/harness/world';
import { appliedMarks } from '../support/assertions';

export const STATE_TYPES = ['Patient', 'Consent', 'Task', 'Basic'] as const;

interface Identified {
  readonly resourceType: string;
  readonly id: string;
  readonly identifier?: readonly { system?: string; value?: string }[];
}

/** `Type[system|value]` from the first urn:medblocks identifier, or `Type[?]` for a resource without one. */
export function businessKey(resource: Identified): string {
  const identifier = (resource.identifier ?? []).find((i) => i.system?.startsWith('urn:medblocks:'));
  return identifier
    ? `${resource.resourceType}[${identifier.system ?? ''}|${identifier.value ?? ''}]`
    : `${resource.resourceType}[?]`;
}

async function everything(world: World): Promise<Identified[]> {
  const out: Identified[] = [];
  for (const type of STATE_TYPES) {
    out.push(...((await world.all(type)) as unknown as Identified[]));
  }
  return out;
}

/**
 * Every Patient, Consent, Task and marker, without server ids and metadata, with each reference
 * to a stored resource replaced by that resource's business key, sorted. Two stores are in the
 * same FHIR state exactly when their canonical states are equal. A marker's subject is left out,
 * as in `World.snapshot()`: it records what was known when that event was applied (audit data).
 * Markers are a set: the bots write them with plain creates (no SERIALIZABLE search, ledger TX-5),
 * so a delivery whose marker answer was lost and a retry leave two identical markers, which say
 * the same thing as one.
 */
export async function canonicalState(world: World): Promise<string[]> {
  const resources = await everything(world);
  const names = new Map(resources.map((r) => [`${r.resourceType}/${r.id}`, businessKey(r)]));
  return resources
    .map((resource) => {
      const { id: _id, meta: _meta, ...rest } = resource as Identified & { meta?: unknown; subject?: unknown };
      const body = resource.resourceType === 'Basic' ? { ...rest, subject: undefined } : rest;
      return JSON.stringify(sortKeys(body)).replace(
        /"reference":"((?:Patient|Consent|Task|Basic)\/[A-Za-z0-9\-.]+)"/g,
        (_match, ref: string) =>
          `"reference":${JSON.stringify(`→${names.get(ref) ?? `dangling ${ref.split('/')[0] ?? ''}`}`)}`
      );
    })
    .filter((text, index, all) => !text.includes('"resourceType":"Basic"') || all.indexOf(text) === index)
    .sort();
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([k, v]) => [k, sortKeys(v)])
    );
  }
  return value;
}

/** Business keys held by more than one resource (cheap: no validation), e.g. `Consent[urn:…|conn_1] ×2`. */
export async function duplicatedKeys(world: World): Promise<string[]> {
  const counts = new Map<string, number>();
  for (const resource of await everything(world)) {
    for (const identifier of resource.identifier ?? []) {
      // A marker may be written twice (a set, see canonicalState); every other key must be unique.
      if (identifier.system?.startsWith('urn:medblocks:') && identifier.system !== SYSTEM.eventId) {
        const key = `${resource.resourceType}[${identifier.system}|${identifier.value ?? ''}]`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
  }
  return [...counts].filter(([, n]) => n > 1).map(([key, n]) => `${key} ×${n}`);
}

/** Which events the store says were applied: markers, and records syncs' stamps on their Tasks. */
export async function markedEventIds(world: World): Promise<string[]> {
  return (await appliedMarks(world)).map((m) => m.eventId);
}
