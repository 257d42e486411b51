// Turns the sweep into a Medplum bot handler: one PHI-free summary line (it becomes
// AuditEvent.outcomeDesc) and a small summary answer. A failed run throws after logging, so that
// Medplum records the AuditEvent as a failure (outcome 4) and the monitor counts it.
import type { BotEvent, MedplumClient } from '@medplum/core';
import { scheduledBot } from '../scheduled-bot';
import { formatSweepSummary } from '../summary';
import type { SweepSummary } from '../summary';
import { sweepMarkers } from './sweep';
import type { SweepOptions } from './sweep';

export interface SweeperOptions extends SweepOptions {
  /** Where the summary line goes; Medplum captures console.log. */
  readonly log?: (line: string) => void;
}

/** Builds the sweeper's `handler`. Options exist for tests (clock, limits, log sink). */
export function createSweeper(
  options: SweeperOptions = {}
): (medplum: MedplumClient, event: BotEvent) => Promise<SweepSummary> {
  let fhirRequests = 0;
  return scheduledBot(
    {
      run: async (medplum, event) => {
        const swept = await sweepMarkers(medplum, event.secrets, options);
        fhirRequests = swept.fhirRequests;
        return swept.summary;
      },
      line: (summary, ms) => formatSweepSummary(summary, fhirRequests, ms),
      failure: (summary) =>
        summary.status.startsWith('failed:')
          ? `Marker sweep stopped: ${summary.status}; ${summary.deleted} deleted, the next run continues`
          : undefined,
    },
    options
  );
}
