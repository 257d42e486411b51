// Delivers one webhook event the way Medblocks Connect does: POST of the compact JSON with
// `Content-Type: application/json` and a `Medblocks-Signature` computed afresh for every attempt,
// a 5-second deadline, any 2xx as success, and the documented retry schedule. The clock, the
// sleep and fetch are injectable so tests and `npm run send --time-scale` can compress 3.6 days.
// Medblocks-side only: nothing here knows about FHIR or Medplum.
import { setTimeout as sleepFor } from 'node:timers/promises';
import { signatureHeader } from '../../runtime/medblocks/signature';

/** Delay before each attempt, relative to the previous one: immediately, +1 min, +5 min, +30 min, +2 h, +12 h, +24 h ×3. */
export const RETRY_SCHEDULE_MS: readonly number[] = [
  0,
  60_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  12 * 3_600_000,
  24 * 3_600_000,
  24 * 3_600_000,
  24 * 3_600_000,
];

/**
 * The sender's own schedule for local work (`npm run send -- --max-attempts N` without
 * `--medblocks-schedule`): 0, +1 s, +2 s, +4 s … — retries a developer can watch, where Medblocks'
 * schedule would go quiet for minutes and keep going for 3.6 days.
 */
export const LOCAL_RETRY_SCHEDULE_MS: readonly number[] = [0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000, 8_000];

/** Medblocks counts a slower answer as a failure. */
export const DELIVERY_DEADLINE_MS = 5_000;

/** Medblocks keeps the first 4 KB of each answer in its dashboard; so does the sender's record. */
export const MAX_RECORDED_RESPONSE_BYTES = 4096;

export type Tamper = 'none' | 'body' | 'signature';

export interface DeliveryOptions {
  readonly url: string;
  /** The exact compact JSON Medblocks signs and sends. */
  readonly body: string;
  readonly secret: string;
  /** Delays between attempts (ms, before scaling); Medblocks' schedule by default. */
  readonly schedule?: readonly number[];
  /** Stop after this many attempts (at most the schedule's length). */
  readonly maxAttempts?: number;
  /** How many times faster than real time the schedule runs (3600: an hour per second). */
  readonly timeScale?: number;
  readonly deadlineMs?: number;
  /** Added to the signature timestamp, to simulate a sender clock that is off. */
  readonly clockSkewSeconds?: number;
  /** Sign the original body but send a modified one, or send a corrupted signature. */
  readonly tamper?: Tamper;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly fetch?: typeof fetch;
  /** Called after every attempt, e.g. to print it. */
  readonly onAttempt?: (attempt: AttemptRecord) => void;
}

export interface AttemptRecord {
  readonly attempt: number;
  /** When it was sent on the simulated Medblocks clock (real time × scale since the first attempt). */
  readonly scheduledOffsetMs: number;
  readonly sentAt: string;
  /** HTTP status, or undefined for a timeout or a network error. */
  readonly status: number | undefined;
  readonly error?: 'timeout' | 'network';
  /** For a network error, the system's code when there is one (`ECONNREFUSED`, `ENOTFOUND`…). */
  readonly cause?: string;
  readonly ok: boolean;
  readonly durationMs: number;
  readonly responseBody: string;
}

export interface DeliveryResult {
  readonly delivered: boolean;
  readonly attempts: readonly AttemptRecord[];
}

/**
 * Sends until one attempt gets a 2xx or the schedule is exhausted (after which Medblocks would
 * disable the endpoint). Each attempt is signed with the current time, so retries a day apart
 * still pass the receiver's timestamp window.
 */
export async function deliver(options: DeliveryOptions): Promise<DeliveryResult> {
  const schedule = options.schedule ?? RETRY_SCHEDULE_MS;
  const maxAttempts = Math.min(options.maxAttempts ?? schedule.length, schedule.length);
  const scale = options.timeScale ?? 1;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => sleepFor(ms).then(() => undefined));
  const attempts: AttemptRecord[] = [];
  let offset = 0;
  for (let i = 0; i < maxAttempts; i++) {
    const delay = schedule[i] ?? 0;
    offset += delay;
    if (delay > 0) {
      await sleep(delay / scale);
    }
    const record = await attempt(options, i + 1, offset, now);
    attempts.push(record);
    options.onAttempt?.(record);
    if (record.ok) {
      return { delivered: true, attempts };
    }
  }
  return { delivered: false, attempts };
}

async function attempt(
  options: DeliveryOptions,
  number: number,
  scheduledOffsetMs: number,
  now: () => number
): Promise<AttemptRecord> {
  const sentAtMs = now();
  const { body, header } = signedRequest(options, sentAtMs);
  const deadlineMs = options.deadlineMs ?? DELIVERY_DEADLINE_MS;
  const doFetch = options.fetch ?? fetch;
  const started = performance.now();
  const base = { attempt: number, scheduledOffsetMs, sentAt: new Date(sentAtMs).toISOString() };
  try {
    const response = await doFetch(options.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Medblocks-Signature': header },
      body,
      signal: AbortSignal.timeout(deadlineMs),
    });
    const text = await response.text();
    return {
      ...base,
      status: response.status,
      ok: response.status >= 200 && response.status < 300,
      durationMs: Math.round(performance.now() - started),
      responseBody: text.slice(0, MAX_RECORDED_RESPONSE_BYTES),
    };
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const cause = timedOut ? undefined : errorCode(err);
    return {
      ...base,
      status: undefined,
      error: timedOut ? 'timeout' : 'network',
      ...(cause ? { cause } : {}),
      ok: false,
      durationMs: Math.round(performance.now() - started),
      responseBody: '',
    };
  }
}

/** The errno-style code of a fetch failure (undici puts it on `cause`, sometimes one level deeper). */
function errorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
    const errors = (current as { errors?: unknown }).errors;
    current = Array.isArray(errors) && errors.length > 0 ? errors[0] : (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The body and header of one attempt: fresh `t`, optional skew, optional tampering. */
export function signedRequest(
  options: Pick<DeliveryOptions, 'body' | 'secret' | 'clockSkewSeconds' | 'tamper'>,
  nowMs: number
): { body: string; header: string } {
  const t = Math.floor(nowMs / 1000) + (options.clockSkewSeconds ?? 0);
  const header = signatureHeader(options.secret, t, options.body);
  switch (options.tamper ?? 'none') {
    case 'body':
      return { body: tamperBody(options.body), header };
    case 'signature':
      return { body: options.body, header: flipLastHexDigit(header) };
    default:
      return { body: options.body, header };
  }
}

/** Still valid JSON, one extra field: what an attacker replaying a captured signature would try. */
function tamperBody(body: string): string {
  return body.endsWith('}') ? `${body.slice(0, -1)},"tampered":true}` : `${body} `;
}

function flipLastHexDigit(header: string): string {
  const last = header.at(-1) ?? '0';
  return header.slice(0, -1) + (last === '0' ? '1' : '0');
}
