// Test what ships: the bundles in dist/, started as Medplum's vmcontext starts them —
// the emulator's sandbox, whose console is an object with methods that read `this` like the
// server's `util/console.ts`, and no options of ours (no injected log, clock or sleep). Every
// behaviour that depends on how a bot is started is pinned here against the built bundle: the
// fast World tests inject a log sink and so cannot see a bundle that calls a detached
// `console.log`, which answered every delivery carrying an unknown connection status 400 and
// got the endpoint disabled.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AuditEvent, Consent, Task } from '@medplum/fhirtypes';
import { botIdFor } from '../../src/tools/emulator/identity';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import {
  connection,
  patientFlowCompleted,
  recordsSyncCompleted,
  tokenRefreshFailed,
} from '../../src/tools/fixtures/events';
import { loadPolicy } from '../../src/tools/harness/world';
import type { PatientFlowConnection } from '../../src/runtime/events';
import { readSettings } from '../../src/tools/provision/env';
import { connectMedplum } from '../../src/tools/provision/medplum';
import { probeVmContext, VM_CONTEXT_DISABLED } from '../../src/tools/provision/runtime-probe';
import { buildIntoTempRoot, sendSigned } from './support';
import type { BuiltRoot } from './support';

const FLOW_BOT = 'medblocks-patient-flow-completed';
const REFRESH_BOT = 'medblocks-connection-token-refresh-failed';

let built: BuiltRoot;
let emulator: RunningEmulator;

beforeAll(async () => {
  built = await buildIntoTempRoot();
  emulator = await startEmulator({ root: built.root });
}, 120_000);

afterAll(async () => {
  await emulator.close();
  built.cleanup();
});

async function lastAuditOf(botName: string): Promise<AuditEvent | undefined> {
  return (await emulator.store.all<AuditEvent>('AuditEvent', `entity=Bot/${botIdFor(botName)}`)).at(-1);
}

/** A status Medblocks may add after this package was written: typed as the event allows any string. */
function withStatus(status: string): PatientFlowConnection {
  return connection({ status });
}

describe('the shipped flow bundle, in the vmcontext sandbox', () => {
  // Each of these answered `400 … internal error` from the bundle before the fix.
  for (const status of ['revoked', 'pending', 'Active', '', 'a status with spaces']) {
    test(`a connection with status ${JSON.stringify(status)} is applied: 200 processed, the note logged by name`, async () => {
      const event = patientFlowCompleted({ connections: [withStatus(status)] });
      const answer = await sendSigned(emulator.bot(FLOW_BOT), event);
      expect(answer.status, answer.text).toBe(200);
      expect(JSON.parse(answer.text)).toMatchObject({ status: 'processed', event: event.id });
      const audit = await lastAuditOf(FLOW_BOT);
      expect(audit?.outcome).toBe('0');
      expect(audit?.outcomeDesc).toContain(`medblocks evt=${event.id} note=unknown_connection_status`);
      expect(audit?.outcomeDesc).toContain('outcome=processed');
    });
  }

  test('a patient_session.completed with an unknown status is applied as the mapping says: that connection changes nothing', async () => {
    const event = patientFlowCompleted({ connections: [withStatus('revoked')] }, { type: 'patient_session.completed' });
    const answer = await sendSigned(emulator.bot(FLOW_BOT), event);
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ status: 'processed', type: 'patient_session.completed' });
    const id = event.data.object.connections[0]?.id ?? '';
    const consents = (await emulator.store.all<Consent>('Consent')).filter((c) =>
      c.identifier?.some((i) => i.system === 'urn:medblocks:connection-id' && i.value === id)
    );
    expect(consents).toHaveLength(0);
  });
});

describe('the shipped flow bundle under the shipped policy: Consents confined by our own category (ledger TX-10)', () => {
  test('each Consent is written with the category, and a newer flow finds it again: one Consent per connection', async () => {
    const first = patientFlowCompleted(
      { connections: [connection({ id: 'conn_category' })] },
      { created_at: '2026-11-01T10:00:00.000Z' }
    );
    const later = patientFlowCompleted(
      { connections: [connection({ id: 'conn_category' })] },
      { created_at: '2026-11-02T10:00:00.000Z' }
    );
    for (const event of [first, later]) {
      const answer = await sendSigned(emulator.bot(FLOW_BOT), event);
      expect(JSON.parse(answer.text)).toMatchObject({ status: 'processed', event: event.id });
    }
    const consents = (await emulator.store.all<Consent>('Consent')).filter((c) =>
      c.identifier?.some((i) => i.system === 'urn:medblocks:connection-id' && i.value === 'conn_category')
    );
    expect(consents).toHaveLength(1);
    expect(consents[0]?.category.flatMap((c) => c.coding?.map((k) => `${k.system ?? ''}|${k.code ?? ''}`))).toContain(
      'urn:medblocks:code|ehr-connection'
    );
    expect(JSON.stringify(consents[0]?.extension)).toContain(later.id);
  });
});

describe('the shipped token-refresh bundle, in the vmcontext sandbox', () => {
  test('a connection.token_refresh_failed with status revoked is applied: 200 processed', async () => {
    const event = tokenRefreshFailed({ id: connection().id ?? 'conn_x', status: 'revoked' });
    const answer = await sendSigned(emulator.bot(REFRESH_BOT), event);
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ status: 'processed', event: event.id });
    expect((await lastAuditOf(REFRESH_BOT))?.outcomeDesc).toContain('note=unknown_connection_status status=revoked');
  });
});

describe('a server with vmContextBotsEnabled off (WH-6)', () => {
  test('accepts the bots but fails every run before loading them, and provision’s probe reads that from the AuditEvents', async () => {
    const off = await startEmulator({ root: built.root, vmContextBotsEnabled: false });
    try {
      const answer = await sendSigned(off.bot(FLOW_BOT), patientFlowCompleted());
      expect(answer.status).toBe(400);
      expect(answer.text).toContain(VM_CONTEXT_DISABLED);

      const { medplum } = await connectMedplum(
        readSettings(
          {
            MEDPLUM_BASE_URL: `${off.url}/`,
            MEDPLUM_CLIENT_ID: off.adminClient.clientId,
            MEDPLUM_CLIENT_SECRET: off.adminClient.clientSecret,
          },
          built.root
        )
      );
      const probe = await probeVmContext(medplum, [
        { name: FLOW_BOT, id: botIdFor(FLOW_BOT) },
        { name: REFRESH_BOT, id: botIdFor(REFRESH_BOT) },
      ]);
      expect(probe.refused.map((r) => r.name)).toEqual([FLOW_BOT]);
      expect(probe.unknown).toEqual([REFRESH_BOT]);
      expect(probe.ran).toEqual([]);
    } finally {
      await off.close();
    }
  });

  test('on a server with it on, a bot that has run is seen to have run', async () => {
    await sendSigned(emulator.bot(REFRESH_BOT), tokenRefreshFailed({ id: 'conn_probe', status: 'error' }));
    const { medplum } = await connectMedplum(
      readSettings(
        {
          MEDPLUM_BASE_URL: `${emulator.url}/`,
          MEDPLUM_CLIENT_ID: emulator.adminClient.clientId,
          MEDPLUM_CLIENT_SECRET: emulator.adminClient.clientSecret,
        },
        built.root
      )
    );
    expect(await probeVmContext(medplum, [{ name: REFRESH_BOT, id: botIdFor(REFRESH_BOT) }])).toEqual({
      refused: [],
      ran: [REFRESH_BOT],
      unknown: [],
    });
  });
});

describe('escalation in the shipped bundle (its own clock, no options of ours)', () => {
  const SYNC_BOT = 'medblocks-records-sync-completed';

  test('a verified event that keeps failing is answered non-2xx while retries can help, and quarantined after 24 h', async () => {
    // A missing grant (the records-sync Task one): every write of the event fails access_denied.
    const policy = loadPolicy(SYNC_BOT);
    const narrowed = {
      ...policy,
      resource: policy.resource?.filter((g) => !(g.resourceType === 'Task' && g.criteria?.includes('|records-sync'))),
    };
    const broken = await startEmulator({ root: built.root, policies: { [SYNC_BOT]: narrowed } });
    try {
      const fresh = recordsSyncCompleted({}, { created_at: new Date().toISOString() });
      const early = await sendSigned(broken.bot(SYNC_BOT), fresh);
      expect(early.status).toBe(400);
      expect(early.text).toContain('nothing was marked applied');

      const dayOld = recordsSyncCompleted({}, { created_at: new Date(Date.now() - 25 * 3600_000).toISOString() });
      const late = await sendSigned(broken.bot(SYNC_BOT), dayOld);
      expect(late.status, late.text).toBe(200);
      expect(JSON.parse(late.text)).toMatchObject({ status: 'quarantined', reason: 'retries_exhausted' });
      const deadLetters = await broken.store.all<Task>('Task', `identifier=urn:medblocks:dead-letter|${dayOld.id}`);
      expect(deadLetters.map((t) => [t.status, t.groupIdentifier?.value])).toEqual([['failed', SYNC_BOT]]);
    } finally {
      await broken.close();
    }
  });
});

describe('the envelope, in the shipped bundle', () => {
  test('a delivery that says resource_type "event" (the API-wide convention) instead of object is applied', async () => {
    const { object: _object, ...rest } = recordsSyncCompleted({ patient_id: 'user_envelope' });
    const answer = await sendSigned(
      emulator.bot('medblocks-records-sync-completed'),
      JSON.stringify({ ...rest, resource_type: 'event' })
    );
    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ status: 'processed', event: rest.id });
  });
});
