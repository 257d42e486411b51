// Medblocks' records API as the import bot calls it (published operation `api.getPatientRecords`,
// `GET /patients/{id}/records`): one page at a time, type-checked, every failure classified so the
// import can tell "try again later" from "fix the settings". Nothing of a record reaches an error.
// Medplum's vmcontext sandbox has no AbortSignal or setTimeout globals: the timeout is a race
// against node:timers/promises (unref'd, so it never holds a process open).
import { setTimeout as delay } from 'node:timers/promises';
import * as v from 'valibot';
import type { RecordItem } from './plan';

/** Medblocks' API version this client speaks (the `Version` header), as the tools do. */
export const MEDBLOCKS_API_VERSION = '2026-04-25';

/** The largest page Medblocks serves for records (`count` 1–100). */
export const RECORDS_PAGE_SIZE = 100;

/** Record cursors live 7 days (published); one older than this is not tried, the pass restarts. */
export const CURSOR_LIFETIME_MS = 7 * 24 * 3600 * 1000 - 3600 * 1000;

const REQUEST_TIMEOUT_MS = 15_000;

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
  /** 400 naming the cursor: expired or not Medblocks'; the pass restarts from its watermark. */
  | 'medblocks_cursor_rejected'
  /** Any other refusal, or an answer that is not a records page. */
  | 'medblocks_error';

/** A failed Medblocks call: the reason and what support needs (status, request_id), never a body. */
export class MedblocksCallError extends Error {
  constructor(
    readonly reason: MedblocksFailureReason,
    readonly status: number | undefined,
    readonly requestId: string | undefined
  ) {
    super(
      `Medblocks GET records failed: ${reason}${status ? ` (HTTP ${String(status)})` : ''}${requestId ? ` request_id ${requestId}` : ''}`
    );
    this.name = 'MedblocksCallError';
  }

  get transient(): boolean {
    return this.reason === 'medblocks_unavailable';
  }
}

/** One page of a patient's records changed since `since`, in Medblocks' stable order. */
export async function fetchRecordsPage(connection: MedblocksConnection, query: RecordsQuery): Promise<RecordsPage> {
  const url = new URL(`/patients/${encodeURIComponent(query.patientId)}/records`, connection.baseUrl);
  url.searchParams.set('type', query.types.join(','));
  url.searchParams.set('count', String(RECORDS_PAGE_SIZE));
  if (query.since) url.searchParams.set('since', query.since);
  if (query.cursor) url.searchParams.set('starting_after', query.cursor);
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
  } catch {
    throw new MedblocksCallError('medblocks_unavailable', undefined, undefined);
  }
  if (!response.ok) {
    throw failureOf(response.status, text, response.headers.get('x-request-id'));
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new MedblocksCallError('medblocks_error', response.status, undefined);
  }
  const parsed = v.safeParse(PageSchema, body);
  if (!parsed.success) {
    throw new MedblocksCallError('medblocks_error', response.status, undefined);
  }
  const page = parsed.output;
  return {
    items: page.data,
    nextCursor: page.has_more && page.next_cursor ? page.next_cursor : undefined,
  };
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
  if (status === 400 && (param === 'starting_after' || param === 'cursor')) {
    return new MedblocksCallError('medblocks_cursor_rejected', status, id);
  }
  return new MedblocksCallError('medblocks_error', status, id);
}
