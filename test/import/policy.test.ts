// What a compromised import bot could try with its own policy, each shown refused twice — by
// Medplum's own evaluation (`satisfiedAccessPolicy` picks the grant, the write constraints run with
// %before/%after as the server's `Repository.isResourceWriteable` does) and through the emulator's
// access model — beside the legitimate write it is allowed, so a policy refusing everything fails.
import { readFileSync } from 'node:fs';
import type { AccessPolicy, Condition, Provenance, Resource, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { CODE, packageCode, SYSTEM } from '../../src/runtime/fhir/systems';
import { outputOf } from '../../src/runtime/fhir/tasks/parts';
import { withImportOutcome, zeroCounts } from '../../src/runtime/import/import-task';
import { IMPORT_RUN_SYSTEM, RECORD_SYSTEM, sourceOrganization } from '../../src/runtime/import/identity';
import { emulatorAllows, medplumAllows } from '../support/policy-decisions';

const policy = JSON.parse(
  readFileSync(new URL('../../access-policies/medblocks-records-import.json', import.meta.url), 'utf8')
) as AccessPolicy;

async function expectWrite(resource: Resource, allowed: boolean, existing?: Resource): Promise<void> {
  expect(medplumAllows(policy, existing ? 'update' : 'create', resource, existing), 'Medplum’s evaluation').toBe(
    allowed
  );
  expect(await emulatorAllows(policy, resource, existing), 'the emulator').toBe(allowed);
}

const condition: Condition = {
  resourceType: 'Condition',
  identifier: [{ system: RECORD_SYSTEM, value: 'fhirsrc_epic/Condition/c1' }],
  subject: { reference: 'Patient/p1' },
  code: { text: 'Hypertension' },
};

const importTask: Task = {
  resourceType: 'Task',
  identifier: [{ system: SYSTEM.taskKey, value: 'records-import/pt_1' }],
  code: packageCode(CODE.recordsImport),
  status: 'in-progress',
  intent: 'order',
  for: { reference: 'Patient/p1' },
};

const provenance: Provenance = {
  resourceType: 'Provenance',
  target: [{ reference: 'Condition/c-ours' }],
  recorded: '2026-11-20T09:00:00Z',
  agent: [{ who: sourceOrganization('fhirsrc_epic') }],
  entity: [
    { role: 'derivation', what: { reference: 'Task/t1', identifier: { system: IMPORT_RUN_SYSTEM, value: 'run-1' } } },
  ],
};

describe('the import bot’s policy', () => {
  it('creates and updates an imported record', async () => {
    await expectWrite(condition, true);
    await expectWrite({ ...condition, code: { text: 'Essential hypertension' } }, true, condition);
  });

  it('refuses a record without our identifier: what your team wrote is out of reach', async () => {
    await expectWrite({ ...condition, identifier: [{ system: 'http://hospital.example/mrn', value: '1' }] }, false);
    await expectWrite({ ...condition, identifier: [] }, false);
  });

  it('refuses turning one imported record into another (the record identifier changed)', async () => {
    await expectWrite(
      { ...condition, identifier: [{ system: RECORD_SYSTEM, value: 'fhirsrc_epic/Condition/c2' }] },
      false,
      condition
    );
  });

  it('refuses a second record identifier', async () => {
    await expectWrite(
      {
        ...condition,
        identifier: [...(condition.identifier ?? []), { system: RECORD_SYSTEM, value: 'x/Condition/y' }],
      },
      false
    );
  });

  it('refuses every type it does not import, even carrying our identifier', async () => {
    await expectWrite({ resourceType: 'Patient', identifier: condition.identifier }, false);
    await expectWrite(
      {
        resourceType: 'Coverage',
        identifier: condition.identifier,
        status: 'active',
        beneficiary: { reference: 'Patient/p1' },
        payor: [{ display: 'x' }],
      },
      false
    );
  });

  it('keeps its own Task, and only as its kind, for one Patient, never withdrawn', async () => {
    await expectWrite(importTask, true);
    await expectWrite({ ...importTask, status: 'completed' }, true, importTask);
    await expectWrite({ ...importTask, code: packageCode(CODE.recordsSync) }, false);
    await expectWrite({ ...importTask, for: { reference: 'Patient/p2' } }, false, importTask);
    await expectWrite({ ...importTask, status: 'cancelled' }, false, importTask);
    await expectWrite({ ...importTask, identifier: [{ system: SYSTEM.taskKey, value: 'reconnect/conn_1' }] }, false);
  });

  const syncTask: Task = {
    ...importTask,
    identifier: [{ system: SYSTEM.taskKey, value: 'records-sync/pt_1/fhirsrc_epic' }],
    code: packageCode(CODE.recordsSync),
    status: 'completed',
    businessStatus: { text: 'Records synced' },
    output: [outputOf('total', { valueInteger: 12 }), outputOf('errors', { valueInteger: 0 })],
  };

  it('on a records-sync Task it follows, adds its three counts and changes nothing else', async () => {
    const counts = { ...zeroCounts(), created: 11, refused: 1 };
    const reported = withImportOutcome(syncTask, counts);
    await expectWrite(reported, true, syncTask);
    await expectWrite(syncTask, false); // never creates one
    await expectWrite({ ...reported, status: 'failed' }, false, syncTask);
    await expectWrite({ ...reported, businessStatus: { text: 'Records sync failed' } }, false, syncTask);
    await expectWrite({ ...syncTask, output: [outputOf('total', { valueInteger: 9999 })] }, false, syncTask);
    await expectWrite(
      { ...syncTask, output: [...(syncTask.output ?? []), outputOf('other', { valueString: 'x' })] },
      false,
      syncTask
    );
    await expectWrite({ ...reported, note: [{ text: 'smuggled' }] }, false, syncTask);
  });

  it('creates Provenance only naming an EHR source and an import run', async () => {
    await expectWrite(provenance, true);
    await expectWrite({ ...provenance, agent: [{ who: { reference: 'Practitioner/x' } }] }, false);
    await expectWrite({ ...provenance, entity: [] }, false);
  });

  it('grants no delete and no Patient access at all', () => {
    for (const grant of policy.resource ?? []) {
      expect(grant.interaction ?? [], grant.resourceType).not.toContain('delete');
      expect(grant.resourceType).not.toBe('Patient');
    }
  });
});
