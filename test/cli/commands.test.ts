// Every `npm run …` command answers --help (usage, options, defaults, examples, exit codes) without
// doing its job, and refuses unknown or malformed options with the usage and exit code 2.
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import type { CommandIo } from '../../src/tools/cli/args';
import { runBenchCommand } from '../../src/tools/cli/bench';
import { runBuild } from '../../src/tools/cli/build';
import { runDemoCommand } from '../../src/tools/cli/demo';
import { runDev } from '../../src/tools/cli/dev';
import { runMonitor } from '../../src/tools/cli/monitor';
import { runProvision } from '../../src/tools/cli/provision';
import { runRedeliver } from '../../src/tools/cli/redeliver';
import { main as runSend } from '../../src/tools/cli/send';
import { runReconcile } from '../../src/tools/cli/reconcile';
import { runPolicies } from '../../src/tools/cli/policies';
import { runSources } from '../../src/tools/cli/sources';
import { runVerifyCommand } from '../../src/tools/cli/verify';

type Runner = (argv: readonly string[], io: CommandIo) => Promise<number>;

/** Each command in-process. None gets settings or a server: with --help or a bad option it must not need them. */
const COMMANDS: Record<string, Runner> = {
  build: (argv, io) => runBuild(argv, io),
  dev: (argv, io) =>
    runDev(argv, {
      io,
      until: () => Promise.reject(new Error('dev started an emulator')),
    }),
  send: (argv, io) => runSend(argv, io),
  demo: (argv, io) => runDemoCommand(argv, io),
  provision: (argv, io) => runProvision(argv, { print: io.print, env: {} }),
  verify: (argv, io) => runVerifyCommand(argv, { print: io.print, env: {} }),
  monitor: (argv, io) => runMonitor(argv, { print: io.print, env: {} }),
  redeliver: (argv, io) => runRedeliver(argv, {}, io.print),
  sources: (argv, io) => runSources(argv, { print: io.print, env: {} }),
  reconcile: (argv, io) => runReconcile(argv, { print: io.print, env: {} }),
  policies: (argv, io) => runPolicies(argv, { print: io.print, root: '/nonexistent' }),
  bench: (argv, io) => runBenchCommand(argv, io),
};

/** Per command: a malformed or out-of-range value, and what the refusal says. */
const BAD: Record<string, [string[], RegExp]> = {
  build: [['--watch'], /Unknown option '--watch'/],
  dev: [['--port', 'abc'], /--port must be an integer \(got "abc"\)/],
  send: [['--time-scale', '0'], /--time-scale must be greater than 0/],
  demo: [['--fast'], /Unknown option '--fast'/],
  provision: [['--runtime', 'lambda'], /--runtime must be one of awslambda, vmcontext/],
  verify: [['--deadline-ms', '0'], /--deadline-ms must be at least 1/],
  monitor: [['--max-failures', '-1'], /--max-failures must be at least 0 \(got -1\)/],
  redeliver: [['--status-code', '99'], /--status-code must be at least 100 \(got 99\)/],
  sources: [['--dry-run=yes'], /Option '--dry-run' does not take an argument/],
  reconcile: [['--dry-run=yes'], /Option '--dry-run' does not take an argument/],
  policies: [['--write'], /Unknown option '--write'/],
  bench: [['--quick=yes'], /Option '--quick' does not take an argument/],
};

async function run(name: string, argv: string[]): Promise<{ code: number; text: string; ms: number }> {
  const lines: string[] = [];
  const io: CommandIo = { print: (l) => lines.push(l), printError: (l) => lines.push(l) };
  const started = performance.now();
  const runner = COMMANDS[name];
  if (!runner) throw new Error(name);
  const code = await runner(argv, io);
  return { code, text: lines.join('\n'), ms: performance.now() - started };
}

describe.each(Object.keys(COMMANDS))('npm run %s', (name) => {
  test('--help: usage, options, examples and exit codes, at once, without doing the job', async () => {
    const { code, text, ms } = await run(name, ['--help']);
    expect(code).toBe(0);
    expect(text).toMatch(new RegExp(`^npm run ${name}: `));
    expect(text).toContain(`Usage: npm run ${name} -- [options]`);
    expect(text).toMatch(/\n {2}--help +print this help/);
    expect(text).toMatch(/\nexamples\n {2}npm run /);
    expect(text).toMatch(/\nexit codes\n {2}0 {2}/);
    // No build line, no emulator banner, no request: help only. (bench ran for 33 s here.)
    expect(text).not.toMatch(/built dist\/|up to date with bots|Medplum emulator on|sending \d/);
    expect(ms).toBeLessThan(500);
  });

  test('an unknown option is refused with the usage and exit 2', async () => {
    const { code, text } = await run(name, ['--no-such-option']);
    expect(code).toBe(2);
    expect(text).toMatch(/Unknown option '--no-such-option'/);
    expect(text).toContain(`Usage: npm run ${name} -- [options]`);
    expect(text).toContain(`More: npm run ${name} -- --help`);
  });

  test('a malformed value is refused with the usage and exit 2', async () => {
    const [argv, message] = BAD[name] ?? [[], /never/];
    const { code, text } = await run(name, argv);
    expect(code).toBe(2);
    expect(text).toMatch(message);
    expect(text).toContain(`Usage: npm run ${name} -- [options]`);
  });
});

test('redeliver refuses an --event that is not a Medblocks event id, with the usage and exit 2', async () => {
  const { code, text } = await run('redeliver', ['--event', 'notanid']);
  expect(code).toBe(2);
  expect(text).toMatch(/--event must be a Medblocks event id \(evt_ and letters or digits\), got "notanid"/);
  expect(text).toContain('Usage: npm run redeliver -- [options]');
});

describe('as processes', () => {
  const tsx = new URL('../../node_modules/.bin/tsx', import.meta.url).pathname;
  test('the entry points exit with the parser’s codes: --help 0 at once, --latency-ms abc 2', () => {
    const help = spawnSync(tsx, ['src/tools/cli/bench.ts', '--help'], { encoding: 'utf8', timeout: 20_000 });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: npm run bench -- [options]');
    expect(help.stderr).not.toMatch(/counting FHIR requests/);
    const bad = spawnSync(tsx, ['src/tools/cli/dev.ts', '--latency-ms', 'abc'], { encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^dev: --latency-ms must be a number \(got "abc"\)\n\nUsage: npm run dev/);
    expect(bad.stdout).toBe('');
  });
});
