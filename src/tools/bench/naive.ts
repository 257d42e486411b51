// The comparator for the benchmark, never shipped in bots/: the per-resource pattern of Medplum's
// example webhook bots. For every resource the event implies — the same resources our planner
// writes, built by the same pure code — it sends one search by identifier, one
// createResourceIfNoneExist, and one update: three round trips per resource, and no dedupe marker,
// so a duplicate costs as much as a new delivery.
import { randomUUID } from 'node:crypto';
import type { MedplumClient } from '@medplum/core';
import type { AccessPolicy, Resource } from '@medplum/fhirtypes';
import type { BotSettings } from '../../runtime/settings';
import type { DeliveryState, EventHandler } from '../../runtime/handlers/plan';
import type { MedblocksEvent } from '../../runtime/events';

/** The per-resource pattern needs search, create and update on everything it touches (no policy criteria). */
export const PER_RESOURCE_POLICY: AccessPolicy = {
  resourceType: 'AccessPolicy',
  resource: ['Patient', 'Consent', 'Task', 'Basic'].map((resourceType) => ({ resourceType })),
};

const EMPTY_STATE: DeliveryState = {
  marker: undefined,
  patientByIdentifier: undefined,
  patientById: undefined,
  consents: [],
  tasks: [],
};

/** The resources the event implies, in dependency order (Patient, Consents, Tasks), with `urn:uuid:` placeholders. */
export function impliedResources<E extends MedblocksEvent>(
  event: E,
  handler: EventHandler<E>,
  settings: BotSettings
): { fullUrl: string | undefined; resource: Resource; identifierQuery: string }[] {
  const plan = handler.plan(event, EMPTY_STATE, {
    stamp: { at: event.created_at, eventId: event.id },
    settings,
    newUuid: randomUUID,
    appliedAt: event.created_at,
  });
  return plan.writes.flatMap((write) =>
    write.kind === 'create'
      ? [{ fullUrl: write.fullUrl, resource: write.resource, identifierQuery: write.ifNoneExist }]
      : []
  );
}

/** Applies the event resource by resource; returns how many FHIR requests it made. */
export async function naiveApply<E extends MedblocksEvent>(
  medplum: MedplumClient,
  event: E,
  handler: EventHandler<E>,
  settings: BotSettings
): Promise<number> {
  const ids = new Map<string, string>();
  let requests = 0;
  for (const item of impliedResources(event, handler, settings)) {
    // Point references at what earlier steps created, as such bots do with the ids they get back.
    let text = JSON.stringify(item.resource);
    for (const [fullUrl, reference] of ids) {
      text = text.split(fullUrl).join(reference);
    }
    const resource = JSON.parse(text) as Resource;
    requests++;
    await medplum.searchOne(resource.resourceType, item.identifierQuery);
    requests++;
    const stored = await medplum.createResourceIfNoneExist(resource, item.identifierQuery);
    requests++;
    await medplum.updateResource({ ...resource, id: stored.id });
    if (item.fullUrl && stored.id) {
      ids.set(item.fullUrl, `${resource.resourceType}/${stored.id}`);
    }
  }
  return requests;
}
