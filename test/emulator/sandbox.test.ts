// The sandbox exposes exactly vmcontext's globals: a probe bundle reports what it can see.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AccessPolicy } from '@medplum/fhirtypes';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { post } from './support';

const PROBE = `
exports.handler = async function (medplum, event) {
  const names = ['Buffer', 'crypto', 'setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'atob', 'btoa',
    'console', 'fetch', 'require', 'MedplumClient', 'TextEncoder', 'TextDecoder', 'URL', 'URLSearchParams',
    'Headers', 'Request', 'Response', 'ReadableStream', 'WritableStream', 'TransformStream', 'process', 'event'];
  const globals = {};
  for (const name of names) globals[name] = typeof globalThis[name];
  let otherPackage;
  try { require('left-pad'); otherPackage = 'loaded'; } catch (err) { otherPackage = err.code; }
  const input = event.input;
  const parsed = typeof input === 'string' ? JSON.parse(input) : input;
  if (parsed.fail) {
    console.log('probe is about to fail: marker-7');
    throw new Error('probe failure');
  }
  if (parsed.nothing) return undefined;
  const patients = await medplum.searchResources('Patient');
  return {
    globals,
    envKeys: Object.keys(process.env).length,
    hmac: typeof require('node:crypto').createHmac,
    bufferModule: typeof require('node:buffer').Buffer,
    timers: typeof require('node:timers/promises').setTimeout,
    core: typeof require('@medplum/core').getStatus,
    otherPackage,
    inputType: typeof input,
    headers: event.headers,
    secretNames: Object.keys(event.secrets),
    patients: patients.length,
  };
};
`;

const PROBE_POLICY: AccessPolicy = { resourceType: 'AccessPolicy', resource: [{ resourceType: 'Patient' }] };

interface ProbeReport {
  globals: Record<string, string>;
  envKeys: number;
  hmac: string;
  bufferModule: string;
  timers: string;
  core: string;
  otherPackage: string;
  inputType: string;
  headers: Record<string, string>;
  secretNames: string[];
  patients: number;
}

let emulator: RunningEmulator;

beforeAll(async () => {
  emulator = await startEmulator({
    bots: [
      { name: 'probe-raw', code: PROBE, policy: PROBE_POLICY, publicWebhook: true, rawBody: true },
      { name: 'probe-parsed', code: PROBE, policy: PROBE_POLICY, publicWebhook: true, rawBody: false },
    ],
    secrets: { SOME_PROJECT_SECRET: 'value' },
  });
  await emulator.store.repo.createResource({ resourceType: 'Patient' });
});

afterAll(async () => {
  await emulator.close();
});

async function probe(name: string, body = '{"hello":1}', headers: Record<string, string> = {}): Promise<ProbeReport> {
  const answer = await post(emulator.bot(name).webhookUrl, body, { 'Content-Type': 'application/json', ...headers });
  expect(answer.status).toBe(200);
  return JSON.parse(answer.text) as ProbeReport;
}

describe('vmcontext sandbox', () => {
  test('lacks the Buffer, crypto, timer and atob/btoa globals', async () => {
    const report = await probe('probe-raw');
    for (const absent of [
      'Buffer',
      'crypto',
      'setTimeout',
      'setInterval',
      'setImmediate',
      'clearTimeout',
      'atob',
      'btoa',
    ]) {
      expect(report.globals[absent], absent).toBe('undefined');
    }
  });

  test("provides vmcontext's globals, an empty process.env and node: builtins through require", async () => {
    const report = await probe('probe-raw');
    for (const present of ['fetch', 'require', 'MedplumClient', 'TextEncoder', 'TextDecoder', 'URL']) {
      expect(report.globals[present], present).toBe('function');
    }
    expect(report.globals.URLSearchParams).toBe('function');
    // A 5.1.x server's sandbox has none of these (observed, ledger WH-4): bundles must not need them.
    for (const absent of ['Headers', 'Request', 'Response', 'ReadableStream', 'WritableStream', 'TransformStream']) {
      expect(report.globals[absent], absent).toBe('undefined');
    }
    expect(report.globals.console).toBe('object');
    expect(report.globals.process).toBe('object');
    expect(report.globals.event).toBe('object');
    expect(report.envKeys).toBe(0);
    expect([report.hmac, report.bufferModule, report.timers, report.core]).toEqual([
      'function',
      'function',
      'function',
      'function',
    ]);
    expect(report.otherPackage).toBe('MODULE_NOT_FOUND');
  });

  test('the bot MedplumClient reaches the store under its policy', async () => {
    expect((await probe('probe-raw')).patients).toBe(1);
  });

  test('rawBody on gives the text, off gives the parsed object', async () => {
    expect((await probe('probe-raw')).inputType).toBe('string');
    expect((await probe('probe-parsed')).inputType).toBe('object');
  });

  test('headers arrive lower-cased as Node gives them, with project secrets', async () => {
    const report = await probe('probe-raw', '{}', { 'X-Custom-Header': 'A', 'Medblocks-Signature': 't=1,v1=x' });
    expect(report.headers['x-custom-header']).toBe('A');
    expect(report.headers['medblocks-signature']).toBe('t=1,v1=x');
    expect(Object.keys(report.headers).filter((k) => k !== k.toLowerCase())).toEqual([]);
    expect(report.secretNames).toContain('SOME_PROJECT_SECRET');
  });

  test('a handler returning nothing gets 200 All OK', async () => {
    const answer = await post(emulator.bot('probe-raw').webhookUrl, '{"nothing":true}', {
      'Content-Type': 'application/json',
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ resourceType: 'OperationOutcome', id: 'ok' });
  });
});
