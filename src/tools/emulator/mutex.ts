// Medplum runs conditional creates and updates in SERIALIZABLE Postgres transactions, so two
// racing deliveries never both create the same business key. MemoryRepository has no such
// isolation: two concurrent transaction bundles can both resolve "not found" and both create.
// The emulator serialises write requests through this lock to behave like the server.

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
