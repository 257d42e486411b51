// `npm run sources` end to end: a bot delivery writes a Consent for an EHR source,
// the command (in-process, over HTTP) asks the local Medblocks for the source's name and creates
// the Organization in the emulator, and the next delivery's Task names the EHR.
import type { Organization, Task } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSources } from '../../src/tools/cli/sources';
import { readSettings } from '../../src/tools/provision/env';
import { MedblocksApi } from '../../src/tools/provision/medblocks-api';
import { connectMedplum } from '../../src/tools/provision/medplum';
import { syncSources } from '../../src/tools/sources/sources';
import { startEmulator, type RunningEmulator } from '../../src/tools/emulator/server';
import { tokenRefreshFailed } from '../../src/tools/fixtures/events';
import { startLocalMedblocks, type RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { buildIntoTempRoot, sendSigned, type BuiltRoot } from '../emulator/support';

const BOT = 'medblocks-connection-token-refresh-failed';
const NAMED = 'fhirsrc_0NamedByMedblocks000000';
const UNKNOWN = 'fhirsrc_0UnknownToMedblocks00000';
const SYSTEM = 'urn:medblocks:fhir-source-id';

let built: BuiltRoot;
let emulator: RunningEmulator;
let medblocks: RunningLocalMedblocks;
/** The local Medblocks reads this table on every request, so a test can rename a source. */
const names: Record<string, string> = { [NAMED]: 'Epic MyChart' };

beforeAll(async () => {
  built = await buildIntoTempRoot();
  emulator = await startEmulator({ root: built.root });
  medblocks = await startLocalMedblocks({ sources: names });
}, 120_000);

afterAll(async () => {
  await medblocks.close();
  await emulator.close();
  built.cleanup();
});

function env(): NodeJS.ProcessEnv {
  return {
    MEDPLUM_BASE_URL: `${emulator.url}/`,
    MEDPLUM_CLIENT_ID: emulator.adminClient.clientId,
    MEDPLUM_CLIENT_SECRET: emulator.adminClient.clientSecret,
    MEDBLOCKS_API_KEY: medblocks.apiKey,
    MEDBLOCKS_API_BASE_URL: medblocks.url,
  };
}

async function sources(
  argv: string[],
  options: { fetchFn?: typeof fetch; sleep?: (ms: number) => Promise<void> } = {}
): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await runSources(argv, { print: (l) => lines.push(l), root: built.root, env: env(), ...options });
  return { code, lines };
}

async function deliver(connectionId: string, sourceId: string, eventId: string): Promise<void> {
  const event = tokenRefreshFailed({ id: connectionId, connection_id: sourceId }, { id: eventId });
  expect((await sendSigned(emulator.bot(BOT), event)).status).toBe(200);
}

async function reconnectTask(connectionId: string): Promise<Task | undefined> {
  const tasks = await emulator.store.all<Task>('Task', `identifier=urn:medblocks:task-key|reconnect/${connectionId}`);
  return tasks[0];
}

async function organizations(): Promise<Organization[]> {
  return emulator.store.all<Organization>('Organization', `identifier=${SYSTEM}|`);
}

describe('npm run sources against the emulator and the local Medblocks', () => {
  it('names the EHR: dry run, create, idempotent second run, then the next Task names it', async () => {
    await deliver('conn_before1', NAMED, 'evt_01JSOURCES00000000000000001');
    await deliver('conn_unknown', UNKNOWN, 'evt_01JSOURCES00000000000000002');
    expect((await reconnectTask('conn_before1'))?.description).not.toContain('Epic MyChart');

    const dry = await sources(['--dry-run']);
    expect(dry.code).toBe(0);
    const dryText = dry.lines.join('\n');
    expect(dryText).toContain('2 EHR source(s) on 2 Consent(s).');
    expect(dryText).toMatch(new RegExp(`${NAMED} +would create +\\(new\\) +Epic MyChart`));
    expect(dryText).toMatch(new RegExp(`${UNKNOWN} +not found at Medblocks`));
    expect(await organizations()).toEqual([]);

    const first = await sources([]);
    expect(first.code).toBe(0);
    const firstText = first.lines.join('\n');
    console.log(firstText);
    expect(firstText).toContain('created 1, updated 0, unchanged 0, not found at Medblocks 1.');
    expect(firstText).not.toContain(emulator.adminClient.clientSecret);
    expect(firstText).not.toContain(medblocks.apiKey);
    const stored = await organizations();
    expect(stored).toHaveLength(1);
    expect(stored[0]?.name).toBe('Epic MyChart');
    expect(stored[0]?.identifier).toEqual([{ system: SYSTEM, value: NAMED }]);
    // The source's published patient portal (FhirSource.portal_url) is the Organization's address.
    expect(stored[0]?.telecom).toEqual([{ system: 'url', value: `https://portal.example.test/${NAMED}`, use: 'work' }]);
    expect(firstText).toMatch(new RegExp(`${NAMED} +created +Organization/${stored[0]?.id ?? 'none'} +Epic MyChart`));

    const second = await sources([]);
    expect(second.code).toBe(0);
    const secondText = second.lines.join('\n');
    console.log(secondText);
    expect(secondText).toContain('created 0, updated 0, unchanged 1, not found at Medblocks 1.');
    expect(secondText).toContain('No changes:');
    const after = await organizations();
    expect(after.map((o) => [o.id, o.meta?.versionId])).toEqual(stored.map((o) => [o.id, o.meta?.versionId]));

    await deliver('conn_after1', NAMED, 'evt_01JSOURCES00000000000000003');
    expect((await reconnectTask('conn_after1'))?.description).toBe(
      'Ask the patient to reconnect their Epic MyChart portal: its access expired.'
    );
  }, 60_000);

  it('updates the name when Medblocks renames the source, waiting out a 429 as Retry-After asks', async () => {
    names[NAMED] = 'Epic MyChart (Acme)';
    let limited = 0;
    const waits: number[] = [];
    const fetchFn: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.includes('/connections/') && limited === 0) {
        limited++;
        return new Response('{"error":{"type":"rate_limit_error","code":"rate_limited"}}', {
          status: 429,
          headers: { 'retry-after': '2' },
        });
      }
      return fetch(input, init);
    };
    const run = await sources([], {
      fetchFn,
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    });
    expect(run.code).toBe(0);
    const text = run.lines.join('\n');
    expect(waits).toEqual([2000]);
    expect(text).toMatch(/wait {2}Medblocks GET \/connections\/fhirsrc_\S+ answered HTTP 429; retrying in 2 s/);
    expect(text).toContain('Epic MyChart (Acme) (was Epic MyChart)');
    expect(text).toContain('created 0, updated 1, unchanged 0');
    expect((await organizations()).map((o) => o.name)).toEqual(['Epic MyChart (Acme)']);
  }, 60_000);

  it('says which setting is missing, and fails with exit 1 when Medblocks refuses the key', async () => {
    const lines: string[] = [];
    const missing = await runSources([], {
      print: (l) => lines.push(l),
      root: built.root,
      env: { ...env(), MEDBLOCKS_API_KEY: '' },
    });
    expect(missing).toBe(1);
    expect(lines.join('\n')).toMatch(/MEDBLOCKS_API_KEY must be set/);

    const refused: string[] = [];
    const code = await runSources([], {
      print: (l) => refused.push(l),
      root: built.root,
      env: { ...env(), MEDBLOCKS_API_KEY: 'mb_sk_sbx_wrong' },
    });
    expect(code).toBe(1);
    expect(refused.join('\n')).toMatch(
      /sources failed: Medblocks GET \/connections\/\S+ failed with HTTP 401.*check MEDBLOCKS_API_KEY/
    );
    expect(refused.join('\n')).not.toContain('mb_sk_sbx_wrong');
  }, 60_000);

  it('pages through the Consents (offset paging where the server gives no next link) and says when it stopped early', async () => {
    const { medplum } = await connectMedplum(readSettings(env(), built.root));
    const api = new MedblocksApi(medblocks.url, medblocks.apiKey);
    const all = await syncSources({ medplum, api, dryRun: true, print: () => undefined });
    expect(all.consents).toBeGreaterThanOrEqual(3);
    const printed: string[] = [];
    const paged = await syncSources({
      medplum,
      api,
      dryRun: true,
      paging: { pageSize: 1, maxPages: 10 },
      print: (l) => printed.push(l),
    });
    expect(paged.consents).toBe(all.consents);
    expect(paged.actions).toEqual(all.actions);
    expect(paged.truncated).toBe(false);
    expect(printed).toEqual([]);

    const cut = await syncSources({
      medplum,
      api,
      dryRun: true,
      paging: { pageSize: 1, maxPages: 2 },
      print: (l) => printed.push(l),
    });
    expect(cut.consents).toBe(2);
    expect(cut.truncated).toBe(true);
    expect(printed).toEqual([
      'warning: read the first 2 Consents only (2 pages); sources named only on later ones may be missing',
    ]);
  }, 60_000);
});
