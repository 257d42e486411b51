// Medplum enforces a bot's AccessPolicy inside its server repository; the mock's MemoryRepository
// does not. This wrapper applies the server's rules, in the server's order, with @medplum/core's own
// evaluation (`satisfiedAccessPolicy`, `accessPolicySupportsInteraction`), so that the bot tests and
// the emulator refuse every request a real project refuses. Each rule is an entry of the fidelity
// ledger (docs/fidelity-ledger.md, ids AC-1…AC-12) with its source, and is pinned by
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
//   AC-8 hiddenFields  every resource handed back (read, search match or include, the result of a
//                 write) loses the `hiddenFields` of the first grant that allows `read` on it — a
//                 `search`-only grant hides nothing, as on the server.
//   AC-9 write fields  before a write, the `readonlyFields` and `hiddenFields` of the grant that allows
//                 the write (create: on the new resource; update: on the existing one) are blanked
//                 out, and on update restored from the existing resource (top-level fields only).
//   AC-10 writeConstraint  after AC-3/AC-4 and AC-9, the first grant the new resource satisfies must
//                 have every `writeConstraint` evaluate to exactly `true` (FHIRPath over `%before`,
//                 `%after`), else 403 (400 when the expression fails to evaluate); an update that
//                 changes nothing is answered with the existing resource without this check.
//   AC-11 vread, history  read first (AC-2), then the resource must satisfy a `vread` (resp. `history`)
//                 grant, else 403 — `read` alone does not allow them; every version handed back loses
//                 its hidden fields (AC-8).
//   AC-12 validation  a write some grant allows on its type is validated (VAL-1, 400) before the
//                 criteria and constraint check of AC-3/AC-4/AC-10.
import {
  accessPolicySupportsInteraction,
  allOk,
  badRequest,
  deepClone,
  deepEquals,
  evalFhirPathTyped,
  forbidden,
  isObject,
  notFound,
  OperationOutcomeError,
  PropertyType,
  satisfiedAccessPolicy,
  stringify,
} from '@medplum/core';
import type { AccessPolicyInteraction, SearchRequest } from '@medplum/core';
import type {
  CreateResourceOptions,
  DeleteResourceOptions,
  MemoryRepository,
  UpdateResourceOptions,
} from '@medplum/fhir-router';
import type {
  AccessPolicy,
  AccessPolicyResource,
  Bundle,
  Meta,
  OperationOutcome,
  Resource,
  ResourceType,
} from '@medplum/fhirtypes';
import { validateWrite } from './validation';

export interface PolicyDecision {
  readonly resourceType: string;
  readonly interaction: AccessPolicyInteraction;
  /** Index of the granting entry in `policy.resource`, or undefined when refused. */
  readonly grantIndex: number | undefined;
}

export type DecisionListener = (decision: PolicyDecision) => void;

/**
 * The field names a hidden/readonly path part stands for: itself, or for `x[x]` every `x<Type>` key
 * present. A port of the server's `resolveFieldName` (`packages/server/src/fhir/repository/field-utils.ts`),
 * which is not exported by any published package.
 */
function resolveFieldName(input: Record<string, unknown>, fieldName: string): string[] {
  if (!fieldName.endsWith('[x]')) {
    return [fieldName];
  }
  const baseKey = fieldName.slice(0, -3);
  const types: Record<string, unknown> = PropertyType;
  return Object.keys(input).filter((key) => {
    if (!key.startsWith(baseKey)) return false;
    const suffix = key.substring(baseKey.length);
    return suffix in types || suffix.charAt(0).toLowerCase() + suffix.slice(1) in types;
  });
}

/**
 * Removes a (possibly dotted) field path from a resource in place, descending through arrays: the
 * server's `removeField` (same file), so that hidden fields vanish exactly where the server's do.
 */
export function removeField(input: Resource, path: string): void {
  let last: Record<string, unknown>[] = [input as unknown as Record<string, unknown>];
  const parts = path.split('.');
  parts.forEach((part, index) => {
    if (index === parts.length - 1) {
      for (const item of last) {
        for (const key of resolveFieldName(item, part)) {
          Reflect.deleteProperty(item, key);
        }
      }
      return;
    }
    const next: Record<string, unknown>[] = [];
    for (const item of last) {
      for (const key of resolveFieldName(item, part)) {
        const value = item[key];
        if (Array.isArray(value)) next.push(...value.filter(isObject));
        else if (isObject(value)) next.push(value);
      }
    }
    last = next;
  });
}

/**
 * A grant's `writeConstraint`s, evaluated as the server's `Repository.isResourceWriteable` does:
 * each FHIRPath expression over the new resource with `%before` (the stored version, absent on
 * create) and `%after`; only a single `true` result passes.
 */
export function satisfiesWriteConstraints(
  grant: AccessPolicyResource,
  before: Resource | undefined,
  after: Resource
): boolean {
  return (grant.writeConstraint ?? []).every((constraint) => {
    let result;
    try {
      result = evalFhirPathTyped(constraint.expression ?? '', [{ type: after.resourceType, value: after }], {
        '%before': { type: before?.resourceType ?? 'undefined', value: before },
        '%after': { type: after.resourceType, value: after },
      });
    } catch (err) {
      // The server lets the FhirPathError through; it is answered 400 with its message (observed on 5.1.29).
      throw new OperationOutcomeError(badRequest(err instanceof Error ? err.message : String(err)));
    }
    return result.length === 1 && result[0]?.value === true;
  });
}

/** Returns a view of `repo` that enforces `policy`; the underlying store stays shared and unrestricted. */
export function withAccessPolicy(
  repo: MemoryRepository,
  policy: AccessPolicy,
  onDecision: DecisionListener = () => undefined
): MemoryRepository {
  const guard = new PolicyGuard(repo, policy, onDecision);
  const overrides: Partial<Record<keyof MemoryRepository, unknown>> = {
    ...readOperations(repo, guard),
    ...writeOperations(repo, guard),
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

/**
 * The server's checks as named guards, one per rule (the way the server's repository has
 * `canReadResourceType`): which grant allows what, what a read shows, what a write may carry.
 * Every decision is reported to the listener, so tests can show each grant used.
 */
class PolicyGuard {
  private readonly grants: readonly AccessPolicyResource[];

  constructor(
    private readonly repo: MemoryRepository,
    private readonly policy: AccessPolicy,
    private readonly onDecision: DecisionListener
  ) {
    this.grants = policy.resource ?? [];
  }

  /** The grant allowing `interaction` on `resource`; `quiet` leaves a refusal unrecorded (a search result filtered out is no refusal). */
  grantFor(resource: Resource, interaction: AccessPolicyInteraction, quiet = false): AccessPolicyResource | undefined {
    const grant = satisfiedAccessPolicy(resource, interaction, this.policy);
    if (grant || !quiet) {
      this.onDecision({
        resourceType: resource.resourceType,
        interaction,
        grantIndex: grant ? this.grants.indexOf(grant) : undefined,
      });
    }
    return grant;
  }

  /** 403 unless a grant allows `interaction` on this resource. */
  require(resource: Resource, interaction: AccessPolicyInteraction): AccessPolicyResource {
    const grant = this.grantFor(resource, interaction);
    if (!grant) throw new OperationOutcomeError(forbidden);
    return grant;
  }

  /** 403 unless some grant allows `interaction` on the type at all (checked before any row is read). */
  requireType(resourceType: string, interaction: AccessPolicyInteraction): void {
    if (!accessPolicySupportsInteraction(this.policy, interaction, resourceType as ResourceType)) {
      this.onDecision({ resourceType, interaction, grantIndex: undefined });
      throw new OperationOutcomeError(forbidden);
    }
  }

  /** AC-8: the server's `removeHiddenFields` — the first grant allowing `read` decides, on a copy. */
  hideFields<T extends Resource>(resource: T): T {
    const grant = this.grantFor(resource, 'read', true);
    if (!grant?.hiddenFields?.length) return resource;
    const copy = deepClone(resource);
    for (const field of grant.hiddenFields) removeField(copy, field);
    return copy;
  }

  /** AC-2: what the server's repository does before every update and delete, and for a read (unhidden). */
  async readChecked(resourceType: string, id: string): Promise<Resource> {
    this.requireType(resourceType, 'read');
    const resource = await this.repo.readResource(resourceType, id);
    // The server's read is a query filtered by the policy's criteria: the row is simply not found.
    if (!this.grantFor(resource, 'read')) throw new OperationOutcomeError(notFound);
    return resource;
  }

  /** The matches of a conditional write, unhidden (the server's conditional writes act on stored rows). */
  async matchesOf(search: SearchRequest): Promise<Resource[]> {
    this.requireType(search.resourceType, 'search');
    const bundle = await (this.repo.search as (r: SearchRequest) => Promise<Bundle>)({ ...search, count: 2 });
    return (bundle.entry ?? []).flatMap((e) =>
      e.resource && this.grantFor(e.resource, 'search', true) ? [e.resource] : []
    );
  }

  /** A create as the server's `updateResourceImpl(create=true)` runs it: AC-9, AC-3, AC-10, AC-8. */
  prepareCreate<T extends Resource>(resource: T): T {
    const candidate = this.restoreReadonlyFields(resource, undefined);
    this.requireWritable(undefined, candidate, 'create');
    return candidate;
  }

  /** An update of `before`: AC-4's checks, AC-9, the not-modified answer, AC-10. Undefined when nothing changes. */
  prepareUpdate<T extends Resource>(before: T, resource: T): T | undefined {
    this.require(before, 'update');
    const candidate = this.restoreReadonlyFields(resource, before);
    if (isNotModified(before, candidate)) return undefined;
    this.requireWritable(before, candidate, 'update');
    return candidate;
  }

  /** AC-9: the server's `restoreReadonlyFields`, run on a copy of what the client sent. */
  private restoreReadonlyFields<T extends Resource>(input: T, original: T | undefined): T {
    const grant = satisfiedAccessPolicy(original ?? input, original ? 'update' : 'create', this.policy);
    const fields = [...(grant?.readonlyFields ?? []), ...(grant?.hiddenFields ?? [])];
    if (fields.length === 0) return input;
    const copy = deepClone(input);
    const target = copy as unknown as Record<string, unknown>;
    for (const field of fields) {
      removeField(copy, field);
      if (original && !field.includes('.') && !field.endsWith('[x]')) {
        const value = (original as unknown as Record<string, unknown>)[field];
        if (value) target[field] = value;
      }
    }
    return copy;
  }

  /** AC-3/AC-4 on the new version, then AC-10: the grant the new version satisfies must hold its constraints (AC-12 first). */
  private requireWritable(before: Resource | undefined, after: Resource, interaction: 'create' | 'update'): void {
    const grant = this.grantFor(after, interaction);
    if (grant && satisfiesWriteConstraints(grant, before, after)) return;
    // AC-12: the server validates the new version before its criteria and constraint check, so an
    // invalid resource is a 400 even where the policy refuses it — unless no grant allows the
    // interaction on the type at all (checked first, 403).
    if (accessPolicySupportsInteraction(this.policy, interaction, after.resourceType)) validateWrite(after);
    if (grant) this.onDecision({ resourceType: after.resourceType, interaction, grantIndex: undefined });
    throw new OperationOutcomeError(forbidden);
  }
}

/** What the server sets on every version it builds (`updateResourceImpl`); deepEquals then ignores versionId, lastUpdated and author. */
const SERVER_SET_META: readonly (keyof Meta)[] = [
  'versionId',
  'lastUpdated',
  'author',
  'project',
  'compartment',
  'account',
  'accounts',
];

/**
 * The server's `isNotModified`: the new version as the server builds it — its `meta.project`,
 * `compartment` and accounts are the server's, the stored ones while nothing else changed — equal
 * to the stored one but for meta.versionId, lastUpdated and author. So an update that sends the
 * stored content back without its meta writes nothing (observed on 5.1.29: the per-resource
 * pattern's update right after its create left one version).
 */
function isNotModified(before: Resource, after: Resource): boolean {
  const stored = before.meta ?? {};
  const serverMeta = Object.fromEntries(SERVER_SET_META.map((key) => [key, stored[key]]));
  const built = { ...after, meta: { ...after.meta, ...serverMeta } };
  return deepEquals(JSON.parse(stringify(before)), JSON.parse(stringify(built)));
}

/** Search, read, vread and history, as the server's repository checks them. */
function readOperations(repo: MemoryRepository, guard: PolicyGuard): Partial<Record<keyof MemoryRepository, unknown>> {
  return {
    /** AC-1: the search runs, then what the criteria exclude is dropped (the server filters in SQL); AC-8 on the rest. */
    async search(request: SearchRequest, ...rest: unknown[]): Promise<Bundle> {
      guard.requireType(request.resourceType, 'search');
      const bundle = await (repo.search as (r: SearchRequest, ...x: unknown[]) => Promise<Bundle>)(request, ...rest);
      const entry = (bundle.entry ?? [])
        .filter((e) => e.resource !== undefined && guard.grantFor(e.resource, 'search', true))
        .map((e) => (e.resource ? { ...e, resource: guard.hideFields(e.resource) } : e));
      return { ...bundle, entry: entry.length > 0 ? entry : undefined };
    },
    async readResource(resourceType: string, id: string): Promise<Resource> {
      return guard.hideFields(await guard.readChecked(resourceType, id));
    },
    /** AC-11: the server's `readVersion` — read first (AC-2), then `vread` on the resource, then AC-8. */
    async readVersion(resourceType: string, id: string, versionId: string): Promise<Resource> {
      guard.require(await guard.readChecked(resourceType, id), 'vread');
      return guard.hideFields(await repo.readVersion(resourceType, id, versionId));
    },
    /** AC-11: the server's `readHistory` — read first (AC-2), then `history`, then AC-8 on every version. */
    async readHistory(resourceType: string, id: string): Promise<Bundle> {
      guard.require(await guard.readChecked(resourceType, id), 'history');
      const bundle = await repo.readHistory(resourceType, id);
      return {
        ...bundle,
        entry: bundle.entry?.map((e) => (e.resource ? { ...e, resource: guard.hideFields(e.resource) } : e)),
      };
    },
  };
}

/** Create, update and delete, plain and conditional, as the server's repository checks them; patch refused (AC-7). */
function writeOperations(repo: MemoryRepository, guard: PolicyGuard): Partial<Record<keyof MemoryRepository, unknown>> {
  return {
    async createResource(resource: Resource, options?: CreateResourceOptions, update?: boolean): Promise<Resource> {
      // MemoryRepository.updateResource re-enters createResource with update=true; that path was checked as an update.
      if (update) return repo.createResource(resource, options, update);
      return guard.hideFields(await repo.createResource(guard.prepareCreate(resource), options));
    },
    /** AC-6: the search first, then AC-3 when nothing matches. */
    async conditionalCreate(
      resource: Resource,
      search: SearchRequest,
      options?: CreateResourceOptions
    ): Promise<{ resource: Resource; outcome: OperationOutcome }> {
      const matches = await guard.matchesOf(search);
      const toWrite = matches.length === 0 ? guard.prepareCreate(resource) : resource;
      const result = await repo.conditionalCreate(toWrite, search, options);
      return { ...result, resource: guard.hideFields(result.resource) };
    },
    async updateResource(resource: Resource, options?: UpdateResourceOptions): Promise<Resource> {
      guard.requireType(resource.resourceType, 'update');
      const before = await guard.readChecked(resource.resourceType, resource.id ?? '');
      const candidate = guard.prepareUpdate(before, resource);
      if (!candidate) return guard.hideFields(before);
      return guard.hideFields(await repo.updateResource(candidate, options));
    },
    /** AC-6: the search first, then AC-3 (no match) or AC-4 (one match). */
    async conditionalUpdate(
      resource: Resource,
      search: SearchRequest,
      options?: CreateResourceOptions & UpdateResourceOptions
    ): Promise<{ resource: Resource; outcome: OperationOutcome }> {
      const matches = await guard.matchesOf(search);
      let toWrite: Resource = resource;
      if (matches.length === 0) {
        toWrite = guard.prepareCreate(resource);
      } else if (matches.length === 1 && matches[0]) {
        const match = matches[0];
        const before = await guard.readChecked(match.resourceType, match.id ?? '');
        const candidate = guard.prepareUpdate(before, { ...resource, id: resource.id ?? before.id });
        if (!candidate) return { resource: guard.hideFields(before), outcome: allOk };
        toWrite = candidate;
      }
      const result = await repo.conditionalUpdate(toWrite, search, options);
      return { ...result, resource: guard.hideFields(result.resource) };
    },
    /** AC-5: read first (AC-2), then `delete` on the stored resource. */
    async deleteResource(resourceType: string, id: string, options?: DeleteResourceOptions): Promise<void> {
      guard.requireType(resourceType, 'delete');
      guard.require(await guard.readChecked(resourceType, id), 'delete');
      return repo.deleteResource(resourceType, id, options);
    },
    async conditionalDelete(search: SearchRequest): Promise<void> {
      for (const match of await guard.matchesOf(search)) {
        guard.require(await guard.readChecked(match.resourceType, match.id ?? ''), 'delete');
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
}
