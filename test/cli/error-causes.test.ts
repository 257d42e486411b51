// Messages that name the real cause and the variable to change, against real
// loopback servers: a Medplum that fails (500, a proxy's HTML 502, a 404), the Medplum web app at
// MEDPLUM_BASE_URL instead of the API, and a Medblocks that cannot be reached, speaks plain HTTP
// to https://, or is an HTML site. Before: a 500 read "HTTP 400", the web app was blamed on the
// client id and secret, and a 500 at the token call too.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { runRedeliver } from '../../src/tools/cli/redeliver';
import { connectMedplum } from '../../src/tools/provision/medplum';
import { describeNetworkError } from '../../src/tools/provision/reach';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];

async function serve(handler: Handler): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/`, requests };
}

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const send =
  (status: number, body: string, contentType = 'application/json'): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': contentType });
    res.end(body);
  };

/** `/healthcheck` answers as Medplum's; everything else as `rest`. */
const healthyThen =
  (rest: Handler): Handler =>
  (req, res) => {
    if (req.url?.startsWith('/healthcheck')) send(200, '{"ok":true,"version":"5.2.13-abc"}')(req, res);
    else rest(req, res);
  };

async function connectFailure(url: string): Promise<string> {
  const err = await connectMedplum({ medplumBaseUrl: url, clientId: 'client-1', clientSecret: 'SECRET-DO-NOT-PRINT' })
    .then(() => undefined)
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  const message = (err as Error).message;
  expect(message).not.toContain('SECRET-DO-NOT-PRINT');
  return message;
}

describe('Medplum answers that are not what the tools asked for', () => {
  it('a 500 is reported as HTTP 500 and as the server’s failure, not the settings’', async () => {
    const { url } = await serve(send(500, '{"error":"database unavailable"}'));
    const message = await connectFailure(url);
    expect(message).toBe(
      'Medplum GET /healthcheck failed with HTTP 500: database unavailable. The Medplum server failed, not the settings: check its health and logs (or the proxy in front of it), then run again'
    );
  });

  it('a 500 at the token call does not blame the client id and secret', async () => {
    const outcome = {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'exception', details: { text: 'Internal server error' } }],
    };
    const { url } = await serve(healthyThen(send(500, JSON.stringify(outcome), 'application/fhir+json')));
    const message = await connectFailure(url);
    expect(message).toMatch(/^Medplum POST \/oauth2\/token failed with HTTP 500: .*Internal server error/);
    expect(message).toContain('The Medplum server failed, not the settings');
    expect(message).not.toMatch(/MEDPLUM_CLIENT_ID|MEDPLUM_CLIENT_SECRET/);
  });

  it('a proxy’s HTML 502 is named as such, with its status', async () => {
    const { url } = await serve(send(502, '<html><body><h1>502 Bad Gateway</h1></body></html>', 'text/html'));
    const message = await connectFailure(url);
    expect(message).toMatch(
      /^Medplum GET \/healthcheck failed with HTTP 502: an HTML error page \(HTTP 502\), e\.g\. from a proxy or load balancer in front of Medplum\. The Medplum server failed/
    );
  });

  it('a 404 that is not an OperationOutcome keeps its status', async () => {
    const { url } = await serve(healthyThen(send(404, 'Cannot POST /oauth2/token', 'text/plain')));
    expect(await connectFailure(url)).toMatch(
      /^Medplum POST \/oauth2\/token failed with HTTP 404: .*Cannot POST \/oauth2\/token\. Check MEDPLUM_CLIENT_ID/
    );
  });

  it('the web app at MEDPLUM_BASE_URL is named, once, with what to set instead — never blamed on the credentials', async () => {
    const page = '<!doctype html><html><head><title>Medplum</title></head><body><div id="root"></div></body></html>';
    const { url, requests } = await serve((req, res) => {
      if (req.method === 'GET') send(200, page, 'text/html; charset=utf-8')(req, res);
      else send(405, '<html>405 Not Allowed</html>', 'text/html')(req, res);
    });
    const message = await connectFailure(url);
    expect(message).toBe(
      `MEDPLUM_BASE_URL=${url} answered GET /healthcheck with an HTML page (HTTP 200), not Medplum's API: it points at a web page, probably the Medplum app. Set MEDPLUM_BASE_URL to the API server, the one that serves /healthcheck, /oauth2/token and /fhir/R4 (hosted: https://api.medplum.com/, not https://app.medplum.com/; self-hosted: the server's baseUrl, port 8103 by default)`
    );
    // MedplumClient retries a thrown error at once; this one is final.
    expect(requests).toEqual(['GET /healthcheck']);
  });

  it('refused credentials still name the client id and secret', async () => {
    const { url } = await serve(
      healthyThen(send(400, '{"error":"invalid_client","error_description":"Invalid secret"}'))
    );
    const message = await connectFailure(url);
    expect(message).toMatch(
      /^Medplum POST \/oauth2\/token failed with HTTP 400: Failed to fetch tokens: Invalid secret\./
    );
    expect(message).toContain('Check MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET');
  });
});

describe('a Medblocks that cannot be reached or is not the API, through npm run redeliver', () => {
  async function redeliverOutput(medblocksUrl: string): Promise<{ code: number; text: string }> {
    const lines: string[] = [];
    const code = await runRedeliver(
      [],
      {
        MEDPLUM_BASE_URL: 'http://127.0.0.1:8913/',
        MEDBLOCKS_API_KEY: 'mb_sk_DO_NOT_PRINT',
        MEDBLOCKS_API_BASE_URL: medblocksUrl,
      },
      (l) => lines.push(l),
      { sleep: () => Promise.resolve(), progress: (l) => lines.push(l) }
    );
    const text = lines.join('\n');
    expect(text).not.toContain('mb_sk_DO_NOT_PRINT');
    expect(text).not.toContain('fetch failed');
    return { code, text };
  }

  it('nothing listening: connection refused, with the variable and its value', async () => {
    const { url } = await serve(() => undefined);
    const server = servers.at(-1) as Server;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    const { code, text } = await redeliverOutput(url.replace(/\/$/, ''));
    expect(code).toBe(1);
    expect(text).toContain(
      `Medblocks GET /webhooks failed: connection refused (nothing listens on that port: is the server running?) (check MEDBLOCKS_API_BASE_URL=${url.replace(/\/$/, '')})`
    );
  });

  it('https:// to a plain-HTTP server: the TLS handshake, with the variable', async () => {
    const { url } = await serve(send(200, '{}'));
    const https = url.replace(/^http:/, 'https:').replace(/\/$/, '');
    const { code, text } = await redeliverOutput(https);
    expect(code).toBe(1);
    expect(text).toContain(
      `TLS handshake failed (an http:// server addressed as https://?) (check MEDBLOCKS_API_BASE_URL=${https})`
    );
  });

  it('an HTML site’s 404: not Medblocks’ API, with the variable', async () => {
    const { url } = await serve(send(404, '<!doctype html><title>Not found</title>', 'text/html'));
    const base = url.replace(/\/$/, '');
    const { code, text } = await redeliverOutput(base);
    expect(code).toBe(1);
    expect(text).toContain(
      `Medblocks GET /webhooks failed with HTTP 404: the answer is an HTML page, not Medblocks' API: is MEDBLOCKS_API_BASE_URL=${base} Medblocks' API?`
    );
  });

  it('TLS certificate problems are said in words', () => {
    const tls = (code: string): string =>
      describeNetworkError(new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code }) }));
    expect(tls('SELF_SIGNED_CERT_IN_CHAIN')).toMatch(/self-signed certificate/);
    expect(tls('UNABLE_TO_VERIFY_LEAF_SIGNATURE')).toMatch(/cannot be verified/);
    expect(tls('UNABLE_TO_GET_ISSUER_CERT_LOCALLY')).toMatch(/does not trust/);
    expect(tls('ERR_TLS_CERT_ALTNAME_INVALID')).toMatch(/for another host name/);
  });
});
