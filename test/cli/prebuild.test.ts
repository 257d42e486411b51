// Every command that runs bots builds dist/ from bots/ first: a source change reaches the emulator
// without anyone remembering `npm run build` (a stale dist/ once let a broken handler pass the demo).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { CommandIo } from '../../src/tools/cli/args';
import { runDev } from '../../src/tools/cli/dev';
import { buildBeforeRun, describePrebuild } from '../../src/tools/cli/prebuild';
import { main as send } from '../../src/tools/cli/send';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { makeTinyProject, TINY_BOT } from '../support/tiny-project';
import type { TinyProject } from '../support/tiny-project';

let project: TinyProject;

beforeEach(() => {
  project = makeTinyProject('v1');
});

afterEach(() => {
  project.cleanup();
});

function collect(): { io: CommandIo; lines: string[] } {
  const lines: string[] = [];
  const push = (line: string): void => {
    lines.push(...line.split('\n'));
  };
  return { io: { print: push, printError: push }, lines };
}

/** `npm run dev` in-process on a free port: its pre-step, then one signed delivery through `npm run send`. */
async function devThenSend(): Promise<{ devLines: string[]; sendLines: string[]; code: number }> {
  const dev = collect();
  const sent = collect();
  let sendCode = -1;
  const devCode = await runDev(['--port', '0'], {
    root: project.root,
    env: {},
    io: dev.io,
    until: async (emulator: RunningEmulator) => {
      sendCode = await send(['--type', 'records.sync.completed', '--emulator', emulator.url], sent.io);
      return 'test done';
    },
  });
  expect(devCode).toBe(0);
  return { devLines: dev.lines, sendLines: sent.lines, code: sendCode };
}

describe('build first', () => {
  test('a stale dist/ is rebuilt, and a source change reaches the emulator on the next start', async () => {
    // What used to run silently: a dist/ that exists but no longer matches the sources, plus a
    // bundle whose source is gone.
    const bundle = join(project.root, 'dist', `${TINY_BOT}.js`);
    await buildBeforeRun(project.root);
    writeFileSync(bundle, '"use strict";exports.handler=async()=>({status:"stale"});');
    writeFileSync(join(project.root, 'dist', 'medblocks-records-sync-failed.js'), '"use strict";');

    const first = await devThenSend();
    expect(first.devLines[0]).toMatch(new RegExp(`^built dist/ from bots/ \\(\\d+ ms\\): ${TINY_BOT} changed$`));
    expect(first.sendLines.find((l) => l.includes(' attempt=1 '))).toMatch(/ status=200 outcome=v1 /);
    expect(first.code).toBe(0);
    expect(existsSync(join(project.root, 'dist', 'medblocks-records-sync-failed.js'))).toBe(false);
    // The delivery line of the emulator names the bot and what it answered.
    expect(first.devLines.some((l) => new RegExp(`${TINY_BOT} {2}- {2}v1 {2}200 {2}\\d+ ms$`).test(l))).toBe(true);

    project.setAnswer('v2');
    const second = await devThenSend();
    expect(second.sendLines.find((l) => l.includes(' attempt=1 '))).toMatch(/ outcome=v2 /);
    expect(readFileSync(bundle, 'utf8')).toContain('v2');
  });

  test('an unchanged build touches nothing and says so; a root without sources uses dist/ as it is', async () => {
    await buildBeforeRun(project.root);
    const again = await buildBeforeRun(project.root);
    expect(again.bundles.map((b) => [b.name, b.changed])).toEqual([[TINY_BOT, false]]);
    expect(describePrebuild(again)).toMatch(/^dist\/ is up to date with bots\/ \(checked by a build, \d+ ms\)$/);
    // Well under a second for a tiny bot, so building first costs nothing noticeable.
    expect(again.ms).toBeLessThan(1000);

    const none = await buildBeforeRun(join(project.root, 'access-policies'));
    expect(none.built).toBe(false);
    expect(describePrebuild(none)).toMatch(/no bots\/ sources here/);
  });
});
