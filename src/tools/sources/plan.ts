// `npm run sources`, the pure part: which EHR sources the project uses (read off the Consents the
// bots write), and what to do with each source's Organization given the name Medblocks returns.
// No I/O here, so that every decision (create, update, leave alone, cannot name) is tested without
// a server; ./sources.ts does the reading and writing.
import type { WithId } from '@medplum/core';
import type { Consent, Organization } from '@medplum/fhirtypes';
import { SYSTEM } from '../../runtime/fhir/systems';
import { isCleanText } from '../../runtime/medblocks/events';
import { VERIFY_SOURCE_PREFIX } from '../verify/story';
import { textTable } from '../text-table';
import { withoutControls } from '../outside-text';

/**
 * What a source id must look like before it goes into a Medblocks URL or a FHIR identifier: the
 * bots store whatever Medblocks sent, and a Consent edited by hand may carry anything.
 */
const SOURCE_ID = /^fhirsrc_[A-Za-z0-9]{1,64}$/;

/** The longest name kept; the bots read names the same way (src/runtime/store/read.ts). */
const MAX_NAME_LENGTH = 120;

/** The sources named on Consents, deduplicated and sorted (so the output and the calls are stable). */
export function sourceIdsOf(consents: readonly Consent[]): string[] {
  const ids = new Set<string>();
  for (const consent of consents) {
    for (const actor of consent.provision?.actor ?? []) {
      const identifier = actor.reference.identifier;
      if (identifier?.system === SYSTEM.fhirSourceId && identifier.value && SOURCE_ID.test(identifier.value)) {
        ids.add(identifier.value);
      }
    }
  }
  return [...ids].sort();
}

/**
 * The name as the bots will show it: whitespace collapsed, bounded, bidi controls dropped, and
 * undefined when blank or unclean. Normalising here, as the bots' reader does, means an Organization is never rewritten
 * for a difference nobody sees, and never given a name the bots would then ignore.
 */
export function usableName(name: string | undefined): string | undefined {
  const clean = name?.replace(/\s+/g, ' ').trim().slice(0, MAX_NAME_LENGTH);
  if (!clean || !isCleanText(clean)) return undefined;
  // Bidi controls would reorder what the app shows next to the name: dropped, the name kept.
  return withoutControls(clean).trim() || undefined;
}

/** The longest portal address kept. */
const MAX_URL_LENGTH = 500;

/**
 * Medblocks' `portal_url` as the Organization's web address: https only, no whitespace or control
 * characters, bounded; anything else is not shown (undefined), as an unclean name is not.
 */
export function usablePortalUrl(url: string | null | undefined): string | undefined {
  const shaped = /^https:\/\/[^\s/?#]+[^\s]*$/.test(url ?? '');
  if (!url || url.length > MAX_URL_LENGTH || !shaped || !isCleanText(url) || withoutControls(url) !== url) {
    return undefined;
  }
  try {
    return new URL(url).protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/** The web address an Organization shows: its `telecom` of system `url`. */
export function portalUrlOf(organization: Organization): string | undefined {
  return organization.telecom?.find((t) => t.system === 'url')?.value;
}

/**
 * The Organization's telecom with the portal as its one `url` entry (Medblocks is the source of
 * truth for it, as for the name); phone numbers and e-mail addresses someone added are kept.
 */
export function withPortalUrl(organization: Organization, portalUrl: string | undefined): Organization['telecom'] {
  if (portalUrl === undefined) return organization.telecom;
  const others = (organization.telecom ?? []).filter((t) => t.system !== 'url');
  return [...others, { system: 'url', value: portalUrl, use: 'work' }];
}

/** What Medblocks said about one source. */
export type SourceLookup =
  | { readonly kind: 'named'; readonly name: string; readonly portalUrl?: string }
  | { readonly kind: 'not-found' }
  /** Medblocks knows the source but returned no usable name. */
  | { readonly kind: 'unnamed' }
  /** One of `npm run verify`'s made-up sources: not asked about, left alone. */
  | { readonly kind: 'verify-source' };

export type SourceAction =
  | { readonly kind: 'create'; readonly sourceId: string; readonly name: string; readonly portalUrl?: string }
  | {
      readonly kind: 'update';
      readonly sourceId: string;
      readonly name: string;
      readonly portalUrl?: string;
      readonly organizationId: string;
      readonly previousName: string | undefined;
    }
  | { readonly kind: 'unchanged'; readonly sourceId: string; readonly name: string; readonly organizationId: string }
  | { readonly kind: 'not-found'; readonly sourceId: string }
  | { readonly kind: 'unnamed'; readonly sourceId: string }
  | { readonly kind: 'verify-source'; readonly sourceId: string }
  /** The Organization carries several sources' identifiers: someone merged them on purpose. */
  | { readonly kind: 'shared'; readonly sourceId: string; readonly organizationId: string };

/** The Organizations that carry a source's identifier, by source id. */
export function organizationsBySource(organizations: readonly Organization[]): Map<string, WithId<Organization>[]> {
  const out = new Map<string, WithId<Organization>[]>();
  for (const organization of organizations) {
    if (!organization.id) continue;
    const withId = organization as WithId<Organization>;
    const values = new Set(
      (organization.identifier ?? []).flatMap((i) => (i.system === SYSTEM.fhirSourceId && i.value ? [i.value] : []))
    );
    for (const value of values) out.set(value, [...(out.get(value) ?? []), withId]);
  }
  return out;
}

/**
 * One action per source and per existing Organization. A source with no Organization is created;
 * every Organization already carrying the source's identifier is updated when its name differs
 * (two Organizations for one source would otherwise show whichever the server lists first); a
 * source Medblocks does not know, or does not name, leaves its Organizations alone: a name set by
 * hand beats no name. An Organization carrying several sources is left alone too: giving it each
 * source's name in turn would rewrite it on every run.
 */
export function planSources(
  sourceIds: readonly string[],
  lookups: ReadonlyMap<string, SourceLookup>,
  existing: ReadonlyMap<string, readonly WithId<Organization>[]>
): SourceAction[] {
  const actions: SourceAction[] = [];
  for (const sourceId of sourceIds) {
    const lookup = lookups.get(sourceId) ?? { kind: 'not-found' };
    if (lookup.kind !== 'named') {
      actions.push({ kind: lookup.kind, sourceId });
      continue;
    }
    const organizations = existing.get(sourceId) ?? [];
    if (organizations.length === 0) {
      actions.push({ kind: 'create', sourceId, name: lookup.name, ...portal(lookup) });
      continue;
    }
    for (const organization of organizations) {
      if (sourceCount(organization) > 1) {
        actions.push({ kind: 'shared', sourceId, organizationId: organization.id });
      } else if (
        organization.name === lookup.name &&
        (lookup.portalUrl === undefined || portalUrlOf(organization) === lookup.portalUrl)
      ) {
        actions.push({ kind: 'unchanged', sourceId, name: lookup.name, organizationId: organization.id });
      } else {
        actions.push({
          kind: 'update',
          sourceId,
          name: lookup.name,
          ...portal(lookup),
          organizationId: organization.id,
          previousName: organization.name,
        });
      }
    }
  }
  return actions;
}

function sourceCount(organization: Organization): number {
  return new Set(
    (organization.identifier ?? []).flatMap((i) => (i.system === SYSTEM.fhirSourceId && i.value ? [i.value] : []))
  ).size;
}

function portal(lookup: { readonly portalUrl?: string }): { portalUrl?: string } {
  return lookup.portalUrl === undefined ? {} : { portalUrl: lookup.portalUrl };
}

/**
 * The Organization a `create` writes: the identifier the bots search for, the name they show and,
 * when Medblocks gives one, the patient portal's address (where a care team sends a patient who
 * must reconnect).
 */
export function newOrganization(sourceId: string, name: string, portalUrl?: string): Organization {
  return {
    resourceType: 'Organization',
    active: true,
    identifier: [{ system: SYSTEM.fhirSourceId, value: sourceId }],
    name,
    ...(portalUrl ? { telecom: [{ system: 'url', value: portalUrl, use: 'work' }] } : {}),
  };
}

/** The conditional-create query: at most one Organization per source even when two runs overlap. */
export function organizationQuery(sourceId: string): string {
  return `identifier=${encodeURIComponent(`${SYSTEM.fhirSourceId}|${sourceId}`)}`;
}

export interface SourcesCounts {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly notFound: number;
  readonly unnamed: number;
  readonly shared: number;
  readonly verifySources: number;
}

export function countActions(actions: readonly SourceAction[]): SourcesCounts {
  const count = (kind: SourceAction['kind']): number => actions.filter((a) => a.kind === kind).length;
  return {
    created: count('create'),
    updated: count('update'),
    unchanged: count('unchanged'),
    notFound: count('not-found'),
    unnamed: count('unnamed'),
    shared: count('shared'),
    verifySources: count('verify-source'),
  };
}

const WHAT: Readonly<Record<SourceAction['kind'], { done: string; planned: string }>> = {
  create: { done: 'created', planned: 'would create' },
  update: { done: 'updated', planned: 'would update' },
  unchanged: { done: 'unchanged', planned: 'unchanged' },
  'not-found': { done: 'not found at Medblocks', planned: 'not found at Medblocks' },
  unnamed: { done: 'no usable name at Medblocks', planned: 'no usable name at Medblocks' },
  shared: { done: 'left as is (names several sources)', planned: 'left as is (names several sources)' },
  'verify-source': { done: "npm run verify's test source, skipped", planned: "npm run verify's test source, skipped" },
};

/** Whether a source id is one `npm run verify` made up: Medblocks never knew it, so it is not looked up. */
export function isVerifySource(sourceId: string): boolean {
  return (
    sourceId.startsWith(VERIFY_SOURCE_PREFIX) && /^[AB][0-9a-z]+$/.test(sourceId.slice(VERIFY_SOURCE_PREFIX.length))
  );
}

/**
 * The table and the summary line. Source ids and EHR names only: neither is about a patient.
 * `created` gives the ids of the Organizations just created, by source id.
 */
export function formatSources(
  actions: readonly SourceAction[],
  options: { readonly dryRun: boolean; readonly consents: number; readonly created?: ReadonlyMap<string, string> }
): string[] {
  const lines: string[] = [];
  const sources = new Set(actions.map((a) => a.sourceId)).size;
  lines.push(`${sources} EHR source(s) on ${options.consents} Consent(s).`);
  if (actions.length === 0) {
    lines.push('No Consent names an EHR source yet: nothing to name.');
    return lines;
  }
  if (options.dryRun) lines.push('Dry run: nothing was changed.');
  const rows = actions.map((a) => {
    const what = options.dryRun ? WHAT[a.kind].planned : WHAT[a.kind].done;
    const organization =
      a.kind === 'update' || a.kind === 'unchanged' || a.kind === 'shared'
        ? `Organization/${a.organizationId}`
        : a.kind === 'create'
          ? options.created?.get(a.sourceId)
            ? `Organization/${options.created.get(a.sourceId) ?? ''}`
            : '(new)'
          : '-';
    const name =
      a.kind === 'update' && a.previousName !== undefined
        ? `${a.name} (was ${usableName(a.previousName) ?? 'blank'})`
        : a.kind === 'create' || a.kind === 'update' || a.kind === 'unchanged'
          ? a.name
          : '-';
    return [a.sourceId, what, organization, name];
  });
  lines.push(...textTable(['source', 'action', 'organization', 'name'], rows));
  const c = countActions(actions);
  const verb = options.dryRun ? 'planned: ' : '';
  lines.push(
    `${verb}created ${c.created}, updated ${c.updated}, unchanged ${c.unchanged}, not found at Medblocks ${c.notFound}` +
      (c.unnamed > 0 ? `, no usable name ${c.unnamed}` : '') +
      (c.shared > 0 ? `, left as is ${c.shared}` : '') +
      (c.verifySources > 0 ? `, verify's test sources skipped ${c.verifySources}` : '') +
      '.'
  );
  if (c.created + c.updated === 0) {
    lines.push('No changes: every source Medblocks names already has its Organization with that name.');
  }
  if (c.notFound > 0) {
    lines.push(
      'Sources not found at Medblocks keep their Organization (if any) as it is; check that MEDBLOCKS_API_KEY ' +
        'belongs to the account (sandbox or live) the bots receive events from.'
    );
  }
  return lines;
}
