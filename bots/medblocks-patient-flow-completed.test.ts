import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EXTENSION } from '../src/runtime/fhir/systems';
import {
  connection,
  failedAttempt,
  patientFlowCompleted,
  SAMPLE_SOURCE_A,
  SAMPLE_SOURCE_B,
} from '../src/tools/fixtures/events';
import { consentFor, expectStoreValid, markers, taskFor } from '../test/support/assertions';
import { World } from '../src/tools/harness/world';
import { describeQuarantine } from '../test/support/quarantine';

const BOT = 'medblocks-patient-flow-completed';

function setup(secrets: Record<string, string> = {}) {
  const world = new World({ secrets });
  return { world, bot: world.bot(BOT) };
}

describe('patient_flow.completed: a patient connects two EHRs and one attempt fails', () => {
  const active = connection({ id: 'conn_01J9YR9N3X4VZ6P2K5RH7M3LMP' });
  const failed = failedAttempt();
  const event = patientFlowCompleted({ id: 'pf_flow1', connections: [active, failed] });

  it('answers processed with a tiny PHI-free body and logs one summary line', async () => {
    const { bot } = setup();
    const answer = await bot.deliver(event);
    expect(answer).toEqual({ status: 'processed', event: event.id, type: 'patient_flow.completed' });
    expect(bot.logs).toEqual([
      `medblocks evt=${event.id} type=patient_flow.completed outcome=processed fhir_requests=3 ms=0`,
    ]);
    expect(JSON.stringify(answer) + bot.logs.join('')).not.toContain('user_42');
  });

  it('creates the Patient with only the Medblocks identifier', async () => {
    const { world, bot } = setup();
    await bot.deliver(event);
    const patients = await world.patients();
    expect(patients).toHaveLength(1);
    expect(patients[0]?.identifier).toEqual([{ system: 'urn:medblocks:patient-id', value: 'user_42' }]);
    expect(patients[0]?.name).toBeUndefined();
    expect(patients[0]?.birthDate).toBeUndefined();
  });

  it('writes an active Consent for the connection, linked to the patient', async () => {
    const { world, bot } = setup();
    await bot.deliver(event);
    const [patient] = await world.patients();
    const consent = await consentFor(world, active.id ?? '');
    expect(consent).toMatchObject({
      status: 'active',
      patient: { reference: `Patient/${patient?.id}` },
      dateTime: active.created_at,
      provision: {
        type: 'permit',
        period: { start: active.created_at },
        actor: [{ reference: { identifier: { system: 'urn:medblocks:fhir-source-id', value: SAMPLE_SOURCE_A } } }],
      },
    });
    expect(consent?.provision?.period?.end).toBeUndefined();
  });

  it('writes a rejected Consent for the failed attempt, keyed by flow, source and attempt time, with its failure code', async () => {
    const { world, bot } = setup();
    await bot.deliver(event);
    const consent = await consentFor(world, `pf_flow1/${SAMPLE_SOURCE_B}/${failed.created_at}`);
    expect(consent).toMatchObject({
      status: 'rejected',
      identifier: [{ system: 'urn:medblocks:connection-attempt' }],
      provision: { period: { start: failed.created_at, end: failed.failure_at } },
    });
    expect(consent?.extension?.find((e) => e.url === EXTENSION.failureCode)?.valueCode).toBe('access_denied');
  });

  it('creates no Task when a connection is active, and a marker pointing at the patient', async () => {
    const { world, bot } = setup();
    await bot.deliver(event);
    expect(await world.tasks()).toEqual([]);
    const [patient] = await world.patients();
    const [marker] = await markers(world);
    expect(marker).toMatchObject({
      identifier: [{ system: 'urn:medblocks:event-id', value: event.id }],
      code: { text: 'patient_flow.completed' },
      subject: { reference: `Patient/${patient?.id}` },
      created: '2026-04-25',
    });
    await expectStoreValid(world);
  });

  it('a duplicate delivery makes exactly one FHIR request and writes nothing', async () => {
    const { world, bot } = setup();
    await bot.deliver(event);
    const before = await world.snapshot();
    const answer = await bot.deliver(event, { signedAt: Date.parse(event.created_at) + 60_000 });
    expect(answer.status).toBe('duplicate');
    expect(bot.lastRequestCount()).toBe(1);
    expect(await world.snapshot()).toEqual(before);
  });

  it('accepts the newer patient_session.completed name', async () => {
    const { world, bot } = setup();
    const session = patientFlowCompleted(
      { id: 'ps_s1', resource_type: 'patient_session', connections: [active] },
      { type: 'patient_session.completed' }
    );
    expect((await bot.deliver(session)).type).toBe('patient_session.completed');
    expect((await consentFor(world, active.id ?? ''))?.status).toBe('active');
  });
});

describe('patient_flow.completed without an active connection asks for a follow-up', () => {
  it('all attempts failed: a requested follow-up Task lists sources and failure codes', async () => {
    const { world, bot } = setup({ MEDBLOCKS_TASK_OWNER: 'CareTeam/intake' });
    const event = patientFlowCompleted({
      id: 'pf_failed',
      connections: [
        failedAttempt({
          connection_id: SAMPLE_SOURCE_A,
          failure_code: 'user_denied',
          created_at: '2026-04-25T14:31:00.000Z',
        }),
        failedAttempt({ connection_id: SAMPLE_SOURCE_B, failure_code: 'access_denied' }),
      ],
    });
    await bot.deliver(event);
    const [patient] = await world.patients();
    const task = await taskFor(world, 'flow-follow-up/pf_failed');
    expect(task).toMatchObject({
      status: 'requested',
      intent: 'order',
      code: { coding: [{ system: 'urn:medblocks:code', code: 'connection-follow-up' }] },
      for: { reference: `Patient/${patient?.id}` },
      owner: { reference: 'CareTeam/intake' },
      authoredOn: event.created_at,
      lastModified: event.created_at,
      businessStatus: { text: 'access_denied, user_denied' },
    });
    expect(task?.input?.map((i) => i.valueIdentifier?.value ?? i.valueCode)).toEqual([
      'pf_failed',
      SAMPLE_SOURCE_A,
      SAMPLE_SOURCE_B,
      'access_denied',
      'user_denied',
    ]);
    await expectStoreValid(world);
  });

  it('no attempt at all: businessStatus no-connection', async () => {
    const { world, bot } = setup();
    await bot.deliver(patientFlowCompleted({ id: 'pf_empty', connections: [] }));
    expect((await taskFor(world, 'flow-follow-up/pf_empty'))?.businessStatus?.text).toBe('no-connection');
  });

  it('a later flow with an active connection completes the follow-up', async () => {
    const { world, bot } = setup();
    await bot.deliver(
      patientFlowCompleted({ id: 'pf_empty', connections: [] }, { created_at: '2026-04-25T14:35:00.000Z' })
    );
    const later = patientFlowCompleted(
      { id: 'pf_retry', connections: [connection({ id: 'conn_later' })] },
      { created_at: '2026-04-26T09:00:00.000Z' }
    );
    await bot.deliver(later);
    const task = await taskFor(world, 'flow-follow-up/pf_empty');
    expect(task).toMatchObject({
      status: 'completed',
      businessStatus: { text: 'connected' },
      lastModified: later.created_at,
    });
    await expectStoreValid(world);
  });

  it('the same patient, but an older active flow, does not complete it', async () => {
    const { world, bot } = setup();
    await bot.deliver(
      patientFlowCompleted(
        { id: 'pf_old_ok', connections: [connection({ id: 'conn_old' })] },
        { created_at: '2026-04-20T10:00:00.000Z' }
      )
    );
    await bot.deliver(
      patientFlowCompleted(
        { id: 'pf_new_fail', connections: [failedAttempt()] },
        { created_at: '2026-04-25T14:35:00.000Z' }
      )
    );
    expect((await taskFor(world, 'flow-follow-up/pf_new_fail'))?.status).toBe('requested');
  });
});

describe('patient_flow.completed and reconnect Tasks', () => {
  it('a connection reported as refresh_failed gets an inactive Consent and a reconnect Task', async () => {
    const { world, bot } = setup();
    const stale = connection({ id: 'conn_stale', status: 'refresh_failed', failure_at: '2026-04-25T14:34:00.000Z' });
    await bot.deliver(patientFlowCompleted({ id: 'pf_1', connections: [stale] }));
    const consent = await consentFor(world, 'conn_stale');
    expect(consent).toMatchObject({ status: 'inactive', provision: { period: { end: '2026-04-25T14:34:00.000Z' } } });
    expect(await taskFor(world, 'reconnect/conn_stale')).toMatchObject({
      status: 'requested',
      priority: 'routine',
      focus: { reference: `Consent/${consent?.id}` },
      businessStatus: { text: 'awaiting-patient' },
    });
    await expectStoreValid(world);
  });

  it('a newer flow with an active connection for the same source completes it, with the new Consent as output', async () => {
    const { world, bot } = setup();
    await bot.deliver(
      patientFlowCompleted(
        { id: 'pf_1', connections: [connection({ id: 'conn_stale', status: 'refresh_failed' })] },
        { created_at: '2026-04-25T14:35:00.000Z' }
      )
    );
    const reconnect = patientFlowCompleted(
      { id: 'pf_2', connections: [connection({ id: 'conn_new', created_at: '2026-05-21T08:00:00.000Z' })] },
      { created_at: '2026-05-21T08:01:00.000Z' }
    );
    await bot.deliver(reconnect);
    const fresh = await consentFor(world, 'conn_new');
    expect(await taskFor(world, 'reconnect/conn_stale')).toMatchObject({
      status: 'completed',
      businessStatus: { text: 'reconnected' },
      output: [{ valueReference: { reference: `Consent/${fresh?.id}` } }],
      lastModified: reconnect.created_at,
    });
    await expectStoreValid(world);
  });

  it('an active connection for another source leaves it open', async () => {
    const { world, bot } = setup();
    await bot.deliver(
      patientFlowCompleted(
        { id: 'pf_1', connections: [connection({ id: 'conn_stale', status: 'refresh_failed' })] },
        { created_at: '2026-04-25T14:35:00.000Z' }
      )
    );
    await bot.deliver(
      patientFlowCompleted(
        { id: 'pf_2', connections: [connection({ id: 'conn_other', connection_id: SAMPLE_SOURCE_B })] },
        { created_at: '2026-05-21T08:01:00.000Z' }
      )
    );
    expect((await taskFor(world, 'reconnect/conn_stale'))?.status).toBe('requested');
  });
});

describe('patient resolution', () => {
  it('links to a Patient that carries the Medblocks identifier and does not modify it', async () => {
    const { world, bot } = setup();
    const existing = await world.admin.createResource({
      resourceType: 'Patient',
      identifier: [{ system: 'urn:medblocks:patient-id', value: 'user_42' }],
      name: [{ family: 'Simpson', given: ['Homer'] }],
    });
    await bot.deliver(patientFlowCompleted());
    const patients = await world.patients();
    expect(patients).toHaveLength(1);
    expect(patients[0]).toEqual(existing);
    expect((await world.consents())[0]?.patient?.reference).toBe(`Patient/${existing.id}`);
  });

  it('links to the Medplum Patient whose id is the patient_id, without writing to it', async () => {
    const { world, bot } = setup();
    const existing = await world.admin.createResource({ resourceType: 'Patient', name: [{ family: 'Own' }] });
    await bot.deliver(patientFlowCompleted({ patient_id: existing.id }));
    const patients = await world.patients();
    expect(patients).toEqual([existing]);
    expect((await world.consents())[0]?.patient?.reference).toBe(`Patient/${existing.id}`);
  });

  it('prefers the identifier match over the id match', async () => {
    const { world, bot } = setup();
    const byId = await world.admin.createResource({ resourceType: 'Patient' });
    const byIdentifier = await world.admin.createResource({
      resourceType: 'Patient',
      identifier: [{ system: 'urn:medblocks:patient-id', value: byId.id }],
    });
    await bot.deliver(patientFlowCompleted({ patient_id: byId.id }));
    expect((await world.consents())[0]?.patient?.reference).toBe(`Patient/${byIdentifier.id}`);
  });

  it('with creation turned off, an unknown patient is quarantined: nothing but its dead-letter is written', async () => {
    const { world, bot } = setup({ MEDBLOCKS_CREATE_MISSING_PATIENTS: 'false' });
    const event = patientFlowCompleted();
    expect(await bot.deliver(event)).toEqual({
      status: 'quarantined',
      event: event.id,
      type: 'patient_flow.completed',
      reason: 'patient_not_found',
      path: 'data.object.patient_id',
    });
    // The read batch already said there was no dead-letter: one conditional create.
    expect(bot.lastRequestCount()).toBe(2);
    expect(bot.logs).toEqual([
      `medblocks evt=${event.id} type=patient_flow.completed outcome=quarantined:patient_not_found fhir_requests=2 ms=0`,
    ]);
    const { Task: tasks, ...rest } = await world.snapshot();
    expect(rest).toEqual({ Patient: [], Consent: [], Basic: [] });
    expect(tasks).toEqual([
      expect.objectContaining({ identifier: [{ system: 'urn:medblocks:dead-letter', value: event.id }] }),
    ]);
  });
});

describe('FHIR requests per delivery do not grow with the number of connections', () => {
  const flowWith = (n: number) =>
    patientFlowCompleted({
      connections: Array.from({ length: n }, (_, i) =>
        i % 2 === 0
          ? connection({ id: `conn_${i}`, connection_id: `fhirsrc_${i}` })
          : failedAttempt({ connection_id: `fhirsrc_${i}`, created_at: `2026-04-25T14:3${i % 10}:00.000Z` })
      ),
    });

  it.each([1, 10])('%i connection(s): 3 requests, 1 for the duplicate', async (n) => {
    const { world, bot } = setup();
    const event = flowWith(n);
    await bot.deliver(event);
    expect(bot.lastRequestCount()).toBe(3);
    expect(await world.consents()).toHaveLength(n);
    await bot.deliver(event);
    expect(bot.lastRequestCount()).toBe(1);
  });
});

describe('refusals make no FHIR request', () => {
  it.each([
    ['a forged signature', { secret: 'whsec_attacker' }, 'signature_mismatch'],
    ['an expired timestamp', { now: Date.parse('2026-04-25T14:35:00.000Z') + 301_000 }, 'timestamp_out_of_tolerance'],
  ] as const)('%s', async (_name, options, reason) => {
    const { world, bot } = setup();
    await expect(bot.deliver(patientFlowCompleted(), options)).rejects.toThrow(`Delivery rejected: ${reason}`);
    expect(bot.requests).toHaveLength(0);
    expect(bot.logs).toEqual([`medblocks evt=- type=- outcome=rejected:${reason} fhir_requests=0 ms=0`]);
    expect(await world.snapshot()).toEqual({ Patient: [], Consent: [], Task: [], Basic: [] });
  });

  it('a genuine but malformed payload is no refusal: it is quarantined under its event id (one search, one create)', async () => {
    const { world, bot } = setup();
    const answer = await bot.deliver(patientFlowCompleted(), { rawBody: '{"id":"evt_1","object":"event"}' });
    expect(answer).toEqual({
      status: 'quarantined',
      event: 'evt_1',
      type: 'unknown',
      reason: 'invalid_payload',
      path: 'type',
    });
    expect(bot.requests).toHaveLength(2);
    expect((await world.tasks()).map((t) => t.identifier?.[0]?.value)).toEqual(['evt_1']);
  });

  it('a genuine body that is not a JSON object is quarantined under the hash of its bytes', async () => {
    const { world, bot } = setup();
    const body = '[1,2,3]';
    const answer = await bot.deliver(patientFlowCompleted(), { rawBody: body });
    const key = `sha256-${createHash('sha256').update(body).digest('hex')}`;
    expect(answer).toEqual({ status: 'quarantined', event: key, type: 'unknown', reason: 'invalid_payload' });
    expect((await world.tasks()).map((t) => [t.identifier?.[0]?.value, t.statusReason?.text])).toEqual([
      [key, 'invalid_payload'],
    ]);
  });
});

describeQuarantine({
  bot: 'medblocks-patient-flow-completed',
  event: (patientId) => patientFlowCompleted({ patient_id: patientId }),
});
