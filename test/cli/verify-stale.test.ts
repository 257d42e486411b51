// `npm run verify` checks the deployed code against the build of the sources first: verifying
// code older than the sources would pass or fail for the wrong reason.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { runProvision } from '../../src/tools/cli/provision';
import { runVerifyCommand, staleDeployments } from '../../src/tools/cli/verify';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { readSettings } from '../../src/tools/provision/env';
import { connectMedplum } from '../../src/tools/provision/medplum';
import { findTarget } from '../../src/tools/verify/target';
import { fakeFetch, LocalMedblocks, LoopbackService } from '../support/fake-servers';
import { emulatorEnv } from '../support/emulator-project';
import { makeRoot } from '../support/provision-root';

// The emulator models all verify reads here: the admin client's login (ADM-7), the bots, and the
// deployed code read back as its bytes (ADM-12, ADM-14).
let emulator: RunningEmulator;
let medplum: LoopbackService;
let medblocks: LocalMedblocks;
let root: string;
let cleanup: () => void;

function env(): NodeJS.ProcessEnv {
  return emulatorEnv(emulator, medblocks);
}

beforeEach(async () => {
  ({ root, cleanup } = makeRoot());
  emulator = await startEmulator({ root });
  medplum = new LoopbackService(emulator.url);
  medblocks = new LocalMedblocks();
  const code = await runProvision([], {
    root,
    env: env(),
    fetchFn: fakeFetch(medplum, medblocks),
    print: () => undefined,
  });
  expect(code).toBe(0);
});

afterEach(async () => {
  await emulator.close();
  cleanup();
});

async function verify(argv: string[] = []): Promise<{ code: number; output: string }> {
  const lines: string[] = [];
  const code = await runVerifyCommand(argv, {
    root,
    env: env(),
    fetchFn: fakeFetch(medplum, medblocks),
    print: (l) => lines.push(l),
  });
  return { code, output: lines.join('\n') };
}

test('deployed code that differs from dist/ stops verify with the fix, before any delivery', async () => {
  writeFileSync(
    join(root, 'dist', 'medblocks-records-sync-failed.js'),
    '"use strict";exports.handler=async()=>"new";\n'
  );
  const writesBefore = medplum.writes().length;
  const { code, output } = await verify();
  expect(code).toBe(1);
  expect(output).toContain(
    'ERROR: the deployed code of medblocks-records-sync-failed differs from the build of your sources (dist/): run npm run provision first'
  );
  expect(medplum.writes()).toHaveLength(writesBefore);
  expect(medplum.requests.some((r) => /webhook/.test(r.path))).toBe(false);
});

test('which bots are stale: none right after provision, the one whose dist/ changed after it', async () => {
  const settings = readSettings(env(), root);
  const session = await connectMedplum(settings, fakeFetch(medplum, medblocks));
  const { target } = await findTarget(session, settings.lookup);
  expect(await staleDeployments(session, target, root)).toEqual({ stale: [], unreadable: [] });
  writeFileSync(
    join(root, 'dist', 'medblocks-records-sync-failed.js'),
    '"use strict";exports.handler=async()=>"new";\n'
  );
  expect(await staleDeployments(session, target, root)).toEqual({
    stale: ['medblocks-records-sync-failed'],
    unreadable: [],
  });
});
