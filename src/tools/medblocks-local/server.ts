// A local stand-in for the Medblocks endpoint-management API and its webhook deliveries, so that
// provision, monitor, redeliver and sources can be exercised without a Medblocks account, and so
// that delivery faults (retries, auto-disable, the redelivery limit) can be tested in milliseconds.
// Facts follow Medblocks' published webhook and endpoint-API contract (docs/medblocks-contract.md):
// one rule per operation in ./routes.ts, the deliveries in ./deliveries.ts, the API key, the body
// and the published error envelope in ./core.ts (shared with ./in-process.ts, the same Medblocks as
// a `fetch`); this module is the HTTP server around them and the handle tests hold.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerRequest, createLocalMedblocks, readLimited } from './core';
import type { LocalMedblocks } from './core';
import type { LocalMedblocksOptions, RunningLocalMedblocks } from './model';

export type {
  PatientRecordItem,
  PatientRecordsPage,
  PutRecordsOptions,
  PutRecordsResult,
  StoredPatientRecord,
} from './records';
export type {
  FlowEventName,
  LocalDeliveryRecord,
  LocalEndpoint,
  LocalMedblocksOptions,
  LocalPatientConnection,
  LocalPutRecordsResult,
  MedblocksEvent,
  RunningLocalMedblocks,
} from './model';
export { DEFAULT_SOURCES } from './core';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Starts the local Medblocks; only loopback addresses, every timer cancelled by `close()`. */
export async function startLocalMedblocks(options: LocalMedblocksOptions = {}): Promise<RunningLocalMedblocks> {
  const host = options.host ?? '127.0.0.1';
  if (!LOOPBACK.has(host)) throw new Error(`The local Medblocks listens on loopback only, not ${host}`);
  const local = createLocalMedblocks(options);
  const server = createServer((req, res) => void handle(req, res, local));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    ...local.controls,
    url: `http://${urlHost}:${address.port}`,
    async close() {
      local.deliveries.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        })
      );
    },
  };
}

/** One HTTP request answered by the shared `answerRequest`. */
async function handle(req: IncomingMessage, res: ServerResponse, local: LocalMedblocks): Promise<void> {
  const answer = await answerRequest(local, {
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    authorization: req.headers.authorization,
    readBody: () => readLimited(req),
  });
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}
