// Least privilege, shown rather than claimed: every bot test runs under the bot's own policy
// (src/tools/harness/world.ts); here we show that enforcement bites, and that every grant of every
// policy is used by some scenario — no unused grant, no wildcard.
import type { AccessPolicyInteraction } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import { describe, expect, it } from 'vitest';
import { WEBHOOK_BOTS } from '../src/runtime/registry';
import { withAccessPolicy } from '../src/tools/emulator/access-policy-repository';
import { encodeConsent } from '../src/runtime/fhir/consent';
import { SYSTEM } from '../src/runtime/fhir/systems';
import { EVENT_DEFINITIONS, EVENT_SAMPLES } from '../src/runtime/events';
import type { SampleShape } from '../src/runtime/events/samples';
import { failedAttempt, patientFlowCompleted, SAMPLE_SOURCE_A } from '../src/tools/fixtures/events';
import { loadPolicy, World } from '../src/tools/harness/world';

/**
 * Every event type's samples (its module's, as the sender sends them), delivered to its bot as a new
 * patient, a duplicate and a later update, then each sample for an unknown patient while creation
 * is off — quarantined (dead-letter created), quarantined again (found and updated), then applied
 * once creation is on (resolved). Derived from the event modules, so a new event type is exercised
 * without a line here; its bot's unused grants, if any, are named by the test below.
 */
async function exerciseAll(world: World): Promise<void> {
  // The EHR's name, as `npm run sources` writes it: every bot reads it for its texts.
  await world.admin.createResource({
    resourceType: 'Organization',
    name: 'Epic MyChart',
    identifier: [{ system: SYSTEM.fhirSourceId, value: SAMPLE_SOURCE_A }],
  });
  let minute = 0;
  const shape = (patientId: string, connectionId = 'conn_policies'): SampleShape => ({
    at: new Date(Date.parse('2026-04-25T00:00:00.000Z') + ++minute * 60_000).toISOString(),
    patientId,
    connectionId,
    sourceId: SAMPLE_SOURCE_A,
  });
  const samples = EVENT_DEFINITIONS.flatMap((definition) =>
    definition.names.flatMap((type) =>
      Object.entries(EVENT_SAMPLES[type]).map(([variant, build]) => ({ bot: definition.bot, variant, build }))
    )
  );
  for (const { bot, build } of samples) {
    const first = build(shape('user_policies'));
    await world.bot(bot).deliver(first);
    await world.bot(bot).deliver(first);
    await world.bot(bot).deliver(build(shape('user_policies')));
  }
  const creationOff = { secrets: { MEDBLOCKS_CREATE_MISSING_PATIENTS: 'false' } };
  const quarantinedBy = new Set<string>();
  for (const { bot, variant, build } of samples) {
    // A sample that names no patient (a refresh failure without patient_id) is not quarantined.
    const event = build(shape(`user_q_${bot}_${variant}`, `conn_q_${bot}_${variant}`));
    if ((await world.bot(bot).deliver(event, creationOff)).status !== 'quarantined') continue;
    quarantinedBy.add(bot);
    expect((await world.bot(bot).deliver(event, creationOff)).status).toBe('quarantined');
    expect((await world.bot(bot).deliver(event)).status).toBe('processed');
  }
  expect([...quarantinedBy].sort()).toEqual(WEBHOOK_BOTS.map((b) => b.name).sort());
}

describe('access policies', () => {
  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s: no wildcard, every grant confined or read-only, each interaction valid',
    (name) => {
      const policy = loadPolicy(name);
      expect(policy.resourceType).toBe('AccessPolicy');
      for (const grant of policy.resource ?? []) {
        expect(grant.resourceType).not.toBe('*');
        expect(grant.interaction?.length).toBeGreaterThan(0);
        const writes = grant.interaction?.some((i) => ['create', 'update', 'delete'].includes(i));
        if (writes) {
          expect(grant.criteria, `${grant.resourceType} writes are confined by criteria`).toMatch(
            /^\w+\?.*urn:medblocks:/
          );
        }
        if (grant.resourceType === 'Consent' || grant.resourceType === 'Task' || grant.resourceType === 'Basic') {
          expect(grant.criteria).toContain('urn:medblocks:');
        }
      }
    }
  );

  it('every grant of every policy is used by some scenario', async () => {
    const world = new World();
    await exerciseAll(world);
    for (const { name } of WEBHOOK_BOTS) {
      const policy = loadPolicy(name);
      const used = new Set(
        world.decisions
          .filter((d) => d.bot === name && d.grantIndex !== undefined)
          .map((d) => `${d.grantIndex}:${d.interaction}`)
      );
      const granted = (policy.resource ?? []).flatMap((grant, index) =>
        (grant.interaction ?? []).map((i) => `${index}:${i}`)
      );
      expect({ bot: name, unused: granted.filter((g) => !used.has(g)) }).toEqual({ bot: name, unused: [] });
      expect(world.decisions.filter((d) => d.bot === name && d.grantIndex === undefined)).toEqual([]);
    }
  });

  it('enforcement bites: a records-sync bot may not write a Consent, nor a Task of another kind', async () => {
    const repo = withAccessPolicy(new MemoryRepository(), loadPolicy('medblocks-records-sync-completed'));
    const consent = encodeConsent({
      key: { system: SYSTEM.connectionId, value: 'conn_x' },
      sourceId: 'fhirsrc_x',
      patient: undefined,
      status: 'active',
      connectionCreatedAt: '2026-04-25T00:00:00.000Z',
      periodEnd: undefined,
      failureCodes: [],
      sourceName: undefined,
      lastEvent: { at: '2026-04-25T00:00:00.000Z', eventId: 'evt_1' },
      lastActiveEvent: undefined,
    });
    await expect(repo.createResource(consent)).rejects.toThrow(/Forbidden/);
    await expect(
      repo.createResource({
        resourceType: 'Task',
        status: 'requested',
        intent: 'order',
        identifier: [{ system: SYSTEM.taskKey, value: 'reconnect/conn_x' }],
        code: { coding: [{ system: SYSTEM.code, code: 'reconnect-ehr' }] },
      })
    ).rejects.toThrow(/Forbidden/);
  });

  it('enforcement bites: no bot may create a Patient without the Medblocks identifier, or change one', async () => {
    const base = new MemoryRepository();
    const existing = await base.createResource({ resourceType: 'Patient', name: [{ family: 'Customer' }] });
    for (const { name } of WEBHOOK_BOTS) {
      const repo = withAccessPolicy(base, loadPolicy(name));
      await expect(repo.createResource({ resourceType: 'Patient', name: [{ family: 'X' }] })).rejects.toThrow(
        /Forbidden/
      );
      await expect(repo.updateResource({ ...existing, name: [{ family: 'Changed' }] })).rejects.toThrow(/Forbidden/);
    }
  });

  it('a bot given a narrower policy is denied and writes nothing', async () => {
    const world = new World();
    const policy = loadPolicy('medblocks-patient-flow-completed');
    const narrower = { ...policy, resource: (policy.resource ?? []).filter((r) => r.resourceType !== 'Task') };
    const bot = world.bot('medblocks-patient-flow-completed', { policy: narrower });
    await expect(bot.deliver(patientFlowCompleted({ connections: [failedAttempt()] }))).rejects.toThrow(
      /access_denied/
    );
    expect(await world.all('Basic')).toEqual([]);
  });

  it('search results outside a policy’s criteria are filtered, as on the server', async () => {
    const base = new MemoryRepository();
    await base.createResource({
      resourceType: 'Task',
      status: 'requested',
      intent: 'order',
      code: { text: 'customer task' },
    });
    const repo = withAccessPolicy(base, loadPolicy('medblocks-records-sync-failed'));
    expect((await repo.search({ resourceType: 'Task' })).entry).toBeUndefined();
  });

  it('lists only interactions Medplum knows', () => {
    const known: AccessPolicyInteraction[] = ['read', 'vread', 'update', 'delete', 'history', 'create', 'search'];
    for (const { name } of WEBHOOK_BOTS) {
      for (const grant of loadPolicy(name).resource ?? []) {
        for (const interaction of grant.interaction ?? []) {
          expect(known).toContain(interaction);
        }
      }
    }
  });
});
