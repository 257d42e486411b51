// The server's CPU, as a model: a real Medplum on a small machine is bound by the work each request
// costs it, not by the network. Each bot run and each FHIR request takes one of `cores` for as long
// as its work costs, in arrival order; what waits for a core waits. The costs are a linear fit of
// the CPU a real server spent per delivery (docs/fidelity-ledger.md TX-12), so the benchmark ranks
// write patterns by what they cost a server, as the real one does, instead of by round trips alone.
import { setTimeout as sleep } from 'node:timers/promises';

/** Milliseconds of server CPU per unit of work, and the cores that share it. */
export interface ServerWorkModel {
  readonly cores: number;
  /** One bot run: the webhook request, the sandbox, the bot's own code, its AuditEvent. */
  readonly perRunMs: number;
  /** One FHIR request: HTTP, authentication, routing, the answer. */
  readonly perRequestMs: number;
  /** Each interaction in it (a batch's entries; 1 for a plain request): a search, read, or write's own search. */
  readonly perEntryMs: number;
  /** Each resource version written (insert, history row, index entries, commit). */
  readonly perWriteMs: number;
}

/** What one FHIR request did, counted while it ran. */
export interface RequestWork {
  readonly entries: number;
  writes: number;
}

/** The model's cores: work is served in arrival order, each piece on one core for its cost. */
export class ServerCores {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  /** What was served so far, for benchmarks: core-milliseconds, and the work they were for. */
  readonly served = { busyMs: 0, runs: 0, requests: 0, entries: 0, writes: 0 };

  constructor(
    readonly model: ServerWorkModel,
    /** How a core spends its time; tests hand in one they control. */
    private readonly spend: (ms: number) => Promise<unknown> = sleep
  ) {
    if (!Number.isInteger(model.cores) || model.cores < 1)
      throw new Error('ServerWorkModel.cores must be a positive integer');
    this.free = model.cores;
  }

  /** Serves one bot run. */
  run(): Promise<void> {
    this.served.runs++;
    return this.serve(this.model.perRunMs);
  }

  /** Serves one FHIR request, for what it did. */
  request(work: RequestWork): Promise<void> {
    const { perRequestMs, perEntryMs, perWriteMs } = this.model;
    this.served.requests++;
    this.served.entries += work.entries;
    this.served.writes += work.writes;
    return this.serve(perRequestMs + perEntryMs * work.entries + perWriteMs * work.writes);
  }

  /** Waits for a core, then holds it for `ms`. */
  private async serve(ms: number): Promise<void> {
    if (ms <= 0) return;
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      await this.spend(ms);
      this.served.busyMs += ms;
    } finally {
      // Hand the core straight to the next in line, so that nobody overtakes the queue.
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}
