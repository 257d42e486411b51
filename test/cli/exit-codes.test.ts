// One exit-code rule for every tool: 0 done, 1 failed (a missing or invalid
// setting included: the message names the variable), 2 the command line was not understood (the
// usage is printed). Each tool in-process, against no server or a fake one, so the whole file runs
// in a few seconds; --help and unknown options for every command are in commands.test.ts.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_FAILURE, EXIT_USAGE } from '../../src/tools/cli/args';
import type { CommandSpec } from '../../src/tools/cli/args';
import { BENCH_SPEC } from '../../src/tools/cli/bench';
import { BUILD_SPEC } from '../../src/tools/cli/build';
import { DEMO_SPEC } from '../../src/tools/cli/demo';
import { DEV_SPEC, runDev } from '../../src/tools/cli/dev';
import { MONITOR_SPEC, runMonitor } from '../../src/tools/cli/monitor';
import { POLICIES_SPEC, runPolicies } from '../../src/tools/cli/policies';
import { PROVISION_SPEC, runProvision } from '../../src/tools/cli/provision';
import { RECONCILE_SPEC, runReconcile } from '../../src/tools/cli/reconcile';
import { REDELIVER_SPEC, runRedeliver } from '../../src/tools/cli/redeliver';
import { main as runSend, SEND_SPEC } from '../../src/tools/cli/send';
import { runSources, SOURCES_SPEC } from '../../src/tools/cli/sources';
import { runVerifyCommand, VERIFY_SPEC } from '../../src/tools/cli/verify';
import { makeRoot } from '../support/provision-root';

type Io = { print: (line: string) => void; root: string; env: NodeJS.ProcessEnv; fetchFn: typeof fetch };
type Tool = (argv: readonly string[], io: Io) => Promise<number>;

/** The tools that read MEDPLUM_… / MEDBLOCKS_… settings, in-process with the given environment. */
const SETTINGS_TOOLS: Record<string, Tool> = {
  provision: (argv, io) => runProvision(argv, io),
  verify: (argv, io) => runVerifyCommand(argv, io),
  monitor: (argv, io) => runMonitor(argv, io),
  sources: (argv, io) => runSources(argv, io),
  reconcile: (argv, io) => runReconcile(argv, io),
  redeliver: (argv, io) =>
    runRedeliver(argv, io.env, io.print, { fetchFn: io.fetchFn, sleep: () => Promise.resolve(), progress: io.print }),
};

const { root, cleanup } = makeRoot();
afterAll(cleanup);

/** A Medplum (and Medblocks) that answers every request 404 with an OperationOutcome: a server failure, not retried. */
const failingFetch: typeof fetch = () =>
  Promise.resolve(
    new Response(
      JSON.stringify({
        resourceType: 'OperationOutcome',
        issue: [{ severity: 'error', code: 'not-found', details: { text: 'Not found' } }],
      }),
      { status: 404, headers: { 'content-type': 'application/fhir+json' } }
    )
  );

async function run(tool: Tool, argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; text: string }> {
  const lines: string[] = [];
  const code = await tool(argv, { print: (l) => lines.push(l), root, env, fetchFn: failingFetch });
  return { code, text: lines.join('\n') };
}

const FULL_ENV = {
  MEDPLUM_BASE_URL: 'http://127.0.0.1:9/',
  MEDPLUM_CLIENT_ID: 'client',
  MEDPLUM_CLIENT_SECRET: 'secret-DO-NOT-PRINT',
  MEDBLOCKS_API_KEY: 'mb_sk_test_DO_NOT_PRINT',
  MEDBLOCKS_API_BASE_URL: 'http://127.0.0.1:9',
};

describe.each(Object.keys(SETTINGS_TOOLS))('npm run %s', (name) => {
  const tool = SETTINGS_TOOLS[name] as Tool;

  test('MEDPLUM_BASE_URL missing: exit 1 naming it, no usage', async () => {
    const { code, text } = await run(tool, [], {});
    expect(code).toBe(EXIT_FAILURE);
    expect(text).toMatch(/MEDPLUM_BASE_URL is not set \(environment or \.env\)/);
    expect(text).not.toContain('Usage:');
  });

  test('MEDBLOCKS_API_BASE_URL not a URL: exit 1 naming it', async () => {
    const { code, text } = await run(tool, [], { ...FULL_ENV, MEDBLOCKS_API_BASE_URL: 'ftp://medblocks' });
    expect(code).toBe(EXIT_FAILURE);
    expect(text).toContain('MEDBLOCKS_API_BASE_URL=ftp://medblocks is not an http(s) URL');
  });

  test('a bad option value: exit 2 with the usage, before any setting is read', async () => {
    // No environment at all: a usage error must win over the settings error behind it.
    const { code, text } = await run(tool, ['--no-such-option'], {});
    expect(code).toBe(EXIT_USAGE);
    expect(text).toContain(`Usage: npm run ${name} -- [options]`);
    expect(text).not.toContain('MEDPLUM_BASE_URL');
  });
});

describe('failures exit 1', () => {
  test.each(['provision', 'verify', 'monitor', 'sources', 'reconcile'])(
    '%s: a Medplum that answers 404 to everything',
    async (name) => {
      const { code, text } = await run(SETTINGS_TOOLS[name] as Tool, [], FULL_ENV);
      expect(code).toBe(EXIT_FAILURE);
      expect(text).toMatch(/Medplum GET \/healthcheck failed with HTTP 404: Not found/);
      expect(text).not.toContain('DO-NOT-PRINT');
    }
  );

  test('redeliver: a Medblocks that answers 404 to everything', async () => {
    const { code, text } = await run(SETTINGS_TOOLS.redeliver as Tool, [], { ...FULL_ENV, MEDPLUM_CLIENT_ID: '' });
    expect(code).toBe(EXIT_FAILURE);
    expect(text).toMatch(/Medblocks GET \/webhooks failed with HTTP 404/);
    expect(text).not.toContain('DO_NOT_PRINT');
  });

  test('sources and reconcile: MEDBLOCKS_API_KEY missing is a settings error, exit 1 naming it', async () => {
    for (const name of ['sources', 'reconcile']) {
      const { MEDBLOCKS_API_KEY: _key, ...env } = FULL_ENV;
      const { code, text } = await run(SETTINGS_TOOLS[name] as Tool, [], env);
      expect(code).toBe(EXIT_FAILURE);
      expect(text).toContain('MEDBLOCKS_API_KEY must be set');
    }
  });

  test('send: nothing listens at --url', async () => {
    const closed = await closedPort();
    const lines: string[] = [];
    const code = await runSend(
      ['--type', 'records.sync.completed', '--url', `http://127.0.0.1:${String(closed)}/webhook/x`],
      { print: (l) => lines.push(l), printError: (l) => lines.push(l) }
    );
    expect(code).toBe(EXIT_FAILURE);
    expect(lines.join('\n')).toMatch(/connection_refused/);
  });

  test('policies: the files cannot be written', async () => {
    const lines: string[] = [];
    expect(await runPolicies([], { print: (l) => lines.push(l), root: '/nonexistent/medblocks' })).toBe(EXIT_FAILURE);
    expect(lines.join('\n')).toMatch(/^policies: /);
  });

  describe('dev: its port is taken', () => {
    let port = 0;
    const holder = createServer();
    beforeAll(async () => {
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      port = (holder.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise((resolve) => holder.close(resolve));
    });
    test('exit 1 naming the port, no emulator started', async () => {
      const lines: string[] = [];
      const code = await runDev(['--port', String(port)], {
        io: { print: (l) => lines.push(l), printError: (l) => lines.push(l) },
        until: () => Promise.reject(new Error('dev started an emulator')),
      });
      expect(code).toBe(EXIT_FAILURE);
      expect(lines.join('\n')).toContain(`port ${String(port)} is in use`);
    });
  });
});

describe('usage errors found after parsing still exit 2 with the usage', () => {
  test.each([
    ['redeliver', ['--since', '5y'], /--since must look like 30m, 24h or 7d \(got "5y"\)/],
    ['redeliver', ['--event', 'notanid'], /--event must be a Medblocks event id/],
    ['monitor', ['--since', 'yesterday'], /--since must look like 30m, 24h or 7d \(got "yesterday"\)/],
  ] as const)('%s %j', async (name, argv, message) => {
    // A full environment: the refusal must come before any request (the servers would not answer).
    const { code, text } = await run(SETTINGS_TOOLS[name] as Tool, [...argv], FULL_ENV);
    expect(code).toBe(EXIT_USAGE);
    expect(text).toMatch(message);
    expect(text).toContain(`Usage: npm run ${name} -- [options]`);
  });
});

describe('every --help states the rule', () => {
  const specs: Record<string, CommandSpec> = {
    build: BUILD_SPEC,
    bench: BENCH_SPEC,
    demo: DEMO_SPEC,
    dev: DEV_SPEC,
    send: SEND_SPEC,
    policies: POLICIES_SPEC,
    provision: PROVISION_SPEC,
    verify: VERIFY_SPEC,
    monitor: MONITOR_SPEC,
    sources: SOURCES_SPEC,
    reconcile: RECONCILE_SPEC,
    redeliver: REDELIVER_SPEC,
  };
  test.each(Object.keys(specs))('%s declares only 0, 1 and 2, with 2 for the command line', (name) => {
    const spec = specs[name] as CommandSpec;
    expect(Object.keys(spec.exitCodes).every((c) => ['0', '1', '2'].includes(c))).toBe(true);
    if (2 in spec.exitCodes) expect(spec.exitCodes[2]).toMatch(/^the command line was not understood/);
    if (name in SETTINGS_TOOLS) expect(spec.exitCodes[1]).toContain('a missing or invalid setting');
  });
});

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
