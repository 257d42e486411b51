// `npm run checks`: the three checks side by side, each one's output whole and in a fixed order,
// and a failure of any one failing the whole.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runChecks } from '../../src/tools/cli/checks';

const node = (name: string, script: string) => ({ name, command: process.execPath, args: ['-e', script] });

describe('npm run checks', () => {
  it('runs every check at once and prints each one whole, in order, whatever finished first', async () => {
    // Each check waits (bounded, 10 s) for the other's file: run one after the other, the first
    // would give up and fail. No timing is asserted.
    const dir = mkdtempSync(join(tmpdir(), 'checks-'));
    const meet = (mine: string, theirs: string, lines: string[]) =>
      `const fs = require('node:fs'); fs.writeFileSync(${JSON.stringify(join(dir, mine))}, '');` +
      `const until = Date.now() + 10000;` +
      `const wait = () => { if (fs.existsSync(${JSON.stringify(join(dir, theirs))})) { ${lines.map((l) => `console.log(${JSON.stringify(l)});`).join(' ')} } else if (Date.now() > until) { process.exit(3); } else { setTimeout(wait, 20); } };` +
      `wait();`;
    const printed: string[] = [];
    const code = await runChecks(
      [
        node('first', meet('a', 'b', ['first line 1', 'first line 2'])),
        node('second', meet('b', 'a', ['second line'])),
      ],
      process.cwd(),
      (text) => printed.push(text)
    );
    rmSync(dir, { recursive: true, force: true });
    expect(code).toBe(0);
    expect(printed.join('')).toMatch(
      /^> first: ok in [\d.]+ s\nfirst line 1\nfirst line 2\n> second: ok in [\d.]+ s\nsecond line\n$/
    );
  });

  it('fails when any check fails, naming it and keeping its output', async () => {
    const printed: string[] = [];
    const code = await runChecks(
      [node('good', ''), node('bad', "console.error('3 problems'); process.exit(2)")],
      process.cwd(),
      (text) => printed.push(text)
    );
    expect(code).toBe(1);
    expect(printed.join('')).toContain('> bad: FAILED (exit 2)');
    expect(printed.join('')).toContain('3 problems');
  });

  it('a command that cannot start is a failure, not a hang', async () => {
    const printed: string[] = [];
    const code = await runChecks([{ name: 'missing', command: 'no-such-command-here', args: [] }], process.cwd(), (t) =>
      printed.push(t)
    );
    expect(code).toBe(1);
    expect(printed.join('')).toMatch(/> missing: FAILED/);
  });
});
