// `npm run checks`: the three checks side by side, each one's output whole and in a fixed order,
// and a failure of any one failing the whole.
import { describe, expect, it } from 'vitest';
import { runChecks } from '../../src/tools/cli/checks';

const node = (name: string, script: string) => ({ name, command: process.execPath, args: ['-e', script] });

describe('npm run checks', () => {
  it('runs every check at once and prints each one whole, in order, whatever finished first', async () => {
    const printed: string[] = [];
    const started = performance.now();
    const code = await runChecks(
      [
        node('slow', "setTimeout(() => { console.log('slow line 1'); console.log('slow line 2'); }, 600)"),
        node('fast', "setTimeout(() => console.log('fast line'), 600)"),
      ],
      process.cwd(),
      (text) => printed.push(text)
    );
    const ms = performance.now() - started;
    expect(code).toBe(0);
    // Side by side: about one wait, not two.
    expect(ms).toBeLessThan(1150);
    const text = printed.join('');
    expect(text).toMatch(/^> slow: ok in [\d.]+ s\nslow line 1\nslow line 2\n> fast: ok in [\d.]+ s\nfast line\n$/);
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
