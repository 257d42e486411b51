// Medblocks' webhook endpoints as the reconciler reads them (published `api.listWebhooks`,
// `GET /webhooks`): every page within a bound, type-checked. Medblocks disables an endpoint once a
// delivery exhausts its retries, and tells no one: the reconciler turns that into an ops Task.
import * as v from 'valibot';
import { MedblocksCallError, medblocksGet } from './http';
import type { MedblocksConnection } from './http';

const EndpointSchema = v.looseObject({
  id: v.string(),
  url: v.string(),
  events: v.array(v.string()),
  status: v.string(),
  description: v.optional(v.nullable(v.string())),
});
export type MedblocksEndpointRecord = v.InferOutput<typeof EndpointSchema>;

const PAGE_LIMIT = 100;
/** Pages followed before the run says it stopped (10,000 endpoints: far beyond one workspace's). */
export const MAX_ENDPOINT_PAGES = 100;

const ListPageSchema = v.object({
  data: v.pipe(v.array(EndpointSchema), v.maxLength(PAGE_LIMIT)),
  has_more: v.boolean(),
  next_cursor: v.nullable(v.string()),
});

/** Every webhook endpoint of the key's workspace. */
export async function listEndpoints(connection: MedblocksConnection): Promise<MedblocksEndpointRecord[]> {
  const out: MedblocksEndpointRecord[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_ENDPOINT_PAGES; page++) {
    const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
    if (cursor) query.set('starting_after', cursor);
    const parsed = v.safeParse(ListPageSchema, await medblocksGet(connection, '/webhooks', query));
    if (!parsed.success) throw new MedblocksCallError('medblocks_error', 200, undefined, 'GET /webhooks');
    out.push(...parsed.output.data);
    cursor = parsed.output.has_more ? (parsed.output.next_cursor ?? undefined) : undefined;
    if (!cursor) return out;
  }
  throw new MedblocksCallError(
    'medblocks_error',
    undefined,
    undefined,
    `GET /webhooks beyond ${String(MAX_ENDPOINT_PAGES)} pages`
  );
}
