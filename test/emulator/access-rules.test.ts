// The server's access rules, one test each, written from what a real Medplum server does (its
// repository code and observed answers; docs/fidelity-ledger.md AC-1…AC-12), not from this package's
// policies. The same wrapper guards every bot test (src/tools/harness/world.ts) and the emulator.
import { OperationOutcomeError, parseSearchRequest } from '@medplum/core';
import type { WithId } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import type { AccessPolicy, AccessPolicyResource, Patient, Task } from '@medplum/fhirtypes';
import { beforeEach, describe, expect, it } from 'vitest';
import { withAccessPolicy } from '../../src/tools/emulator/access-policy-repository';
import type { PolicyDecision } from '../../src/tools/emulator/access-policy-repository';

const OURS = 'Task?identifier=urn:test:key|';

function task(key: string, extra: Partial<Task> = {}): Task {
  return {
    resourceType: 'Task',
    status: 'requested',
    intent: 'order',
    identifier: [{ system: 'urn:test:key', value: key }],
    ...extra,
  };
}

function policyOf(...resource: AccessPolicyResource[]): AccessPolicy {
  return { resourceType: 'AccessPolicy', resource };
}

let base: MemoryRepository;
let decisions: PolicyDecision[];
let ours: WithId<Task>;
let theirs: WithId<Task>;

function view(...resource: AccessPolicyResource[]): MemoryRepository {
  return withAccessPolicy(base, policyOf(...resource), (d) => decisions.push(d));
}

beforeEach(async () => {
  base = new MemoryRepository();
  decisions = [];
  ours = await base.createResource(task('ours'));
  theirs = await base.createResource({ resourceType: 'Task', status: 'requested', intent: 'order' });
});

describe('AC-1 search', () => {
  it('needs `search` on the type', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['read'] });
    await expect(repo.search({ resourceType: 'Task' })).rejects.toThrow('Forbidden');
  });

  it('leaves out what the criteria exclude, without refusing the search', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['search'] });
    const bundle = await repo.search({ resourceType: 'Task' });
    expect(bundle.entry?.map((e) => e.resource?.id)).toEqual([ours.id]);
    expect(decisions.filter((d) => d.grantIndex === undefined)).toEqual([]);
  });
});

describe('AC-2 read', () => {
  it('needs `read` on the type: `search` alone is not enough (403)', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['search'] });
    await expect(repo.readResource('Task', ours.id)).rejects.toThrow('Forbidden');
  });

  it('a resource outside the criteria is not found (404), as the server filters the row away', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['read'] });
    await expect(repo.readResource('Task', theirs.id)).rejects.toThrow('Not found');
    await expect(repo.readResource('Task', ours.id)).resolves.toMatchObject({ id: ours.id });
  });
});

describe('AC-3 create', () => {
  it('the new resource must satisfy a `create` grant', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['create'] });
    await expect(repo.createResource(task('new'))).resolves.toMatchObject({ resourceType: 'Task' });
    await expect(repo.createResource({ resourceType: 'Task', status: 'draft', intent: 'order' })).rejects.toThrow(
      'Forbidden'
    );
  });
});

describe('AC-4 update reads first', () => {
  it('`search, create, update` without `read` cannot update an existing resource (the real server: 403)', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['search', 'create', 'update'] });
    await expect(repo.updateResource({ ...ours, status: 'completed' })).rejects.toThrow('Forbidden');
    expect(await base.readResource<Task>('Task', ours.id)).toMatchObject({ status: 'requested' });
  });

  it('with `read` and `update` on the same criteria, the update goes through', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['read', 'update'] });
    await expect(repo.updateResource({ ...ours, status: 'completed' })).resolves.toMatchObject({
      status: 'completed',
    });
  });

  it('`read` granted by a separate entry also counts: the read is its own check', async () => {
    const repo = view(
      { resourceType: 'Task', criteria: OURS, interaction: ['read'] },
      { resourceType: 'Task', criteria: OURS, interaction: ['update'] }
    );
    await expect(repo.updateResource({ ...ours, status: 'completed' })).resolves.toMatchObject({
      status: 'completed',
    });
  });

  it('the existing resource must satisfy `update`: another system’s resource stays untouched (404 via the read)', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['read', 'update'] });
    await expect(repo.updateResource({ ...theirs, ...task('stolen'), id: theirs.id })).rejects.toThrow('Not found');
  });

  it('the new version must satisfy `update` too: our resource cannot be moved out of the criteria', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['read', 'update'] });
    await expect(repo.updateResource({ ...ours, identifier: undefined })).rejects.toThrow('Forbidden');
  });
});

describe('AC-5 delete reads first', () => {
  it('`search, delete` without `read` cannot delete (the real server: 403)', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['search', 'delete'] });
    await expect(repo.deleteResource('Task', ours.id)).rejects.toThrow('Forbidden');
    await expect(base.readResource('Task', ours.id)).resolves.toMatchObject({ id: ours.id });
  });

  it('with `read` and `delete`, only resources inside the criteria can be deleted', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['read', 'delete'] });
    await repo.deleteResource('Task', ours.id);
    await expect(base.readResource('Task', ours.id)).rejects.toThrow();
    await expect(repo.deleteResource('Task', theirs.id)).rejects.toThrow('Not found');
  });
});

describe('AC-6 conditional writes search first', () => {
  it('a conditional create needs `search`: `create` alone is refused', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['create'] });
    await expect(
      repo.conditionalCreate(task('c'), parseSearchRequest('Task?identifier=urn:test:key|c'))
    ).rejects.toThrow('Forbidden');
  });

  it('a conditional create that finds its match returns it without a `create` check', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['search'] });
    const result = (await repo.conditionalCreate(
      task('ours'),
      parseSearchRequest('Task?identifier=urn:test:key|ours')
    )) as {
      resource: Task;
    };
    expect(result.resource.id).toBe(ours.id);
  });

  it('a conditional update of a match reads it first, like a plain update', async () => {
    const withoutRead = view({ resourceType: 'Task', criteria: OURS, interaction: ['search', 'create', 'update'] });
    await expect(
      withoutRead.conditionalUpdate(
        { ...task('ours'), status: 'completed' },
        parseSearchRequest('Task?identifier=urn:test:key|ours')
      )
    ).rejects.toThrow('Forbidden');
  });
});

describe('AC-7 patch', () => {
  it('is refused outright (no bot of this package patches)', async () => {
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['read', 'update'] });
    await expect(repo.patchResource('Task', ours.id, [])).rejects.toThrow('Forbidden');
  });
});

// AC-8…AC-10: the server's `removeHiddenFields`, `restoreReadonlyFields` and `isResourceWriteable`
// (packages/server/src/fhir/repo.ts), ported on top of @medplum/core's satisfiedAccessPolicy and
// evalFhirPathTyped.
describe('AC-8 hiddenFields', () => {
  const secret = { description: 'secret note', note: [{ text: 'nested' }], performerType: [{ text: 'a' }] };

  it('a `search`-only grant hides nothing: the server picks hidden fields with a `read` check', async () => {
    await base.updateResource({ ...ours, ...secret });
    const repo = view({ resourceType: 'Task', criteria: OURS, interaction: ['search'], hiddenFields: ['description'] });
    const bundle = await repo.search({ resourceType: 'Task' });
    expect(bundle.entry?.[0]?.resource).toMatchObject({ description: 'secret note' });
  });

  it('with `read` too, search results and reads lose the hidden fields (nested paths included); the store keeps them', async () => {
    await base.updateResource({ ...ours, ...secret });
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['search', 'read'],
      hiddenFields: ['description', 'note.text'],
    });
    const found = (await repo.search({ resourceType: 'Task' })).entry?.[0]?.resource as Task;
    const read = await repo.readResource<Task>('Task', ours.id);
    for (const seen of [found, read]) {
      expect(seen.description).toBeUndefined();
      expect(seen.note).toEqual([{}]);
      expect(seen.performerType).toEqual([{ text: 'a' }]);
      expect(seen.identifier).toEqual(ours.identifier);
    }
    expect(await base.readResource<Task>('Task', ours.id)).toMatchObject(secret);
  });

  it('a choice field is hidden under its `[x]` name, whatever its type', async () => {
    const patient = await base.createResource({
      resourceType: 'Patient',
      deceasedDateTime: '2020-01-01',
      gender: 'other',
    });
    const repo = view({ resourceType: 'Patient', interaction: ['read'], hiddenFields: ['deceased[x]'] });
    const read = await repo.readResource<Patient>('Patient', patient.id);
    expect(read.deceasedDateTime).toBeUndefined();
    expect(read.gender).toBe('other');
  });

  it('what a write returns is hidden too (by the `read` grant), while the creating grant decides what is stored', async () => {
    const repo = view(
      { resourceType: 'Task', criteria: OURS, interaction: ['read'], hiddenFields: ['identifier'] },
      { resourceType: 'Task', criteria: OURS, interaction: ['create'] }
    );
    const created = await repo.createResource(task('new'));
    expect(created.identifier).toBeUndefined();
    expect((await base.readResource<Task>('Task', created.id)).identifier).toEqual(task('new').identifier);
    // One grant that both creates and hides `identifier` blanks it before the criteria check (AC-9).
    const both = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['read', 'create'],
      hiddenFields: ['identifier'],
    });
    await expect(both.createResource(task('blanked'))).rejects.toThrow('Forbidden');
  });
});

describe('AC-9 readonly and hidden fields on writes', () => {
  it('create: the fields the creating grant marks readonly or hidden are blanked out before storing', async () => {
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['create'],
      readonlyFields: ['description'],
      hiddenFields: ['priority'],
    });
    const created = await repo.createResource(task('new', { description: 'x', priority: 'stat' }));
    const stored = await base.readResource<Task>('Task', created.id);
    expect(stored.description).toBeUndefined();
    expect(stored.priority).toBeUndefined();
  });

  it('update: a readonly field keeps its stored value whatever the client sends', async () => {
    await base.updateResource({ ...ours, description: 'stored' });
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['read', 'update'],
      readonlyFields: ['description'],
    });
    await repo.updateResource({ ...ours, description: 'changed', status: 'completed' });
    expect(await base.readResource<Task>('Task', ours.id)).toMatchObject({
      description: 'stored',
      status: 'completed',
    });
  });
});

describe('AC-10 writeConstraint', () => {
  const fhirpath = (expression: string): { language: 'text/fhirpath'; expression: string } => ({
    language: 'text/fhirpath',
    expression,
  });

  it('create: every constraint must be true of the new resource; %before is empty', async () => {
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['create'],
      writeConstraint: [fhirpath("%after.status = 'requested'"), fhirpath('%before.empty()')],
    });
    await expect(repo.createResource(task('ok'))).resolves.toMatchObject({ status: 'requested' });
    await expect(repo.createResource(task('bad', { status: 'draft' }))).rejects.toThrow('Forbidden');
    expect(decisions.at(-1)).toMatchObject({ interaction: 'create', grantIndex: undefined });
  });

  it('only a single `true` passes: an empty or non-boolean result refuses', async () => {
    for (const expression of ['%after.description', '%after.description = 1', '%after.identifier.value']) {
      const repo = view({
        resourceType: 'Task',
        criteria: OURS,
        interaction: ['create'],
        writeConstraint: [fhirpath(expression)],
      });
      await expect(repo.createResource(task('x'))).rejects.toThrow('Forbidden');
    }
  });

  it('a choice element named with its type matches any type: only `ofType` confines it (observed on 5.1.29)', async () => {
    const byName = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['create'],
      writeConstraint: [fhirpath('%after.input.all(valueString.exists())')],
    });
    const byType = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['create'],
      writeConstraint: [fhirpath('%after.input.value.ofType(Reference).empty()')],
    });
    const reference = { input: [{ type: { text: 'x' }, valueReference: { reference: 'Patient/p1' } }] };
    // `valueString` evaluates to the valueReference: the server created such a Task (201), as here.
    await expect(byName.createResource(task('a', reference))).resolves.toMatchObject(reference);
    await expect(byType.createResource(task('b', reference))).rejects.toThrow('Forbidden');
    await expect(
      byType.createResource(task('c', { input: [{ type: { text: 'x' }, valueString: 'y' }] }))
    ).resolves.toBeDefined();
  });

  it('an expression that fails to evaluate is a 400 with the FHIRPath error, not a 403 (observed on 5.1.29)', async () => {
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['create'],
      writeConstraint: [fhirpath("%after.identifier.system in ('a' | 'b')")],
    });
    const twoKeys = task('x', {
      identifier: [...(task('x').identifier ?? []), { system: 'urn:test:key', value: 'y' }],
    });
    const refusal = await repo.createResource(twoKeys).then(
      () => undefined,
      (err: unknown) => err
    );
    expect(refusal).toBeInstanceOf(OperationOutcomeError);
    const issue = (refusal as OperationOutcomeError).outcome.issue[0];
    expect(issue?.code).toBe('invalid');
    expect(issue?.details?.text).toMatch(/^FhirPathError on/);
  });

  it('update: %before is the stored version, so a constraint can freeze a field', async () => {
    await base.updateResource({ ...ours, description: 'frozen' });
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['read', 'update'],
      writeConstraint: [fhirpath('%after.description = %before.description')],
    });
    await expect(repo.updateResource({ ...ours, description: 'frozen', status: 'completed' })).resolves.toMatchObject({
      status: 'completed',
    });
    await expect(repo.updateResource({ ...ours, description: 'thawed' })).rejects.toThrow('Forbidden');
  });

  it('an update that changes nothing is answered with the stored resource, without the constraints', async () => {
    const stored = await base.readResource<Task>('Task', ours.id);
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['read', 'update'],
      writeConstraint: [fhirpath('false')],
    });
    await expect(repo.updateResource(stored)).resolves.toMatchObject({ id: ours.id });
    await expect(repo.updateResource({ ...stored, status: 'completed' })).rejects.toThrow('Forbidden');
  });

  it('the constraints are those of the first grant the new resource satisfies, not of any other', async () => {
    const repo = view(
      { resourceType: 'Task', criteria: OURS, interaction: ['create'] },
      { resourceType: 'Task', criteria: OURS, interaction: ['create'], writeConstraint: [fhirpath('false')] }
    );
    await expect(repo.createResource(task('first-wins'))).resolves.toMatchObject({ resourceType: 'Task' });
    const reversed = view(
      { resourceType: 'Task', criteria: OURS, interaction: ['create'], writeConstraint: [fhirpath('false')] },
      { resourceType: 'Task', criteria: OURS, interaction: ['create'] }
    );
    await expect(reversed.createResource(task('first-refuses'))).rejects.toThrow('Forbidden');
  });

  it('applies to conditional creates and updates (the batch path the bots use)', async () => {
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['search', 'read', 'create', 'update'],
      writeConstraint: [fhirpath("%after.status != 'cancelled'")],
    });
    await expect(
      repo.conditionalCreate(task('c', { status: 'cancelled' }), parseSearchRequest('Task?identifier=urn:test:key|c'))
    ).rejects.toThrow('Forbidden');
    await expect(
      repo.conditionalUpdate(
        { ...task('ours'), status: 'cancelled' },
        parseSearchRequest('Task?identifier=urn:test:key|ours')
      )
    ).rejects.toThrow('Forbidden');
    await expect(
      repo.conditionalUpdate(
        { ...task('ours'), status: 'completed' },
        parseSearchRequest('Task?identifier=urn:test:key|ours')
      )
    ).resolves.toMatchObject({ resource: { status: 'completed' } });
  });
});

describe('AC-11 vread and history', () => {
  const secret = { description: 'secret note' };

  it('`read` is not enough: vread and history need their own interactions (observed on 5.1.29: 403)', async () => {
    const stored = await base.updateResource({ ...ours, ...secret });
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['search', 'read'],
      hiddenFields: ['description'],
    });
    await expect(repo.readVersion('Task', ours.id, stored.meta?.versionId ?? '')).rejects.toThrow('Forbidden');
    await expect(repo.readHistory('Task', ours.id)).rejects.toThrow('Forbidden');
  });

  it('they read first (AC-2): without `read` 403, outside the criteria 404', async () => {
    const noRead = view({ resourceType: 'Task', criteria: OURS, interaction: ['search', 'vread', 'history'] });
    await expect(noRead.readHistory('Task', ours.id)).rejects.toThrow('Forbidden');
    const all = view({ resourceType: 'Task', criteria: OURS, interaction: ['read', 'vread', 'history'] });
    await expect(all.readHistory('Task', theirs.id)).rejects.toThrow('Not found');
    await expect(all.readVersion('Task', theirs.id, theirs.meta?.versionId ?? '')).rejects.toThrow('Not found');
  });

  it('granted, every version loses the hidden fields of the grant that allows `read` on it', async () => {
    const stored = await base.updateResource({ ...ours, ...secret });
    const repo = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['read', 'vread', 'history'],
      hiddenFields: ['description'],
    });
    const version = await repo.readVersion<Task>('Task', ours.id, stored.meta?.versionId ?? '');
    expect(version.description).toBeUndefined();
    const history = await repo.readHistory<Task>('Task', ours.id);
    expect(history.entry?.map((e) => e.resource?.description)).toEqual([undefined, undefined]);
    expect(history.entry?.map((e) => e.resource?.id)).toEqual([ours.id, ours.id]);
  });
});

describe('AC-12 validation comes before the write check', () => {
  const invalid = task('bad', { input: [{ type: { text: 'event-type' } }] });

  it('an invalid resource the policy would refuse is a 400 with the validator’s issue (observed on 5.1.29)', async () => {
    const constrained = view({
      resourceType: 'Task',
      criteria: OURS,
      interaction: ['create'],
      writeConstraint: [{ language: 'text/fhirpath', expression: '%after.input.value.count() = 1' }],
    });
    const outsideCriteria = view({
      resourceType: 'Task',
      criteria: 'Task?identifier=urn:other|',
      interaction: ['create'],
    });
    for (const repo of [constrained, outsideCriteria]) {
      const refusal = await repo.createResource(invalid).then(
        () => undefined,
        (err: unknown) => err
      );
      expect(refusal).toBeInstanceOf(OperationOutcomeError);
      expect((refusal as OperationOutcomeError).outcome.issue[0]).toMatchObject({
        code: 'structure',
        details: { text: 'Missing required property' },
        expression: ['Task.input[0].value[x]'],
      });
    }
  });

  it('without any grant for the interaction on the type, it is 403 before validation', async () => {
    const readOnly = view({ resourceType: 'Task', interaction: ['read'] });
    await expect(readOnly.createResource(invalid)).rejects.toThrow('Forbidden');
  });
});
