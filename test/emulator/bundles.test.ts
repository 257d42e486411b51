// Every built bundle must load both in the vmcontext sandbox and as a plain CommonJS module (what
// Lambda's Node runtime does), and each webhook bundle must process a signed delivery end to end.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { BotEvent, MedplumClient } from '@medplum/core';
import type { AccessPolicy, Basic, Task } from '@medplum/fhirtypes';
import { WEBHOOK_BOTS } from '../../src/runtime/registry';
import { definitionOf } from '../../src/runtime/events';
import type { TaskCode } from '../../src/runtime/fhir/systems';
import { EXTENSION } from '../../src/runtime/fhir/systems';
import { readStamp } from '../../src/runtime/fhir/stamp';
import { BotConsole } from '../../src/tools/emulator/bot-console';
import { discoverBots } from '../../src/tools/emulator/project';
import type { EmulatedBotSpec } from '../../src/tools/emulator/project';
import { sandboxGlobals } from '../../src/tools/emulator/sandbox';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { SAMPLE_PATIENT_ID, SAMPLE_SOURCE_A, serialise } from '../../src/tools/fixtures/events';
import { buildEvent } from '../../src/tools/fixtures/variants';
import { signatureHeader } from '../../src/runtime/medblocks/signature';
import { buildIntoTempRoot, sendSigned } from './support';
import type { BuiltRoot } from './support';

let built: BuiltRoot;
let bundles: EmulatedBotSpec[];
let emulator: RunningEmulator;

beforeAll(async () => {
  built = await buildIntoTempRoot();
  bundles = discoverBots(built.root);
  emulator = await startEmulator({ root: built.root });
});

afterAll(async () => {
  await emulator.close();
  built.cleanup();
});

type Handler = (medplum: MedplumClient, event: BotEvent) => Promise<unknown>;

describe('built bundles', () => {
  test('one bundle per bot entry, at least the four webhook bots', () => {
    const names = bundles.map((b) => b.name);
    expect(names).toEqual(expect.arrayContaining(WEBHOOK_BOTS.map((b) => b.name)));
  });

  test('a webhook bundle carries its own event type only, and no test fixture', () => {
    // Each bots/<bot>.ts binds one event type's module; the index it reaches for every type's names
    // must not drag the other definitions (and their handlers) in (src/runtime/events/define.ts).
    for (const bot of WEBHOOK_BOTS) {
      const code = readFileSync(bundles.find((b) => b.name === bot.name)?.file ?? '', 'utf8');
      expect(code, bot.name).toContain(bot.secretName);
      for (const other of WEBHOOK_BOTS.filter((o) => o.name !== bot.name)) {
        expect(code.includes(other.secretName), `${bot.name} carries ${other.name}`).toBe(false);
      }
    }
  });

  test('a webhook bundle carries the Task kinds its event type names, and no other', () => {
    // What only each kind's codec writes: its description.
    const kindText: Readonly<Record<TaskCode, string>> = {
      'reconnect-ehr': 'reconnect their',
      'connection-follow-up': 'help them connect',
      'records-sync': 'Records were pulled from',
    };
    for (const bot of WEBHOOK_BOTS) {
      const code = readFileSync(bundles.find((b) => b.name === bot.name)?.file ?? '', 'utf8');
      const carried = Object.entries(kindText).flatMap(([kind, text]) => (code.includes(text) ? [kind] : []));
      expect(carried.sort(), bot.name).toEqual([...definitionOf(bot.medblocksEvent).policy.taskCodes].sort());
    }
  });

  test('no bundle carries a sample delivery (the event modules export them beside their handlers)', () => {
    // What only a sample holds: its patient, its EHR source, its flow's hosted-page URL.
    const sampleOnly = [SAMPLE_PATIENT_ID, SAMPLE_SOURCE_A, 'app.medblocks.com/c/', 'upstream timeout'];
    for (const bundle of bundles) {
      const code = readFileSync(bundle.file ?? '', 'utf8');
      expect(
        sampleOnly.filter((text) => code.includes(text)),
        `${bundle.name} carries samples`
      ).toEqual([]);
    }
  });

  test('every bundle exposes exports.handler inside the vmcontext wrapper', () => {
    for (const bundle of bundles) {
      const code = readFileSync(bundle.file ?? '', 'utf8');
      const globals = sandboxGlobals({ event: {} as never, fetch }, new BotConsole());
      const kind: unknown = vm.runInNewContext(
        `const exports = {}; const module = {exports};\n${code}\n;typeof exports.handler`,
        globals
      );
      expect(kind, bundle.name).toBe('function');
    }
  });

  test('every bundle loads as a plain CommonJS module', () => {
    const load = createRequire(import.meta.url);
    for (const bundle of bundles) {
      const loaded = load(bundle.file ?? '') as { handler?: unknown };
      expect(typeof loaded.handler, bundle.name).toBe('function');
    }
  });

  /** One Basic marker for the event, or for a records sync (whose stamp is its marker) none, and the stamp on its Task. */
  async function expectMarkedApplied(eventId: string, type: (typeof WEBHOOK_BOTS)[number]['medblocksEvent']) {
    const markers = await emulator.store.all<Basic>('Basic', `identifier=urn:medblocks:event-id|${eventId}`);
    if (definitionOf(type).policy.marker) {
      expect(markers).toHaveLength(1);
      return;
    }
    expect(markers).toEqual([]);
    const tasks = await emulator.store.all<Task>('Task', `code=urn:medblocks:code|records-sync`);
    expect(tasks.map((t) => readStamp(t, EXTENSION.lastEvent)?.eventId)).toContain(eventId);
  }

  test.each(WEBHOOK_BOTS.map((b) => [b.name, b.medblocksEvent] as const))(
    '%s processes a signed %s in the vm sandbox, over HTTP',
    async (name, type) => {
      const event = buildEvent(type);
      const answer = await sendSigned(emulator.bot(name), event);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text)).toEqual({ status: 'processed', event: event.id, type });
      await expectMarkedApplied(event.id, type);
    }
  );

  test.each(WEBHOOK_BOTS.map((b) => [b.name, b.medblocksEvent] as const))(
    '%s processes a signed %s as a plain CommonJS module',
    async (name, type) => {
      const spec = bundles.find((b) => b.name === name);
      const { handler } = createRequire(import.meta.url)(spec?.file ?? '') as { handler: Handler };
      const bot = emulator.bot(name);
      const event = buildEvent(type);
      const body = serialise(event);
      const botEvent: BotEvent = {
        bot: { reference: `Bot/${bot.botId}` },
        contentType: 'application/json',
        input: body,
        secrets: { [bot.secretName ?? '']: { name: bot.secretName ?? '', valueString: bot.secret } },
        headers: {
          'content-type': 'application/json',
          'medblocks-signature': signatureHeader(bot.secret ?? '', Math.floor(Date.now() / 1000), body),
        },
      };
      const view = emulator.store.viewFor(spec?.policy as AccessPolicy);
      const answer = await handler(emulator.store.client(view), botEvent);
      expect(answer).toEqual({ status: 'processed', event: event.id, type });
      await expectMarkedApplied(event.id, type);
    }
  );
});
