// Medplum enforces a bot's AccessPolicy inside its repository; the mock's MemoryRepository does
// not. This wrapper does, with @medplum/core's own evaluation (satisfiedAccessPolicy), so that
// tests and the emulator fail on any request a real project would refuse. Like the server, it
// filters search results (and _include/_revinclude results) by the policy's criteria, and refuses
// writes whose resource — before and after — does not satisfy the grant.
import {
  accessPolicySupportsInteraction,
  forbidden,
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

  function require(resource: Resource, interaction: AccessPolicyInteraction): void {
    const grant = satisfiedAccessPolicy(resource, interaction, policy);
    const grantIndex = grant ? grants.indexOf(grant) : undefined;
    onDecision({ resourceType: resource.resourceType, interaction, grantIndex });
    if (!grant) {
      throw new OperationOutcomeError(forbidden);
    }
  }

  function requireType(resourceType: string, interaction: AccessPolicyInteraction): void {
    if (!accessPolicySupportsInteraction(policy, interaction, resourceType as ResourceType)) {
      onDecision({ resourceType, interaction, grantIndex: undefined });
      throw new OperationOutcomeError(forbidden);
    }
  }

  async function existing(resourceType: string, id: string | undefined): Promise<Resource | undefined> {
    if (!id) return undefined;
    return repo.readResource(resourceType, id).catch(() => undefined);
  }

  const overrides: Partial<Record<keyof MemoryRepository, unknown>> = {
    async search(request: SearchRequest, ...rest: unknown[]): Promise<Bundle> {
      requireType(request.resourceType, 'search');
      const bundle = await (repo.search as (r: SearchRequest, ...x: unknown[]) => Promise<Bundle>)(request, ...rest);
      const entry = (bundle.entry ?? []).filter((e) => {
        const resource = e.resource;
        if (!resource) return false;
        const grant = satisfiedAccessPolicy(resource, 'search', policy);
        if (grant) {
          onDecision({ resourceType: resource.resourceType, interaction: 'search', grantIndex: grants.indexOf(grant) });
        }
        return Boolean(grant);
      });
      return { ...bundle, entry: entry.length > 0 ? entry : undefined };
    },
    async readResource(resourceType: string, id: string): Promise<Resource> {
      requireType(resourceType, 'read');
      const resource = await repo.readResource(resourceType, id);
      require(resource, 'read');
      return resource;
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
      requireType(search.resourceType, 'search');
      require(resource, 'create');
      return repo.conditionalCreate(resource, search, options);
    },
    async updateResource(resource: Resource, options?: UpdateResourceOptions): Promise<Resource> {
      const before = await existing(resource.resourceType, resource.id);
      if (before) require(before, 'update');
      require(resource, 'update');
      return repo.updateResource(resource, options);
    },
    async conditionalUpdate(
      resource: Resource,
      search: SearchRequest,
      options?: CreateResourceOptions & UpdateResourceOptions
    ): Promise<unknown> {
      requireType(search.resourceType, 'search');
      const matches = await repo.searchResources(search);
      for (const match of matches) require(match, 'update');
      require(resource, matches.length === 0 ? 'create' : 'update');
      return repo.conditionalUpdate(resource, search, options);
    },
    async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
      const before = await existing(resourceType, id);
      if (before) require(before, 'delete');
      else requireType(resourceType, 'delete');
      return repo.deleteResource(resourceType, id, options);
    },
    async conditionalDelete(search: SearchRequest): Promise<void> {
      requireType(search.resourceType, 'search');
      for (const match of await repo.searchResources(search)) require(match, 'delete');
      return repo.conditionalDelete(search);
    },
    patchResource(): never {
      throw new OperationOutcomeError(forbidden); // no bot of this package patches
    },
    conditionalPatch(): never {
      throw new OperationOutcomeError(forbidden);
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
