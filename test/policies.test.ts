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
import {
  connection,
  failedAttempt,
  patientFlowCompleted,
  recordsSyncCompleted,
  recordsSyncFailed,
  SAMPLE_SOURCE_A,
  tokenRefreshFailed,
} from '../src/tools/fixtures/events';
import { loadPolicy, World } from '../src/tools/harness/world';

/** Scenarios that together exercise each bot's behaviour: new, duplicate, updates, gap-filling. */
async function exerciseAll(world: World): Promise<void> {
  const flowBot = world.bot('medblocks-patient-flow-completed');
  const refreshBot = world.bot('medblocks-connection-token-refresh-failed');
  const syncOk = world.bot('medblocks-records-sync-completed');
  const syncFailed = world.bot('medblocks-records-sync-failed');
  // The EHR's name, as `npm run sources` writes it: every bot reads it for its texts.
  await world.admin.createResource({
    resourceType: 'Organization',
    name: 'Epic MyChart',
    identifier: [{ system: SYSTEM.fhirSourceId, value: SAMPLE_SOURCE_A }],
  });

  const refreshFirst = tokenRefreshFailed({ id: 'conn_early' }, { created_at: '2026-04-24T00:00:00.000Z' });
  await refreshBot.deliver(refreshFirst);
  await refreshBot.deliver(refreshFirst);
  const flow = patientFlowCompleted(
    {
      id: 'pf_1',
      connections: [
        connection({ id: 'conn_early' }),
        connection({ id: 'conn_rf', status: 'refresh_failed' }),
        failedAttempt(),
      ],
    },
    { created_at: '2026-04-25T00:00:00.000Z' }
  );
  await flowBot.deliver(flow);
  await flowBot.deliver(flow);
  await flowBot.deliver(
    patientFlowCompleted({ id: 'pf_2', connections: [failedAttempt()] }, { created_at: '2026-04-26T00:00:00.000Z' })
  );
  await flowBot.deliver(
    patientFlowCompleted(
      { id: 'pf_3', connections: [connection({ id: 'conn_3' })] },
      { created_at: '2026-04-27T00:00:00.000Z' }
    )
  );
  await refreshBot.deliver(tokenRefreshFailed({ id: 'conn_3' }, { created_at: '2026-04-28T00:00:00.000Z' }));
  await refreshBot.deliver(tokenRefreshFailed({ id: 'conn_3' }, { created_at: '2026-04-29T00:00:00.000Z' }));
  await refreshBot.deliver(tokenRefreshFailed({ id: 'conn_new_patient', patient_id: 'user_new' }));
  const firstSync = recordsSyncCompleted({}, { created_at: '2026-04-25T00:00:00.000Z' });
  const firstFailure = recordsSyncFailed({}, { created_at: '2026-04-26T00:00:00.000Z' });
  for (const [bot, event] of [
    [syncOk, firstSync],
    [syncOk, firstSync],
    [syncFailed, firstFailure],
    [syncFailed, firstFailure],
    [syncOk, recordsSyncCompleted({}, { created_at: '2026-04-27T00:00:00.000Z' })],
    [syncFailed, recordsSyncFailed({}, { created_at: '2026-04-28T00:00:00.000Z' })],
    [syncFailed, recordsSyncFailed({ patient_id: 'user_other' }, { created_at: '2026-04-28T00:00:00.000Z' })],
    [syncOk, recordsSyncCompleted({ patient_id: 'user_third' }, { created_at: '2026-04-28T00:00:00.000Z' })],
  ] as const) {
    await bot.deliver(event);
  }

  // Quarantine and redelivery: an unknown patient while creation is off is quarantined (dead-letter
  // created), quarantined again (found and updated), then applied once creation is on (resolved).
  const creationOff = { secrets: { MEDBLOCKS_CREATE_MISSING_PATIENTS: 'false' } };
  const poisoned = [
    [flowBot, patientFlowCompleted({ id: 'pf_q', patient_id: 'user_q1', connections: [failedAttempt()] })],
    [refreshBot, tokenRefreshFailed({ id: 'conn_q', patient_id: 'user_q2' })],
    [syncOk, recordsSyncCompleted({ patient_id: 'user_q3' })],
    [syncFailed, recordsSyncFailed({ patient_id: 'user_q4' })],
  ] as const;
  for (const [bot, event] of poisoned) {
    expect((await bot.deliver(event, creationOff)).status).toBe('quarantined');
    expect((await bot.deliver(event, creationOff)).status).toBe('quarantined');
    expect((await bot.deliver(event)).status).toBe('processed');
  }
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
