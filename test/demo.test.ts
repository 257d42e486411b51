// `npm run demo` is part of the suite: the whole story must keep meeting every expectation.
import { expect, test } from 'vitest';
import { runDemo } from '../src/tools/cli/demo';

test('the demo story meets every expectation', async () => {
  const lines: string[] = [];
  const result = await runDemo({ log: (line) => lines.push(line) });
  expect(result.steps.filter((s) => !s.ok)).toEqual([]);
  expect(result.checks.filter((c) => !c.ok)).toEqual([]);
  expect(result.steps.map((s) => `${String(s.status)} ${s.outcome}`)).toEqual([
    '200 processed',
    '200 duplicate',
    '400 rejected:signature_mismatch',
    '400 rejected:timestamp_out_of_tolerance',
    '200 processed',
    '200 processed',
    '200 stale',
    '200 processed',
    '200 processed',
    // The quarantine story, through the local Medblocks: quarantined, fixed, redelivered, applied.
    '200 quarantined:patient_not_found',
    'undefined Patient created',
    '200 processed',
    // The reconcile story: what no webhook reports reaches the Consent; a second run writes nothing.
    'undefined Consent active',
    'undefined Consent inactive, 1 write',
    'undefined nothing to change',
    // The import story: records land, the scheduled import brings them in; a change, then nothing.
    '200 processed',
    'undefined 119 imported, 0 updated; 119 with Provenance',
    '200 processed',
    'undefined 2 imported, 2 updated',
    'undefined nothing to do',
  ]);
  expect(result.steps.slice(9).map((s) => s.title)).toEqual([
    'unknown patient, creation off: quarantined',
    'the fix: the operator creates the Patient',
    'npm run redeliver -- --quarantined: applied',
    'a flow reports a new connection active',
    'it expires (no webhook); npm run reconcile',
    'npm run reconcile again',
    '120 records land at Medblocks',
    'the scheduled import runs',
    'the EHR corrects 2 records, adds 2',
    'the next scheduled run',
    'and the one after',
  ]);
  expect(result.checks.map((c) => c.check)).toEqual(
    expect.arrayContaining([
      'dead-letter Task (quarantined, then applied)',
      'records-sync Task of the redelivered event',
    ])
  );
  expect(result.state.tasks.filter((t) => t.code === 'webhook-dead-letter')).toEqual([
    expect.objectContaining({ status: 'completed', businessStatus: 'applied-after-redelivery' }),
  ]);
  expect(result.ok).toBe(true);
  // Two more sync deliveries and three scheduled import runs, all successful.
  expect(result.state.auditEvents).toEqual({ total: 17, success: 15, failure: 2 });
  expect(lines).toContainEqual(
    expect.stringMatching(
      /^12 +npm run redeliver -- --quarantined: applied +records\.sync\.completed +200 processed +200 +processed +ok$/
    )
  );
  expect(lines.at(-1)).toBe('demo: every step met its expectation');
  // It built dist/ from bots/ first, so the story ran the current sources (test/cli/prebuild.test.ts).
  expect(lines[0]).toMatch(/^(built dist\/ from bots\/ \(\d+ ms\)|dist\/ is up to date with bots\/)/);
  // Ids and statuses only: the printout never carries payload fields such as the sync error text.
  expect(lines.join('\n')).not.toMatch(/FHIR server returned|error_message|whsec_|demo_patient_0002/);
});
