import { describe, expect, it } from 'vitest';
import { UNKNOWN_PATIENT } from '../src/runtime/fhir/consent';
import { connection, patientFlowCompleted, SAMPLE_SOURCE_A, tokenRefreshFailed } from '../src/tools/fixtures/events';
import { consentFor, expectStoreValid, markers, taskFor } from '../test/support/assertions';
import { World } from '../src/tools/harness/world';
import { describeQuarantine } from '../test/support/quarantine';

const CONN = 'conn_01J9YR9N3X4VZ6P2K5RH7M3LMP';
const flow = patientFlowCompleted(
  { id: 'pf_1', connections: [connection({ id: CONN, created_at: '2026-04-25T14:33:10.000Z' })] },
  { created_at: '2026-04-25T14:35:00.000Z' }
);
const refresh = tokenRefreshFailed({ id: CONN }, { created_at: '2026-05-20T03:12:45.000Z' });

function setup() {
  const world = new World();
  return {
    world,
    flowBot: world.bot('medblocks-patient-flow-completed'),
    bot: world.bot('medblocks-connection-token-refresh-failed'),
  };
}

describe('connection.token_refresh_failed after the flow reported the connection', () => {
  it('makes the Consent inactive, keeps its patient, and opens a reconnect Task for that patient', async () => {
    const { world, flowBot, bot } = setup();
    await flowBot.deliver(flow);
    const answer = await bot.deliver(refresh);
    expect(answer).toEqual({ status: 'processed', event: refresh.id, type: 'connection.token_refresh_failed' });

    const [patient] = await world.patients();
    const consent = await consentFor(world, CONN);
    expect(consent).toMatchObject({
      status: 'inactive',
      patient: { reference: `Patient/${patient?.id}` },
      provision: { period: { start: '2026-04-25T14:33:10.000Z', end: refresh.created_at } },
    });
    expect(await taskFor(world, `reconnect/${CONN}`)).toMatchObject({
      status: 'requested',
      intent: 'order',
      priority: 'routine',
      code: { coding: [{ system: 'urn:medblocks:code', code: 'reconnect-ehr' }] },
      for: { reference: `Patient/${patient?.id}` },
      focus: { reference: `Consent/${consent?.id}` },
      authoredOn: refresh.created_at,
      lastModified: refresh.created_at,
      businessStatus: { coding: [{ code: 'awaiting-patient' }] },
    });
    expect((await taskFor(world, `reconnect/${CONN}`))?.description).toBe(
      'Ask the patient to reconnect their EHR portal: its access expired.'
    );
    expect((await markers(world)).find((m) => m.identifier?.[0]?.value === refresh.id)?.subject).toEqual({
      reference: `Patient/${patient?.id}`,
    });
    await expectStoreValid(world);
  });

  it('uses 3 FHIR requests, and 1 for a duplicate', async () => {
    const { flowBot, bot } = setup();
    await flowBot.deliver(flow);
    await bot.deliver(refresh);
    expect(bot.lastRequestCount()).toBe(3);
    expect((await bot.deliver(refresh)).status).toBe('duplicate');
    expect(bot.lastRequestCount()).toBe(1);
  });
});

describe('connection.token_refresh_failed before (or without) the flow event', () => {
  it('records the connection as inactive with the source but no known patient, and a Task without a patient', async () => {
    const { world, bot } = setup();
    await bot.deliver(refresh);
    expect(await world.patients()).toEqual([]);
    const consent = await consentFor(world, CONN);
    expect(consent).toMatchObject({
      status: 'inactive',
      patient: UNKNOWN_PATIENT,
      provision: { actor: [{ reference: { identifier: { value: SAMPLE_SOURCE_A } } }] },
    });
    const task = await taskFor(world, `reconnect/${CONN}`);
    expect(task?.status).toBe('requested');
    expect(task?.for).toBeUndefined();
    expect((await markers(world))[0]?.subject).toBeUndefined();
    await expectStoreValid(world);
  });

  it('the late flow event fills in the patient without reactivating the connection', async () => {
    const { world, flowBot, bot } = setup();
    await bot.deliver(refresh);
    const answer = await flowBot.deliver(flow);
    expect(answer.status).toBe('stale');
    const [patient] = await world.patients();
    expect(await consentFor(world, CONN)).toMatchObject({
      status: 'inactive',
      patient: { reference: `Patient/${patient?.id}` },
      provision: { period: { end: refresh.created_at } },
    });
    expect(await taskFor(world, `reconnect/${CONN}`)).toMatchObject({
      status: 'requested',
      for: { reference: `Patient/${patient?.id}` },
    });
    await expectStoreValid(world);
  });

  it('ends in the same state as the in-order delivery', async () => {
    const inOrder = setup();
    await inOrder.flowBot.deliver(flow);
    await inOrder.bot.deliver(refresh);
    const reversed = setup();
    await reversed.bot.deliver(refresh);
    await reversed.flowBot.deliver(flow);
    expect(await reversed.world.snapshot()).toEqual(await inOrder.world.snapshot());
  });
});

describe('a refresh failure older than a reconnection', () => {
  const reconnect = patientFlowCompleted(
    { id: 'pf_2', connections: [connection({ id: 'conn_new', created_at: '2026-05-21T08:00:00.000Z' })] },
    { created_at: '2026-05-21T08:01:00.000Z' }
  );

  it('arriving last, it opens the reconnect Task already completed by the newer connection', async () => {
    const { world, flowBot, bot } = setup();
    await flowBot.deliver(flow);
    await flowBot.deliver(reconnect);
    await bot.deliver(refresh);
    const fresh = await consentFor(world, 'conn_new');
    expect(await taskFor(world, `reconnect/${CONN}`)).toMatchObject({
      status: 'completed',
      businessStatus: { coding: [{ code: 'reconnected' }] },
      output: [{ valueReference: { reference: `Consent/${fresh?.id}` } }],
    });
    expect((await consentFor(world, CONN))?.status).toBe('inactive');
  });

  it('ends in the same state whichever order the three events arrive in', async () => {
    const events = [
      ['flow', flow],
      ['flow', reconnect],
      ['refresh', refresh],
    ] as const;
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    const snapshots = [];
    for (const order of orders) {
      const { world, flowBot, bot } = setup();
      for (const index of order) {
        const [kind, event] = events[index] ?? events[0];
        await (kind === 'flow' ? flowBot : bot).deliver(event);
      }
      await expectStoreValid(world);
      snapshots.push(await world.snapshot());
    }
    for (const snapshot of snapshots.slice(1)) {
      expect(snapshot).toEqual(snapshots[0]);
    }
    expect(JSON.stringify(snapshots[0])).toContain('"reconnected"');
  });
});

describe('a refresh failure that carries a patient_id (an open point in Medblocks docs)', () => {
  it('resolves (or creates) the patient from it when no Consent exists yet', async () => {
    const { world, bot } = setup();
    await bot.deliver(tokenRefreshFailed({ id: CONN, patient_id: 'user_42' }));
    const [patient] = await world.patients();
    expect(patient?.identifier).toEqual([{ system: 'urn:medblocks:patient-id', value: 'user_42' }]);
    expect((await consentFor(world, CONN))?.patient).toEqual({ reference: `Patient/${patient?.id}` });
    expect((await taskFor(world, `reconnect/${CONN}`))?.for).toEqual({ reference: `Patient/${patient?.id}` });
    await expectStoreValid(world);
  });
});

describe('connection.token_refresh_failed at the edges (issue 13, issue 12 item 7)', () => {
  it('an unknown status still means the refresh failed: inactive Consent and a reconnect Task', async () => {
    const world = new World();
    const bot = world.bot('medblocks-connection-token-refresh-failed');
    const event = tokenRefreshFailed({ id: 'conn_unknown', status: 'revoked' }, { id: 'evt_01REVOKED' });
    expect((await bot.deliver(event)).status).toBe('processed');
    expect((await consentFor(world, 'conn_unknown'))?.status).toBe('inactive');
    expect((await taskFor(world, 'reconnect/conn_unknown'))?.status).toBe('requested');
    expect(bot.logs).toContain('medblocks evt=evt_01REVOKED note=unknown_connection_status status=revoked');
    await expectStoreValid(world);
  });

  it('names the EHR in the reconnect Task and the Consent actor when an Organization gives its name', async () => {
    const world = new World();
    await world.admin.createResource({
      resourceType: 'Organization',
      name: 'Epic MyChart',
      identifier: [{ system: 'urn:medblocks:fhir-source-id', value: SAMPLE_SOURCE_A }],
    });
    const bot = world.bot('medblocks-connection-token-refresh-failed');
    await bot.deliver(tokenRefreshFailed({ id: 'conn_named', connection_id: SAMPLE_SOURCE_A }));
    expect(bot.lastRequestCount()).toBe(3);
    const task = await taskFor(world, 'reconnect/conn_named');
    expect(task?.description).toBe('Ask the patient to reconnect their Epic MyChart portal: its access expired.');
    expect(task?.businessStatus?.coding?.[0]?.display).toBe('Waiting for the patient to reconnect');
    expect((await consentFor(world, 'conn_named'))?.provision?.actor?.[0]?.reference.display).toBe('Epic MyChart');
    await expectStoreValid(world);
  });
});

describeQuarantine({
  bot: 'medblocks-connection-token-refresh-failed',
  event: (patientId) => tokenRefreshFailed({ id: 'conn_q', patient_id: patientId }),
});
