// The failure table is the one place a failure's class is decided: these pin the contract's classes
// (rejected / transient / permanent), the HTTP answer each implies, and the FHIR-status mapping.
import { describe, expect, it } from 'vitest';
import { FAILURE_REASONS, FAILURES, failureTableMarkdown, outcomeOfFailure, reasonOfFhirStatus } from './failures';

const byClass = (c: string): string[] => FAILURE_REASONS.filter((r) => FAILURES[r].failureClass === c);

describe('the failure table', () => {
  it('classifies every reason as the contract says', () => {
    expect(byClass('rejected')).toEqual([
      'missing_header',
      'malformed_header',
      'timestamp_out_of_tolerance',
      'signature_mismatch',
      'no_secret_configured',
      'body_not_raw',
      'body_too_large',
      'unexpected_event_type',
    ]);
    expect(byClass('permanent')).toEqual([
      'invalid_payload',
      'patient_not_found',
      'retries_exhausted',
      'invalid_resource',
    ]);
    expect(byClass('transient')).toEqual([
      'conflict',
      'server_error',
      'rate_limited',
      'network',
      'deadline',
      'access_denied',
      'not_found',
      'bad_request',
      'internal',
    ]);
  });

  it('answers 2xx exactly for the permanent class: nothing else can keep Medblocks from retrying', () => {
    for (const reason of FAILURE_REASONS) {
      expect(FAILURES[reason].http === 200, reason).toBe(FAILURES[reason].failureClass === 'permanent');
      expect(FAILURES[reason].whatToDo.length, reason).toBeGreaterThan(10);
    }
  });

  it('names each outcome after its class', () => {
    expect(outcomeOfFailure('signature_mismatch')).toBe('rejected:signature_mismatch');
    expect(outcomeOfFailure('server_error')).toBe('failed:server_error');
    expect(outcomeOfFailure('patient_not_found')).toBe('quarantined:patient_not_found');
  });

  it.each([
    [undefined, 'write', 'network'],
    [409, 'write', 'conflict'],
    [412, 'marker', 'conflict'],
    [401, 'read', 'access_denied'],
    [403, 'write', 'access_denied'],
    [404, 'read', 'not_found'],
    [429, 'write', 'rate_limited'],
    [503, 'read', 'server_error'],
    [400, 'write', 'invalid_resource'],
    [422, 'marker', 'invalid_resource'],
    [400, 'read', 'bad_request'],
    [422, 'dead-letter', 'bad_request'],
    [405, 'write', 'bad_request'],
  ] as const)('FHIR %s on %s → %s', (status, phase, reason) => {
    expect(reasonOfFhirStatus(status, phase)).toBe(reason);
  });

  it('renders as one markdown table row per reason', () => {
    const lines = failureTableMarkdown().split('\n');
    expect(lines).toHaveLength(FAILURE_REASONS.length + 2);
    expect(lines[0]).toBe('| reason | class | HTTP answer | what happened | what to do |');
    for (const reason of FAILURE_REASONS) {
      expect(lines.some((l) => l.startsWith(`| \`${reason}\` |`))).toBe(true);
    }
  });
});
