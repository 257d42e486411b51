// The emulator checks writes and answers identifier searches as Medplum's server does
// (docs/fidelity-ledger.md VAL-1, SRCH-1; src/tools/emulator/validation.ts).
import type { WithId } from '@medplum/core';
import type { Bundle, OperationOutcome, Patient, Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { token } from '../../src/runtime/fhir/systems';
import { identifierMatches } from '../../src/tools/emulator/validation';
import { EmulatorStore } from '../../src/tools/emulator/store';

function task(output: number): Task {
  return {
    resourceType: 'Task',
    status: 'completed',
    intent: 'order',
    identifier: [{ system: 'urn:test:key', value: `k-${output}` }],
    output: [{ type: { text: 'total' }, valueInteger: output }],
  };
}

describe('VAL-1: writes are validated strictly, refused with 400 and the validator’s OperationOutcome', () => {
  it('a create with an integer beyond int32 is refused, naming the element', async () => {
    const store = new EmulatorStore();
    const answer = await store.handle({ method: 'POST', path: '/Task', body: task(3_000_000_000) });
    expect(answer.status).toBe(400);
    const outcome = answer.body as OperationOutcome;
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0]).toMatchObject({ severity: 'error', code: 'structure' });
    expect(outcome.issue[0]?.expression?.[0]).toMatch(/^Task\.output\[0\]\.value/);
    expect(await store.all('Task')).toEqual([]);
  });

  it('a valid create is stored; an invalid update of it is refused and leaves it unchanged', async () => {
    const store = new EmulatorStore();
    const created = await store.handle({ method: 'POST', path: '/Task', body: task(12) });
    expect(created.status).toBe(201);
    const stored = created.body as WithId<Task>;
    const update = await store.handle({
      method: 'PUT',
      path: `/Task/${stored.id}`,
      body: { ...stored, authoredOn: '2026-02-30T10:00:00Z' },
    });
    expect(update.status).toBe(400);
    expect((await store.all<Task>('Task'))[0]?.authoredOn).toBeUndefined();
  });

  it('conditional creates and batch entries are validated too (an entry answers 400)', async () => {
    const store = new EmulatorStore();
    const batch: Bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        {
          resource: { resourceType: 'Patient', identifier: [{ system: 'urn:x', value: 'bad\u0000' }] },
          request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:x|y' },
        },
        { resource: task(1), request: { method: 'POST', url: 'Task' } },
      ],
    };
    const answer = await store.handle({ method: 'POST', path: '', body: batch });
    const entries = (answer.body as Bundle).entry ?? [];
    expect(entries[0]?.response?.status).toMatch(/^400/);
    expect(entries[1]?.response?.status).toMatch(/^201/);
    expect(await store.all('Patient')).toEqual([]);
  });

  it('a code with two spaces in a row is refused (the value a raw failure_code could carry)', async () => {
    const store = new EmulatorStore();
    const body = { ...task(1), businessStatus: { coding: [{ system: 'urn:x', code: 'access  denied' }] } };
    expect((await store.handle({ method: 'POST', path: '/Task', body })).status).toBe(400);
  });
});

describe('SRCH-1: identifier searches follow the server’s token columns', () => {
  async function storeWith(...values: string[]): Promise<EmulatorStore> {
    const store = new EmulatorStore();
    for (const value of values) {
      const answer = await store.handle({
        method: 'POST',
        path: '/Patient',
        body: { resourceType: 'Patient', identifier: [{ system: 'urn:medblocks:patient-id', value }] },
      });
      expect(answer.status).toBe(201);
    }
    return store;
  }

  async function found(store: EmulatorStore, value: string): Promise<string[]> {
    const patients = await store.all<Patient>(
      'Patient',
      `identifier=${encodeURIComponent(token('urn:medblocks:patient-id', value))}`
    );
    return patients.map((p) => p.identifier?.[0]?.value ?? '');
  }

  it.each(['MRN|12345', 'a,b', 'cost$1', 'back\\slash', 'John Doe', '|lead', 'trail|'])(
    'an escaped value finds exactly its resource: %s',
    async (value) => {
      const store = await storeWith(value, 'MRN', 'a', 'b', 'John', 'lead', 'trail');
      expect(await found(store, value)).toEqual([value]);
    }
  );

  it('identifiers compare case-sensitively (core’s in-memory matcher lower-cased them)', async () => {
    const store = await storeWith('John Doe', 'john doe');
    expect(await found(store, 'John Doe')).toEqual(['John Doe']);
  });

  it('values are trimmed on both sides, as the server indexes and queries them', async () => {
    const store = await storeWith(' user_42 ');
    expect(await found(store, 'user_42')).toEqual([' user_42 ']);
  });

  it('an unescaped comma is an OR of two values; system-only and value-only queries', () => {
    const id = { system: 'urn:s', value: 'v|w' };
    expect(identifierMatches(id, 'urn:s|v|w')).toBe(true);
    expect(identifierMatches(id, 'urn:s|v')).toBe(false);
    expect(identifierMatches(id, 'urn:s|')).toBe(true);
    expect(identifierMatches(id, 'v|w')).toBe(false); // "v" is read as the system
    expect(identifierMatches({ value: 'x' }, 'x')).toBe(true);
  });
});
