// Fault property: no single event of an endpoint's own type, whatever its content, gets the
// endpoint disabled (a verified event the bots cannot apply is quarantined and answered 200 —
// the contract's quarantine, owner h2); deliveries signed with the wrong secret are still refused
// and DO get the endpoint disabled after Medblocks' nine attempts.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type RunningEmulator } from '../../src/tools/emulator/server';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { MedblocksApi } from '../../src/tools/provision/medblocks-api';
import { buildIntoTempRoot, type BuiltRoot } from '../emulator/support';

const BOT = 'medblocks-records-sync-failed';
let built: BuiltRoot;
let emulator: RunningEmulator;

beforeAll(async () => {
  built = await buildIntoTempRoot();
  emulator = await startEmulator({ root: built.root });
}, 120_000);
afterAll(async () => {
  await emulator.close();
  built.cleanup();
});

async function endpointStatusAfter(
  event: Record<string, unknown>,
  secret: string | undefined
): Promise<string | undefined> {
  const bot = emulator.bot(BOT);
  const mb = await startLocalMedblocks({ timeScale: 1e9, secretForUrl: () => secret });
  try {
    const api = new MedblocksApi(mb.url, mb.apiKey);
    const created = await api.createEndpoint({
      url: bot.webhookUrl,
      events: ['records.sync.failed'],
      description: 'survival',
    });
    mb.emit({ id: 'evt_01JSURVIVAL0000000000000000', type: 'records.sync.failed', ...event });
    await mb.idle();
    return mb.endpoint(created.id)?.status;
  } finally {
    await mb.close();
  }
}

describe('endpoint survival', () => {
  it('rejected deliveries (wrong secret) disable the endpoint after the last attempt', async () => {
    expect(await endpointStatusAfter({ object: 'event', data: { object: {} } }, 'whsec_wrong')).toBe('disabled');
  }, 60_000);

  it('control: a valid event signed with the right secret is delivered and the endpoint stays active', async () => {
    const valid = {
      object: 'event',
      api_version: '2026-04-25',
      created_at: '2026-04-25T14:36:12.000Z',
      data: {
        object: {
          resource_type: 'records_sync',
          patient_id: 'user_42',
          connection_id: 'fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc',
          error_message: 'FHIR server returned 503',
        },
      },
    };
    expect(await endpointStatusAfter(valid, emulator.bot(BOT).secret)).toBe('active');
  }, 60_000);

  it('no single event of the endpoint type, whatever its content, disables it (needs the quarantine)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
        async (content) => {
          const { id: _id, type: _type, ...rest } = content as Record<string, unknown>;
          expect(await endpointStatusAfter(rest, emulator.bot(BOT).secret)).toBe('active');
        }
      ),
      { numRuns: 15 }
    );
  }, 120_000);
});
