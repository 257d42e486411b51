// The summary line and the failure messages are read back by tools: every text the bots make must
// parse back into the outcome it was made for.
import { badRequest } from '@medplum/core';
import { describe, expect, it } from 'vitest';
import {
  fhirFailedMessage,
  formatDeliverySummary,
  formatSweepSummary,
  notAppliedMessage,
  outcomeOfAnswer,
  outcomeOfConsole,
  outcomeOfFailureMessage,
  rejectedMessage,
} from './summary';

describe('failure messages parse back into their outcome', () => {
  it.each([
    [
      rejectedMessage('signature_mismatch', 'signature does not match any configured secret'),
      'rejected:signature_mismatch',
    ],
    [rejectedMessage('missing_header'), 'rejected:missing_header'],
    [notAppliedMessage('internal', 'internal error; nothing was marked applied'), 'failed:internal'],
    [fhirFailedMessage('write', 'conflict', 409), 'failed:conflict'],
    [fhirFailedMessage('read', 'network', undefined), 'failed:network'],
    [fhirFailedMessage('dead-letter', 'rate_limited', 429), 'failed:rate_limited'],
  ])('%s', (message, outcome) => {
    expect(outcomeOfFailureMessage(message)).toBe(outcome);
  });

  it('anything else is not an outcome', () => {
    expect(outcomeOfFailureMessage('Unhandled error: outcome=failed:x')).toBeUndefined();
  });
});

describe('answers as a real server returns them', () => {
  it('200: the status the bot returned', () => {
    expect(outcomeOfAnswer(200, '{"status":"duplicate","event":"evt_1","type":"x"}')).toBe('duplicate');
  });

  it('200 quarantined: the outcome the summary line names, with its reason', () => {
    const body = '{"status":"quarantined","event":"evt_1","type":"x","reason":"invalid_payload","path":"data"}';
    expect(outcomeOfAnswer(200, body)).toBe('quarantined:invalid_payload');
  });

  it('400: the OperationOutcome carrying the thrown message only', () => {
    const body = JSON.stringify(badRequest(fhirFailedMessage('marker', 'access_denied', 403)));
    expect(outcomeOfAnswer(400, body)).toBe('failed:access_denied');
  });

  it('anything unreadable is unknown', () => {
    expect(outcomeOfAnswer(400, 'Bad Gateway')).toBe('unknown');
    expect(outcomeOfAnswer(200, '{"resourceType":"OperationOutcome"}')).toBe('unknown');
    expect(outcomeOfAnswer(400, JSON.stringify(badRequest('Content could not be parsed')))).toBe('unknown');
  });
});

describe('summary lines', () => {
  it('the last summary line of a run’s console output gives its outcome', () => {
    const line = formatDeliverySummary({
      eventId: 'evt_1',
      type: 'records.sync.failed',
      outcome: 'processed',
      fhirRequests: 3,
      ms: 41.4,
    });
    expect(line).toBe('medblocks evt=evt_1 type=records.sync.failed outcome=processed fhir_requests=3 ms=41');
    expect(outcomeOfConsole(`noise\n${line}\nmore noise`)).toBe('processed');
    const sweep = formatSweepSummary(
      { status: 'swept', cutoff: '2026-05-03', retentionDays: 90, deleted: 2, failed: 0, more: false },
      3,
      7
    );
    expect(sweep).toBe(
      'medblocks-sweeper cutoff=2026-05-03 outcome=swept deleted=2 failed=0 more=false fhir_requests=3 ms=7'
    );
    expect(outcomeOfConsole(`${line}\n${sweep}`)).toBe('swept');
    expect(outcomeOfConsole('Unhandled error: outcome=failed:x')).toBeUndefined();
  });
});
