// The bots' policies confine Consents by this package's own category (ledger TX-10); Consents
// written before it (0.3.0 and earlier) carry only LOINC 59284-0 and IDSCL, so a bot would not see
// them and would create a second Consent for the same connection. Provisioning adds the category to
// each of them: once before the new policies take effect, and once after the new code is deployed,
// because a bot of the old code still running in between rewrites its Consents with the two
// categories it knew.
import type { MedplumClient } from '@medplum/core';
import type { BundleEntry, Coding, Consent } from '@medplum/fhirtypes';
import { CODE, CONSENT_CATEGORY, CONSENT_OWN_CATEGORY, CONSENT_SCOPE, SYSTEM, token } from '../../runtime/fhir/systems';
import type { ConsentPaging } from '../bot-consents';
import { BOT_CONSENTS_QUERY, readBotConsents } from '../bot-consents';
import { call, SetupError } from './medplum';

const PAGING: ConsentPaging = { pageSize: 1000, maxPages: 50 };
const FIX = 'The client needs read and update access to Consent (a project-admin ClientApplication has both)';

/** The category as a search token: what the bots' policies confine Consents by. */
export const OWN_CATEGORY_TOKEN = token(SYSTEM.code, CODE.ehrConnection);

const codingToken = (coding: Coding | undefined): string => token(coding?.system ?? '', coding?.code ?? '');

/**
 * Exactly the Consents the bots' policies of 0.3.0 let them see (those criteria: our key's system,
 * privacy scope, LOINC category) and still without our category (`:not`, ledger SRCH-5). A Consent
 * someone else wrote with a key of ours but another scope stays out of the bots' reach, and a rerun
 * reads only what is left to do.
 */
export const LACKING_CATEGORY_QUERY = [
  BOT_CONSENTS_QUERY,
  `scope=${encodeURIComponent(codingToken(CONSENT_SCOPE.coding?.[0]))}`,
  `category=${encodeURIComponent(codingToken(CONSENT_CATEGORY[0]?.coding?.[0]))}`,
  `category:not=${encodeURIComponent(OWN_CATEGORY_TOKEN)}`,
].join('&');

/**
 * Whether the bots' policies (their criteria) let them see this Consent. The query already leaves
 * such Consents out; checked again so that a server ignoring `:not` cannot make us add it twice.
 */
function hasOwnCategory(consent: Consent): boolean {
  return consent.category.some((c) =>
    (c.coding ?? []).some((coding) => coding.system === SYSTEM.code && coding.code === CODE.ehrConnection)
  );
}

export interface CategoryMigration {
  /** Bot Consents that lacked the category (on a dry run: that would get it). */
  readonly lacking: number;
  readonly added: number;
  /**
   * Consents changed or deleted between our read and our update (412, 404 or 410 on a
   * version-checked PUT), or stored without a version to check: left alone, never overwritten. A
   * bot of this version writes the category itself; a run of provision again settles any an old
   * bot rewrote.
   */
  readonly changedMeanwhile: number;
  /** The read stopped at its page limit: more Consents lack the category than one run reads. */
  readonly truncated: boolean;
}

/** Updates per batch: one request per hundred Consents, not one per Consent (a project can have tens of thousands). */
const BATCH_SIZE = 100;

/**
 * Adds the category to every bot Consent that lacks it, each by a version-checked update in a
 * `batch`, so that a bot's write in between is never overwritten. Only `category` changes.
 */
export async function addOwnCategory(
  medplum: MedplumClient,
  dryRun: boolean,
  paging: ConsentPaging = PAGING
): Promise<CategoryMigration> {
  const { consents, truncated } = await readBotConsents(medplum, paging, FIX, LACKING_CATEGORY_QUERY);
  const lacking = consents.filter((c) => !hasOwnCategory(c));
  const checkable = lacking.filter((c) => c.id && c.meta?.versionId);
  let added = 0;
  let changedMeanwhile = lacking.length - checkable.length;
  for (let i = 0; !dryRun && i < checkable.length; i += BATCH_SIZE) {
    const part = checkable.slice(i, i + BATCH_SIZE);
    const entry: BundleEntry[] = part.map((consent) => ({
      resource: { ...consent, category: [...consent.category, CONSENT_OWN_CATEGORY] },
      request: { method: 'PUT', url: `Consent/${consent.id ?? ''}`, ifMatch: `W/"${consent.meta?.versionId ?? ''}"` },
    }));
    const answer = await call(
      'POST',
      'fhir/R4 (batch of Consent updates)',
      () => medplum.executeBatch({ resourceType: 'Bundle', type: 'batch', entry }),
      FIX
    );
    if (answer.entry?.length !== entry.length) {
      throw new SetupError(
        `Medplum answered ${String(answer.entry?.length ?? 0)} entries for a batch of ${String(entry.length)} Consent updates; run provision again`
      );
    }
    answer.entry.forEach((result, index) => {
      const status = Number.parseInt(result.response?.status ?? '', 10);
      if (status >= 200 && status < 300) added++;
      else if (status === 412 || status === 404 || status === 410) changedMeanwhile++;
      else {
        throw new SetupError(
          `Medplum refused adding the category to Consent/${part[index]?.id ?? '?'} (HTTP ${String(status)}). ${FIX}`
        );
      }
    });
  }
  return { lacking: lacking.length, added, changedMeanwhile, truncated };
}
