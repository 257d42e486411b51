// What a compromised bot could try with its own policy (least privilege), one case per
// abuse, each shown refused twice: by Medplum's own evaluation (`satisfiedAccessPolicy` picks the
// grant, `evalFhirPathTyped` runs its writeConstraints with %before/%after, as the server's
// `Repository.isResourceWriteable` does) and through the emulator's access model
// (`withAccessPolicy`, which the bot tests and `npm run dev` use). Each case also shows the
// legitimate write still allowed, so a policy that refuses everything cannot pass. Every case
// here failed against the policies before this change (SECURITY.md, "What a compromised bot can do").
import { accessPolicySupportsInteraction, satisfiedAccessPolicy } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import type { Basic, Consent, Organization, Patient, Resource, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { encodeConsent } from '../src/runtime/fhir/consent';
import { buildDeadLetter, resolveDeadLetter } from '../src/runtime/fhir/dead-letter';
import type { DeadLetterReport } from '../src/runtime/fhir/dead-letter';
import type { ConsentModel } from '../src/runtime/fhir/consent';
import { buildMarker } from '../src/runtime/fhir/marker';
import { buildPatient } from '../src/runtime/fhir/patient';
import { CODE, packageCode, SYSTEM } from '../src/runtime/fhir/systems';
import { REGISTRY, WEBHOOK_BOTS } from '../src/runtime/registry';
import { EVENT_DEFINITIONS, EVENT_TYPES } from '../src/runtime/events';
import { UNKNOWN_EVENT_TYPE } from '../src/runtime/receive';
import type { WebhookBotName } from '../src/runtime/registry';
import { withAccessPolicy } from '../src/tools/emulator/access-policy-repository';
import { emulatorAllows, medplumAllows } from './support/policy-decisions';
import { activeConnectionConsent } from './support/consent-model';
import { patientFlowCompleted, connection, recordsSyncCompleted } from '../src/tools/fixtures/events';
import { loadPolicy, World } from '../src/tools/harness/world';

const FLOW: WebhookBotName = 'medblocks-patient-flow-completed';
const REFRESH: WebhookBotName = 'medblocks-connection-token-refresh-failed';
const SYNC_OK: WebhookBotName = 'medblocks-records-sync-completed';
/** The webhook bots that write Basic markers: a records-sync bot's marker is its stamp on the sync Task. */
const MARKING_BOTS = WEBHOOK_BOTS.filter((b) => EVENT_DEFINITIONS.some((d) => d.bot === b.name && d.policy.marker));
const STAMPING_BOTS = WEBHOOK_BOTS.filter((b) => !MARKING_BOTS.includes(b));
const CONSENT_BOTS = [FLOW, REFRESH] as const;

async function expectWrite(
  name: WebhookBotName,
  resource: Resource,
  allowed: boolean,
  existing?: Resource
): Promise<void> {
  const policy = loadPolicy(name);
  const interaction = existing ? 'update' : 'create';
  expect({ bot: name, medplum: medplumAllows(policy, interaction, resource, existing) }).toEqual({
    bot: name,
    medplum: allowed,
  });
  expect({ bot: name, emulator: await emulatorAllows(policy, resource, existing) }).toEqual({
    bot: name,
    emulator: allowed,
  });
}

const customerPatient: Patient = {
  resourceType: 'Patient',
  identifier: [
    { system: 'http://hospital.example/mrn', value: 'MRN-0001' },
    { system: SYSTEM.patientId, value: 'user_42' },
  ],
  name: [{ family: 'Doe', given: ['Jane'] }],
  telecom: [{ system: 'phone', value: '555-0100' }],
  gender: 'female',
  birthDate: '1970-01-01',
  address: [{ city: 'Springfield' }],
  deceasedBoolean: false,
  link: [{ other: { reference: 'Patient/other' }, type: 'seealso' }],
  extension: [{ url: 'http://example.org/race', valueString: 'x' }],
};

describe('abuse: search every Patient and read full demographics', () => {
  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s sees only the id of a customer Patient: demographics and identifiers (MRN) are hidden',
    async (name) => {
      const policy = loadPolicy(name);
      const base = new MemoryRepository();
      const stored = await base.createResource(customerPatient);
      // Medplum's own choice of the hidden fields: the first grant that allows `read` on the Patient.
      const hidden = satisfiedAccessPolicy(stored, 'read', policy)?.hiddenFields ?? [];
      expect(hidden).toEqual(expect.arrayContaining(['identifier', 'name', 'telecom', 'birthDate', 'address', 'link']));

      const repo = withAccessPolicy(base, policy);
      const found = (await repo.search({ resourceType: 'Patient' })).entry?.map((e) => e.resource) ?? [];
      const read = await repo.readResource<Patient>('Patient', stored.id);
      expect(found.map((r) => r?.id)).toEqual([stored.id]);
      for (const seen of [found[0], read]) {
        expect(Object.keys(seen ?? {}).sort()).toEqual(['id', 'meta', 'resourceType']);
      }
    }
  );

  it('the bots still find a patient by our identifier and by Medplum id: the search runs on the stored fields', async () => {
    const world = new World();
    const patient = await world.admin.createResource(customerPatient);
    await world.bot(SYNC_OK).deliver(recordsSyncCompleted({ patient_id: 'user_42' }));
    await world.bot(SYNC_OK).deliver(recordsSyncCompleted({ patient_id: patient.id }));
    const tasks = await world.tasks();
    expect(tasks.map((t) => t.for?.reference)).toEqual([`Patient/${patient.id}`, `Patient/${patient.id}`]);
    expect(await world.patients()).toHaveLength(1);
  });
});

describe('abuse: the token-refresh bot’s Patient search and create', () => {
  // It uses both: `_include=Consent:patient` (the patient of the connection's Consent, and through
  // it every Consent and Task of that patient) needs Patient search, and a refresh failure that
  // carries a patient_id (an open point in Medblocks' docs) finds or creates that patient. So the
  // grants stay, confined like every other bot's: nothing but ids to read, nothing but our identifier to write.
  it('reads no demographics and cannot create a Patient carrying anything but our identifier', async () => {
    const policy = loadPolicy(REFRESH);
    const base = new MemoryRepository();
    await base.createResource(customerPatient);
    const found = (await withAccessPolicy(base, policy).search({ resourceType: 'Patient' })).entry ?? [];
    expect(found.map((e) => Object.keys(e.resource ?? {}).sort())).toEqual([['id', 'meta', 'resourceType']]);
    await expectWrite(REFRESH, { ...buildPatient('user_9'), name: [{ family: 'Poison' }] }, false);
    await expectWrite(REFRESH, buildPatient('user_9'), true);
  });
});

describe('abuse: Patient create with an MRN, demographics or a link (identity poisoning)', () => {
  const ours = buildPatient('user_7');
  const abuses: [string, Patient][] = [
    [
      'a customer MRN next to our identifier',
      { ...ours, identifier: [...(ours.identifier ?? []), { system: 'http://hospital.example/mrn', value: 'MRN-1' }] },
    ],
    ['an MRN typed onto our identifier', { ...ours, identifier: [{ ...ours.identifier?.[0], type: { text: 'MR' } }] }],
    ['a name', { ...ours, name: [{ family: 'Doe' }] }],
    ['a birth date and gender', { ...ours, birthDate: '1970-01-01', gender: 'female' }],
    ['a telecom', { ...ours, telecom: [{ system: 'email', value: 'x@example.org' }] }],
    ['a link to another Patient', { ...ours, link: [{ other: { reference: 'Patient/victim' }, type: 'replaces' }] }],
    ['a managing organization', { ...ours, managingOrganization: { reference: 'Organization/x' } }],
    ['an extension', { ...ours, extension: [{ url: 'http://example.org/x', valueString: 'y' }] }],
    ['no value', { resourceType: 'Patient', identifier: [{ system: SYSTEM.patientId }] }],
  ];

  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s: each is refused; our identifier-only Patient is allowed',
    async (name) => {
      for (const [, patient] of abuses) {
        await expectWrite(name, patient, false);
      }
      await expectWrite(name, ours, true);
    }
  );
});

describe('abuse: a Consent with another scope, categories, actor or provision, or for another patient', () => {
  const model: ConsentModel = activeConnectionConsent('conn_abuse', 'fhirsrc_abuse');
  const ours = encodeConsent(model);
  const provision = ours.provision ?? {};
  const actor = provision.actor?.[0];
  const abuses: [string, Consent][] = [
    [
      'a research scope',
      {
        ...ours,
        scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] },
      },
    ],
    [
      'a second scope coding',
      { ...ours, scope: { coding: [...(ours.scope.coding ?? []), { system: 'urn:x', code: 'y' }] } },
    ],
    [
      'an extra category',
      { ...ours, category: [...ours.category, { coding: [{ system: 'urn:x', code: 'treatment' }] }] },
    ],
    ['a category dropped', { ...ours, category: ours.category.slice(0, 1) }],
    ['a deny provision', { ...ours, provision: { ...provision, type: 'deny' } }],
    [
      'a nested provision',
      { ...ours, provision: { ...provision, provision: [{ type: 'permit', action: provision.action }] } },
    ],
    [
      'provision data',
      {
        ...ours,
        provision: { ...provision, data: [{ meaning: 'related', reference: { reference: 'Observation/o' } }] },
      },
    ],
    [
      'a disclose action',
      {
        ...ours,
        provision: {
          ...provision,
          action: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'disclose' }] }],
        },
      },
    ],
    [
      'a Practitioner as actor',
      {
        ...ours,
        provision: { ...provision, actor: [{ role: actor?.role ?? {}, reference: { reference: 'Practitioner/x' } }] },
      },
    ],
    [
      'a second actor',
      {
        ...ours,
        provision: {
          ...provision,
          actor: [...(provision.actor ?? []), { role: actor?.role ?? {}, reference: { display: 'x' } }],
        },
      },
    ],
    [
      'an actor referring to a stored resource',
      {
        ...ours,
        provision: {
          ...provision,
          actor: [{ role: actor?.role ?? {}, reference: { ...actor?.reference, reference: 'Organization/x' } }],
        },
      },
    ],
    [
      'another role',
      {
        ...ours,
        provision: {
          ...provision,
          actor: [
            { ...actor, role: { coding: [{ system: 'urn:x', code: 'grantee' }] }, reference: actor?.reference ?? {} },
          ],
        },
      },
    ],
    ['a performer', { ...ours, performer: [{ reference: 'Practitioner/x' }] }],
    ['a Group as patient', { ...ours, patient: { reference: 'Group/g' } }],
  ];

  it.each(CONSENT_BOTS)('%s: each create is refused; ours is allowed', async (name) => {
    for (const [, consent] of abuses) {
      await expectWrite(name, consent, false);
    }
    await expectWrite(name, ours, true);
    await expectWrite(name, encodeConsent({ ...model, patient: undefined }), true);
  });

  it.each(CONSENT_BOTS)('%s: an update may not re-point a known patient, the source or the key', async (name) => {
    const stored = { ...ours, id: 'c1', meta: { versionId: '1' } };
    await expectWrite(name, { ...stored, patient: { reference: 'Patient/victim' } }, false, stored);
    await expectWrite(name, encodeConsent({ ...model, sourceId: 'fhirsrc_other' }, stored), false, stored);
    await expectWrite(
      name,
      encodeConsent({ ...model, key: { ...model.key, value: 'conn_other' } }, stored),
      false,
      stored
    );
    const withoutPatient = encodeConsent({ ...model, patient: undefined });
    // Legitimate: status changes, and an unknown patient becoming known.
    await expectWrite(
      name,
      encodeConsent({ ...model, status: 'inactive', periodEnd: '2026-05-01T00:00:00.000Z' }, stored),
      true,
      stored
    );
    await expectWrite(name, encodeConsent(model, withoutPatient), true, withoutPatient);
  });

  it.each(CONSENT_BOTS)(
    '%s: a Consent someone else wrote with our category but no key of ours cannot be adopted (the criteria name the category, not the key: TX-10)',
    async (name) => {
      const foreign: Consent = { ...ours, id: 'c9', meta: { versionId: '1' }, identifier: [] };
      await expectWrite(name, ours, false, foreign);
      await expectWrite(name, { ...foreign, status: 'inactive' }, false, foreign);
    }
  );

  it("a criterion on the actor's identifier (`actor:identifier=`, in another index) would refuse every Consent the bots write: Medplum matches criteria in memory on each write, and that modifier matches nothing there (AC-13; observed on 5.1.29: every flow failed with access_denied)", () => {
    const policy = loadPolicy(FLOW);
    const byActor = {
      ...policy,
      resource: (policy.resource ?? []).map((g) =>
        g.resourceType === 'Consent' ? { ...g, criteria: `Consent?actor:identifier=${SYSTEM.fhirSourceId}|` } : g
      ),
    };
    expect(medplumAllows(policy, 'create', ours)).toBe(true);
    expect(medplumAllows(byActor, 'create', ours)).toBe(false);
  });

  it.each(CONSENT_BOTS)(
    '%s: a Consent stored with another scope or category, even with our key and category, is not rewritten into ours',
    async (name) => {
      const research: Consent = {
        ...ours,
        id: 'c8',
        meta: { versionId: '1' },
        scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] },
      };
      await expectWrite(name, ours, false, research);
      const otherCategory: Consent = { ...ours, id: 'c7', meta: { versionId: '1' }, category: ours.category.slice(1) };
      await expectWrite(name, ours, false, otherCategory);
      await expectWrite(name, ours, true, { ...ours, id: 'c6', meta: { versionId: '1' } });
    }
  );

  it.each(CONSENT_BOTS)(
    "%s sees no Consent without the package's category, not even one keyed by a connection (so provisioning gives the category to those from before it)",
    async (name) => {
      const base = new MemoryRepository();
      const older = await base.createResource<Consent>({ ...ours, category: ours.category.slice(0, 2) });
      const privacy = await base.createResource<Consent>({
        ...ours,
        identifier: [],
        category: ours.category.slice(0, 2),
      });
      const current = await base.createResource<Consent>({
        ...ours,
        identifier: [{ ...model.key, value: 'conn_new' }],
      });
      const repo = withAccessPolicy(base, loadPolicy(name));
      const found = (await repo.search<Consent>({ resourceType: 'Consent' })).entry?.map((e) => e.resource?.id) ?? [];
      expect(found).toEqual([current.id]);
      await expect(repo.readResource('Consent', older.id)).rejects.toThrow();
      await expect(repo.readResource('Consent', privacy.id)).rejects.toThrow();
    }
  );
});

describe('abuse: a Task with foreign codes, another kind or another patient', () => {
  const reconnect: Task = {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    identifier: [{ system: SYSTEM.taskKey, value: 'reconnect/conn_1' }],
    code: packageCode(CODE.reconnectEhr),
    for: { reference: 'Patient/p1' },
    authoredOn: '2026-04-25T00:00:00.000Z',
  };
  const records: Task = {
    ...reconnect,
    status: 'completed',
    identifier: [{ system: SYSTEM.taskKey, value: 'records-sync/u/s' }],
    code: packageCode(CODE.recordsSync),
  };

  it('a second coding, or a Task for a Group, is refused; ours is allowed', async () => {
    const withExtra = {
      ...reconnect,
      code: { coding: [...(reconnect.code?.coding ?? []), { system: 'urn:x', code: 'y' }] },
    };
    await expectWrite(FLOW, withExtra, false);
    await expectWrite(FLOW, { ...reconnect, for: { reference: 'Group/g' } }, false);
    await expectWrite(
      SYNC_OK,
      { ...records, code: { coding: [...(records.code?.coding ?? []), { system: 'urn:x', code: 'y' }] } },
      false
    );
    await expectWrite(FLOW, reconnect, true);
    await expectWrite(SYNC_OK, records, true);
  });

  it('an update may not change the kind, the key or a known patient', async () => {
    const stored = { ...reconnect, id: 't1', meta: { versionId: '1' } };
    const followUp = { ...stored, code: packageCode(CODE.connectionFollowUp) };
    await expectWrite(FLOW, followUp, false, stored);
    await expectWrite(
      FLOW,
      { ...stored, identifier: [{ system: SYSTEM.taskKey, value: 'reconnect/conn_2' }] },
      false,
      stored
    );
    await expectWrite(FLOW, { ...stored, for: { reference: 'Patient/victim' } }, false, stored);
    await expectWrite(FLOW, { ...stored, status: 'completed' }, true, stored);
    const unknown = { ...stored, for: undefined };
    await expectWrite(FLOW, { ...stored }, true, unknown);
  });

  it('a Task someone else wrote with our code but no key of ours cannot be adopted (the criteria name the code, not the key: TX-10)', async () => {
    const foreign: Task = { ...reconnect, id: 't9', meta: { versionId: '1' }, identifier: [] };
    await expectWrite(FLOW, { ...foreign, identifier: reconnect.identifier }, false, foreign);
    await expectWrite(FLOW, { ...foreign, status: 'completed' }, false, foreign);
  });
});

describe('abuse: a marker for another bot’s event type (suppressing its events)', () => {
  const flowEventMarker = (type: string): Basic =>
    buildMarker('evt_01JA0B1C2D3E4F5G6H7J8K9M0N', type, '2026-04-25T00:00:00.000Z', undefined);

  it.each([
    [SYNC_OK, 'patient_flow.completed'],
    [REFRESH, 'records.sync.completed'],
    [FLOW, 'connection.token_refresh_failed'],
    ['medblocks-records-sync-failed', 'records.sync.completed'],
  ] as const)('%s may not write a marker of type %s', async (name, type) => {
    await expectWrite(name, flowEventMarker(type), false);
  });

  it.each(MARKING_BOTS.map((b) => [b.name, b.eventTypes[0]] as const))(
    '%s may mark its own type %s',
    async (name, type) => {
      await expectWrite(name, flowEventMarker(type), true);
      await expectWrite(name, { ...flowEventMarker(type), subject: { reference: 'Group/g' } }, false);
    }
  );

  it('the records-sync bots write no marker at all, not even of their own type: their stamp on the sync Task is it', async () => {
    expect(STAMPING_BOTS.map((b) => b.name).sort()).toEqual([
      'medblocks-records-sync-completed',
      'medblocks-records-sync-failed',
    ]);
    for (const bot of STAMPING_BOTS) {
      await expectWrite(bot.name, flowEventMarker(bot.eventTypes[0]), false);
    }
  });

  it('a marker another bot may write (its own type, this event id) does not suppress the event', async () => {
    const world = new World();
    const flow = patientFlowCompleted({ connections: [connection({ id: 'conn_m' })] });
    const refreshBot = world.bot(REFRESH);
    await refreshBot.medplum.createResource(
      buildMarker(flow.id, 'connection.token_refresh_failed', flow.created_at, undefined)
    );
    await expect(world.bot(FLOW).deliver(flow)).resolves.toMatchObject({ status: 'processed' });
    expect((await world.consents()).map((c) => c.identifier?.[0]?.value)).toEqual(['conn_m']);
    await expect(world.bot(FLOW).deliver(flow)).resolves.toMatchObject({ status: 'processed' });
  });
});

describe('abuse: the dead-letter grant (an ops Task, never a chart entry)', () => {
  /** A dead-letter as the named bot writes it: of its own event type. */
  function fixture(name: WebhookBotName) {
    const report: DeadLetterReport = {
      key: 'evt_01JA0B1C2D3E4F5G6H7J8K9DLQ',
      owner: name,
      type: REGISTRY[name].eventTypes[0],
      reason: 'invalid_payload',
      path: 'data.object.total',
      seenAt: '2026-04-25T00:00:00.000Z',
    };
    const ours = buildDeadLetter(report);
    const stored = { ...ours, id: 'dl1', meta: { versionId: '1' } };
    const resolved = { ...resolveDeadLetter(stored, '2026-04-26T00:00:00.000Z'), meta: { versionId: '2' } };
    return { report, ours, stored, resolved };
  }
  /** Another webhook bot than the named one. */
  const otherThan = (name: WebhookBotName): WebhookBotName => (name === SYNC_OK ? FLOW : SYNC_OK);

  const abusesOf = (ours: Task, name: WebhookBotName): [string, Task][] => {
    const code = ours.code?.coding ?? [];
    return [
      ['a Task for a Patient (into the chart)', { ...ours, for: { reference: 'Patient/p1' } }],
      ['a focus', { ...ours, focus: { reference: 'Patient/p1' } }],
      ['a basedOn', { ...ours, basedOn: [{ reference: 'ServiceRequest/s1' }] }],
      ['a second coding', { ...ours, code: { ...ours.code, coding: [...code, { system: 'urn:x', code: 'y' }] } }],
      ['another code of ours', { ...ours, code: { coding: [{ ...code[0], code: 'reconnect-ehr' }] } }],
      ['an output', { ...ours, output: [{ type: { text: 'x' }, valueReference: { reference: 'Patient/p1' } }] }],
      ['status in-progress', { ...ours, status: 'in-progress' }],
      ['status requested', { ...ours, status: 'requested' }],
      ['intent plan', { ...ours, intent: 'plan' }],
      [
        'another businessStatus',
        { ...ours, businessStatus: { coding: [{ system: SYSTEM.code, code: 'resolved-by-hand' }] } },
      ],
      [
        'a second businessStatus coding',
        {
          ...ours,
          businessStatus: {
            coding: [...(ours.businessStatus?.coding ?? []), { system: 'urn:x', code: 'quarantined' }],
          },
        },
      ],
      ['no businessStatus', { ...ours, businessStatus: undefined }],
      [
        'a second identifier',
        { ...ours, identifier: [...(ours.identifier ?? []), { system: SYSTEM.taskKey, value: 'reconnect/conn_1' }] },
      ],
      ['no event-type input', { ...ours, input: ours.input?.filter((i) => i.type.text !== 'event-type') }],
      ['no owner', { ...ours, groupIdentifier: undefined }],
      ['another bot as owner', { ...ours, groupIdentifier: { ...ours.groupIdentifier, value: otherThan(name) } }],
      [
        'an owner with an extension',
        { ...ours, groupIdentifier: { ...ours.groupIdentifier, extension: [{ url: 'urn:x', valueString: 'x' }] } },
      ],
      [
        'a second event-type input',
        { ...ours, input: [...(ours.input ?? []), { type: { text: 'event-type' }, valueString: 'unknown' }] },
      ],
    ];
  };

  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s: each create is refused; its own dead-letter is allowed',
    async (name) => {
      const { report, ours } = fixture(name);
      for (const [what, task] of abusesOf(ours, name)) {
        await expectWrite(name, task, false).catch((err: unknown) => {
          throw new Error(`${what}: ${String(err)}`);
        });
      }
      await expectWrite(name, ours, true);
      await expectWrite(
        name,
        buildDeadLetter({ ...report, key: 'sha256-00ff', type: 'unknown', path: undefined }),
        true
      );
    }
  );

  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s: an update may not change the identifier or add a patient, an output or another state; resolve and re-open are allowed',
    async (name) => {
      const { report, stored, resolved } = fixture(name);
      await expectWrite(
        name,
        { ...stored, identifier: [{ system: SYSTEM.deadLetter, value: 'evt_other' }] },
        false,
        stored
      );
      await expectWrite(name, { ...resolved, for: { reference: 'Patient/p1' } }, false, stored);
      await expectWrite(name, { ...resolved, output: [{ type: { text: 'x' }, valueString: 'y' }] }, false, stored);
      await expectWrite(name, { ...stored, status: 'in-progress' }, false, stored);
      await expectWrite(
        name,
        { ...resolved, businessStatus: { coding: [{ system: SYSTEM.code, code: 'ignored' }] } },
        false,
        stored
      );
      // The bots' own writes: resolved by a later successful delivery, re-opened by a later quarantine,
      // and a repeated quarantine moving lastModified.
      await expectWrite(name, resolveDeadLetter(stored, '2026-04-26T00:00:00.000Z'), true, stored);
      await expectWrite(
        name,
        buildDeadLetter({ ...report, seenAt: '2026-04-27T00:00:00.000Z' }, resolved),
        true,
        resolved
      );
      await expectWrite(name, buildDeadLetter({ ...report, seenAt: '2026-04-27T00:00:00.000Z' }, stored), true, stored);
    }
  );

  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s: another bot’s dead-letter can be neither created, resolved, re-opened nor re-typed',
    async (name) => {
      const other = fixture(otherThan(name));
      const own = fixture(name);
      await expectWrite(name, other.ours, false);
      await expectWrite(name, resolveDeadLetter(other.stored, '2026-04-26T00:00:00.000Z'), false, other.stored);
      await expectWrite(
        name,
        buildDeadLetter({ ...other.report, seenAt: '2026-04-27T00:00:00.000Z' }, other.resolved),
        false,
        other.resolved
      );
      // Re-typing another bot's dead-letter as one's own is refused on the stored version.
      await expectWrite(name, { ...own.stored, id: other.stored.id }, false, other.stored);
    }
  );

  // Every event type a Medblocks delivery may carry, for every bot: the policy must allow exactly the
  // bot's own types and `unknown` (a body without a usable type). A type missing from a bot's list
  // would turn each of its quarantines into a 403, retried by Medblocks until it disables the endpoint.
  const matrix = WEBHOOK_BOTS.flatMap((bot) =>
    [...EVENT_TYPES, UNKNOWN_EVENT_TYPE].map((type) => ({
      bot: bot.name,
      type,
      allowed: type === UNKNOWN_EVENT_TYPE || (bot.eventTypes as readonly string[]).includes(type),
    }))
  );
  it.each(matrix)('$bot, a dead-letter of type $type: create, resolve and re-open allowed: $allowed', async (row) => {
    const report: DeadLetterReport = { ...fixture(row.bot).report, type: row.type };
    const stored = { ...buildDeadLetter(report), id: 'dl1', meta: { versionId: '1' } };
    const resolved = { ...resolveDeadLetter(stored, '2026-04-26T00:00:00.000Z'), meta: { versionId: '2' } };
    await expectWrite(row.bot, buildDeadLetter(report), row.allowed);
    await expectWrite(row.bot, resolveDeadLetter(stored, '2026-04-26T00:00:00.000Z'), row.allowed, stored);
    await expectWrite(
      row.bot,
      buildDeadLetter({ ...report, seenAt: '2026-04-27T00:00:00.000Z' }, resolved),
      row.allowed,
      resolved
    );
  });

  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s: an event-type input without a value is refused by the policy, and first by the validator (AC-12)',
    async (name) => {
      const { ours, stored } = fixture(name);
      const untyped = (task: Task): Task => ({
        ...task,
        input: task.input?.map((i) => (i.type.text === 'event-type' ? { type: i.type } : i)),
      });
      const policy = loadPolicy(name);
      expect(medplumAllows(policy, 'create', untyped(ours))).toBe(false);
      expect(medplumAllows(policy, 'update', stored, untyped(stored))).toBe(false);
      // Task.input.value[x] is required: the server answers 400 before its policy check, as the emulator does.
      await expect(withAccessPolicy(new MemoryRepository(), policy).createResource(untyped(ours))).rejects.toThrow(
        'Missing required property'
      );
    }
  );
});

describe('the Organization grant: search only (the EHR names), nothing else', () => {
  const source: Organization = {
    resourceType: 'Organization',
    identifier: [{ system: SYSTEM.fhirSourceId, value: 'fhirsrc_abuse' }],
    name: 'Example EHR',
  };
  const other: Organization = {
    resourceType: 'Organization',
    identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: '1234567893' }],
    name: 'A clinic',
  };

  it.each(WEBHOOK_BOTS.map((b) => b.name))('%s', async (name) => {
    const policy = loadPolicy(name);
    // Medplum's own evaluation: search is the one interaction on the type.
    expect(
      (['search', 'read', 'create', 'update', 'delete', 'history', 'vread'] as const).filter((i) =>
        accessPolicySupportsInteraction(policy, i, 'Organization')
      )
    ).toEqual(['search']);
    expect(satisfiedAccessPolicy(source, 'search', policy)).toBeDefined();
    expect(satisfiedAccessPolicy(other, 'search', policy)).toBeUndefined();
    for (const interaction of ['read', 'create', 'update', 'delete'] as const) {
      expect(satisfiedAccessPolicy(source, interaction, policy)).toBeUndefined();
    }

    // The emulator: a search finds only the sources (shown whole: a search-only grant hides nothing, AC-8) …
    const base = new MemoryRepository();
    const ours = await base.createResource(source);
    const theirs = await base.createResource(other);
    const repo = withAccessPolicy(base, policy);
    const found = (await repo.search({ resourceType: 'Organization' })).entry?.map((e) => e.resource) ?? [];
    expect(found).toEqual([ours]);
    // … and every other interaction is refused, ours or not.
    for (const target of [ours, theirs]) {
      await expect(repo.readResource('Organization', target.id)).rejects.toThrow(/Forbidden/);
      await expect(repo.updateResource({ ...target, name: 'Renamed' })).rejects.toThrow(/Forbidden/);
      await expect(repo.deleteResource('Organization', target.id)).rejects.toThrow(/Forbidden/);
    }
    await expectWrite(name, source, false);
    await expectWrite(name, { ...source, name: 'Renamed' }, false, source);
  });
});

describe('every write grant is constrained, every Patient read hides the demographics', () => {
  it.each(WEBHOOK_BOTS.map((b) => b.name))('%s', (name) => {
    for (const grant of loadPolicy(name).resource ?? []) {
      const writes = (grant.interaction ?? []).some((i) => i === 'create' || i === 'update');
      if (writes) expect(grant.writeConstraint?.length, `${grant.resourceType} writes`).toBeGreaterThan(0);
      if (grant.resourceType === 'Patient' && grant.interaction?.includes('search')) {
        // The server hides fields of search results with the grant that allows `read` (AC-8).
        expect(grant.interaction).toContain('read');
        expect(grant.hiddenFields?.length).toBeGreaterThan(0);
      }
      if (grant.resourceType === 'Patient') expect(grant.interaction).not.toContain('update');
    }
  });
});

// The bypasses a security review found (evaluated with @medplum/core and confirmed in the emulator), each now
// refused. The resources start from what the bots really write (a World delivery), so that the
// legitimate write is shown allowed beside every abuse.
describe('abuse: text smuggled where the grants looked away', () => {
  const PHI = [{ url: 'http://example.org/smuggled', valueString: 'Jane Doe, 1970-01-01' }];
  const containedPatient: Patient = { resourceType: 'Patient', name: [{ family: 'Doe' }], birthDate: '1970-01-01' };
  /** What a bot writes, without the server's id and meta: the legitimate create. */
  const asCreate = <T extends Resource>(resource: T): T => ({ ...resource, id: undefined, meta: undefined });

  async function written(): Promise<{ consent: Consent; reconnect: Task; sync: Task }> {
    const world = new World();
    await world
      .bot(FLOW)
      .deliver(patientFlowCompleted({ connections: [connection({ id: 'conn_b', status: 'refresh_failed' })] }));
    await world.bot(SYNC_OK).deliver(recordsSyncCompleted({ patient_id: 'user_b' }));
    const tasks = await world.tasks();
    const consent = (await world.consents())[0];
    const reconnect = tasks.find((t) => t.code?.coding?.[0]?.code === CODE.reconnectEhr);
    const sync = tasks.find((t) => t.code?.coding?.[0]?.code === CODE.recordsSync);
    if (!consent || !reconnect || !sync) throw new Error('the World wrote less than expected');
    return { consent, reconnect, sync };
  }

  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s: a Patient carries nothing but our identifier, not even in primitive extensions or meta',
    async (name) => {
      const ours = buildPatient('user_7');
      const id = ours.identifier?.[0] ?? {};
      const abuses: [string, Patient][] = [
        ['identifier._value extension', { ...ours, identifier: [{ ...id, _value: { extension: PHI } } as typeof id] }],
        [
          'identifier._system extension',
          { ...ours, identifier: [{ ...id, _system: { extension: PHI } } as typeof id] },
        ],
        ['identifier._value id', { ...ours, identifier: [{ ...id, _value: { id: 'Jane-Doe' } } as typeof id] }],
        ['identifier.id', { ...ours, identifier: [{ ...id, id: 'Jane-Doe' }] }],
        ['meta.tag', { ...ours, meta: { tag: [{ system: 'urn:x', code: 'Jane Doe' }] } }],
        ['meta.security', { ...ours, meta: { security: [{ system: 'urn:x', code: 'Jane Doe' }] } }],
        ['meta.profile', { ...ours, meta: { profile: ['http://example.org/Jane-Doe'] } }],
        ['_birthDate without a value', { ...ours, _birthDate: { extension: PHI } } as Patient],
      ];
      for (const [what, patient] of abuses) {
        await expectWrite(name, patient, false).catch((err: unknown) => {
          throw new Error(`${what}: ${String(err)}`);
        });
      }
      await expectWrite(name, ours, true);
      // A patient id FHIR's string type refuses is written encoded, under its own system (item 6).
      await expectWrite(name, buildPatient('user\u00a07'), true);
    }
  );

  it.each(CONSENT_BOTS)(
    '%s: a Consent carries no modifierExtension, contained resource, foreign extension or verification',
    async (name) => {
      const { consent } = await written();
      const ours = asCreate(consent);
      const provision = ours.provision ?? {};
      const abuses: [string, Consent][] = [
        ['modifierExtension', { ...ours, modifierExtension: PHI }],
        ['provision.modifierExtension', { ...ours, provision: { ...provision, modifierExtension: PHI } }],
        ['provision.extension', { ...ours, provision: { ...provision, extension: PHI } }],
        ['a contained Patient', { ...ours, contained: [containedPatient] }],
        ['a foreign extension', { ...ours, extension: [...(ours.extension ?? []), ...PHI] }],
        [
          'text in our stamp',
          {
            ...ours,
            extension: ours.extension?.map((e) => ({
              ...e,
              extension: e.extension?.map((x) => (x.url === 'createdAt' ? { url: x.url, valueString: 'Jane Doe' } : x)),
            })),
          },
        ],
        ['verification', { ...ours, verification: [{ verified: true, verifiedWith: { display: 'Jane Doe' } }] }],
        [
          'a second identifier',
          { ...ours, identifier: [...(ours.identifier ?? []), { system: 'urn:x', value: 'Jane Doe' }] },
        ],
        ['meta.tag', { ...ours, meta: { tag: [{ code: 'Jane Doe' }] } }],
        [
          'a narrative',
          { ...ours, text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">Jane Doe</div>' } },
        ],
      ];
      for (const [what, abuse] of abuses) {
        await expectWrite(name, abuse, false).catch((err: unknown) => {
          throw new Error(`${what}: ${String(err)}`);
        });
      }
      await expectWrite(name, ours, true);
      // What someone else added to the stored Consent is kept by the bot's update, not refused.
      const annotated = {
        ...consent,
        extension: [...(consent.extension ?? []), ...PHI],
        meta: { ...consent.meta, tag: [{ code: 'vip' }] },
      };
      await expectWrite(name, { ...annotated, status: 'inactive' }, true, annotated);
      await expectWrite(name, { ...consent, contained: [containedPatient] }, false, consent);
    }
  );

  it('a records-sync Task cannot be hidden, re-pointed, owned by text or carry a contained Patient', async () => {
    const { sync } = await written();
    const ours = asCreate(sync);
    for (const name of [SYNC_OK, 'medblocks-records-sync-failed'] as const) {
      const abuses: [string, Task][] = [
        ['entered-in-error', { ...ours, status: 'entered-in-error' }],
        ['cancelled', { ...ours, status: 'cancelled' }],
        ['a focus on another Patient', { ...ours, focus: { reference: 'Patient/victim' } }],
        ['an owner with a display', { ...ours, owner: { reference: 'Practitioner/p1', display: 'Jane Doe' } }],
        ['an owner that is not a reference', { ...ours, owner: { display: 'Jane Doe' } }],
        ['a contained Patient', { ...ours, contained: [containedPatient] }],
        [
          'a second identifier',
          { ...ours, identifier: [...(ours.identifier ?? []), { system: 'urn:x', value: 'Jane Doe' }] },
        ],
        ['a note', { ...ours, note: [{ text: 'Jane Doe' }] }],
        ['a modifierExtension', { ...ours, modifierExtension: PHI }],
        ['a foreign extension', { ...ours, extension: [...(ours.extension ?? []), ...PHI] }],
        ['a display on for', { ...ours, for: { ...ours.for, display: 'Jane Doe' } }],
      ];
      for (const [what, abuse] of abuses) {
        await expectWrite(name, abuse, false).catch((err: unknown) => {
          throw new Error(`${name}, ${what}: ${String(err)}`);
        });
      }
      await expectWrite(name, ours, true);
      // The configured owner (MEDBLOCKS_TASK_OWNER) is a bare reference: allowed.
      await expectWrite(name, { ...ours, owner: { reference: 'Practitioner/p1' } }, true);
      // Staff's note and reassignment on the stored Task are kept by the bot's next update.
      const staffed = {
        ...sync,
        note: [{ text: 'called the patient' }],
        owner: { reference: 'Practitioner/p2', display: 'Dr Who' },
      };
      await expectWrite(name, { ...staffed, status: 'failed' }, true, staffed);
      await expectWrite(name, { ...staffed, note: [{ text: 'Jane Doe' }] }, false, staffed);
    }
  });

  it('a reconnect Task may focus its Consent only', async () => {
    const { reconnect } = await written();
    const ours = asCreate(reconnect);
    await expectWrite(FLOW, ours, true);
    await expectWrite(FLOW, { ...ours, focus: { reference: 'Patient/victim' } }, false);
    await expectWrite(FLOW, { ...ours, focus: { ...ours.focus, display: 'Jane Doe' } }, false);
    await expectWrite(FLOW, { ...ours, status: 'entered-in-error' }, false);
  });

  it.each(WEBHOOK_BOTS.map((b) => b.name))(
    '%s: a dead-letter carries no contained resource or modifierExtension',
    async (name) => {
      const ours = buildDeadLetter({
        key: 'evt_01JA0B1C2D3E4F5G6H7J8K9DLQ',
        owner: name,
        type: REGISTRY[name].eventTypes[0],
        reason: 'invalid_payload',
        path: undefined,
        seenAt: '2026-04-25T00:00:00.000Z',
      });
      await expectWrite(name, { ...ours, contained: [containedPatient] }, false);
      await expectWrite(name, { ...ours, modifierExtension: PHI }, false);
      await expectWrite(name, { ...ours, extension: PHI }, false);
      await expectWrite(name, { ...ours, note: [{ text: 'Jane Doe' }] }, false);
      await expectWrite(name, ours, true);
    }
  );

  it.each(MARKING_BOTS.map((b) => [b.name, b.eventTypes[0]] as const))(
    '%s: a marker carries no extension and no date the sweeper would never reach',
    async (name, type) => {
      const ours = buildMarker('evt_01JA0B1C2D3E4F5G6H7J8K9M0N', type, '2026-04-25T00:00:00.000Z', undefined);
      await expectWrite(name, { ...ours, extension: PHI }, false);
      await expectWrite(name, { ...ours, modifierExtension: PHI }, false);
      await expectWrite(name, { ...ours, created: '9999-12-31' }, false);
      await expectWrite(name, { ...ours, created: undefined }, false);
      await expectWrite(
        name,
        { ...ours, code: { ...ours.code, text: type, _text: { extension: PHI } } as Basic['code'] },
        false
      );
      await expectWrite(name, ours, true);
    }
  );

  it('an event stamped ahead of the clock is marked on the day it is applied, so the policy allows it', () => {
    const marker = buildMarker(
      'evt_1',
      'records.sync.completed',
      '2026-12-04T00:00:01.000Z',
      undefined,
      '2026-12-03T23:59:59.000Z'
    );
    expect(marker.created).toBe('2026-12-03');
    expect(
      buildMarker('evt_1', 'records.sync.completed', '2026-04-25T00:00:00.000Z', undefined, '2026-12-03T00:00:00.000Z')
        .created
    ).toBe('2026-04-25');
  });
});
