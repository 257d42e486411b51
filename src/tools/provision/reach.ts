// What a tool says when a server does not answer at all. Node's fetch fails with a bare
// `TypeError: fetch failed` whose cause (ECONNREFUSED, ENOTFOUND, a timeout…) sits in `err.cause`;
// printed as is, the user learns neither which server nor why. `reachableFetch` wraps a fetch so
// that such a failure reads `cannot reach MEDPLUM_BASE_URL=http://127.0.0.1:8913/: connection
// refused`, naming the variable to check, its value and the cause. Answers (any HTTP status) pass
// through untouched.

/** A network failure of one of the tools' servers; the message names the variable, URL and cause. */
export class UnreachableError extends Error {
  constructor(variable: string, url: string, cause: unknown) {
    super(`cannot reach ${variable}=${url}: ${describeNetworkError(cause)}`, { cause });
    this.name = 'UnreachableError';
  }
}

const CAUSES: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused (nothing listens on that port: is the server running?)',
  ENOTFOUND: 'host not found (check the host name)',
  EAI_AGAIN: 'host name lookup failed (check the host name and the network)',
  ECONNRESET: 'connection reset by the server',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  CERT_HAS_EXPIRED: 'the server’s TLS certificate has expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server’s TLS certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN:
    'the server’s TLS certificate chain ends in a self-signed certificate (a proxy that inspects TLS?)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server’s TLS certificate cannot be verified (an incomplete chain?)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    'the server’s TLS certificate is issued by an authority this machine does not trust (NODE_EXTRA_CA_CERTS?)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server’s TLS certificate is for another host name',
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS handshake failed (an http:// server addressed as https://?)',
};

/** The innermost cause of a fetch failure in a few words: `connection refused`, `host not found`, … */
export function describeNetworkError(err: unknown): string {
  let current: unknown = err;
  for (let depth = 0; depth < 5; depth++) {
    const code = propertyOf(current, 'code');
    if (typeof code === 'string' && CAUSES[code]) return CAUSES[code];
    const next = propertyOf(current, 'cause');
    if (next === undefined) break;
    current = next;
  }
  if (current instanceof Error && current.name === 'TimeoutError') return 'no answer before the timeout';
  const code = propertyOf(current, 'code');
  const message = current instanceof Error ? current.message : 'network error';
  return typeof code === 'string' ? `${message} (${code})` : message;
}

function propertyOf(value: unknown, key: 'code' | 'cause'): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/**
 * How long a tool waits for one answer from Medplum before it says so. A server that accepts the
 * connection and never answers would otherwise keep `monitor` or `provision` silent forever.
 */
export const REQUEST_TIMEOUT_MS = 30_000;

/**
 * No answer in time: names the variable, the URL, the request and the bound. Its `name` is
 * `AbortError`, as the timed-out request's own, so that MedplumClient does not retry it: a server
 * silent for the whole bound will not answer a retry either, and its two retries would keep a tool
 * silent three times as long. So a tool facing a silent server stops after one bound (30 s).
 */
export class NoAnswerError extends Error {
  constructor(variable: string, url: string, waitingFor: string, timeoutMs: number) {
    super(
      `no answer from ${variable}=${url} within ${String(Math.round(timeoutMs / 1000))} s (waiting for ${waitingFor})`
    );
    this.name = 'AbortError';
  }
}

/**
 * `fetchFn` whose network failures for URLs under `baseUrl` throw UnreachableError, and whose
 * requests give up after `timeoutMs` with NoAnswerError. Aborts the caller asked for stay
 * AbortErrors, so clients' own timeouts and retries work as before.
 */
export function reachableFetch(
  variable: string,
  baseUrl: string,
  fetchFn: typeof fetch = fetch,
  timeoutMs: number = REQUEST_TIMEOUT_MS
): typeof fetch {
  return async (input, init) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      return await fetchFn(input, { ...init, signal });
    } catch (err) {
      if (timeout.aborted && !init?.signal?.aborted) {
        throw new NoAnswerError(variable, baseUrl, `${init?.method ?? 'GET'} ${pathOf(input)}`, timeoutMs);
      }
      if (err instanceof Error && err.name === 'AbortError') throw err;
      throw new UnreachableError(variable, baseUrl, err);
    }
  };
}

/** The path of a request, never its query (which may carry identifiers). */
function pathOf(input: string | URL | Request): string {
  const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  try {
    return new URL(href).pathname;
  } catch {
    return '(request)';
  }
}
