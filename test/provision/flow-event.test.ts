// Both names of the flow event: provision registers the published
// API's `patient_session.completed` (the only flow name its `events` enum lists); an account that
// still knows only the guides' older `patient_flow.completed` gets that, and provision says which;
// an endpoint subscribed under either name is the flow bot's.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REGISTRY } from '../../src/runtime/registry';
import { runProvision } from '../../src/tools/cli/provision';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import { fakeFetch, LocalMedblocks, LoopbackService, MEDBLOCKS_KEY } from '../support/fake-servers';
import { EmulatorProject, emulatorEnv } from '../support/emulator-project';
import { makeRoot } from '../support/provision-root';

const FLOW = REGISTRY['medblocks-patient-flow-completed'];

// Medplum is the emulator started empty (a fresh project: login ADM-7, the admin API ADM-10/11,
// $deploy ADM-12); Medblocks the local one, in process.
let emulator: RunningEmulator;
let medplum: LoopbackService;
let project: EmulatorProject;
let medblocks: LocalMedblocks;
let root: string;
let cleanup: () => void;

beforeEach(async () => {
  ({ root, cleanup } = makeRoot());
  emulator = await startEmulator({ root, bots: [] });
  medplum = new LoopbackService(emulator.url);
  project = new EmulatorProject(emulator);
  medblocks = new LocalMedblocks();
});

/** The endpoints the local Medblocks holds for `url`. */
function endpointsFor(url: string) {
  return medblocks.local.endpoints().filter((e) => e.url === url);
}

/** Deletes every endpoint through the API (MB-3), as someone cleaning up the account would. */
async function deleteAllEndpoints(): Promise<void> {
  for (const e of medblocks.local.endpoints()) {
    const answer = await medblocks.fetch(`${medblocks.url}webhooks/${e.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${MEDBLOCKS_KEY}` },
    });
    expect(answer.status).toBe(200);
  }
}

afterEach(async () => {
  await emulator.close();
  cleanup();
});

async function run(args: string[] = []): Promise<{ code: number; output: string }> {
  const lines: string[] = [];
  const code = await runProvision(args, {
    root,
    env: emulatorEnv(emulator, medblocks),
    fetchFn: fakeFetch(medplum, medblocks),
    print: (l) => lines.push(l),
  });
  return { code, output: lines.join('\n') };
}

async function flowWebhookUrl(): Promise<string> {
  const bot = await project.bot(FLOW.name);
  return `${medplum.url}webhook/${(await project.membership(bot.id)).id}`;
}

describe('the flow event name', () => {
  it('registers patient_session.completed, the published name, without a fallback note', async () => {
    const { code, output } = await run();
    expect(code).toBe(0);
    const url = await flowWebhookUrl();
    expect(endpointsFor(url).map((e) => e.events)).toEqual([['patient_session.completed']]);
    expect(output).not.toMatch(/registered as patient_flow\.completed/);
  });

  it('falls back to patient_flow.completed when an older account refuses the name, says so, and stays idempotent', async () => {
    // An account whose API predates the newer name of the flow event: it knows every other name.
    medblocks = new LocalMedblocks({ flowEventName: 'patient_flow.completed' });
    const first = await run();
    expect(first.code).toBe(0);
    const url = await flowWebhookUrl();
    const flowEndpoints = endpointsFor(url);
    expect(flowEndpoints.map((e) => e.events)).toEqual([['patient_flow.completed']]);
    expect(first.output).toMatch(
      /register +Medblocks endpoint for patient_flow\.completed .*registered as patient_flow\.completed because this Medblocks account refused patient_session\.completed as an unknown event type/
    );
    // Its signing secret went to the flow bot's project secret.
    const secret = (await project.secrets()).find((s) => s.name === FLOW.secretName);
    expect(secret?.valueString).toBe(flowEndpoints[0]?.secret);

    // The endpoint under the newer name counts as the flow bot's: nothing to do the second time.
    const second = await run();
    expect(second.output).toContain('No changes: everything was already provisioned.');
    expect(endpointsFor(url)).toHaveLength(1);
  });

  it('a dry run names the fallback it would use', async () => {
    await run();
    await deleteAllEndpoints();
    const { output } = await run(['--dry-run']);
    expect(output).toMatch(
      /would register +Medblocks endpoint for patient_session\.completed .*as patient_flow\.completed if Medblocks refuses patient_session\.completed/
    );
  });

  it('does not fall back on any other refusal', async () => {
    // An account that knows neither name: the second refusal is reported, nothing else is tried.
    medblocks = new LocalMedblocks({ knownEvents: ['records.sync.completed'] });
    const { code, output } = await run();
    expect(code).toBe(1);
    expect(output).toMatch(/Medblocks POST \/webhooks failed with HTTP 400: Unknown event type/);
    const posted = medblocks.requests.filter((r) => r.method === 'POST' && r.path === '/webhooks');
    // patient_session.completed, then patient_flow.completed: two attempts for the flow bot, none after.
    expect(posted.map((r) => (JSON.parse(r.body) as { events: string[] }).events[0])).toEqual([
      'patient_session.completed',
      'patient_flow.completed',
    ]);
  });

  it('reuses an endpoint someone registered under patient_flow.completed', async () => {
    await run();
    const url = await flowWebhookUrl();
    const [endpoint] = endpointsFor(url);
    if (!endpoint) throw new Error('no flow endpoint');
    endpoint.events = ['patient_flow.completed'];
    const { output } = await run();
    expect(output).toContain('No changes: everything was already provisioned.');
    expect(endpointsFor(url)).toHaveLength(1);
  });
});

describe('which refusals mean "unknown event name"', () => {
  it('a 400 invalid_request_error on events, events[0] or no param (the published API does not say which); not on url', async () => {
    const { refusedEventName } = await import('../../src/tools/provision/medblocks-refusals');
    const refusal = (param: string | undefined, status = 400, type = 'invalid_request_error') => ({
      status,
      type,
      param,
    });
    expect(refusedEventName(refusal('events'))).toBe(true);
    expect(refusedEventName(refusal('events[0]'))).toBe(true);
    expect(refusedEventName(refusal(undefined))).toBe(true);
    expect(refusedEventName(refusal('url'))).toBe(false);
    expect(refusedEventName(refusal('events', 401, 'authentication_error'))).toBe(false);
    expect(refusedEventName(refusal('events', 409, 'conflict_error'))).toBe(false);
  });
});
