// `npm run sources`, the I/O part: reads the source ids off the bots' Consents in Medplum, asks
// Medblocks for each source's name, and creates or updates the Organizations the bots read EHR
// names from (src/runtime/store/read.ts). Decisions are ./plan.ts's. Only source ids and EHR
// names are printed: Consents are read for their source reference and nothing else is kept.
import type { MedplumClient } from '@medplum/core';
import type { Organization } from '@medplum/fhirtypes';
import { SYSTEM } from '../../runtime/fhir/systems';
import { MedblocksApiError, type MedblocksApi } from '../provision/medblocks-api';
import { call } from '../provision/medplum';
import { readBotConsents } from '../bot-consents';
import {
  newOrganization,
  organizationQuery,
  organizationsBySource,
  isVerifySource,
  planSources,
  sourceIdsOf,
  usableName,
  usablePortalUrl,
  portalUrlOf,
  withPortalUrl,
  type SourceAction,
  type SourceLookup,
} from './plan';

/** Medplum's largest page; with MAX_PAGES, at most 50,000 Consents are read (a warning says when more exist). */
const PAGE_SIZE = 1000;
const MAX_PAGES = 50;
/** Source ids per Organization search, so the URL stays short whatever the number of sources. */
const IDS_PER_SEARCH = 50;

export interface SourcesOptions {
  readonly medplum: MedplumClient;
  readonly api: MedblocksApi;
  readonly dryRun: boolean;
  /** Consents per page and the most pages read; tests make them small to exercise paging. */
  readonly paging?: { readonly pageSize: number; readonly maxPages: number };
  /** Progress and warnings (a truncated read); the result is formatted by the caller. */
  readonly print: (line: string) => void;
}

export interface SourcesResult {
  readonly consents: number;
  readonly actions: SourceAction[];
  /** Ids of the Organizations created, by source id (empty on a dry run). */
  readonly created: Map<string, string>;
  /** True when MAX_PAGES stopped the Consent read: sources on the Consents not read are missing. */
  readonly truncated: boolean;
}

/** Reads, plans and (unless a dry run) applies. Throws on any failure but a source Medblocks does not know. */
export async function syncSources(options: SourcesOptions): Promise<SourcesResult> {
  const paging = options.paging ?? { pageSize: PAGE_SIZE, maxPages: MAX_PAGES };
  const { consents, truncated } = await readBotConsents(options.medplum, paging, CONSENT_READ_FIX);
  if (truncated) {
    options.print(
      `warning: read the first ${consents.length} Consents only (${paging.maxPages} pages); sources named only on later ones may be missing`
    );
  }
  const sourceIds = sourceIdsOf(consents);
  const lookups = new Map<string, SourceLookup>();
  for (const id of sourceIds) {
    lookups.set(id, isVerifySource(id) ? { kind: 'verify-source' } : await lookUp(options.api, id));
  }
  const organizations = await readOrganizations(options.medplum, sourceIds);
  const existing = organizationsBySource(organizations);
  const actions = planSources(sourceIds, lookups, existing);
  const created = new Map<string, string>();
  if (!options.dryRun) {
    const byId = new Map(organizations.flatMap((o) => (o.id ? [[o.id, o] as const] : [])));
    for (const action of actions) {
      if (action.kind === 'create') {
        created.set(action.sourceId, await create(options.medplum, action.sourceId, action.name, action.portalUrl));
      } else if (action.kind === 'update') {
        const current = byId.get(action.organizationId);
        if (current) await update(options.medplum, current, action.name, action.portalUrl);
      }
    }
  }
  return { consents: consents.length, actions, created, truncated };
}

async function readOrganizations(medplum: MedplumClient, sourceIds: readonly string[]): Promise<Organization[]> {
  const out: Organization[] = [];
  for (let i = 0; i < sourceIds.length; i += IDS_PER_SEARCH) {
    const tokens = sourceIds
      .slice(i, i + IDS_PER_SEARCH)
      .map((id) => `${SYSTEM.fhirSourceId}|${id}`)
      .join(',');
    const query = `identifier=${encodeURIComponent(tokens)}&_count=${PAGE_SIZE}`;
    out.push(
      ...(await call(
        'GET',
        'fhir/R4/Organization?identifier=…',
        () => medplum.searchResources('Organization', query),
        fix()
      ))
    );
  }
  return out;
}

/** Medblocks' name for a source. Rate limits and outages are the client's to wait out (one budget per run). */
async function lookUp(api: MedblocksApi, sourceId: string): Promise<SourceLookup> {
  try {
    const source = await api.getSource(sourceId);
    const name = usableName(source.name);
    const portalUrl = usablePortalUrl(source.portal_url);
    return name ? { kind: 'named', name, ...(portalUrl ? { portalUrl } : {}) } : { kind: 'unnamed' };
  } catch (err) {
    if (err instanceof MedblocksApiError && err.status === 404) return { kind: 'not-found' };
    throw err;
  }
}

async function create(
  medplum: MedplumClient,
  sourceId: string,
  name: string,
  portalUrl: string | undefined
): Promise<string> {
  const stored = await call(
    'POST',
    'fhir/R4/Organization (If-None-Exist)',
    () => medplum.createResourceIfNoneExist(newOrganization(sourceId, name, portalUrl), organizationQuery(sourceId)),
    fix()
  );
  // Another run created it between our read and this write: it still gets the name.
  if (stored.name !== name || (portalUrl !== undefined && portalUrlOf(stored) !== portalUrl)) {
    await update(medplum, stored, name, portalUrl);
  }
  return stored.id;
}

async function update(
  medplum: MedplumClient,
  organization: Organization,
  name: string,
  portalUrl: string | undefined
): Promise<void> {
  await call(
    'PUT',
    `fhir/R4/Organization/${organization.id ?? ''}`,
    () => medplum.updateResource({ ...organization, name, telecom: withPortalUrl(organization, portalUrl) }),
    fix()
  );
}

const CONSENT_READ_FIX = 'The client needs read access to Consent (a project-admin ClientApplication has it)';

function fix(): string {
  return 'The client needs read access to Consent and write access to Organization (a project-admin ClientApplication has both)';
}
