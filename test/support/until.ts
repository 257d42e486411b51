// A bounded wait for something a test cannot await directly (a delivery a server makes on its own):
// polls every 10 ms and fails with the reason after `ms`, instead of sleeping a fixed time that is
// too long on a fast machine and too short on a loaded one.
import { setTimeout as sleep } from 'node:timers/promises';

export async function until(condition: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`waited ${String(ms)} ms for ${what}`);
    await sleep(10);
  }
}
