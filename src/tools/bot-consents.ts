// The bots' Consents as an admin client reads them, whatever their categories: `npm run sources`
// reads their EHR source ids, provisioning adds the package's own category to those that predate it.
import type { MedplumClient } from '@medplum/core';
import type { Bundle, Consent } from '@medplum/fhirtypes';
import { SYSTEM } from '../runtime/fhir/systems';
import { call } from './provision/medplum';

/** Only the bots' Consents: those keyed by a Medblocks connection or a failed authorization attempt. */
export const BOT_CONSENTS_QUERY = `identifier=${encodeURIComponent(
  `${SYSTEM.connectionId}|,${SYSTEM.connectionAttempt}|`
)}`;

export interface ConsentPaging {
  /** Consents per page (Medplum's largest is 1000) and the most pages read. */
  readonly pageSize: number;
  readonly maxPages: number;
}

/**
 * Every bot Consent, page by page: the server's `next` link, else `_offset` while pages come back
 * full (the emulator answers without next links, ledger SRCH-2). Sorted by `_lastUpdated`, so that
 * Medplum's next links are cursors: its offsets stop at 10,000 (SRCH-4), and a project has more
 * Consents than that. `truncated` says `maxPages` stopped the read with more to come, so that a
 * caller never mistakes part of them for all.
 */
export async function readBotConsents(
  medplum: MedplumClient,
  paging: ConsentPaging,
  fix: string,
  query = BOT_CONSENTS_QUERY
): Promise<{ consents: Consent[]; truncated: boolean }> {
  const { pageSize, maxPages } = paging;
  const consents: Consent[] = [];
  const pageUrl = (page: number): string =>
    medplum
      .fhirSearchUrl(
        'Consent',
        `${query}&_sort=_lastUpdated&_count=${pageSize}${page > 0 ? `&_offset=${page * pageSize}` : ''}`
      )
      .toString();
  let url: string | undefined = pageUrl(0);
  for (let page = 0; page < maxPages && url; page++) {
    const current: string = url;
    const bundle = await call('GET', 'fhir/R4/Consent?identifier=…', () => medplum.get<Bundle<Consent>>(current), fix);
    const found = (bundle.entry ?? []).flatMap((e) => (e.resource?.resourceType === 'Consent' ? [e.resource] : []));
    consents.push(...found);
    const next = bundle.link?.find((l) => l.relation === 'next')?.url;
    url = next ?? (found.length === pageSize ? pageUrl(page + 1) : undefined);
  }
  return { consents, truncated: url !== undefined };
}
