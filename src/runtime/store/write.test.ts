// How one delivery's planned writes are cut into bundles and what is sent again after a 409: the
// server assigns every create's id before it runs a batch, so a create that fails to serialise
// must never share a bundle with a write that points at it.
import { describe, expect, it } from 'vitest';
import type { PlannedWrite } from './contract';
import { dependencyStages, withCreatedReferences, writesToResend } from './write';
import type { WriteOutcome } from './write';

function create(fullUrl: string, resource: PlannedWrite['resource']): PlannedWrite {
  return { kind: 'create', fullUrl, resource, ifNoneExist: `identifier=${fullUrl}`, existingIsConflict: false };
}

const patient = create('urn:uuid:p', { resourceType: 'Patient' });
const consent = create('urn:uuid:c', {
  resourceType: 'Consent',
  status: 'active',
  scope: { text: 'x' },
  category: [{ text: 'x' }],
  patient: { reference: 'urn:uuid:p' },
});
const reconnect = create('urn:uuid:t', {
  resourceType: 'Task',
  status: 'requested',
  intent: 'order',
  focus: { reference: 'urn:uuid:c' },
  for: { reference: 'urn:uuid:p' },
});
const storedTask = create('urn:uuid:s', {
  resourceType: 'Task',
  status: 'requested',
  intent: 'order',
  for: { reference: 'Patient/123' },
});

describe('dependencyStages', () => {
  it('one bundle when every write points only at stored resources', () => {
    const storedConsent = create('urn:uuid:c2', {
      resourceType: 'Consent',
      status: 'active',
      scope: { text: 'x' },
      category: [{ text: 'x' }],
      patient: { reference: 'Patient/123' },
    });
    expect(dependencyStages([storedTask, storedConsent])).toHaveLength(1);
  });

  it('a Patient create goes first and what points at it follows; a Task may share a bundle with the Consent it focuses', () => {
    expect(dependencyStages([reconnect, consent, patient, storedTask])).toEqual([
      [patient, storedTask],
      [reconnect, consent],
    ]);
  });
});

describe('writesToResend', () => {
  const outcome = (unserialised: PlannedWrite[], other = 0): WriteOutcome => ({
    created: new Map(),
    conflicts: [
      ...unserialised.map(() => ({ cause: 'serialization' as const, status: 409 })),
      ...Array.from({ length: other }, () => ({ cause: 'stale-version' as const, status: 412 })),
    ],
    unserialised,
  });

  it('the writes that answered 409, when nothing that committed points at them', () => {
    expect(writesToResend([storedTask, consent], outcome([consent]))).toEqual([consent]);
  });

  it('nothing to resend when a committed write points at a create that failed (only a re-plan repairs it)', () => {
    expect(writesToResend([patient, consent], outcome([patient]))).toBeUndefined();
  });

  it('nothing to resend when another conflict needs a re-read', () => {
    expect(writesToResend([storedTask, consent], outcome([consent], 1))).toBeUndefined();
  });
});

describe('withCreatedReferences', () => {
  it('points a later bundle at what an earlier one created, and leaves other references alone', () => {
    const [task] = withCreatedReferences([reconnect], new Map([['urn:uuid:c', 'Consent/42']]));
    expect(task?.resource).toMatchObject({ focus: { reference: 'Consent/42' }, for: { reference: 'urn:uuid:p' } });
  });
});
