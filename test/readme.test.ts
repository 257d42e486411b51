// The README is the user's guide: its troubleshooting rows are the failure table the bots answer
// by (src/runtime/failures.ts), and every command it names exists. Kept equal here so that neither
// can change alone.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FAILURE_REASONS, failureTableMarkdown } from '../src/runtime/failures';
import { cells } from './support/markdown';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const scripts = Object.keys(
  (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: object }).scripts
);

describe('README', () => {
  it('lists every failure reason with the class, answer and advice of src/runtime/failures.ts', () => {
    const expected = failureTableMarkdown().split('\n').slice(2).map(cells);
    const reasonRows = readme
      .split('\n')
      .filter((line) => FAILURE_REASONS.some((reason) => line.startsWith(`| \`${reason}\``)))
      .map(cells);
    expect(reasonRows).toEqual(expected);
  });

  it('names only npm scripts that exist', () => {
    const named = new Set([...readme.matchAll(/npm run ([a-z-]+)/g)].map((m) => m[1]));
    expect([...named].filter((name) => !scripts.includes(name ?? ''))).toEqual([]);
  });
});
