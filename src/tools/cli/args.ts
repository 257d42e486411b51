// The one argument parser of every `npm run …` command. A command declares its options once (type,
// bounds, default, a line of help) and gets: `--help` that prints usage, options, defaults, examples
// and exit codes without doing the job; unknown or malformed options refused with the usage and exit
// code 2; numbers checked (`--port abc`, `--time-scale 0`); negative numbers written as the docs write
// them (`--skew -600`, which node's own parseArgs takes for an option).
import { parseArgs } from 'node:util';
import { terminalSafe } from '../outside-text';

interface OptionBase {
  /** One line of help. */
  readonly description: string;
  /** A placeholder for the value in the usage (`MS`, `URL`…). */
  readonly valueName?: string;
}

export interface BooleanOption extends OptionBase {
  readonly type: 'boolean';
}

export interface StringOption extends OptionBase {
  readonly type: 'string';
  readonly default?: string;
  /** When given, the value must be one of these. */
  readonly choices?: readonly string[];
}

export interface NumberOption extends OptionBase {
  /** `integer` refuses fractions; both refuse anything that is not a finite number. */
  readonly type: 'integer' | 'number';
  readonly default?: number;
  readonly min?: number;
  readonly max?: number;
  /** The value must be greater than `min` (for rates and scales, where 0 makes no sense). */
  readonly exclusiveMin?: boolean;
}

export type OptionSpec = BooleanOption | StringOption | NumberOption;

export interface CommandSpec<O extends Record<string, OptionSpec> = Record<string, OptionSpec>> {
  /** `npm run <name>`. */
  readonly name: string;
  /** What the command is for, in a sentence or two. */
  readonly summary: string;
  readonly options: O;
  /** Whole command lines, e.g. `npm run send -- --type records.sync.failed`. */
  readonly examples: readonly string[];
  /** Exit code → what it means. */
  readonly exitCodes: Readonly<Record<number, string>>;
  /** Free text printed after the options (environment variables, files read…). */
  readonly notes?: string;
}

type ValueOf<S extends OptionSpec> = S extends BooleanOption
  ? boolean
  : S extends NumberOption
    ? S extends { readonly default: number }
      ? number
      : number | undefined
    : S extends { readonly default: string }
      ? string
      : string | undefined;

export type ParsedOptions<O extends Record<string, OptionSpec>> = { -readonly [K in keyof O]: ValueOf<O[K]> };

export type ParseResult<O extends Record<string, OptionSpec>> =
  | { readonly kind: 'ok'; readonly values: ParsedOptions<O> }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'error'; readonly message: string; readonly usage: string };

/** Exit code for a command line that could not be understood (the usage is printed). */
export const EXIT_USAGE = 2;

/**
 * Exit code for a command that could not do its job, or whose result is bad news (monitor: needs
 * attention; verify: a mismatch). A missing or invalid setting (environment or .env; the message
 * names the variable) exits with it too: four of the six tools that read settings already did, and
 * a setting is fixed by reading the message, not the usage. One rule for every tool, so that a
 * script or a scheduler needs one: 0 done, 1 failed, 2 the command line was not understood.
 */
export const EXIT_FAILURE = 1;

/** Parses `argv` (without node and script) against a command's spec. Pure: prints nothing. */
export function parseCommandLine<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  argv: readonly string[]
): ParseResult<O> {
  if (argv.includes('--help') || argv.includes('-h')) {
    return { kind: 'help', text: formatHelp(spec) };
  }
  const parseOptions: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [name, option] of Object.entries(spec.options)) {
    parseOptions[name] = { type: option.type === 'boolean' ? 'boolean' : 'string' };
  }
  let raw: Record<string, string | boolean | undefined>;
  try {
    const parsed = parseArgs({
      args: joinNegativeValues(argv, spec.options),
      options: parseOptions,
      allowPositionals: false,
      strict: true,
    });
    raw = parsed.values;
  } catch (err) {
    return { kind: 'error', message: cleanNodeMessage(err), usage: formatUsage(spec) };
  }
  const values: Record<string, string | number | boolean | undefined> = {};
  for (const [name, option] of Object.entries(spec.options)) {
    const given = raw[name];
    const checked = checkValue(name, option, given);
    if (typeof checked === 'object') {
      return { kind: 'error', message: checked.error, usage: formatUsage(spec) };
    }
    values[name] = checked;
  }
  return { kind: 'ok', values: values as ParsedOptions<O> };
}

/** Where a command writes: the console by default; tests pass collectors to run a command in-process. */
export interface CommandIo {
  /** Results and help (stdout). */
  readonly print: (line: string) => void;
  /** Refusals and failures (stderr). */
  readonly printError: (line: string) => void;
}

/** The console, for commands run from `npm run …`. */
export const CONSOLE_IO: CommandIo = {
  print: (line) => {
    console.log(terminalSafe(line));
  },
  printError: (line) => {
    console.error(terminalSafe(line));
  },
};

/** The refusal of a bad command line: what was wrong, the usage, and where the full help is. */
export function formatRefusal(spec: CommandSpec, message: string, usage = formatUsage(spec)): string {
  return `${spec.name}: ${message}\n\n${usage}\n\nMore: npm run ${spec.name} -- --help`;
}

/**
 * Runs a command: parses, prints help or the refusal with the usage (exit 2), else calls `run`
 * and returns its exit code. Errors thrown by `run` print their message only (no stack) and
 * return 1, so a command never dies with a stack trace a newcomer cannot act on.
 */
export async function runCommand<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  argv: readonly string[],
  run: (options: ParsedOptions<O>) => Promise<number>,
  io: CommandIo = CONSOLE_IO
): Promise<number> {
  const parsed = parseCommandLine(spec, argv);
  if (parsed.kind === 'help') {
    io.print(parsed.text);
    return 0;
  }
  if (parsed.kind === 'error') {
    io.printError(formatRefusal(spec, parsed.message, parsed.usage));
    return EXIT_USAGE;
  }
  try {
    return await run(parsed.values);
  } catch (err) {
    io.printError(`${spec.name}: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT_FAILURE;
  }
}

/**
 * True when this module is the script node was started with (`tsx src/tools/cli/x.ts`), so a
 * command file runs its `main` from `npm run` but not when a test imports it.
 */
export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  const name = script.split(/[\\/]/).pop() ?? '';
  return moduleUrl.endsWith(`/${name}`) || moduleUrl.endsWith(`/${name}.ts`);
}

/** The terminal printer the ops commands' entry points hand to their `run…` function (tests pass their own). */
export function printToConsole(line: string): void {
  console.log(terminalSafe(line));
}

/** A command's one-line failure, `<command> failed: <message>`: messages say what to do; anything else is not echoed. */
export function failureLine(command: string, err: unknown): string {
  return `${command} failed: ${err instanceof Error ? err.message : 'unknown error'}`;
}

/** Ends the process with a command's exit code (1 if it failed unexpectedly), for `npm run …` entry points. */
export function exitWith(code: Promise<number>): void {
  code.then(
    (c) => process.exit(c),
    (err: unknown) => {
      console.error(terminalSafe(err instanceof Error ? err.message : String(err)));
      process.exit(1);
    }
  );
}

function checkValue(
  name: string,
  option: OptionSpec,
  given: string | boolean | undefined
): string | number | boolean | undefined | { error: string } {
  if (option.type === 'boolean') return given === true;
  if (given === undefined) return option.default;
  const text = String(given);
  if (option.type === 'string') {
    if (option.choices && !option.choices.includes(text)) {
      return { error: `--${name} must be one of ${option.choices.join(', ')} (got "${text}")` };
    }
    return text;
  }
  const number = text.trim() === '' ? Number.NaN : Number(text);
  const kind = option.type === 'integer' ? 'an integer' : 'a number';
  if (!Number.isFinite(number) || (option.type === 'integer' && !Number.isInteger(number))) {
    return { error: `--${name} must be ${kind} (got "${text}")` };
  }
  if (option.min !== undefined && (option.exclusiveMin ? number <= option.min : number < option.min)) {
    return {
      error: `--${name} must be ${option.exclusiveMin ? 'greater than' : 'at least'} ${option.min} (got ${text})`,
    };
  }
  if (option.max !== undefined && number > option.max) {
    return { error: `--${name} must be at most ${option.max} (got ${text})` };
  }
  return number;
}

/** `--skew -600` → `--skew=-600` for value-taking options, so negative numbers read as the docs write them. */
function joinNegativeValues(argv: readonly string[], options: Record<string, OptionSpec>): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = argv[i + 1];
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : undefined;
    const option = name === undefined ? undefined : options[name];
    if (option && option.type !== 'boolean' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function cleanNodeMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // Node's messages end with advice about `--` that does not apply to npm scripts.
  return message.replace(/\. To specify a positional argument.*$/s, '').replace(/\s+$/, '');
}

function optionLine(name: string, option: OptionSpec): [string, string] {
  const value = option.type === 'boolean' ? '' : ` ${option.valueName ?? (option.type === 'string' ? 'VALUE' : 'N')}`;
  const facts: string[] = [];
  if (option.type === 'string' && option.choices) facts.push(`one of ${option.choices.join(' | ')}`);
  if (option.type !== 'boolean' && option.default !== undefined) facts.push(`default ${option.default}`);
  const description = facts.length > 0 ? `${option.description} (${facts.join('; ')})` : option.description;
  return [`--${name}${value}`, description];
}

function formatUsage(spec: CommandSpec): string {
  const lines = [`Usage: npm run ${spec.name} -- [options]`, '', 'options'];
  const rows: [string, string][] = [
    ...Object.entries(spec.options).map(([n, o]) => optionLine(n, o)),
    ['--help', 'print this help'],
  ];
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  // Descriptions wrap under themselves, so options stay readable in a 100-column terminal.
  const indent = ' '.repeat(2 + width);
  for (const [left, right] of rows) {
    const wrapped = wrapText(right, Math.max(40, 100 - indent.length)).split('\n');
    lines.push(`  ${left.padEnd(width)}${wrapped[0] ?? ''}`, ...wrapped.slice(1).map((l) => `${indent}${l}`));
  }
  return lines.join('\n');
}

/** Wraps each paragraph of `text` at `width` columns (help is read in an 80–100 column terminal). */
export function wrapText(text: string, width = 100): string {
  return text
    .trimEnd()
    .split('\n')
    .map((paragraph) => {
      const lines: string[] = [];
      let line = '';
      for (const word of paragraph.split(' ')) {
        if (line && line.length + 1 + word.length > width) {
          lines.push(line);
          line = word;
        } else {
          line = line ? `${line} ${word}` : word;
        }
      }
      lines.push(line);
      return lines.join('\n');
    })
    .join('\n');
}

/** The full `--help` text. */
export function formatHelp(spec: CommandSpec): string {
  const sections = [wrapText(`npm run ${spec.name}: ${spec.summary}`), formatUsage(spec)];
  if (spec.notes) sections.push(wrapText(spec.notes));
  if (spec.examples.length > 0) sections.push(['examples', ...spec.examples.map((e) => `  ${e}`)].join('\n'));
  const codes = Object.entries(spec.exitCodes).map(([code, meaning]) => `  ${code}  ${meaning}`);
  if (!(EXIT_USAGE in spec.exitCodes))
    codes.push(`  ${EXIT_USAGE}  the command line was not understood (usage printed)`);
  sections.push(['exit codes', ...codes].join('\n'));
  return sections.join('\n\n');
}
