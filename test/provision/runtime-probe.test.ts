// What provisioning says about the server setting vmContextBotsEnabled, which Medplum checks on
// every run and never on $deploy. The probe against a server is pinned in
// test/emulator/shipped-bundles.test.ts; these are the words the operator reads.
import { describe, expect, it } from 'vitest';
import type { AuditEvent } from '@medplum/fhirtypes';
import { refusedForSetting, VM_CONTEXT_DISABLED, vmContextFindings } from '../../src/tools/provision/runtime-probe';

const run = (outcome: AuditEvent['outcome'], outcomeDesc: string): AuditEvent => ({
  resourceType: 'AuditEvent',
  type: { code: 'execute' },
  recorded: '2026-12-03T07:00:00Z',
  source: { observer: { reference: 'Bot/b1' } },
  agent: [{ requestor: false }],
  outcome,
  outcomeDesc,
});

describe('the vmcontext probe', () => {
  it('counts only a failed run whose log is the server’s refusal, not a failure of the bot’s own', () => {
    expect(refusedForSetting(run('4', VM_CONTEXT_DISABLED))).toBe(true);
    expect(refusedForSetting(run('4', 'medblocks evt=evt_1 outcome=failed:internal'))).toBe(false);
    expect(refusedForSetting(run('0', `a payload that mentions ${VM_CONTEXT_DISABLED}`))).toBe(false);
  });

  it('a refused run is a warning naming the bot, the AuditEvent and both fixes', () => {
    const { warnings, notes } = vmContextFindings({
      refused: [{ name: 'medblocks-patient-flow-completed', auditEvent: 'AuditEvent/a1', recorded: '2026-12-03' }],
      ran: ['medblocks-records-sync-failed'],
      unknown: [],
    });
    expect(notes).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('medblocks-patient-flow-completed (AuditEvent/a1, 2026-12-03)');
    expect(warnings[0]).toMatch(/vmContextBotsEnabled: true.*MEDPLUM_VM_CONTEXT_BOTS_ENABLED=true/);
    expect(warnings[0]).toContain('--runtime awslambda');
  });

  it('bots with no run yet get one note saying what cannot be seen and how to check; bots that ran say nothing', () => {
    expect(vmContextFindings({ refused: [], ran: ['a'], unknown: [] })).toEqual({ warnings: [], notes: [] });
    const { warnings, notes } = vmContextFindings({ refused: [], ran: [], unknown: ['a', 'b'] });
    expect(warnings).toEqual([]);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^a, b run on vmcontext.*cannot tell.*npm run verify/);
  });
});
