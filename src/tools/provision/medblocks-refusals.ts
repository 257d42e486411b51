// Medblocks answers a refused request with `{"error": {"type", "code", "message", "param", …}}`.
// The Medblocks client (./medblocks-api.ts) keeps only the message; provisioning also needs the
// type and the parameter to tell "this account does not know the event name
// patient_flow.completed" (400 invalid_request_error on `events`) from any other
// refusal (contract MB-C5: which `param` and code is not published). `observeRefusals` wraps the client's fetch and remembers the last refusal's fields;
// the body is never logged (Medblocks' answers can carry signing secrets).

/** The fields of Medblocks' error object that decide what provisioning does next. */
export interface MedblocksRefusal {
  readonly status: number;
  readonly type: string | undefined;
  readonly param: string | undefined;
}

export interface RefusalLog {
  /** The most recent non-2xx answer, or undefined. */
  last: MedblocksRefusal | undefined;
}

/** `fetchFn` that records every non-2xx JSON answer's `error.type` and `error.param` in `log`. */
export function observeRefusals(fetchFn: typeof fetch, log: RefusalLog): typeof fetch {
  return async (input, init) => {
    const response = await fetchFn(input, init);
    if (!response.ok) {
      let type: string | undefined;
      let param: string | undefined;
      try {
        const body = (await response.clone().json()) as { error?: { type?: unknown; param?: unknown } };
        type = typeof body.error?.type === 'string' ? body.error.type : undefined;
        param = typeof body.error?.param === 'string' ? body.error.param : undefined;
      } catch {
        // Not JSON: only the status is known.
      }
      log.last = { status: response.status, type, param };
    }
    return response;
  };
}

/**
 * Whether a refusal may say the `events` list holds a name this Medblocks account does not know.
 * The published API rejects unknown types with a 400 `invalid_request_error` but does not say
 * which `param` (`events`, `events[0]`, or none) or code it carries, so any of those counts; a
 * refusal naming another parameter (`url`) does not.
 */
export function refusedEventName(refusal: MedblocksRefusal | undefined): boolean {
  if (refusal?.status !== 400 || refusal.type !== 'invalid_request_error') return false;
  return refusal.param === undefined || /^events(\[\d+\])?$/.test(refusal.param);
}
