// A tool never waits silently on a Medplum that accepts the connection and never answers:
// each request gives up after REQUEST_TIMEOUT_MS (30 s) with a message naming the variable, the
// URL and what it was waiting for (the path, never the query, which may carry identifiers).
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoAnswerError, reachableFetch } from '../../src/tools/provision/reach';

let silent: Server;
let baseUrl: string;

beforeAll(async () => {
  // Accepts every connection and request, answers nothing.
  silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${String((silent.address() as AddressInfo).port)}/`;
});

afterAll(async () => {
  silent.closeAllConnections();
  await new Promise((resolve) => silent.close(resolve));
});

describe('a Medplum that never answers', () => {
  it('fails the request within its bound, naming the variable, URL and request, not the query', async () => {
    const fetchWithBound = reachableFetch('MEDPLUM_BASE_URL', baseUrl, fetch, 1_000);
    const started = Date.now();
    const failure = await fetchWithBound(`${baseUrl}fhir/R4/Patient?identifier=user_42`).catch((err: unknown) => err);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(failure).toBeInstanceOf(NoAnswerError);
    const message = (failure as Error).message;
    expect(message).toContain(`MEDPLUM_BASE_URL=${baseUrl}`);
    expect(message).toContain('within 1 s');
    expect(message).toContain('GET /fhir/R4/Patient');
    expect(message).not.toContain('user_42');
  });

  it('keeps a caller’s own abort an AbortError (clients’ retries work as before)', async () => {
    const controller = new AbortController();
    const pending = reachableFetch('MEDPLUM_BASE_URL', baseUrl, fetch, 10_000)(baseUrl, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });
});
