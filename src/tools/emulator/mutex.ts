// MemoryRepository has no isolation: two interleaved writes could both see "not found" and both
// create. The emulator's TransactionalRepository (project-fhir.ts) applies each write, and each
// transaction's work, under this lock, as Postgres' row locks and serialisable isolation would.

/** A FIFO async lock: `run` executes callbacks one at a time, in the order they asked. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` once every earlier task has settled; a failing task never blocks the next one. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
