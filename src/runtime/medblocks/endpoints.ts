// Medblocks' webhook endpoints as the reconciler reads them (published `api.listWebhooks`,
// `GET /webhooks`): every page within a bound, type-checked. Medblocks disables an endpoint once a
// delivery exhausts its retries, and tells no one: the reconciler turns that into an ops Task.
import * as v from 'valibot';
import { listAll } from './http';
import type { MedblocksConnection } from './http';

/** `WebhookEndpoint` as published (MB-1); the tools' client checks its answers with it too. */
export const EndpointSchema = v.looseObject({
  id: v.string(),
  url: v.string(),
  events: v.array(v.string()),
  status: v.string(),
  description: v.optional(v.nullable(v.string())),
});
export type MedblocksEndpointRecord = v.InferOutput<typeof EndpointSchema>;

/** Pages followed before the run says it stopped (10,000 endpoints: far beyond one workspace's). */
export const MAX_ENDPOINT_PAGES = 100;

/** Every webhook endpoint of the key's workspace. */
export function listEndpoints(connection: MedblocksConnection): Promise<MedblocksEndpointRecord[]> {
  return listAll(connection, '/webhooks', EndpointSchema, MAX_ENDPOINT_PAGES);
}
