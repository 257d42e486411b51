// Settings errors name the variable: no silent hosted default for
// MEDPLUM_BASE_URL, a malformed URL names its variable, and a server that does not answer is
// reported with its URL and the cause — for Medplum and for the Medblocks API alike.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runProvision } from '../../src/tools/cli/provision';
import { readSettings, SettingsError } from '../../src/tools/provision/env';
import { connectMedplum } from '../../src/tools/provision/medplum';
import { describeNetworkError } from '../../src/tools/provision/reach';
import { startEmulator } from '../../src/tools/emulator/server';
import { CLIENT_ID, CLIENT_SECRET, fakeFetch, LoopbackService, MEDBLOCKS_KEY } from '../support/fake-servers';
import { emulatorEnv } from '../support/emulator-project';
import { makeRoot } from '../support/provision-root';

let root: string;
let cleanup: () => void;

beforeEach(() => {
  ({ root, cleanup } = makeRoot());
});

afterEach(() => {
  cleanup();
});

/** A loopback port nothing listens on: bound, then released. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    })
  );
  return port;
}

describe('MEDPLUM_BASE_URL and MEDBLOCKS_API_BASE_URL', () => {
  it('has no hosted default: a missing MEDPLUM_BASE_URL names the variable and the two usual values', () => {
    expect(() => readSettings({ MEDPLUM_CLIENT_ID: CLIENT_ID }, root)).toThrow(SettingsError);
    expect(() => readSettings({}, root)).toThrow(
      /MEDPLUM_BASE_URL is not set .*MEDPLUM_BASE_URL=http:\/\/127\.0\.0\.1:8913\/ for `npm run dev`.*MEDPLUM_BASE_URL=https:\/\/api\.medplum\.com\/ for hosted Medplum/
    );
  });

  it('refuses a value that is not an http(s) URL, naming the variable', () => {
    expect(() => readSettings({ MEDPLUM_BASE_URL: 'notaurl' }, root)).toThrow(
      /^MEDPLUM_BASE_URL=notaurl is not an http\(s\) URL: use e\.g\. http:\/\/127\.0\.0\.1:8913\//
    );
    expect(() => readSettings({ MEDPLUM_BASE_URL: 'ftp://x/' }, root)).toThrow(/MEDPLUM_BASE_URL=ftp:\/\/x\//);
    expect(() =>
      readSettings({ MEDPLUM_BASE_URL: 'http://127.0.0.1:8913', MEDBLOCKS_API_BASE_URL: 'notaurl' }, root)
    ).toThrow(/^MEDBLOCKS_API_BASE_URL=notaurl is not an http\(s\) URL/);
  });

  it('provision prints the settings error and changes nothing', async () => {
    const lines: string[] = [];
    // No server is reached: a loopback URL nothing listens on, logging any request.
    const medplum = new LoopbackService(`http://127.0.0.1:${await deadPort()}/`);
    const code = await runProvision([], {
      root,
      env: { MEDPLUM_CLIENT_ID: CLIENT_ID, MEDPLUM_CLIENT_SECRET: CLIENT_SECRET },
      fetchFn: fakeFetch(medplum),
      print: (l) => lines.push(l),
    });
    expect(code).toBe(1);
    expect(lines).toContainEqual(expect.stringMatching(/^provision failed: MEDPLUM_BASE_URL is not set/));
    expect(medplum.requests).toEqual([]);
  });

  it('a dead Medplum port: "cannot reach MEDPLUM_BASE_URL=…: connection refused"', async () => {
    const port = await deadPort();
    const settings = readSettings(
      { MEDPLUM_BASE_URL: `http://127.0.0.1:${port}`, MEDPLUM_CLIENT_ID: 'x', MEDPLUM_CLIENT_SECRET: 'y' },
      root
    );
    await expect(connectMedplum(settings)).rejects.toThrow(
      new RegExp(`^cannot reach MEDPLUM_BASE_URL=http://127\\.0\\.0\\.1:${port}/: connection refused`)
    );
  });

  it('a dead Medblocks port: "cannot reach MEDBLOCKS_API_BASE_URL=…: connection refused"', async () => {
    const port = await deadPort();
    const emulator = await startEmulator({ root, bots: [] });
    const lines: string[] = [];
    const medblocksUrl = `http://127.0.0.1:${port}`;
    // Medplum is the emulator; Medblocks goes to the loopback port and finds nobody.
    const code = await runProvision([], {
      root,
      env: { ...emulatorEnv(emulator), MEDBLOCKS_API_KEY: MEDBLOCKS_KEY, MEDBLOCKS_API_BASE_URL: medblocksUrl },
      print: (l) => lines.push(l),
    }).finally(() => emulator.close());
    expect(code).toBe(1);
    expect(lines.join('\n')).toContain(`cannot reach MEDBLOCKS_API_BASE_URL=${medblocksUrl}: connection refused`);
  });

  it('describes common network causes in words', () => {
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) });
    expect(describeNetworkError(refused)).toMatch(/^connection refused/);
    const dns = new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }) });
    expect(describeNetworkError(dns)).toMatch(/^host not found/);
  });
});
