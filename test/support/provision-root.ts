// A throwaway project directory for provisioning tests: the real access policies, small stand-in
// bundles in dist/ (what is deployed is compared byte for byte) and an env pointing at the fakes
// (test/support/fake-servers.ts), whose `fetch` the tests hand to the command.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_BOTS } from '../../src/runtime/registry';
import { CLIENT_ID, CLIENT_SECRET, MEDBLOCKS_KEY } from './fake-servers';

export function makeRoot(): { root: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'medblocks-provision-'));
  cpSync(new URL('../../access-policies', import.meta.url), join(root, 'access-policies'), { recursive: true });
  mkdirSync(join(root, 'dist'));
  for (const bot of ALL_BOTS) {
    writeFileSync(join(root, bot.dist), `"use strict";exports.handler=async()=>"${bot.name}";\n`);
  }
  return {
    root,
    cleanup: () => {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export function fakeEnv(medplumUrl: string, medblocksUrl?: string): NodeJS.ProcessEnv {
  return {
    MEDPLUM_BASE_URL: medplumUrl,
    MEDPLUM_CLIENT_ID: CLIENT_ID,
    MEDPLUM_CLIENT_SECRET: CLIENT_SECRET,
    ...(medblocksUrl ? { MEDBLOCKS_API_KEY: MEDBLOCKS_KEY, MEDBLOCKS_API_BASE_URL: medblocksUrl } : {}),
  };
}
