// Every rule a model applies is in a ledger with its source, and pinned: each ledger row's id
// (docs/fidelity-ledger.md for Medplum, docs/medblocks-contract.md for Medblocks) is named in the
// code that applies it or the test that pins it, so a reader can go from the rule to its proof and
// back, and a row nobody pins shows up here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const code = ['src', 'test', 'bots'].flatMap((d) => sources(join(ROOT, d))).map((f) => readFileSync(f, 'utf8'));

function ledgerIds(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [...text.matchAll(/^\| ([A-Z]+(?:-[A-Z]+)?-[0-9A-Z]+) +\|/gm)].map((m) => m[1] ?? '');
}

describe.each(['docs/fidelity-ledger.md', 'docs/medblocks-contract.md'])('%s', (file) => {
  const ids = ledgerIds(file);

  it('has rows, each id once', () => {
    expect(ids.length).toBeGreaterThan(10);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('names every row in the code that applies it or the test that pins it', () => {
    const unnamed = ids.filter((id) => !code.some((text) => new RegExp(`\\b${id}\\b`).test(text)));
    expect(unnamed).toEqual([]);
  });
});
