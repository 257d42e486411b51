// The server's access rules, one test each, written from what a real Medplum server does (its
// repository code and observed answers; docs/fidelity-ledger.md AC-1…AC-7), not from this package's
// policies. The same wrapper guards every bot test (src/tools/harness/world.ts) and the emulator.
import { parseSearchRequest } from '@medplum/core';
import { MemoryRepository } from '@medplum/fhir-router';
import type { AccessPolicy, AccessPolicyResource, Task } from '@medplum/fhirtypes';
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
let ours: Task & { id: string };
let theirs: Task & { id: string };

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
