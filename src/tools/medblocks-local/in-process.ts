// The local Medblocks in process: the same state, deliveries and routes as ./server.ts, answered
// through the same `answerRequest` (./core.ts), but as a `fetch` with no socket, so that tests
// running the real clients with an injected `fetch` (provision, monitor, verify) talk to the one
// Medblocks fake there is. Only its own URL is answered; anything else fails as unreachable, as a
// fetch to a host that does not answer does.
import { answerRequest, createLocalMedblocks, readLimited } from './core';
import type { LocalMedblocksOptions, RunningLocalMedblocks } from './model';

export interface InProcessLocalMedblocksOptions extends Omit<LocalMedblocksOptions, 'host' | 'port'> {
  /** Where it answers (a base URL ending in `/`); default `https://medblocks.local.test/`. */
  readonly url?: string;
  /** The `fetch` its webhook deliveries go out through; default the global one, as the server's. */
  readonly deliver?: typeof fetch;
}

export interface InProcessLocalMedblocks extends RunningLocalMedblocks {
  /** Answers a request to `url` as the HTTP server would; any other URL is refused as unreachable. */
  readonly fetch: typeof fetch;
}

/** A local Medblocks answering in process; `close()` cancels its delivery timers. */
export function createInProcessLocalMedblocks(options: InProcessLocalMedblocksOptions = {}): InProcessLocalMedblocks {
  const url = (options.url ?? 'https://medblocks.local.test/').replace(/\/?$/, '/');
  const local = createLocalMedblocks(options, options.deliver);
  const answer: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    if (!request.url.startsWith(url)) throw new TypeError(`fetch failed: the local Medblocks answers ${url} only`);
    const result = await answerRequest(local, {
      method: request.method,
      target: `/${request.url.slice(url.length)}`,
      authorization: request.headers.get('authorization'),
      readBody: () => readLimited(request.body ?? []),
    });
    return new Response(result.body, { status: result.status, headers: result.headers });
  };
  return {
    ...local.controls,
    url,
    fetch: answer,
    close: () => {
      local.deliveries.close();
      return Promise.resolve();
    },
  };
}
