// The one argument parser: help without doing the job, refusals with the usage (exit 2), typed and
// bounded values, negative numbers as the docs write them.
import { describe, expect, test } from 'vitest';
import { EXIT_USAGE, formatHelp, parseCommandLine, runCommand, wrapText } from '../../src/tools/cli/args';
import type { CommandIo, CommandSpec } from '../../src/tools/cli/args';

const SPEC = {
  name: 'probe',
  summary: 'a command for the tests',
  options: {
    port: { type: 'integer', min: 0, max: 65535, default: 8103, description: 'port' },
    skew: { type: 'integer', default: 0, valueName: 'SECONDS', description: 'seconds' },
    'time-scale': { type: 'number', min: 0, exclusiveMin: true, description: 'scale' },
    mode: { type: 'string', choices: ['a', 'b'], default: 'a', description: 'mode' },
    name: { type: 'string', description: 'name' },
    json: { type: 'boolean', description: 'json' },
  },
  examples: ['npm run probe -- --port 9000'],
  exitCodes: { 0: 'fine', 1: 'not fine' },
  notes: 'Settings: NONE.',
} as const satisfies CommandSpec;

function collect(): { io: CommandIo; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { print: (l) => out.push(l), printError: (l) => err.push(l) }, out, err };
}

describe('parseCommandLine', () => {
  test('defaults, types and booleans', () => {
    expect(parseCommandLine(SPEC, [])).toEqual({
      kind: 'ok',
      values: { port: 8103, skew: 0, 'time-scale': undefined, mode: 'a', name: undefined, json: false },
    });
    const parsed = parseCommandLine(SPEC, ['--port', '9000', '--time-scale=3600', '--mode', 'b', '--json']);
    expect(parsed.kind === 'ok' && parsed.values).toMatchObject({
      port: 9000,
      'time-scale': 3600,
      mode: 'b',
      json: true,
    });
  });

  test('negative numbers as the docs write them, in both spellings', () => {
    for (const argv of [['--skew', '-600'], ['--skew=-600']]) {
      const parsed = parseCommandLine(SPEC, argv);
      expect(parsed.kind === 'ok' && parsed.values.skew).toBe(-600);
    }
    // A negative number where none is allowed is refused by the bound, not taken for an option.
    const port = parseCommandLine(SPEC, ['--port', '-1']);
    expect(port.kind === 'error' && port.message).toBe('--port must be at least 0 (got -1)');
  });

  test.each([
    [['--port', 'abc'], '--port must be an integer (got "abc")'],
    [['--port', '1.5'], '--port must be an integer (got "1.5")'],
    [['--port', '70000'], '--port must be at most 65535 (got 70000)'],
    [['--time-scale', '0'], '--time-scale must be greater than 0 (got 0)'],
    [['--time-scale', 'fast'], '--time-scale must be a number (got "fast")'],
    [['--mode', 'c'], '--mode must be one of a, b (got "c")'],
    [['--bogus'], "Unknown option '--bogus'"],
    [['--port'], "Option '--port <value>' argument missing"],
    [['stray'], "Unexpected argument 'stray'"],
  ])('%j is refused: %s', (argv, message) => {
    const parsed = parseCommandLine(SPEC, argv);
    expect(parsed.kind).toBe('error');
    if (parsed.kind !== 'error') return;
    expect(parsed.message).toContain(message);
    expect(parsed.message).not.toMatch(/positional argument, use/);
    expect(parsed.usage).toMatch(/^Usage: npm run probe -- \[options\]/);
  });

  test('--help and -h win over anything else, even a bad option', () => {
    for (const argv of [['--help'], ['-h'], ['--port', 'abc', '--help']]) {
      expect(parseCommandLine(SPEC, argv).kind).toBe('help');
    }
  });
});

describe('formatHelp', () => {
  test('usage, every option with its value name and default, notes, examples and exit codes', () => {
    const help = formatHelp(SPEC);
    expect(help).toMatch(/^npm run probe: a command for the tests\n\nUsage: npm run probe -- \[options\]/);
    expect(help).toMatch(/--port N +port \(default 8103\)/);
    expect(help).toMatch(/--skew SECONDS +seconds \(default 0\)/);
    expect(help).toMatch(/--mode VALUE +mode \(one of a \| b; default a\)/);
    expect(help).toMatch(/--json +json\n/);
    expect(help).toMatch(/--help +print this help/);
    expect(help).toContain('Settings: NONE.');
    expect(help).toMatch(/examples\n {2}npm run probe -- --port 9000/);
    expect(help).toMatch(/exit codes\n {2}0 {2}fine\n {2}1 {2}not fine\n {2}2 {2}the command line was not understood/);
  });

  test('long paragraphs wrap at 100 columns without losing words', () => {
    const text = Array.from({ length: 60 }, (_, i) => `word${String(i)}`).join(' ');
    const wrapped = wrapText(text);
    expect(Math.max(...wrapped.split('\n').map((l) => l.length))).toBeLessThanOrEqual(100);
    expect(wrapped.replace(/\n/g, ' ')).toBe(text);
  });
});

describe('runCommand', () => {
  test('help: printed, exit 0, the job not run', async () => {
    const { io, out } = collect();
    let ran = false;
    const code = await runCommand(
      SPEC,
      ['--help'],
      () => {
        ran = true;
        return Promise.resolve(0);
      },
      io
    );
    expect([code, ran]).toEqual([0, false]);
    expect(out.join('\n')).toContain('exit codes');
  });

  test('a bad command line: the reason, the usage and where help is, on stderr; exit 2; the job not run', async () => {
    const { io, out, err } = collect();
    let ran = false;
    const code = await runCommand(
      SPEC,
      ['--port', 'abc'],
      () => {
        ran = true;
        return Promise.resolve(0);
      },
      io
    );
    expect([code, ran]).toEqual([EXIT_USAGE, false]);
    expect(out).toEqual([]);
    expect(err.join('\n')).toMatch(
      /^probe: --port must be an integer \(got "abc"\)\n\nUsage: npm run probe[\s\S]*More: npm run probe -- --help$/
    );
  });

  test('the job gets typed values; its exit code is returned; a throw prints the message only and exits 1', async () => {
    const { io, err } = collect();
    expect(await runCommand(SPEC, ['--port', '9'], (v) => Promise.resolve(v.port), io)).toBe(9);
    const code = await runCommand(SPEC, [], () => Promise.reject(new Error('the server said no')), io);
    expect(code).toBe(1);
    expect(err).toEqual(['probe: the server said no']);
  });
});
