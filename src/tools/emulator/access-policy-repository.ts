// Medplum enforces a bot's AccessPolicy inside its server repository; the mock's MemoryRepository
// does not. This wrapper applies the server's rules, in the server's order, with @medplum/core's own
// evaluation (`satisfiedAccessPolicy`, `accessPolicySupportsInteraction`), so that the bot tests and
// the emulator refuse every request a real project refuses. Each rule is an entry of the fidelity
// ledger (docs/fidelity-ledger.md, ids AC-1…AC-7) with its source, and is pinned by
// test/emulator/access-rules.test.ts. The rules are written from the server, not from our policies:
//
//   AC-1 search   the type must grant `search`; results the criteria exclude are left out.
//   AC-2 read     the type must grant `read` (else 403); a resource the criteria exclude is 404.
//   AC-3 create   the new resource must satisfy a `create` grant (else 403).
//   AC-4 update   reads the existing resource first (AC-2: 403 / 404), then `update` must hold for
//                 the existing resource and for the new one (else 403).
//   AC-5 delete   reads the existing resource first (AC-2), then `delete` must hold for it (else 403).
//   AC-6 conditional create / update / delete   a search (AC-1) first, then AC-3 / AC-4 / AC-5.
//   AC-7 patch    not modelled: no bot of this package patches, so it is refused outright.
import {
  accessPolicySupportsInteraction,
  forbidden,
  notFound,
  OperationOutcomeError,
  satisfiedAccessPolicy,
} from '@medplum/core';
import type { AccessPolicyInteraction, SearchRequest } from '@medplum/core';
import type {
  CreateResourceOptions,
  DeleteResourceOptions,
  MemoryRepository,
  UpdateResourceOptions,
} from '@medplum/fhir-router';
import type { AccessPolicy, AccessPolicyResource, Bundle, Resource, ResourceType } from '@medplum/fhirtypes';

export interface PolicyDecision {
  readonly resourceType: string;
  readonly interaction: AccessPolicyInteraction;
  /** Index of the granting entry in `policy.resource`, or undefined when refused. */
  readonly grantIndex: number | undefined;
}

export type DecisionListener = (decision: PolicyDecision) => void;

/** Returns a view of `repo` that enforces `policy`; the underlying store stays shared and unrestricted. */
export function withAccessPolicy(
  repo: MemoryRepository,
  policy: AccessPolicy,
  onDecision: DecisionListener = () => undefined
): MemoryRepository {
  const grants: readonly AccessPolicyResource[] = policy.resource ?? [];

  /** Records a decision; `quiet` leaves refusals unrecorded (a search result filtered out is no refusal). */
  function grantFor(
    resource: Resource,
    interaction: AccessPolicyInteraction,
    quiet = false
  ): AccessPolicyResource | undefined {
    const grant = satisfiedAccessPolicy(resource, interaction, policy);
    if (grant || !quiet) {
      onDecision({
        resourceType: resource.resourceType,
        interaction,
        grantIndex: grant ? grants.indexOf(grant) : undefined,
      });
    }
    return grant;
  }

  function require(resource: Resource, interaction: AccessPolicyInteraction): void {
    if (!grantFor(resource, interaction)) {
      throw new OperationOutcomeError(forbidden);
    }
  }

  function requireType(resourceType: string, interaction: AccessPolicyInteraction): void {
    if (!accessPolicySupportsInteraction(policy, interaction, resourceType as ResourceType)) {
      onDecision({ resourceType, interaction, grantIndex: undefined });
      throw new OperationOutcomeError(forbidden);
    }
  }

  /** AC-2: what the server's repository does before every update and delete, and for a read. */
  async function readChecked(resourceType: string, id: string): Promise<Resource> {
    requireType(resourceType, 'read');
    const resource = await repo.readResource(resourceType, id);
    if (!grantFor(resource, 'read')) {
      // The server's read is a query filtered by the policy's criteria: the row is simply not found.
      throw new OperationOutcomeError(notFound);
    }
    return resource;
  }

  /** AC-1: the search runs, then what the criteria exclude is dropped (the server filters in SQL). */
  async function searchChecked(request: SearchRequest, rest: unknown[]): Promise<Bundle> {
    requireType(request.resourceType, 'search');
    const bundle = await (repo.search as (r: SearchRequest, ...x: unknown[]) => Promise<Bundle>)(request, ...rest);
    const entry = (bundle.entry ?? []).filter((e) => e.resource !== undefined && grantFor(e.resource, 'search', true));
    return { ...bundle, entry: entry.length > 0 ? entry : undefined };
  }

  async function matchesOf(search: SearchRequest): Promise<Resource[]> {
    const bundle = await searchChecked({ ...search, count: 2 }, []);
    return (bundle.entry ?? []).flatMap((e) => (e.resource ? [e.resource] : []));
  }

  const overrides: Partial<Record<keyof MemoryRepository, unknown>> = {
    async search(request: SearchRequest, ...rest: unknown[]): Promise<Bundle> {
      return searchChecked(request, rest);
    },
    async readResource(resourceType: string, id: string): Promise<Resource> {
      return readChecked(resourceType, id);
    },
    async createResource(resource: Resource, options?: CreateResourceOptions, update?: boolean): Promise<Resource> {
      // MemoryRepository.updateResource re-enters createResource with update=true; that path was checked as an update.
      if (!update) require(resource, 'create');
      return repo.createResource(resource, options, update);
    },
    async conditionalCreate(
      resource: Resource,
      search: SearchRequest,
      options?: CreateResourceOptions
    ): Promise<unknown> {
      const matches = await matchesOf(search);
      if (matches.length === 0) require(resource, 'create');
      return repo.conditionalCreate(resource, search, options);
    },
    async updateResource(resource: Resource, options?: UpdateResourceOptions): Promise<Resource> {
      requireType(resource.resourceType, 'update');
      const before = await readChecked(resource.resourceType, resource.id ?? '');
      require(before, 'update');
      require(resource, 'update');
      return repo.updateResource(resource, options);
    },
    async conditionalUpdate(
      resource: Resource,
      search: SearchRequest,
      options?: CreateResourceOptions & UpdateResourceOptions
    ): Promise<unknown> {
      const matches = await matchesOf(search);
      if (matches.length === 0) {
        require(resource, 'create');
      } else {
        for (const match of matches) {
          const before = await readChecked(match.resourceType, match.id ?? '');
          require(before, 'update');
        }
        require(resource, 'update');
      }
      return repo.conditionalUpdate(resource, search, options);
    },
    async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
      requireType(resourceType, 'delete');
      const before = await readChecked(resourceType, id);
      require(before, 'delete');
      return repo.deleteResource(resourceType, id, options);
    },
    async conditionalDelete(search: SearchRequest): Promise<void> {
      for (const match of await matchesOf(search)) {
        const before = await readChecked(match.resourceType, match.id ?? '');
        require(before, 'delete');
      }
      return repo.conditionalDelete(search);
    },
    patchResource(): Promise<never> {
      return Promise.reject(new OperationOutcomeError(forbidden)); // AC-7
    },
    conditionalPatch(): Promise<never> {
      return Promise.reject(new OperationOutcomeError(forbidden));
    },
  };

  return new Proxy(repo, {
    get(target, property, receiver) {
      if (typeof property === 'string' && property in overrides) {
        return overrides[property as keyof MemoryRepository];
      }
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}
