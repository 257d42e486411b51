// Medblocks' records API as the import bot calls it (published operation `api.getPatientRecords`,
// `GET /patients/{id}/records`): one page at a time, type-checked. The HTTP and the failure
// classes are ../medblocks/http.ts, shared with the reconciler.
import * as v from 'valibot';
import { MedblocksCallError, medblocksGet } from '../medblocks/http';
import type { MedblocksConnection } from '../medblocks/http';
import type { RecordItem } from './plan';

export { MedblocksCallError } from '../medblocks/http';
export type { MedblocksConnection, MedblocksFailureReason } from '../medblocks/http';

/** The largest page Medblocks serves for records (`count` 1–100). */
export const RECORDS_PAGE_SIZE = 100;

/** Record cursors live 7 days (published); one older than this is not tried, the pass restarts. */
export const CURSOR_LIFETIME_MS = 7 * 24 * 3600 * 1000 - 3600 * 1000;

const PageSchema = v.object({
  resource_type: v.literal('list'),
  data: v.pipe(
    v.array(
      v.object({
        source: v.nullable(v.string()),
        resource: v.looseObject({ resourceType: v.string() }),
      })
    ),
    v.maxLength(RECORDS_PAGE_SIZE)
  ),
  has_more: v.boolean(),
  next_cursor: v.nullable(v.string()),
});

export interface RecordsPage {
  readonly items: readonly RecordItem[];
  readonly nextCursor: string | undefined;
}

export interface RecordsQuery {
  readonly patientId: string;
  readonly types: readonly string[];
  readonly since: string | undefined;
  readonly cursor: string | undefined;
}

/** One page of a patient's records changed since `since`, in Medblocks' stable order. */
export async function fetchRecordsPage(connection: MedblocksConnection, query: RecordsQuery): Promise<RecordsPage> {
  const params = new URLSearchParams({ type: query.types.join(','), count: String(RECORDS_PAGE_SIZE) });
  if (query.since) params.set('since', query.since);
  if (query.cursor) params.set('starting_after', query.cursor);
  const body = await medblocksGet(connection, `/patients/${encodeURIComponent(query.patientId)}/records`, params);
  const parsed = v.safeParse(PageSchema, body);
  if (!parsed.success) {
    throw new MedblocksCallError('medblocks_error', 200, undefined);
  }
  const page = parsed.output;
  return {
    items: page.data,
    nextCursor: page.has_more && page.next_cursor ? page.next_cursor : undefined,
  };
}
