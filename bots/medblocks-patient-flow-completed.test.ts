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
      businessStatus: { coding: [{ code: 'access_denied' }, { code: 'user_denied' }] },
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
    expect((await taskFor(world, 'flow-follow-up/pf_empty'))?.businessStatus?.coding?.[0]?.code).toBe('no-connection');
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
      businessStatus: { coding: [{ code: 'connected' }] },
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
      businessStatus: { coding: [{ code: 'awaiting-patient' }] },
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
      businessStatus: { coding: [{ code: 'reconnected' }] },
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

describe('patient_flow.completed at the edges (issue 13)', () => {
  const ATTEMPT_AT = '2026-04-25T14:34:05.000Z';
  const attemptKeyB = `pf_edge/${SAMPLE_SOURCE_B}/${ATTEMPT_AT}`;

  it('an unknown status leaves an existing Consent as it is, and is logged by name', async () => {
    const { world, bot } = setup();
    const conn = connection({ id: 'conn_known' });
    await bot.deliver(
      patientFlowCompleted({ id: 'pf_a', connections: [conn] }, { created_at: '2026-04-25T15:00:00.000Z' })
    );
    const before = await consentFor(world, 'conn_known');
    const later = patientFlowCompleted(
      { id: 'pf_b', connections: [{ ...conn, status: 'revoked' }] },
      { created_at: '2026-04-26T15:00:00.000Z', id: 'evt_01UNKNOWNSTATUS' }
    );
    expect((await bot.deliver(later)).status).toBe('processed');
    const after = await consentFor(world, 'conn_known');
    expect(after?.meta?.versionId).toBe(before?.meta?.versionId);
    expect(after?.status).toBe('active');
    expect(bot.logs).toContain('medblocks evt=evt_01UNKNOWNSTATUS note=unknown_connection_status status=revoked');
    await expectStoreValid(world);
  });

  it('an unknown status of a connection never seen invents no Consent; other entries still apply', async () => {
    const { world, bot } = setup();
    const event = patientFlowCompleted({
      id: 'pf_pending',
      connections: [connection({ id: 'conn_pending', status: 'pending' }), connection({ id: 'conn_ok' })],
    });
    expect((await bot.deliver(event)).status).toBe('processed');
    expect(await consentFor(world, 'conn_pending')).toBeUndefined();
    expect((await consentFor(world, 'conn_ok'))?.status).toBe('active');
    await expectStoreValid(world);
  });

  it('a status name that is not a safe token is logged as (not shown)', async () => {
    const { bot } = setup();
    const event = patientFlowCompleted(
      { connections: [connection({ status: 'Jane Doe 1970-01-01' })] },
      { id: 'evt_01NOTSHOWN' }
    );
    await bot.deliver(event);
    expect(bot.logs.join('\n')).not.toContain('Jane');
    expect(bot.logs).toContain('medblocks evt=evt_01NOTSHOWN note=unknown_connection_status status=(not shown)');
  });

  it('{id: null, status: refresh_failed}: an inactive Consent and a reconnect Task keyed by the attempt', async () => {
    const { world, bot } = setup();
    const entry = failedAttempt({ status: 'refresh_failed', failure_code: null, created_at: ATTEMPT_AT });
    await bot.deliver(patientFlowCompleted({ id: 'pf_edge', connections: [entry] }));
    const consent = await consentFor(world, attemptKeyB);
    expect(consent?.status).toBe('inactive');
    const task = await taskFor(world, `reconnect/pf_edge%2F${SAMPLE_SOURCE_B}%2F${ATTEMPT_AT}`);
    expect(task).toMatchObject({ status: 'requested', focus: { reference: `Consent/${consent?.id}` } });
    await expectStoreValid(world);
  });

  it('{id: null, status: active}: an active Consent that counts as a connection (no follow-up Task)', async () => {
    const { world, bot } = setup();
    const entry = failedAttempt({ status: 'active', failure_code: null, failure_at: null, created_at: ATTEMPT_AT });
    await bot.deliver(patientFlowCompleted({ id: 'pf_edge', connections: [entry] }));
    const consent = await consentFor(world, attemptKeyB);
    expect(consent?.status).toBe('active');
    expect(consent?.provision?.period?.end).toBeUndefined();
    expect(await taskFor(world, 'flow-follow-up/pf_edge')).toBeUndefined();
    await expectStoreValid(world);
  });

  it('two failed attempts with the same flow, source and time keep both failure codes', async () => {
    const { world, bot } = setup();
    const a = failedAttempt({ failure_code: 'a', created_at: ATTEMPT_AT });
    const b = failedAttempt({ failure_code: 'b', created_at: ATTEMPT_AT });
    await bot.deliver(patientFlowCompleted({ id: 'pf_edge', connections: [a, b] }));
    const consent = await consentFor(world, attemptKeyB);
    expect(consent?.extension?.filter((e) => e.url === EXTENSION.failureCode).map((e) => e.valueCode)).toEqual([
      'a',
      'b',
    ]);
    const task = await taskFor(world, 'flow-follow-up/pf_edge');
    expect(task?.input?.filter((i) => i.valueCode).map((i) => i.valueCode)).toEqual(['a', 'b']);
    expect(task?.businessStatus?.coding?.map((c) => c.code)).toEqual(['a', 'b']);
    await expectStoreValid(world);
  });

  it('opaque ids and codes with spaces, |, $, \\ and commas are stored verbatim and found again', async () => {
    const { world, bot } = setup();
    const patientId = 'MRN|12 34,5$\\x';
    const first = patientFlowCompleted(
      { id: 'pf_opaque', patient_id: patientId, connections: [failedAttempt({ failure_code: 'access  denied|x' })] },
      { created_at: '2026-04-25T15:00:00.000Z' }
    );
    await bot.deliver(first);
    await bot.deliver(
      patientFlowCompleted(
        { id: 'pf_opaque2', patient_id: patientId, connections: [connection({ id: 'conn_opaque' })] },
        { created_at: '2026-04-26T15:00:00.000Z' }
      )
    );
    const patients = await world.patients();
    expect(patients.map((p) => p.identifier?.[0]?.value)).toEqual([patientId]);
    // The later flow found the follow-up Task of the same patient and completed it.
    expect((await taskFor(world, 'flow-follow-up/pf_opaque'))?.status).toBe('completed');
    const codes = (await taskFor(world, 'flow-follow-up/pf_opaque'))?.input?.flatMap((i) => i.valueCode ?? []);
    expect(codes).toEqual(['access denied|x']); // whitespace runs normalised: a FHIR code allows single spaces only
    await expectStoreValid(world);
  });

  it('offsets are written as UTC instants', async () => {
    const { world, bot } = setup();
    const conn = connection({ id: 'conn_tz', created_at: '2026-04-25T20:03:10+05:30' });
    await bot.deliver(patientFlowCompleted({ connections: [conn] }, { created_at: '2026-04-25T10:35:00-04:00' }));
    const consent = await consentFor(world, 'conn_tz');
    expect(consent?.dateTime).toBe('2026-04-25T14:33:10.000Z');
    expect((await markers(world))[0]?.created).toBe('2026-04-25');
    await expectStoreValid(world);
  });
});

describe('patient_flow.completed shows the EHR names an Organization gives (issue 12 item 7)', () => {
  it('uses the name in the Consent actor and the follow-up description, in the same read batch', async () => {
    const { world, bot } = setup();
    await world.admin.createResource({
      resourceType: 'Organization',
      name: 'Epic MyChart',
      identifier: [{ system: 'urn:medblocks:fhir-source-id', value: SAMPLE_SOURCE_B }],
    });
    const active = connection({ id: 'conn_named', connection_id: SAMPLE_SOURCE_B });
    await bot.deliver(patientFlowCompleted({ id: 'pf_named', connections: [failedAttempt()] }));
    expect(bot.lastRequestCount()).toBe(3);
    const task = await taskFor(world, 'flow-follow-up/pf_named');
    expect(task?.description).toBe(
      'Contact the patient to help them connect their health records: they left the connection flow without connecting Epic MyChart.'
    );
    await bot.deliver(patientFlowCompleted({ id: 'pf_named2', connections: [active] }));
    const consent = await consentFor(world, 'conn_named');
    expect(consent?.provision?.actor?.[0]?.reference.display).toBe('Epic MyChart');
    await expectStoreValid(world);
  });

  it('without an Organization, plain words and never the raw source id', async () => {
    const { world, bot } = setup();
    await bot.deliver(patientFlowCompleted({ id: 'pf_unnamed', connections: [failedAttempt()] }));
    const task = await taskFor(world, 'flow-follow-up/pf_unnamed');
    expect(task?.description).toContain('without connecting any EHR portal');
    const consent = (await world.consents())[0];
    expect(consent?.provision?.actor?.[0]?.reference.display).toBe('EHR portal (name not known yet)');
    expect(JSON.stringify([task?.description, consent?.provision?.actor?.[0]?.reference.display])).not.toContain(
      'fhirsrc_'
    );
  });
});
