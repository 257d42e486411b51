// One GET to Medblocks' API from inside a bot: Bearer key, the API version header (contract MB-C1), a bound on the
// wait, and a failure classified so the caller can tell "try again later" from "fix the settings".
// Medplum's vmcontext sandbox has `fetch` but no AbortSignal or setTimeout globals: the bound is a
// race against node:timers/promises (unref'd, so it never holds a process open). Nothing of an
// answer's body reaches an error: only the status, the published `param` and `request_id`.
import { setTimeout as delay } from 'node:timers/promises';
import * as v from 'valibot';
import { MEDBLOCKS_API_VERSION } from './version';

const REQUEST_TIMEOUT_MS = 15_000;

export interface MedblocksConnection {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly fetch: typeof fetch;
  /** How long one request may take before it counts as no answer (default 15 s). */
  readonly timeoutMs?: number;
}

export type MedblocksFailureReason =
  /** 429, 502–504, no answer: Medblocks' own SDK retries these. */
  | 'medblocks_unavailable'
  /** 401/403: the key in MEDBLOCKS_API_KEY is wrong or lacks access. */
  | 'medblocks_unauthorized'
  /** 404: Medblocks does not know the patient. */
  | 'medblocks_patient_unknown'
  /** 400 naming a cursor: expired or not Medblocks'; the pass restarts from its watermark. */
  | 'medblocks_cursor_rejected'
  /** Any other refusal, or an answer that is not what was asked for. */
  | 'medblocks_error';

/** A failed Medblocks call: the reason and what support needs (status, request_id), never a body. */
export class MedblocksCallError extends Error {
  constructor(
    readonly reason: MedblocksFailureReason,
    readonly status: number | undefined,
    readonly requestId: string | undefined,
    what = 'GET'
  ) {
    super(
      `Medblocks ${what} failed: ${reason}${status ? ` (HTTP ${String(status)})` : ''}${requestId ? ` request_id ${requestId}` : ''}`
    );
    this.name = 'MedblocksCallError';
  }

  get transient(): boolean {
    return this.reason === 'medblocks_unavailable';
  }
}

/** GETs a path of Medblocks' API and answers its parsed JSON body; throws MedblocksCallError. */
export async function medblocksGet(
  connection: MedblocksConnection,
  path: string,
  query: URLSearchParams = new URLSearchParams()
): Promise<unknown> {
  const url = new URL(path, connection.baseUrl);
  for (const [name, value] of query) url.searchParams.set(name, value);
  let response: Response;
  let text: string;
  try {
    const answer = (async () => {
      const r = await connection.fetch(url.toString(), {
        headers: {
          accept: 'application/json',
          authorization: `Bearer ${connection.apiKey}`,
          version: MEDBLOCKS_API_VERSION,
        },
      });
      return { r, body: await r.text() };
    })();
    const timeout = delay(connection.timeoutMs ?? REQUEST_TIMEOUT_MS, undefined, { ref: false }).then(() => undefined);
    const settled = await Promise.race([answer, timeout]);
    if (!settled) {
      answer.catch(() => undefined);
      throw new MedblocksCallError('medblocks_unavailable', undefined, undefined);
    }
    response = settled.r;
    text = settled.body;
  } catch (err) {
    if (err instanceof MedblocksCallError) throw err;
    throw new MedblocksCallError('medblocks_unavailable', undefined, undefined);
  }
  if (!response.ok) {
    throw failureOf(response.status, text, response.headers.get('x-request-id'));
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new MedblocksCallError('medblocks_error', response.status, undefined);
  }
}

function failureOf(status: number, text: string, headerRequestId: string | null): MedblocksCallError {
  let param: unknown;
  let requestId: unknown = headerRequestId;
  try {
    const error = (JSON.parse(text) as { error?: { param?: unknown; request_id?: unknown } }).error;
    param = error?.param;
    requestId = error?.request_id ?? requestId;
  } catch {
    // not the error envelope: the status alone decides
  }
  const id = typeof requestId === 'string' && /^[\w.-]{1,80}$/.test(requestId) ? requestId : undefined;
  if (status === 429 || status === 502 || status === 503 || status === 504) {
    return new MedblocksCallError('medblocks_unavailable', status, id);
  }
  if (status === 401 || status === 403) return new MedblocksCallError('medblocks_unauthorized', status, id);
  if (status === 404) return new MedblocksCallError('medblocks_patient_unknown', status, id);
  if (status === 400 && (param === 'starting_after' || param === 'ending_before' || param === 'cursor')) {
    return new MedblocksCallError('medblocks_cursor_rejected', status, id);
  }
  return new MedblocksCallError('medblocks_error', status, id);
}

/** The largest page a Medblocks list serves (`limit` 1–100). */
const LIST_PAGE_LIMIT = 100;

/**
 * Every item of a Medblocks list (`{data, has_more, next_cursor}`, published paging), each checked
 * against `item`; past `maxPages` it throws rather than answer short without saying so.
 */
export async function listAll<T>(
  connection: MedblocksConnection,
  path: string,
  item: v.GenericSchema<unknown, T>,
  maxPages: number
): Promise<T[]> {
  const page = v.object({
    data: v.pipe(v.array(item), v.maxLength(LIST_PAGE_LIMIT)),
    has_more: v.boolean(),
    next_cursor: v.nullable(v.string()),
  });
  const out: T[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < maxPages; n++) {
    const query = new URLSearchParams({ limit: String(LIST_PAGE_LIMIT) });
    if (cursor) query.set('starting_after', cursor);
    const parsed = v.safeParse(page, await medblocksGet(connection, path, query));
    if (!parsed.success) throw new MedblocksCallError('medblocks_error', 200, undefined, `GET ${path}`);
    out.push(...parsed.output.data);
    cursor = parsed.output.has_more ? (parsed.output.next_cursor ?? undefined) : undefined;
    if (!cursor) return out;
  }
  throw new MedblocksCallError('medblocks_error', undefined, undefined, `GET ${path} beyond ${String(maxPages)} pages`);
}
