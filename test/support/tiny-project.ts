// A throwaway project root with one tiny bot source under a catalog name (so the emulator serves it
// as a public webhook bot), for tests of the build-first step and of `npm run dev` as a process.
// Building it takes a few milliseconds and never touches the repository's dist/.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TINY_BOT = 'medblocks-records-sync-completed';

export interface TinyProject {
  readonly root: string;
  /** Rewrites the bot's source so that it answers `{"status": <status>}`. */
  readonly setAnswer: (status: string) => void;
  readonly cleanup: () => void;
}

export function makeTinyProject(status = 'v1'): TinyProject {
  const root = mkdtempSync(join(tmpdir(), 'medblocks-tiny-'));
  mkdirSync(join(root, 'bots'));
  mkdirSync(join(root, 'access-policies'));
  cpSync(
    new URL(`../../access-policies/${TINY_BOT}.json`, import.meta.url),
    join(root, 'access-policies', `${TINY_BOT}.json`)
  );
  const setAnswer = (answer: string): void => {
    writeFileSync(
      join(root, 'bots', `${TINY_BOT}.ts`),
      `export async function handler(): Promise<{ status: string }> {\n  return { status: ${JSON.stringify(answer)} };\n}\n`
    );
  };
  setAnswer(status);
  return {
    root,
    setAnswer,
    cleanup: () => {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
