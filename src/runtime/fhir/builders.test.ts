import { evalFhirPath, validateResource } from '@medplum/core';
import type { Consent, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { decodeConsent, encodeConsent, UNKNOWN_PATIENT } from './consent';
import type { ConsentModel } from './consent';
import { buildMarker } from './marker';
import { buildPatient, isFhirId } from './patient';
import { compareStamps } from './stamp';
import { CODE, EXTENSION, SYSTEM } from './systems';
import { decodeTask, encodeTask } from './task';
import { MAX_STATUS_REASON_LENGTH } from './tasks/records-sync';
import type { FollowUpTaskModel } from './tasks/follow-up';
import { followUpTask } from './tasks/follow-up';
import type { ReconnectTaskModel } from './tasks/reconnect';
import { reconnectTask } from './tasks/reconnect';
import type { RecordsSyncTaskModel } from './tasks/records-sync';
import { recordsSyncTask } from './tasks/records-sync';

const KINDS = [reconnectTask, followUpTask, recordsSyncTask];

const stamp = { at: '2026-04-25T14:35:00.000Z', eventId: 'evt_01J9YR9N3X4VZ6P2K5RH7M3LMP' };
const later = { at: '2026-05-20T03:12:45.000Z', eventId: 'evt_01JA0B1C2D3E4F5G6H7J8K9M0N' };

const consentModel: ConsentModel = {
  key: { system: SYSTEM.connectionId, value: 'conn_1' },
  sourceId: 'fhirsrc_a',
  patient: { reference: 'Patient/123' },
  status: 'active',
  connectionCreatedAt: '2026-04-25T14:33:10.000Z',
  periodEnd: undefined,
  failureCodes: [],
  sourceName: undefined,
  lastEvent: stamp,
  lastActiveEvent: stamp,
};

/** validateResource throws on any error; warnings are returned and must be empty too. */
function expectValid(resource: Parameters<typeof validateResource>[0]): void {
  expect(validateResource(resource)).toEqual([]);
}

describe('Consent builder', () => {
  it('writes the contract of fhir-mapping.md and passes Medplum validation (ppc-1, ppc-2)', () => {
    const consent = encodeConsent(consentModel);
    expectValid(consent);
    expect(consent).toMatchObject({
      status: 'active',
      identifier: [{ system: 'urn:medblocks:connection-id', value: 'conn_1' }],
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [
        { coding: [{ system: 'http://loinc.org', code: '59284-0' }] },
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IDSCL' }] },
        { coding: [{ system: 'urn:medblocks:code', code: 'ehr-connection' }] },
      ],
      patient: { reference: 'Patient/123' },
      dateTime: '2026-04-25T14:33:10.000Z',
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] },
      provision: {
        type: 'permit',
        period: { start: '2026-04-25T14:33:10.000Z' },
        actor: [
          {
            role: { coding: [{ code: 'CST', system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType' }] },
            reference: { identifier: { system: 'urn:medblocks:fhir-source-id', value: 'fhirsrc_a' } },
          },
        ],
        action: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'collect' }] }],
      },
    });
  });

  it('represents an unknown patient with a display-only reference that still satisfies ppc-2', () => {
    const consent = encodeConsent({ ...consentModel, patient: undefined, status: 'inactive', periodEnd: later.at });
    expect(consent.patient).toEqual(UNKNOWN_PATIENT);
    expect(consent.patient?.reference).toBeUndefined();
    expectValid(consent);
  });

  // R4 publishes ppc-2 with `system='something'`, so Medplum's validator never fires it. We hold
  // our Consents to the invariant as intended, with the real consentscope system.
  const PPC2_AS_INTENDED =
    "patient.exists() or scope.coding.where(system='http://terminology.hl7.org/CodeSystem/consentscope' and code='patient-privacy').exists().not()";

  it('meets ppc-2 as intended (not only as published) with and without a known patient', () => {
    for (const patient of [consentModel.patient, undefined]) {
      expect(evalFhirPath(PPC2_AS_INTENDED, encodeConsent({ ...consentModel, patient }))).toEqual([true]);
    }
  });

  it('shows why the intended form is needed: without any patient it fails, yet the published ppc-2 lets it pass', () => {
    const { patient: _patient, ...withoutPatient } = encodeConsent(consentModel);
    expect(evalFhirPath(PPC2_AS_INTENDED, withoutPatient)).toEqual([false]);
    expect(() => validateResource(withoutPatient as Consent)).not.toThrow();
  });

  it('keeps the failure code and the end of the period', () => {
    const consent = encodeConsent({
      ...consentModel,
      status: 'rejected',
      failureCodes: ['access_denied'],
      periodEnd: later.at,
    });
    expectValid(consent);
    expect(consent.extension?.find((e) => e.url === EXTENSION.failureCode)?.valueCode).toBe('access_denied');
    expect(consent.provision?.period).toEqual({ start: consentModel.connectionCreatedAt, end: later.at });
  });

  it('round-trips its model and keeps fields and identifiers written by others', () => {
    const existing: Consent = {
      ...encodeConsent(consentModel),
      id: 'c1',
      identifier: [
        { system: 'urn:customer', value: 'x' },
        { system: SYSTEM.connectionId, value: 'conn_1' },
      ],
      extension: [{ url: 'https://customer.example/ext', valueString: 'theirs' }],
      sourceReference: { display: 'customer' },
    };
    const updated = encodeConsent({ ...consentModel, status: 'inactive' }, existing);
    expect(updated.id).toBe('c1');
    expect(updated.sourceReference).toEqual({ display: 'customer' });
    expect(updated.identifier).toContainEqual({ system: 'urn:customer', value: 'x' });
    expect(updated.extension?.[0]).toEqual({ url: 'https://customer.example/ext', valueString: 'theirs' });
    expect(decodeConsent(updated)).toEqual({ ...consentModel, status: 'inactive' });
  });

  it('does not decode a Consent that is not one of ours', () => {
    expect(decodeConsent({ resourceType: 'Consent', status: 'active', scope: {}, category: [] })).toBeUndefined();
  });
});

describe('Task builders', () => {
  const owner = { reference: 'Organization/care-team' } as const;
  const reconnect: ReconnectTaskModel = {
    kind: CODE.reconnectEhr,
    key: 'reconnect/conn_1',
    connectionId: 'conn_1',
    sourceId: 'fhirsrc_a',
    sourceName: undefined,
    consent: { reference: 'Consent/c1' },
    patient: { reference: 'Patient/123' },
    authoredOn: stamp.at,
    lastRefreshFailed: stamp,
    reconnectedBy: undefined,
  };

  it('reconnect-ehr: requested, routine, focus on the Consent, awaiting the patient', () => {
    const task = encodeTask(reconnectTask, reconnect, undefined, owner);
    expectValid(task);
    expect(task).toMatchObject({
      status: 'requested',
      intent: 'order',
      priority: 'routine',
      code: { coding: [{ system: 'urn:medblocks:code', code: 'reconnect-ehr' }] },
      for: { reference: 'Patient/123' },
      focus: { reference: 'Consent/c1' },
      owner,
      authoredOn: stamp.at,
      lastModified: stamp.at,
      identifier: [{ system: 'urn:medblocks:task-key', value: 'reconnect/conn_1' }],
      businessStatus: {
        coding: [
          { system: 'urn:medblocks:code', code: 'awaiting-patient', display: 'Waiting for the patient to reconnect' },
        ],
        text: 'Waiting for the patient to reconnect',
      },
    });
    // Plain words for a person, never a raw source id as the only label.
    expect(task.description).toBe('Ask the patient to reconnect their EHR portal: its access expired.');
    expect(task.description).not.toContain('fhirsrc_');
    expect(decodeTask(KINDS, task)?.model).toEqual(reconnect);
  });

  it('reconnect-ehr resolved: completed, reconnected, output is the new Consent', () => {
    const resolved: ReconnectTaskModel = {
      ...reconnect,
      reconnectedBy: { consent: { reference: 'Consent/c2' }, stamp: later },
    };
    const task = encodeTask(reconnectTask, resolved, undefined, undefined);
    expectValid(task);
    expect(task.status).toBe('completed');
    expect(task.businessStatus?.coding?.[0]).toMatchObject({
      code: 'reconnected',
      display: 'Reconnected by the patient',
    });
    expect(task.output?.[0]?.valueReference).toEqual({ reference: 'Consent/c2' });
    expect(task.lastModified).toBe(later.at);
    expect(decodeTask(KINDS, task)?.model).toEqual(resolved);
  });

  it('connection-follow-up lists the attempted sources and failure codes', () => {
    const followUp: FollowUpTaskModel = {
      kind: CODE.connectionFollowUp,
      key: 'flow-follow-up/pf_1',
      flowId: 'pf_1',
      patient: { reference: 'Patient/123' },
      authoredOn: stamp.at,
      trigger: stamp,
      sources: ['fhirsrc_a', 'fhirsrc_b'],
      failureCodes: ['access_denied'],
      sourceNames: [],
      connectedAt: undefined,
    };
    const task = encodeTask(followUpTask, followUp, undefined, undefined);
    expectValid(task);
    expect(task.status).toBe('requested');
    expect(task.businessStatus?.coding).toEqual([
      { system: 'urn:medblocks:code', code: 'access_denied', display: 'Connection failed (access_denied)' },
    ]);
    expect(task.input?.map((i) => i.valueIdentifier?.value ?? i.valueCode)).toEqual([
      'pf_1',
      'fhirsrc_a',
      'fhirsrc_b',
      'access_denied',
    ]);
    expect(decodeTask(KINDS, task)?.model).toEqual(followUp);
    const noCodes = encodeTask(followUpTask, { ...followUp, failureCodes: [] }, undefined, undefined);
    expect(noCodes.businessStatus?.coding?.[0]).toMatchObject({ code: 'no-connection', display: 'No EHR connected' });
  });

  it('records-sync completed: outputs are integers, synced-with-errors when errors > 0', () => {
    const sync: RecordsSyncTaskModel = {
      kind: CODE.recordsSync,
      key: 'records-sync/user_42/fhirsrc_a',
      sourceId: 'fhirsrc_a',
      sourceName: undefined,
      patient: { reference: 'Patient/123' },
      authoredOn: stamp.at,
      lastEvent: stamp,
      result: { kind: 'completed', total: 1342, errors: 3, durationMs: 48211 },
    };
    const task = encodeTask(recordsSyncTask, sync, undefined, undefined);
    expectValid(task);
    expect(task.status).toBe('completed');
    expect(task.businessStatus?.coding?.[0]?.code).toBe('synced-with-errors');
    expect(task.executionPeriod).toEqual({ end: stamp.at });
    expect(task.output?.map((o) => [o.type.text, o.valueInteger])).toEqual([
      ['total', 1342],
      ['errors', 3],
      ['duration-ms', 48211],
    ]);
    expect(decodeTask(KINDS, task)?.model).toEqual(sync);
  });

  it('records-sync failed: urgent, statusReason cut to a bound', () => {
    const long = 'x'.repeat(5000);
    const sync: RecordsSyncTaskModel = {
      kind: CODE.recordsSync,
      key: 'records-sync/user_42/fhirsrc_a',
      sourceId: 'fhirsrc_a',
      sourceName: undefined,
      patient: { reference: 'Patient/123' },
      authoredOn: stamp.at,
      lastEvent: stamp,
      result: { kind: 'failed', message: long },
    };
    const task = encodeTask(recordsSyncTask, sync, undefined, undefined);
    expectValid(task);
    expect(task).toMatchObject({
      status: 'failed',
      priority: 'urgent',
      businessStatus: { coding: [{ code: 'sync-failed' }] },
    });
    expect(task.statusReason?.text?.length).toBe(MAX_STATUS_REASON_LENGTH);
    expect(task.output).toBeUndefined();
  });

  it('never replaces an owner someone assigned', () => {
    const existing: Task = {
      ...encodeTask(reconnectTask, reconnect, undefined, undefined),
      owner: { reference: 'Practitioner/p1' },
    };
    expect(encodeTask(reconnectTask, reconnect, existing, owner).owner).toEqual({ reference: 'Practitioner/p1' });
  });
});

describe('marker and patient', () => {
  it('the marker is a valid Basic with the event id, its type as text and the event date', () => {
    const marker = buildMarker(stamp.eventId, 'records.sync.failed', stamp.at, { reference: 'Patient/123' });
    expectValid(marker);
    expect(marker).toEqual({
      resourceType: 'Basic',
      identifier: [{ system: 'urn:medblocks:event-id', value: stamp.eventId }],
      code: {
        coding: [{ system: 'urn:medblocks:code', code: 'webhook-event', display: 'Medblocks webhook event' }],
        text: 'records.sync.failed',
      },
      created: '2026-04-25',
      subject: { reference: 'Patient/123' },
    });
  });

  it('a created Patient carries only the Medblocks identifier: no demographics', () => {
    const patient = buildPatient('user_42');
    expectValid(patient);
    expect(patient).toEqual({
      resourceType: 'Patient',
      identifier: [{ system: 'urn:medblocks:patient-id', value: 'user_42' }],
    });
  });

  it('recognises valid FHIR ids for the "patient_id is a Medplum id" step', () => {
    expect(isFhirId('3f6c3c1e-1a7b-4f7e-9d7a-2b0a1c2d3e4f')).toBe(true);
    expect(isFhirId('user_42')).toBe(false);
    expect(isFhirId('a'.repeat(65))).toBe(false);
  });
});

describe('event stamps', () => {
  it('orders by time first, then by event id', () => {
    expect(compareStamps(stamp, later)).toBeLessThan(0);
    expect(compareStamps({ at: stamp.at, eventId: 'evt_B' }, { at: stamp.at, eventId: 'evt_A' })).toBeGreaterThan(0);
    expect(compareStamps(stamp, { ...stamp })).toBe(0);
  });

  it('compares instants, not strings: offsets and precision do not fool it', () => {
    expect(
      compareStamps(
        { at: '2026-04-25T16:35:00+02:00', eventId: 'evt_A' },
        { at: '2026-04-25T14:35:00.000Z', eventId: 'evt_A' }
      )
    ).toBe(0);
  });
});
