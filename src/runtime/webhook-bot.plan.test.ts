// A webhook bot's handler plans everything a delivery writes: what the
// event changes, and the resolution of the event's own dead-letter when an earlier delivery
// quarantined it — so the pipeline writes the plan as it is.
import type { WithId } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { readSettings } from './settings';
import type { DeliveryState } from './store/contract';
import { recordsSyncFailed, sampleRecordsSyncFailed } from './events/records-sync-failed';
import { bindEventType } from './webhook-bot';

const EMPTY: DeliveryState = {
  marker: undefined,
  patientByIdentifier: { resourceType: 'Patient', id: 'p-1' },
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

const { bot } = bindEventType(recordsSyncFailed);
const plan = (state: DeliveryState) => bot.handler.plan(sampleRecordsSyncFailed(), state, context);

describe('a webhook bot’s plan', () => {
  it('closes the event’s open dead-letter, version-checked, at the time the event is applied, after its own writes', () => {
    const { writes } = plan({ ...EMPTY, deadLetter: deadLetter('failed') });
    const last = writes.at(-1);
    expect(writes.length).toBeGreaterThan(1);
    expect(last?.kind === 'update' && last.versionId).toBe('3');
    expect(last?.resource).toMatchObject({ id: 'dl-1', status: 'completed', lastModified: context.appliedAt });
  });

  it('writes no dead-letter for one already closed, or none', () => {
    const task = (w: { resource: { resourceType: string } }) => w.resource.resourceType === 'Task';
    const closed = plan({ ...EMPTY, deadLetter: deadLetter('completed') }).writes;
    expect(closed.filter(task)).toHaveLength(1); // the records-sync Task only
    expect(plan(EMPTY).writes.filter(task)).toHaveLength(1);
  });
});
