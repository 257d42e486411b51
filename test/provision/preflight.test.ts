// The preflight's rules and the helpers that make a real server's answers comparable, from the
// server's behaviour.
import { describe, expect, it } from 'vitest';
import { binaryIdOf, deployFix } from '../../src/tools/provision/medplum';
import { supportsRawBody } from '../../src/tools/provision/plan';
import { analysePreflight, isHostedMedplum } from '../../src/tools/provision/preflight';
import type { ServerFacts } from '../../src/tools/provision/preflight';

const FACTS: ServerFacts = {
  baseUrl: 'http://localhost:8103/',
  version: '5.2.13-abc1234',
  projectId: 'p1',
  projectName: 'Staging',
  features: ['bots', 'cron'],
  clientId: 'c1',
  admin: true,
  superAdmin: false,
  projectReadable: true,
  secrets: [],
};

describe('preflight', () => {
  it('chooses awslambda on hosted Medplum and vmcontext on a self-hosted server, unless told', () => {
    expect(isHostedMedplum('https://api.medplum.com/')).toBe(true);
    expect(isHostedMedplum('http://localhost:8103/')).toBe(false);
    expect(isHostedMedplum('https://medplum.example.org/')).toBe(false);
    expect(analysePreflight({ ...FACTS, baseUrl: 'https://api.medplum.com/' }, undefined).runtime).toBe('awslambda');
    expect(analysePreflight(FACTS, undefined)).toMatchObject({ runtime: 'vmcontext', errors: [], warnings: [] });
    const told = analysePreflight(FACTS, 'awslambda');
    expect(told.runtime).toBe('awslambda');
    expect(told.warnings[0]).toMatch(/Could not load credentials from any providers.*--runtime vmcontext/);
  });

  // Ledger ADM-1.
  it('sends rawBody from 5.2.0 on, and explains the parsed-body fallback before that', () => {
    expect(supportsRawBody('5.2.0')).toBe(true);
    expect(supportsRawBody('6.0.1-x')).toBe(true);
    expect(supportsRawBody('5.1.29-abc')).toBe(false);
    expect(supportsRawBody(undefined)).toBeUndefined();
    expect(analysePreflight(FACTS, undefined).rawBody).toBe(true);

    const old = analysePreflight({ ...FACTS, version: '5.1.29-abc' }, undefined);
    expect(old.rawBody).toBe(false);
    expect(old.errors).toEqual([]);
    expect(old.warnings[0]).toMatch(/predates Bot\.rawBody.*Every delivery is refused with body_not_raw/);
    const withFallback = analysePreflight(
      { ...FACTS, version: '5.1.29-abc', secrets: [{ name: 'MEDBLOCKS_ALLOW_PARSED_BODY', valueString: ' TRUE ' }] },
      undefined
    );
    expect(withFallback.warnings[0]).toMatch(/MEDBLOCKS_ALLOW_PARSED_BODY=true is set/);
    expect(withFallback.summary).toMatch(/Bot\.rawBody not supported \(server < 5\.2\)/);
  });

  it('collects every blocking problem, each naming its fix', () => {
    const blocked = analysePreflight({ ...FACTS, version: undefined, admin: false, features: [] }, undefined);
    expect(blocked.errors).toHaveLength(3);
    expect(blocked.errors[0]).toMatch(/MEDPLUM_BASE_URL/);
    expect(blocked.errors[1]).toMatch(/MEDPLUM_CLIENT_ID=c1 is not a project admin/);
    expect(blocked.errors[2]).toMatch(/super admin/);
    expect(analysePreflight({ ...FACTS, admin: false, superAdmin: true }, undefined).errors).toEqual([]);
  });
});

describe('the deployed code is found by its Binary id, whatever form the server reads it back in', () => {
  it.each([
    ['Binary/0d0e2c1f-aaaa-4bbb-8ccc-111122223333', '0d0e2c1f-aaaa-4bbb-8ccc-111122223333'],
    ['Binary/abc/_history/2', 'abc'],
    ['http://localhost:8103/storage/0d0e2c1f-aaaa/7e1f?Expires=1760000000&Signature=xyz', '0d0e2c1f-aaaa'],
    ['https://storage.medplum.com/binary/9a8b7c6d/5e4f?Expires=1&Key-Pair-Id=K&Signature=s', '9a8b7c6d'],
    ['https://api.example.org/fhir/R4/Binary/b-1', 'b-1'],
    ['https://api.example.org/fhir/R4/Binary/b-1/_history/3', 'b-1'],
  ])('%s', (url, id) => {
    expect(binaryIdOf(url)).toBe(id);
  });

  it('and gives up on anything else', () => {
    expect(binaryIdOf(undefined)).toBeUndefined();
    expect(binaryIdOf('not a url')).toBeUndefined();
    expect(binaryIdOf('https://x.test/a')).toBeUndefined();
  });
});

describe('$deploy refusals come with their fix', () => {
  it('names the feature and the runtime', () => {
    expect(deployFix('Bots not enabled')).toMatch(/bots.*super admin/);
    expect(deployFix('Could not load credentials from any providers')).toMatch(/--runtime vmcontext/);
    expect(deployFix('Something else')).toBeUndefined();
  });

  it('warns, without stopping, when the project cannot schedule the sweeper, naming the super-admin fix and the reload', () => {
    const noCron = analysePreflight({ ...FACTS, features: ['bots'] }, undefined);
    expect(noCron.errors).toEqual([]);
    expect(noCron.warnings).toHaveLength(1);
    expect(noCron.warnings[0]).toMatch(
      /does not have the "cron" feature.*medblocks-marker-sweeper will never run.*medblocks-records-import will never run \(no records are imported\)/
    );
    expect(noCron.warnings[0]).toMatch(/grow without bound/);
    expect(noCron.warnings[0]).toContain('POST http://localhost:8103/admin/super/reloadcron');
    // Nothing scheduled is being provisioned: nothing to warn about.
    expect(analysePreflight({ ...FACTS, features: ['bots'] }, undefined, []).warnings).toEqual([]);
  });
});
