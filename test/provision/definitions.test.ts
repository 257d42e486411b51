// The CodeSystem and extension definitions provision installs: derived from
// src/runtime/fhir/systems.ts, valid for Medplum's validator, and complete — every code literal
// the runtime writes under urn:medblocks:code is defined, with a display and a definition.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { validateResource } from '@medplum/core';
import type { CodeSystem, StructureDefinition } from '@medplum/fhirtypes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OUTPUT_CODE } from '../../src/runtime/import/import-task';
import { CODE, CODE_DISPLAY, EXTENSION, SYSTEM } from '../../src/runtime/fhir/systems';
import { runProvision } from '../../src/tools/cli/provision';
import {
  BUSINESS_STATUS,
  definedCodes,
  extensionDefinition,
  medblocksCodeSystem,
  packageDefinitions,
} from '../../src/tools/provision/package-definitions';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { fakeFetch, LoopbackService } from '../support/fake-servers';
import { EmulatorProject, emulatorEnv } from '../support/emulator-project';
import { makeRoot } from '../support/provision-root';

const RUNTIME = new URL('../../src/runtime', import.meta.url).pathname;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

/**
 * Every code literal the runtime writes under urn:medblocks:code: the arguments of
 * businessStatus(…), inputOf(…), outputOf(…) and `{ system: SYSTEM.code, code: '…' }`.
 */
function codesWrittenByTheRuntime(): Map<string, string> {
  const found = new Map<string, string>();
  const patterns = [
    /\bbusinessStatus\(([^)]*)\)/g,
    /\b(?:inputOf|outputOf)\(\s*('[^']*')/g,
    /system:\s*SYSTEM\.code,\s*code:\s*('[^']*')/g,
  ];
  for (const file of sources(RUNTIME)) {
    const text = readFileSync(file, 'utf8');
    for (const pattern of patterns) {
      for (const match of text.matchAll(pattern)) {
        for (const literal of (match[1] ?? '').matchAll(/'([a-z][a-z0-9-]*)'/g)) {
          if (literal[1]) found.set(literal[1], file.slice(RUNTIME.length + 1));
        }
      }
    }
  }
  return found;
}

describe('the urn:medblocks:code CodeSystem', () => {
  it('defines every code the runtime writes, each with a display and a definition', () => {
    const written = codesWrittenByTheRuntime();
    // The scan finds the codes it should (it would pass vacuously if the patterns broke).
    expect([...written.keys()]).toEqual(expect.arrayContaining(['awaiting-patient', 'sync-failed', 'fhir-source']));
    const defined = definedCodes();
    const missing = [...written].filter(([code]) => !defined.has(code)).map(([code, file]) => `${code} (${file})`);
    expect(missing).toEqual([]);
    for (const code of Object.values(OUTPUT_CODE)) expect(defined.has(code), code).toBe(true);
    for (const code of Object.values(CODE)) expect(defined.has(code)).toBe(true);
    for (const concept of medblocksCodeSystem().concept ?? []) {
      expect(concept.display, concept.code).toBeTruthy();
      expect(concept.definition, concept.code).toBeTruthy();
    }
  });

  it('uses systems.ts displays for its Task codes and includes the quarantine codes', () => {
    const byCode = new Map((medblocksCodeSystem().concept ?? []).map((c) => [c.code, c]));
    for (const [code, display] of Object.entries(CODE_DISPLAY)) expect(byCode.get(code)?.display).toBe(display);
    for (const code of ['webhook-dead-letter', 'quarantined', 'applied-after-redelivery']) {
      expect(byCode.has(code), code).toBe(true);
    }
    // "awaiting-patient" reads as what to do, not as "patient unknown".
    expect(BUSINESS_STATUS['awaiting-patient']?.display).toMatch(/reconnect/i);
  });

  it("passes Medplum's validator, as do the extension definitions", () => {
    const system = medblocksCodeSystem();
    expect(system.url).toBe(SYSTEM.code);
    expect(() => validateResource(system)).not.toThrow();
    for (const key of Object.keys(EXTENSION) as (keyof typeof EXTENSION)[]) {
      const definition = extensionDefinition(key);
      expect(definition.url).toBe(EXTENSION[key]);
      expect(() => validateResource(definition)).not.toThrow();
    }
    // The validator does refuse a broken one (the checks above are not vacuous).
    const { kind: _kind, ...withoutKind } = extensionDefinition('failureCode');
    expect(() => validateResource(withoutKind as StructureDefinition)).toThrow();
  });

  it('each extension definition says what its extension carries', () => {
    const failure = extensionDefinition('failureCode');
    const value = failure.differential?.element.find((e) => e.path === 'Extension.value[x]');
    expect(value?.type).toEqual([{ code: 'code' }]);
    const stamp = extensionDefinition('lastEvent');
    const parts = stamp.differential?.element.filter((e) => e.path === 'Extension.extension.value[x]');
    expect(parts?.map((e) => e.type?.[0]?.code)).toEqual(['string', 'instant']);
    expect(stamp.differential?.element.find((e) => e.path === 'Extension.value[x]')?.max).toBe('0');
  });
});

describe('provision installs them', () => {
  let root: string;
  let cleanup: () => void;
  // On the emulator started empty, which stores and validates them as a server would (VAL-1).
  let emulator: RunningEmulator;
  let medplum: EmulatorProject;

  beforeEach(async () => {
    ({ root, cleanup } = makeRoot());
    emulator = await startEmulator({ root, bots: [] });
    medplum = new EmulatorProject(emulator);
  });

  afterEach(async () => {
    await emulator.close();
    cleanup();
  });

  async function run(): Promise<string> {
    const lines: string[] = [];
    await runProvision([], {
      root,
      env: emulatorEnv(emulator),
      fetchFn: fakeFetch(new LoopbackService(emulator.url)),
      print: (l) => lines.push(l),
    });
    return lines.join('\n');
  }

  it('once, updating only what differs', async () => {
    const first = await run();
    expect(first).toMatch(/create +CodeSystem urn:medblocks:code/);
    for (const url of Object.values(EXTENSION)) expect(first).toContain(`StructureDefinition ${url}`);
    const systems = await medplum.all<CodeSystem>('CodeSystem');
    expect(systems).toHaveLength(1);
    expect(systems[0]?.concept).toEqual(medblocksCodeSystem().concept);
    expect(await medplum.all<StructureDefinition>('StructureDefinition')).toHaveLength(packageDefinitions().length - 1);

    expect(await run()).toContain('No changes: everything was already provisioned.');

    // Someone edited a display in the app: provision puts the package's text back.
    const system = systems[0];
    if (!system) throw new Error('no CodeSystem');
    await medplum.put<CodeSystem>({
      ...system,
      concept: system.concept?.map((c) => (c.code === 'awaiting-patient' ? { ...c, display: 'edited' } : c)),
    });
    expect(await run()).toMatch(/update +CodeSystem\/\S+ +\(urn:medblocks:code differs/);
    expect((await medplum.all<CodeSystem>('CodeSystem'))[0]?.concept).toEqual(medblocksCodeSystem().concept);
  });
});
