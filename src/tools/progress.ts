// Progress of a long run, in the words a person waiting wants: how far, and how long still
// (`3 of 12, about 2 min left`). Redeliver can wait a minute per event (Medblocks' limit) and
// reconcile reads one patient at a time: printed once, "retrying in 54 s" and then nothing left
// people guessing whether a run of 200 events would take minutes or hours.
// The estimate is the pace measured so far, plus the wait about to start: no model of the server.
// The lines go to stderr, so that a command's stdout (its report, or --json) stays clean.
import { terminalSafe } from './outside-text';

/** `about 40 s`, `about 2 min`, `about 1 h 5 min`: rounded up, as a wait is said. */
export function formatEstimate(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds < 60) return `about ${String(seconds)} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `about ${String(minutes)} min`;
  const rest = minutes % 60;
  return `about ${String(Math.floor(minutes / 60))} h${rest > 0 ? ` ${String(rest)} min` : ''}`;
}

/** Counts finished items against a total and estimates the time left from the pace so far. */
export class Progress {
  private readonly startedAt: number;

  constructor(
    readonly total: number,
    private readonly now: () => number = Date.now,
    /** What is counted, e.g. `events`: `3 of 12 events, …`. */
    private readonly unit = ''
  ) {
    this.startedAt = now();
  }

  /**
   * `3 of 12 events, about 2 min left` when `done` items are finished and a wait of `waitMs` is about to
   * start before the next one. Before any item is done, the wait is the only pace known.
   */
  describe(done: number, waitMs = 0): string {
    const elapsed = this.now() - this.startedAt;
    const remaining = Math.max(0, this.total - done);
    // The item a wait is for costs the wait; every other item the pace measured so far.
    const pace = done > 0 ? elapsed / done : waitMs;
    const left = remaining === 0 ? 0 : waitMs > 0 ? waitMs + (remaining - 1) * pace : remaining * pace;
    const unit = this.unit ? ` ${this.unit}` : '';
    return `${String(done)} of ${String(this.total)}${unit}, ${formatEstimate(left)} left`;
  }
}

/** Where progress goes by default: stderr, through terminalSafe like every printed line. */
export function printProgressToStderr(line: string): void {
  console.error(terminalSafe(line));
}
