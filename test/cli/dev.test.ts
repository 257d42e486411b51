// `npm run dev` as a newcomer meets it: a busy port is named with the fix, the banner's hints carry
// the port in use, and the emulator stops when the process that started it dies (it used to keep
// the port bound after `npm run dev` was stopped by its PID).
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { CommandIo } from '../../src/tools/cli/args';
import {
  describe as describeEmulator,
  formatRun,
  medblocksPortInUseMessage,
  portInUseMessage,
  runDev,
} from '../../src/tools/cli/dev';
import { recordsSyncCompleted } from '../../src/tools/fixtures/events';
import { DEV_MEDBLOCKS_API_KEY } from '../../src/tools/medblocks-local/wire';
import { MedblocksApi } from '../../src/tools/provision/medblocks-api';
import { watchedAncestors } from '../../src/tools/cli/lifetime';
import { startEmulator } from '../../src/tools/emulator/server';
import { makeTinyProject, TINY_BOT } from '../support/tiny-project';
import type { TinyProject } from '../support/tiny-project';

let project: TinyProject;

beforeEach(() => {
  project = makeTinyProject();
});

afterEach(() => {
  project.cleanup();
});

function collect(): { io: CommandIo; lines: string[] } {
  const lines: string[] = [];
  return { io: { print: (l) => lines.push(l), printError: (l) => lines.push(l) }, lines };
}

describe('npm run dev', () => {
  test('a busy port: exit 1 with the port and the fix, no stack', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const { io, lines } = collect();
      const started = Date.now();
      const code = await runDev(['--port', String(port)], { io, root: project.root, env: {} });
      expect(code).toBe(1);
      // At once, before the build (0.3 built first: 11.5 s to say the port was busy).
      expect(lines).toEqual([`dev: ${portInUseMessage(port)}`]);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(lines.at(-1)).toMatch(
        new RegExp(
          `^dev: port ${String(port)} is in use — stop the other process .* or run \`npm run dev -- --port 8110\`$`
        )
      );
      expect(lines.join('\n')).not.toMatch(/EADDRINUSE|\n\s+at /);
    } finally {
      blocker.close();
    }
  });

  test('the banner’s hints carry the port in use; the default port needs no --emulator', async () => {
    const emulator = await startEmulator({ root: project.root });
    try {
      const banner = describeEmulator(emulator, false);
      expect(banner).toContain(`npm run send -- --type records.sync.completed --emulator ${emulator.url}`);
      expect(banner).toContain(`curl -s '${emulator.url}/fhir/R4/Task'`);
      const atDefault = describeEmulator({ ...emulator, url: 'http://127.0.0.1:8913' }, false);
      expect(atDefault).toMatch(/npm run send -- --type records\.sync\.completed\n/);
    } finally {
      await emulator.close();
    }
  });

  test('a busy local Medblocks port (the emulator’s + 1): exit 1 naming it, the emulator’s port released', async () => {
    const { blocker, port } = await busyPortAfterAFreeOne();
    try {
      const { io, lines } = collect();
      const code = await runDev(['--port', String(port - 1)], { io, root: project.root, env: {} });
      expect(code).toBe(1);
      expect(lines.at(-1)).toBe(`dev: ${medblocksPortInUseMessage(port, port - 1)}`);
      expect(lines.at(-1)).toMatch(
        new RegExp(
          `^dev: port ${String(port)} \\(the local Medblocks, the emulator's port \\+ 1\\) is in use — .*--port 81[12]0\`$`
        )
      );
      expect(lines.join('\n')).not.toMatch(/EADDRINUSE|\n\s+at /);
      const again = createServer();
      await new Promise<void>((resolve) => again.listen(port - 1, '127.0.0.1', resolve));
      again.close();
    } finally {
      blocker.close();
    }
  });

  test('starts the local Medblocks with the dev key, prints the settings for provision/monitor/redeliver, delivers to the emulator', async () => {
    const { io, lines } = collect();
    let delivered: number | null | undefined;
    const code = await runDev(['--port', '0'], {
      io,
      root: project.root,
      env: {},
      until: async (emulator, medblocks) => {
        const banner = lines.join('\n');
        expect(banner).toContain(`Local Medblocks on ${medblocks.url}`);
        expect(banner).toContain(`MEDBLOCKS_API_BASE_URL=${medblocks.url} MEDBLOCKS_API_KEY=${DEV_MEDBLOCKS_API_KEY}`);
        expect(banner).toContain(
          `export MEDPLUM_BASE_URL=${emulator.url}/ MEDPLUM_CLIENT_ID=${emulator.adminClient.clientId} MEDPLUM_CLIENT_SECRET=`
        );
        expect(banner).toContain('npm run provision && npm run monitor && npm run redeliver -- --quarantined');
        expect(JSON.parse(describeEmulator(emulator, true, false, medblocks))).toMatchObject({
          url: emulator.url,
          medblocks: { url: medblocks.url, apiKey: DEV_MEDBLOCKS_API_KEY },
        });
        const api = new MedblocksApi(medblocks.url, DEV_MEDBLOCKS_API_KEY);
        expect(await api.listEndpoints()).toEqual([]);
        const endpoint = await api.createEndpoint({
          url: emulator.bot(TINY_BOT).webhookUrl,
          events: ['records.sync.completed'],
          description: 'dev test',
        });
        medblocks.emit(recordsSyncCompleted());
        await medblocks.idle();
        delivered = (await api.listEvents(endpoint.id, true))[0]?.last_status_code;
        return 'test done';
      },
    });
    expect(code).toBe(0);
    expect(delivered).toBe(200);
    expect(
      lines.some((l) => new RegExp(`  ${TINY_BOT}  \\S+  \\S+  200  `).test(l)),
      'the delivery line'
    ).toBe(true);
    expect(lines.at(-1)).toMatch(/^stopping the emulator on \S+ and the local Medblocks on \S+: test done$/);
  });

  test('one line per delivery: time, bot, event, outcome, status, duration', () => {
    const at = new Date('2026-04-25T14:36:12.345Z');
    expect(
      formatRun(
        {
          bot: 'medblocks-records-sync-failed',
          status: 200,
          success: true,
          ms: 31,
          outcome: 'quarantined:invalid_payload',
          eventId: 'evt_1',
        },
        at
      )
    ).toBe('14:36:12.345  medblocks-records-sync-failed  evt_1  quarantined:invalid_payload  200  31 ms');
  });
});

describe('it stops with the process that started it', () => {
  test('which ancestors are watched: up to npm, else the parent (and tsx’s parent)', () => {
    const chain = [
      { pid: 40, command: 'node /x/node_modules/tsx/dist/cli.mjs src/tools/cli/dev.ts' },
      { pid: 30, command: 'sh -c tsx src/tools/cli/dev.ts' },
      { pid: 20, command: 'npm run dev' },
      { pid: 10, command: '-bash' },
    ];
    expect(watchedAncestors(chain).map((a) => a.pid)).toEqual([40, 30, 20]);
    expect(watchedAncestors(chain.slice(0, 2)).map((a) => a.pid)).toEqual([40, 30]);
    expect(
      watchedAncestors([
        { pid: 7, command: 'node test.js' },
        { pid: 1, command: 'init' },
      ]).map((a) => a.pid)
    ).toEqual([7]);
    expect(watchedAncestors([])).toEqual([]);
  });

  test('the parent is killed (SIGKILL): the emulator closes its port and exits', async () => {
    const tsxLoader = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href;
    const devScript = new URL('../../src/tools/cli/dev.ts', import.meta.url).pathname;
    // The parent starts `dev` with no stdin (as `npm run dev &` would) and then just waits.
    const parentCode = `
      const { spawn } = require('node:child_process');
      const child = spawn(process.execPath, ['--import', ${JSON.stringify(tsxLoader)}, ${JSON.stringify(devScript)}, '--port', '0'],
        { stdio: ['ignore', 'inherit', 'inherit'] });
      console.log('child ' + child.pid);
      setInterval(() => undefined, 1000);`;
    const parent = spawn(process.execPath, ['-e', parentCode], {
      cwd: project.root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    parent.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    parent.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const closed = new Promise<void>((resolve) => parent.stdout.on('close', resolve));
    try {
      const url = await waitFor(() => /Medplum emulator on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1], 25_000);
      const medblocksUrl = await waitFor(() => /MEDBLOCKS_API_BASE_URL=(\S+)/.exec(output)?.[1], 5_000);
      const childPid = Number(/child (\d+)/.exec(output)?.[1]);
      expect((await fetch(`${url}/healthcheck`)).status).toBe(200);
      expect((await fetch(`${medblocksUrl}/webhooks`)).status, 'the local Medblocks answers (401 without a key)').toBe(
        401
      );

      parent.kill('SIGKILL');
      await waitFor(() => (isAlive(childPid) ? undefined : true), 8_000);
      await closed; // every holder of the pipe is gone
      expect(output).toMatch(
        /stopping the emulator on http:\/\/127\.0\.0\.1:\d+ and the local Medblocks on http:\/\/127\.0\.0\.1:\d+: parent process (\d+ )?ended/
      );
      await expect(fetch(`${url}/healthcheck`)).rejects.toThrow();
      await expect(fetch(`${medblocksUrl}/webhooks`)).rejects.toThrow();
    } finally {
      parent.kill('SIGKILL');
    }
  }, 40_000);
});

test('the parent closes the stdin pipe it gave: the emulator exits 0', async () => {
  const tsxLoader = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href;
  const devScript = new URL('../../src/tools/cli/dev.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', tsxLoader, devScript, '--port', '0'], {
    cwd: project.root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    await waitFor(() => (/Medplum emulator on/.test(output) ? true : undefined), 25_000);
    child.stdin.end();
    expect(await exited).toBe(0);
    expect(output).toMatch(
      /stopping the emulator on http:\/\/127\.0\.0\.1:\d+ and the local Medblocks on http:\/\/127\.0\.0\.1:\d+: stdin closed/
    );
  } finally {
    child.kill('SIGKILL');
  }
}, 40_000);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A busy port whose predecessor is free, so that `--port <busy - 1>` gets past the emulator. */
async function busyPortAfterAFreeOne(): Promise<{ blocker: ReturnType<typeof createServer>; port: number }> {
  for (let tries = 0; tries < 20; tries++) {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    const probe = createServer();
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => {
        resolve(false);
      });
      probe.listen(port - 1, '127.0.0.1', () => {
        resolve(true);
      });
    });
    if (free) {
      await new Promise<void>((resolve) =>
        probe.close(() => {
          resolve();
        })
      );
      return { blocker, port };
    }
    blocker.close();
  }
  throw new Error('no free port pair found');
}
