// Helpers for the emulator suites. Each suite builds the bundles from the current sources into its
// own temporary root (symlinks to bots/, access-policies/ and node_modules/), so suites running in parallel never
// read a dist/ file another one is rewriting, and a stale dist/ can never make a test pass.
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildBots } from '../../src/tools/bundling';
import type { EmulatorBot } from '../../src/tools/emulator/server';
import { serialise } from '../../src/tools/fixtures/events';
import type { MedblocksEvent } from '../../src/runtime/events';
import { signatureHeader } from '../../src/runtime/medblocks/signature';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface BuiltRoot {
  readonly root: string;
  readonly cleanup: () => void;
}

/** Builds every bots/*.ts into `<tmp>/dist`; the root also exposes access-policies/. */
export async function buildIntoTempRoot(): Promise<BuiltRoot> {
  const root = mkdtempSync(join(tmpdir(), 'medblocks-emulator-'));
  symlinkSync(join(REPO_ROOT, 'bots'), join(root, 'bots'));
  symlinkSync(join(REPO_ROOT, 'access-policies'), join(root, 'access-policies'));
  // A bundle loaded as a plain module resolves @medplum/core from beside it, as Lambda's bot layer provides it.
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  await buildBots(root);
  return {
    root,
    cleanup: () => {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

/** POSTs a body as Medblocks would, signed with `secret` at `signedAt` (ms; now by default). */
export async function sendSigned(
  bot: Pick<EmulatorBot, 'webhookUrl' | 'secret'>,
  event: MedblocksEvent | string,
  options: { secret?: string; signedAt?: number; headers?: Record<string, string> } = {}
): Promise<Answer> {
  const body = typeof event === 'string' ? event : serialise(event);
  const t = Math.floor((options.signedAt ?? Date.now()) / 1000);
  const header = signatureHeader(options.secret ?? bot.secret ?? '', t, body);
  return post(bot.webhookUrl, body, {
    'Content-Type': 'application/json',
    'Medblocks-Signature': header,
    ...options.headers,
  });
}

export async function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(url, { method: 'POST', headers, body });
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    text: await response.text(),
  };
}

/** The `details.text` of the OperationOutcome Medplum answers with. */
export function outcomeText(text: string): string {
  const outcome = JSON.parse(text) as { issue?: { details?: { text?: string } }[] };
  return outcome.issue?.[0]?.details?.text ?? '';
}
