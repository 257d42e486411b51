// Ties a long-running command (`npm run dev`) to whoever started it. Stopping `npm run dev` by the
// npm process's PID used to leave the emulator running with its port bound: npm does not pass
// SIGTERM on, and between npm and this process sit `sh` and tsx. So besides the usual signals the
// command stops when a process it was started through is gone (polled once a second), when its
// terminal hangs up (SIGHUP), or when the parent that gave it a stdin pipe (or socket) closes it.
import { execFileSync } from 'node:child_process';
import { fstatSync } from 'node:fs';

export interface Ancestor {
  readonly pid: number;
  readonly command: string;
}

/** This process's parents, nearest first, up to `depth` (Unix `ps`; only the direct parent elsewhere). */
export function ancestors(depth = 6): Ancestor[] {
  const out: Ancestor[] = [];
  let pid = process.ppid;
  for (let i = 0; i < depth && pid > 1; i++) {
    let line: string;
    try {
      line = execFileSync('ps', ['-o', 'ppid=,command=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    } catch {
      if (out.length === 0) out.push({ pid, command: '' });
      break;
    }
    const match = /^(\d+)\s+(.*)$/s.exec(line);
    out.push({ pid, command: match?.[2] ?? '' });
    pid = Number(match?.[1] ?? 0);
  }
  return out;
}

/**
 * The processes whose end means "stop": every ancestor up to and including the nearest `npm`
 * (`npm run dev` → sh → tsx → us); without npm in sight, the direct parent, and its parent too
 * when the direct parent is tsx's launcher (which outlives its own parent). Never a login shell
 * above npm, so `nohup npm run dev &` keeps running after the terminal closes.
 */
export function watchedAncestors(chain: readonly Ancestor[]): Ancestor[] {
  const npm = chain.findIndex((a) => /(^|[\s/])npm(-cli\.js)?(\s|$)/.test(a.command));
  if (npm >= 0) return chain.slice(0, npm + 1);
  const first = chain[0];
  if (!first) return [];
  return /\btsx\b/.test(first.command) && chain[1] ? [first, chain[1]] : [first];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Calls `stop(reason)` once, on SIGINT, SIGTERM, SIGHUP, the end of a piped stdin, or the end of
 * a watched ancestor. Returns a function that removes every hook (for tests).
 */
export function stopWithParent(stop: (reason: string) => void, pollMs = 1000): () => void {
  let stopped = false;
  const once = (reason: string): void => {
    if (stopped) return;
    stopped = true;
    dispose();
    stop(reason);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    once(signal);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

  // A pipe or a socket (node's spawn gives a socket pair) — not a terminal, not /dev/null:
  // `npm run dev &` gets /dev/null and must keep running.
  let pipe = false;
  try {
    const stdin = fstatSync(0);
    pipe = stdin.isFIFO() || stdin.isSocket();
  } catch {
    pipe = false;
  }
  const onStdinEnd = (): void => {
    once('stdin closed');
  };
  if (pipe) {
    process.stdin.on('end', onStdinEnd);
    process.stdin.resume();
  }

  const startPpid = process.ppid;
  const watched = watchedAncestors(ancestors());
  const timer = setInterval(() => {
    if (process.ppid !== startPpid) {
      once('parent process ended');
      return;
    }
    const gone = watched.find((a) => !alive(a.pid));
    if (gone) once(`parent process ${String(gone.pid)} ended`);
  }, pollMs);
  timer.unref();

  function dispose(): void {
    clearInterval(timer);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(signal, onSignal);
    if (pipe) {
      process.stdin.off('end', onStdinEnd);
      process.stdin.pause();
    }
  }
  return dispose;
}
