// The plan is everything a delivery writes: what the event changes, and the resolution of its own
// dead-letter when an earlier delivery quarantined it — so the pipeline writes the plan as it is.
import type { WithId } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { readSettings } from '../settings';
import type { DeliveryState } from '../store/contract';
import { WorkingSet } from './working-set';

const EMPTY: DeliveryState = {
  marker: undefined,
  patientByIdentifier: undefined,
  patientById: undefined,
  consents: [],
  tasks: [],
};

const context = {
  stamp: { at: '2026-05-01T00:00:00.000Z', eventId: 'evt_1' },
  settings: readSettings({}),
  newUuid: () => '00000000-0000-4000-8000-000000000001',
  appliedAt: '2026-05-02T10:00:00.000Z',
};

const deadLetter = (status: Task['status']): WithId<Task> => ({
  resourceType: 'Task',
  id: 'dl-1',
  meta: { versionId: '3' },
  status,
  intent: 'order',
  identifier: [{ system: 'urn:medblocks:dead-letter', value: 'evt_1' }],
});

describe('the working set’s plan', () => {
  it('closes the event’s open dead-letter, version-checked, at the time the event is applied', () => {
    const plan = new WorkingSet({ ...EMPTY, deadLetter: deadLetter('failed') }, context, []).toPlan(undefined);
    expect(plan.writes).toHaveLength(1);
    const [write] = plan.writes;
    expect(write?.kind === 'update' && write.versionId).toBe('3');
    expect(write?.resource).toMatchObject({ id: 'dl-1', status: 'completed', lastModified: context.appliedAt });
  });

  it('writes nothing for a dead-letter already closed, or none', () => {
    expect(
      new WorkingSet({ ...EMPTY, deadLetter: deadLetter('completed') }, context, []).toPlan(undefined).writes
    ).toEqual([]);
    expect(new WorkingSet(EMPTY, context, []).toPlan(undefined).writes).toEqual([]);
  });
});
