// Turns a scheduled import run into a Medplum bot handler: one line of counts (it becomes the
// AuditEvent's text, so it names no patient and no record) and the summary as the answer. A failed
// run throws after logging, so the AuditEvent is a failure and `npm run monitor` counts it.
import type { BotEvent, MedplumClient } from '@medplum/core';
import { scheduledBot } from '../scheduled-bot';
import { COUNT_NAMES } from './import-task';
import { runImport } from './run';
import type { ImportOptions, ImportSummary } from './run';

export interface ImportBotOptions extends ImportOptions {
  /** Where the summary line goes; Medplum captures console.log. */
  readonly log?: (line: string) => void;
}

const LOG_NAME: Record<(typeof COUNT_NAMES)[number], string> = {
  created: 'created',
  updated: 'updated',
  unchanged: 'unchanged',
  stale: 'stale',
  refused: 'refused',
  unresolved: 'unresolved_refs',
  patientRecords: 'ehr_patient_records',
  malformed: 'malformed',
};

/** The run's one log line: status, patients, counts, requests and time; nothing of any record. */
export function importSummaryLine(summary: ImportSummary, ms: number): string {
  const parts = [`medblocks-import status=${summary.status}`];
  if (summary.why) parts.push(`why="${summary.why}"`);
  if (summary.status !== 'off') {
    parts.push(
      `patients_done=${String(summary.patientsDone)}`,
      `patients_pending=${String(summary.patientsPending)}`,
      `patients_failed=${String(summary.patientsFailed)}`,
      ...COUNT_NAMES.map((name) => `${LOG_NAME[name]}=${String(summary.counts[name])}`),
      `fhir_requests=${String(summary.fhirRequests)}`,
      `medblocks_requests=${String(summary.medblocksRequests)}`
    );
    if (summary.ignoredTypes.length > 0) parts.push(`ignored_types=${String(summary.ignoredTypes.length)}`);
  }
  parts.push(`ms=${String(ms)}`);
  return parts.join(' ');
}

/** Builds the import bot's `handler`. Options exist for tests (clock, fetch, budget, log sink). */
export function createImportBot(
  options: ImportBotOptions = {}
): (medplum: MedplumClient, event: BotEvent) => Promise<ImportSummary> {
  return scheduledBot(
    {
      run: (medplum, event) => runImport(medplum, event.secrets, options),
      line: importSummaryLine,
      failure: (summary) =>
        summary.status.startsWith('failed:')
          ? `Records import stopped: ${summary.status}; the next scheduled run continues where it stopped`
          : undefined,
    },
    options
  );
}
