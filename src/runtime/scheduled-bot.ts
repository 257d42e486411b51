// What every scheduled bot (the sweeper, the records import, the reconciler) does around its run:
// time it, write its one PHI-free line (it becomes the AuditEvent's text), and throw after logging
// when the run failed, so that Medplum records the AuditEvent as a failure (outcome 4) and
// `npm run monitor` counts it. The line goes through the bot's own writer: vmcontext's console
// needs its `this` (ledger WH-5), so it is never called detached.
import type { BotEvent, MedplumClient } from '@medplum/core';

export interface ScheduledBotOptions {
  readonly now?: () => number;
  /** Where the summary line goes; Medplum captures console.log. */
  readonly log?: (line: string) => void;
}

export interface ScheduledBotSpec<T> {
  readonly run: (medplum: MedplumClient, event: BotEvent) => Promise<T>;
  readonly line: (result: T, ms: number) => string;
  /** The error a failed run throws (after its line is logged); undefined when it did not fail. */
  readonly failure: (result: T) => string | undefined;
}

/** A Medplum bot `handler` running `spec` once per scheduled execution. */
export function scheduledBot<T>(
  spec: ScheduledBotSpec<T>,
  options: ScheduledBotOptions = {}
): (medplum: MedplumClient, event: BotEvent) => Promise<T> {
  const now = options.now ?? Date.now;
  const log =
    options.log ??
    ((line: string) => {
      console.log(line);
    });
  return async (medplum, event) => {
    const started = now();
    const result = await spec.run(medplum, event);
    log(spec.line(result, now() - started));
    const failure = spec.failure(result);
    if (failure !== undefined) throw new Error(failure);
    return result;
  };
}
