// The ops tools against the local emulator: `npm run provision` and
// `npm run monitor` log in to `npm run dev` with the admin client it prints and work there as
// against a server. Provision's Medplum part runs for real over HTTP; its Medblocks part is left
// out (no MEDBLOCKS_API_KEY), as a user without a Medblocks account would run it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Bot } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ALL_BOTS, WEBHOOK_BOTS } from '../../src/runtime/registry';
import { EMULATOR_VERSION, startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { formatMonitorReport, monitor } from '../../src/tools/monitor/monitor';
import { readSettings } from '../../src/tools/provision/env';
import { formatPreflight, formatReport, provision } from '../../src/tools/provision/provision';
import { makeRoot } from '../support/provision-root';

let emulator: RunningEmulator;
let root: string;
let cleanup: () => void;

beforeEach(async () => {
  ({ root, cleanup } = makeRoot());
  emulator = await startEmulator({ root });
});

afterEach(async () => {
  await emulator.close();
  cleanup();
});

function env(): NodeJS.ProcessEnv {
  return {
    MEDPLUM_BASE_URL: `${emulator.url}/`,
    MEDPLUM_CLIENT_ID: emulator.adminClient.clientId,
    MEDPLUM_CLIENT_SECRET: emulator.adminClient.clientSecret,
  };
}

async function runProvision(): Promise<string[]> {
  const lines: string[] = [];
  const report = await provision({
    root,
    settings: readSettings(env(), root),
    dryRun: false,
    runtime: undefined,
    onPreflight: (p) => lines.push(...formatPreflight(p)),
  });
  lines.push(...formatReport(report));
  return lines;
}

describe('provision and monitor against the emulator', () => {
  it('provision logs in with the printed admin client, deploys, and a second run changes nothing', async () => {
    const configPath = join(root, 'medplum.config.json');
    const configBefore = existsSync(configPath) ? readFileSync(configPath, 'utf8') : undefined;
    const first = (await runProvision()).join('\n');
    expect(first).toContain(`Preflight (read-only): Medplum ${EMULATOR_VERSION} at ${emulator.url}/ (self-hosted)`);
    // The emulator's throwaway ids never reach the tracked medplum.config.json.
    expect(existsSync(configPath) ? readFileSync(configPath, 'utf8') : undefined).toBe(configBefore);
    expect(first).toMatch(/NOTE: medplum\.config\.json left as it is: this is the local emulator/);
    expect(first).toMatch(/client is a project admin, runtime vmcontext/);
    for (const spec of ALL_BOTS) expect(first).toMatch(new RegExp(`deploy +Bot/\\S+ \\(${spec.name}\\)`));
    expect(first).not.toContain(emulator.adminClient.clientSecret);

    const second = await runProvision();
    expect(second).toContain('No changes: everything was already provisioned.');
    expect(second.at(-1)).toBe(
      'Next: once events have arrived, `npm run sources` names the EHRs in Tasks and Consents.'
    );
    // The webhook URLs provision reports are the emulator's.
    for (const bot of emulator.bots.filter((b) => WEBHOOK_BOTS.some((w) => w.name === b.name))) {
      expect(second.join('\n')).toContain(bot.webhookUrl);
    }
  });

  it('after $deploy a webhook runs the deployed code, not the file in dist/', async () => {
    await runProvision();
    const spec = WEBHOOK_BOTS[0];
    if (!spec) throw new Error('no webhook bot');
    const deployed = readFileSync(join(root, spec.dist), 'utf8');
    writeFileSync(join(root, spec.dist), `"use strict";exports.handler=async()=>"changed after deploy";\n`);
    const answer = await fetch(emulator.bot(spec.name).webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe(spec.name);
    const bot = (await emulator.store.all<Bot>('Bot', `name=${spec.name}`))[0];
    expect(bot?.executableCode?.url).toMatch(/^Binary\//);
    expect(deployed).toContain(spec.name);
  });

  // Ledger ADM-15.
  it('monitor reads the runs from AuditEvents and reports every bot', async () => {
    await runProvision();
    for (const bot of emulator.bots.filter((b) => WEBHOOK_BOTS.some((w) => w.name === b.name))) {
      const answer = await fetch(bot.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(answer.status).toBe(200);
    }
    const report = await monitor({
      root,
      settings: readSettings(env(), root),
      windowMs: 60 * 60_000,
      maxFailures: 0,
    });
    const lines = formatMonitorReport(report);
    const text = lines.join('\n');
    expect(text).toContain(`Medplum ${EMULATOR_VERSION}`);
    for (const spec of WEBHOOK_BOTS) {
      const row = report.bots.find((b) => b.name === spec.name);
      expect(row?.runs).toBe(1);
      expect(row?.failures).toBe(0);
    }
    expect(text).toContain('Medblocks endpoints: not checked (set MEDBLOCKS_API_KEY).');
    console.log(text);
  });
});
