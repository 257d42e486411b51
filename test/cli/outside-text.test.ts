// Tools print and write text that came from outside: a hostile answer's escape
// sequences and bidi controls reach the terminal as visible, inert escapes — never as controls.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CONSOLE_IO, printToConsole } from '../../src/tools/cli/args';
import { terminalSafe, withoutControls } from '../../src/tools/outside-text';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('terminalSafe', () => {
  it('escapes what drives a terminal: CSI, OSC title, BEL, C1 CSI, CR, bidi controls, separators, lone surrogates', () => {
    const hostile = 'evt_1\u001b[2J\u001b]0;pwned\u0007 \u009b31m \rback \u202egnp.exe\u2066x\u2069 a\u2028b \ud800';
    const shown = terminalSafe(hostile);
    // eslint-disable-next-line no-control-regex
    expect(shown).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\ud800]/u);
    expect(shown).toBe(
      'evt_1\\u001b[2J\\u001b]0;pwned\\u0007 \\u009b31m \\u000dback \\u202egnp.exe\\u2066x\\u2069 a\\u2028b \\ud800'
    );
  });

  it('keeps ordinary text, tabs, line breaks, any script and emoji exactly', () => {
    const ordinary = 'Epic MyChart\tpatient 患者 josé 🙂\nnext line';
    expect(terminalSafe(ordinary)).toBe(ordinary);
  });

  it('keeps a --json line valid JSON with the same value: the escape is JSON’s own', () => {
    const value = { type: 'x\u202ey', id: 'a\u0085b' };
    const line = terminalSafe(JSON.stringify(value));
    expect(line).not.toContain('\u202e');
    expect(JSON.parse(line)).toEqual(value);
  });

  it('is what the commands’ console printers apply', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    CONSOLE_IO.print('a\u001b[2Jb');
    CONSOLE_IO.printError('c\u202ed');
    printToConsole('e\u0007f');
    expect(log.mock.calls).toEqual([['a\\u001b[2Jb'], ['e\\u0007f']]);
    expect(error.mock.calls).toEqual([['c\\u202ed']]);
  });
});

describe('withoutControls', () => {
  it('drops the unsafe characters from text written into a resource', () => {
    expect(withoutControls('Epic\u202e\u2066 MyChart\u0007')).toBe('Epic MyChart');
  });
});
