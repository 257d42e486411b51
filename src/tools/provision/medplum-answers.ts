// What a tool says when Medplum answers something other than its API's answer. MedplumClient turns
// any error answer that is not an OperationOutcome into `badRequest(…)`, so a 500 (or a proxy's 502)
// read "HTTP 400", and every failed token call is blamed on the client id and secret; an HTML page
// (the Medplum web app at MEDPLUM_BASE_URL instead of the API) failed as a JSON parse error, or as
// bad credentials. `explainedFetch` sits between MedplumClient and the network and
//   - refuses an HTML page (below 500) with NotMedplumApiError, naming MEDPLUM_BASE_URL and what to
//     set it to, before MedplumClient can misread it;
//   - hands every error answer on as an OperationOutcome that carries the real HTTP status
//     (`httpStatusOf`), so `medplumFailure` reports the status the server gave, and says when the
//     server, not a setting, failed.
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

/** Where the real HTTP status of an error answer travels inside the OperationOutcome MedplumClient throws. */
export const HTTP_STATUS_EXTENSION = 'urn:medblocks:tools:http-status';

/**
 * MEDPLUM_BASE_URL points at a web page, not the API. Its `name` is `AbortError` so that
 * MedplumClient does not ask the same page twice more (it retries any other thrown error at once).
 */
export class NotMedplumApiError extends Error {
  constructor(baseUrl: string, request: string, status: number) {
    super(
      `MEDPLUM_BASE_URL=${baseUrl} answered ${request} with an HTML page (HTTP ${String(status)}), not Medplum's API: ` +
        'it points at a web page, probably the Medplum app. Set MEDPLUM_BASE_URL to the API server, the one that ' +
        'serves /healthcheck, /oauth2/token and /fhir/R4 (hosted: https://api.medplum.com/, not https://app.medplum.com/; ' +
        "self-hosted: the server's baseUrl, port 8103 by default)"
    );
    this.name = 'AbortError';
  }
}

/** The HTTP status `explainedFetch` recorded on an OperationOutcome; undefined when it did not pass through it. */
export function httpStatusOf(outcome: OperationOutcome | undefined): number | undefined {
  return outcome?.extension?.find((e) => e.url === HTTP_STATUS_EXTENSION)?.valueInteger;
}

/** The issue code Medplum itself uses for a status, so `getStatus` and the app read it the same way. */
function issueCode(status: number): OperationOutcomeIssue['code'] {
  if (status === 401) return 'login';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not-found';
  if (status === 409) return 'conflict';
  if (status === 429) return 'throttled';
  if (status >= 500) return 'exception';
  return 'invalid';
}

/** Downloads (deployed code, presigned storage URLs) may be any content type, HTML included. */
function isDownload(path: string): boolean {
  return /\/(Binary|storage)\//.test(path);
}

function pathOf(input: string | URL | Request): string {
  const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  try {
    return new URL(href).pathname;
  } catch {
    return '(request)';
  }
}

/** What an error body says, in at most 200 characters: an OAuth or JSON error's text, else its first line. */
function errorText(status: number, text: string, html: boolean): string {
  if (html)
    return `an HTML error page (HTTP ${String(status)}), e.g. from a proxy or load balancer in front of Medplum`;
  try {
    const body = JSON.parse(text) as { error_description?: unknown; error?: unknown; message?: unknown };
    const inner = typeof body.error === 'object' && body.error !== null ? (body.error as { message?: unknown }) : {};
    for (const candidate of [body.error_description, inner.message, body.message, body.error]) {
      if (typeof candidate === 'string' && candidate.trim()) return candidate.trim().slice(0, 200);
    }
  } catch {
    // not JSON: the text itself
  }
  const first = text.trim().split('\n')[0]?.trim() ?? '';
  return first ? first.slice(0, 200) : `HTTP ${String(status)} without a body`;
}

/**
 * A fetch for MedplumClient whose error answers keep their HTTP status and whose HTML pages are
 * refused as "not the API". Successful JSON answers pass through untouched (never read twice).
 */
export function explainedFetch(baseUrl: string, fetchFn: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await fetchFn(input, init);
    const path = pathOf(input);
    const contentType = response.headers.get('content-type') ?? '';
    const html = /^text\/html\b/i.test(contentType);
    if (html && response.status < 500 && !isDownload(path)) {
      await response.body?.cancel();
      throw new NotMedplumApiError(baseUrl, `${init?.method ?? 'GET'} ${path}`, response.status);
    }
    // Only error answers (4xx, 5xx) are rewritten: a 304 or a 204 has no body to carry an outcome.
    if (response.status < 400) return response;
    const text = await response.text();
    let outcome: OperationOutcome | undefined;
    try {
      const parsed = JSON.parse(text) as { resourceType?: unknown };
      if (parsed.resourceType === 'OperationOutcome') outcome = parsed as OperationOutcome;
    } catch {
      outcome = undefined;
    }
    outcome ??= {
      resourceType: 'OperationOutcome',
      issue: [
        {
          severity: 'error',
          code: issueCode(response.status),
          details: { text: errorText(response.status, text, html) },
        },
      ],
    };
    const withStatus: OperationOutcome = {
      ...outcome,
      extension: [
        ...(outcome.extension ?? []).filter((e) => e.url !== HTTP_STATUS_EXTENSION),
        { url: HTTP_STATUS_EXTENSION, valueInteger: response.status },
      ],
    };
    const headers = new Headers(response.headers);
    headers.set('content-type', 'application/fhir+json');
    headers.delete('content-length');
    headers.delete('content-encoding');
    return new Response(JSON.stringify(withStatus), {
      status: response.status,
      statusText: response.statusText,
      headers,
    });
  };
}
