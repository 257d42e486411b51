// The quarantine contract, the same for every webhook bot (src/runtime/failures.ts): each bot test
// file calls `describeQuarantine` with an event of its type, so the spec reads next to the bot's own.
//   - a genuine event that can never be applied as it is → 200 `quarantined` and one dead-letter Task;
//   - the same event again → still one dead-letter, lastModified moved;
//   - the cause fixed → the same event is applied, its dead-letter completed, the event marked applied;
//   - rejected deliveries and transient FHIR failures stay non-2xx with nothing marked;
//   - the dead-letter itself failing → non-2xx, so that nothing is lost.
import type { WithId } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import type { MedblocksEvent } from '../../src/runtime/events';
import type { WebhookBotName } from '../../src/runtime/registry';
import { SYSTEM } from '../../src/runtime/fhir/systems';
import { recordsSyncCompleted, recordsSyncFailed, serialise } from '../../src/tools/fixtures/events';
import { World } from '../../src/tools/harness/world';
import type { SentRequest } from '../../src/tools/harness/world';
import { appliedMarks, expectStoreValid } from './assertions';
import { EVENT_DEFINITIONS } from '../../src/runtime/events';

/** Every dead-letter Task in the store. */
export async function deadLetters(world: World): Promise<WithId<Task>[]> {
  return (await world.tasks()).filter((t) => t.identifier?.some((i) => i.system === SYSTEM.deadLetter));
}

export interface QuarantineSpec {
  readonly bot: WebhookBotName;
  /** A valid event of the bot's type for patient `user_q` (whose Patient does not exist yet). */
  readonly event: (patientId: string) => MedblocksEvent;
}

const HOUR = 3_600_000;

const CANARY = 'CANARY-PHI-7f3a';

/** A signed body of the bot's own type in which `data.object.patient_id` is an object: never applicable. */
function poisonBody(event: MedblocksEvent): string {
  const copy = JSON.parse(serialise(event)) as { data: { object: Record<string, unknown> } };
  copy.data.object.patient_id = { name: CANARY };
  return JSON.stringify(copy);
}

/** A delivery of a type no bot of this spec takes, for the misrouting check. */
function misrouted(bot: WebhookBotName): MedblocksEvent {
  return bot === 'medblocks-records-sync-failed' ? recordsSyncCompleted() : recordsSyncFailed();
}

const isWrite = (r: SentRequest): boolean => r.method !== 'GET' && !JSON.stringify(r.body ?? {}).includes('"GET"');

export function describeQuarantine(spec: QuarantineSpec): void {
  // A bot whose handler's stamp is its marker writes no Basic (src/runtime/handlers/plan.ts `appliedIn`).
  const writesMarker = EVENT_DEFINITIONS.find((d) => d.bot === spec.bot)?.policy.marker ?? true;
  describe('quarantine: no single event can get the endpoint disabled', () => {
    const setup = (secrets: Record<string, string> = {}) => {
      const world = new World({ secrets });
      return { world, bot: world.bot(spec.bot) };
    };

    it('a genuine event with a field of the wrong type is answered 200 quarantined and kept as one dead-letter Task, without its values', async () => {
      const { world, bot } = setup();
      const event = spec.event('user_q');
      const firstSeen = Date.parse(event.created_at) + 1000;
      const answer = await bot.deliver(event, { rawBody: poisonBody(event), now: firstSeen });
      expect(answer).toEqual({
        status: 'quarantined',
        event: event.id,
        type: event.type,
        reason: 'invalid_payload',
        path: 'data.object.patient_id',
      });
      expect(bot.logs).toEqual([
        expect.stringMatching(
          new RegExp(
            `^medblocks evt=${event.id} type=${event.type} outcome=quarantined:invalid_payload fhir_requests=2 ms=\\d+$`
          )
        ),
      ]);
      const [deadLetter, ...others] = await deadLetters(world);
      expect(others).toEqual([]);
      expect(deadLetter).toMatchObject({
        status: 'failed',
        intent: 'order',
        identifier: [{ system: 'urn:medblocks:dead-letter', value: event.id }],
        code: {
          coding: [{ system: 'urn:medblocks:code', code: 'webhook-dead-letter', display: 'Quarantined webhook event' }],
        },
        businessStatus: { coding: [{ system: 'urn:medblocks:code', code: 'quarantined' }] },
        statusReason: { text: 'invalid_payload at data.object.patient_id' },
        authoredOn: new Date(firstSeen).toISOString(),
        lastModified: new Date(firstSeen).toISOString(),
      });
      expect(deadLetter?.input?.map((i) => [i.type.text, i.valueString])).toEqual([
        ['event-type', event.type],
        ['reason', 'invalid_payload'],
        ['field-path', 'data.object.patient_id'],
      ]);
      expect(deadLetter?.for).toBeUndefined();
      // No payload value: neither the poison nor anything else from `data.object` is in it.
      const text = JSON.stringify(deadLetter);
      for (const value of [CANARY, 'user_q', 'fhirsrc_']) expect(text).not.toContain(value);
      expect(JSON.stringify(answer) + bot.logs.join('\n')).not.toContain(CANARY);
      expect(await appliedMarks(world), 'not marked applied').toEqual([]);
      await expectStoreValid(world);
    });

    it('the same poison event again: still one dead-letter, lastModified moved, authoredOn kept', async () => {
      const { world, bot } = setup();
      const event = spec.event('user_q');
      const first = Date.parse(event.created_at);
      await bot.deliver(event, { rawBody: poisonBody(event), now: first });
      const again = await bot.deliver(event, { rawBody: poisonBody(event), signedAt: first + HOUR, now: first + HOUR });
      expect(again.status).toBe('quarantined');
      const all = await deadLetters(world);
      expect(all).toHaveLength(1);
      expect(all[0]).toMatchObject({
        authoredOn: new Date(first).toISOString(),
        lastModified: new Date(first + HOUR).toISOString(),
      });
      expect(bot.lastRequestCount(), 'search, then one versioned update').toBe(2);
    });

    it('an unknown patient with MEDBLOCKS_CREATE_MISSING_PATIENTS=false is quarantined; once creation is on, the same event is applied and its dead-letter completed', async () => {
      const { world, bot } = setup({ MEDBLOCKS_CREATE_MISSING_PATIENTS: 'false' });
      const event = spec.event('user_q');
      const first = Date.parse(event.created_at);
      expect(await bot.deliver(event, { now: first })).toEqual({
        status: 'quarantined',
        event: event.id,
        type: event.type,
        reason: 'patient_not_found',
        path: 'data.object.patient_id',
      });
      expect(bot.logs.at(-1)).toMatch(/ outcome=quarantined:patient_not_found fhir_requests=2 /);
      expect(await world.patients()).toEqual([]);
      expect(await appliedMarks(world)).toEqual([]);

      // The fix: creation turned on. Medblocks' redelivery brings the same event, re-signed.
      const later = first + 2 * HOUR;
      const answer = await bot.deliver(event, {
        signedAt: later,
        now: later,
        secrets: { MEDBLOCKS_CREATE_MISSING_PATIENTS: 'true' },
      });
      expect(answer).toEqual({ status: 'processed', event: event.id, type: event.type });
      if (writesMarker) expect(bot.lastRequestCount(), 'read, write (with the dead-letter), mark').toBe(3);
      else expect(bot.lastRequestCount(), 'read, write (with the dead-letter and the stamp)').toBe(2);
      const [deadLetter, ...others] = await deadLetters(world);
      expect(others).toEqual([]);
      expect(deadLetter).toMatchObject({
        status: 'completed',
        businessStatus: { coding: [{ system: 'urn:medblocks:code', code: 'applied-after-redelivery' }] },
        authoredOn: new Date(first).toISOString(),
        lastModified: new Date(later).toISOString(),
      });
      expect(deadLetter?.statusReason).toBeUndefined();
      expect((await appliedMarks(world)).map((m) => m.eventId)).toEqual([event.id]);
      expect(await world.patients()).toHaveLength(1);
      // And once more: a duplicate, one request, the dead-letter untouched.
      expect((await bot.deliver(event, { signedAt: later, now: later })).status).toBe('duplicate');
      expect(bot.lastRequestCount()).toBe(1);
      await expectStoreValid(world);
    });

    it('the Patient created by hand is the fix too', async () => {
      const { world, bot } = setup({ MEDBLOCKS_CREATE_MISSING_PATIENTS: 'false' });
      const event = spec.event('user_q');
      expect((await bot.deliver(event)).status).toBe('quarantined');
      const patient = await world.admin.createResource({
        resourceType: 'Patient',
        identifier: [{ system: SYSTEM.patientId, value: 'user_q' }],
      });
      expect((await bot.deliver(event)).status).toBe('processed');
      expect((await deadLetters(world)).map((t) => t.status)).toEqual(['completed']);
      expect((await appliedMarks(world))[0]?.subject).toEqual(`Patient/${patient.id}`);
    });

    it('Medplum refusing a write (400, its validator) is quarantined as invalid_resource, not retried into disabling', async () => {
      const { world } = setup();
      const bot = world.bot(spec.bot, {
        faults: (r) =>
          r.method === 'POST' && r.url.endsWith('/fhir/R4') && isWrite(r) && !dlWrite(r) ? { status: 400 } : undefined,
      });
      const event = spec.event('user_q');
      expect(await bot.deliver(event)).toEqual({
        status: 'quarantined',
        event: event.id,
        type: event.type,
        reason: 'invalid_resource',
      });
      expect((await deadLetters(world)).map((t) => t.statusReason?.text)).toEqual(['invalid_resource']);
      expect(await appliedMarks(world)).toEqual([]);
    });

    it.each([
      ['a forged signature', { secret: 'whsec_attacker' }, 'signature_mismatch'],
      ['an expired timestamp', { now: Date.parse('2026-06-01T00:00:00.000Z') }, 'timestamp_out_of_tolerance'],
      ['no signature header', { headers: { 'medblocks-signature': undefined } }, 'missing_header'],
    ] as const)('rejected, not quarantined: %s is non-2xx with no FHIR request', async (_name, options, reason) => {
      const { world, bot } = setup();
      const event = spec.event('user_q');
      await expect(bot.deliver(event, { rawBody: poisonBody(event), ...options })).rejects.toThrow(
        `Delivery rejected: ${reason}`
      );
      expect(bot.requests).toEqual([]);
      expect(bot.logs).toEqual([
        expect.stringMatching(new RegExp(`^medblocks evt=- type=- outcome=rejected:${reason} `)),
      ]);
      expect(await world.tasks()).toEqual([]);
    });

    it('rejected, not quarantined: an event of another type (a misrouted endpoint) is non-2xx with no FHIR request', async () => {
      const { world, bot } = setup();
      await expect(bot.deliver(misrouted(spec.bot))).rejects.toThrow('Delivery rejected: unexpected_event_type');
      expect(bot.requests).toEqual([]);
      expect(await world.tasks()).toEqual([]);
    });

    it.each([
      ['503 on every request', { status: 503 }, 'server_error'],
      ['a dropped connection', 'drop', 'network'],
      ['403 (a policy without the grant)', { status: 403 }, 'access_denied'],
    ] as const)(
      'transient, not quarantined: %s is non-2xx with nothing marked and no dead-letter',
      async (_name, fault, reason) => {
        const { world } = setup();
        const bot = world.bot(spec.bot, { faults: () => fault });
        await expect(bot.deliver(spec.event('user_q'))).rejects.toThrow(`FHIR read failed: ${reason}`);
        expect(bot.logs.at(-1)).toMatch(new RegExp(` outcome=failed:${reason} `));
        expect(await appliedMarks(world)).toEqual([]);
        expect(await deadLetters(world)).toEqual([]);
      },
      10_000
    );

    it('the dead-letter write failing makes the delivery fail (non-2xx): Medblocks retries, nothing is lost', async () => {
      const { world } = setup();
      const bot = world.bot(spec.bot, { faults: (r) => (dlWrite(r) ? { status: 429 } : undefined) });
      const event = spec.event('user_q');
      await expect(bot.deliver(event, { rawBody: poisonBody(event) })).rejects.toThrow(
        /^FHIR dead-letter failed: rate_limited \(HTTP 429\); nothing was marked applied/
      );
      expect(bot.logs.at(-1)).toMatch(
        new RegExp(`^medblocks evt=${event.id} type=${event.type} outcome=failed:rate_limited `)
      );
      expect(await deadLetters(world)).toEqual([]);
      // The retry, to a healthy server, quarantines it.
      expect((await world.bot(spec.bot).deliver(event, { rawBody: poisonBody(event) })).status).toBe('quarantined');
      expect(await deadLetters(world)).toHaveLength(1);
    }, 10_000);
  });
}

/** The one-entry batch that writes a dead-letter. */
function dlWrite(r: SentRequest): boolean {
  return r.method === 'POST' && JSON.stringify(r.body ?? {}).includes('webhook-dead-letter') && isWrite(r);
}
