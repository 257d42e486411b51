// No single event can get an endpoint disabled: Medblocks disables an endpoint after one event's
// 9 failed attempts, so every genuine delivery of a bot's own event type must be answered 2xx while
// the FHIR server is healthy — whatever its `data` holds (arbitrary JSON, missing fields, wrong
// types), whatever its id. And the other half, so that "answer 2xx to everything" fails: nothing
// unsigned or forged is ever answered 2xx, and it makes no FHIR request.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { MedblocksEvent } from '../../src/runtime/events';
import { REGISTRY, WEBHOOK_BOTS } from '../../src/runtime/registry';
import type { WebhookBotName } from '../../src/runtime/registry';
import { serialise } from '../../src/tools/fixtures/events';
import { buildEvent } from '../../src/tools/fixtures/variants';
import { signatureHeader } from '../../src/runtime/medblocks/signature';
import { TEST_SECRET, World } from '../../src/tools/harness/world';
import { deadLetters } from '../support/quarantine';
import { duplicatedKeys } from './support';

/** A genuine event of the bot's own type: its Medblocks endpoint's name, in its default variant. */
function ownEvent(name: WebhookBotName): MedblocksEvent {
  const shape = { at: '2026-05-20T03:12:45.000Z', patientId: 'user_p', connectionId: 'conn_p' };
  return buildEvent(REGISTRY[name].medblocksEvent, undefined, shape);
}

const APPLIED = ['processed', 'duplicate', 'stale', 'quarantined'];

/** Ways to spoil a valid event's `data`: replace it, drop fields, give fields other JSON values. */
type Spoil =
  | { kind: 'data'; value: unknown }
  | { kind: 'drop'; fields: string[] }
  | { kind: 'set'; field: string; value: unknown }
  | { kind: 'envelope'; field: 'id' | 'created_at' | 'api_version' | 'object'; value: unknown };

const fieldArb = fc.oneof(
  fc.constantFrom(
    'patient_id',
    'connection_id',
    'connections',
    'id',
    'status',
    'total',
    'errors',
    'duration_ms',
    'error_message',
    'created_at',
    'failure_at',
    'failure_code',
    'resource_type'
  ),
  fc.string({ maxLength: 8 })
);
const jsonArb = fc.jsonValue({ maxDepth: 3 });

const spoilArb: fc.Arbitrary<Spoil> = fc.oneof(
  fc.record({ kind: fc.constant('data' as const), value: jsonArb }),
  fc.record({ kind: fc.constant('drop' as const), fields: fc.array(fieldArb, { maxLength: 4 }) }),
  fc.record({ kind: fc.constant('set' as const), field: fieldArb, value: jsonArb }),
  fc.record({
    kind: fc.constant('envelope' as const),
    field: fc.constantFrom('id' as const, 'created_at' as const, 'api_version' as const, 'object' as const),
    value: jsonArb,
  })
);

function spoiled(event: MedblocksEvent, spoils: readonly Spoil[]): string {
  const copy = JSON.parse(serialise(event)) as Record<string, unknown> & { data: unknown };
  for (const spoil of spoils) {
    const object = (copy.data as { object?: unknown } | null)?.object;
    const target = typeof object === 'object' && object !== null ? (object as Record<string, unknown>) : undefined;
    if (spoil.kind === 'data') copy.data = spoil.value;
    else if (spoil.kind === 'envelope') copy[spoil.field] = spoil.value;
    else if (spoil.kind === 'drop') for (const field of spoil.fields) delete target?.[field];
    else if (target) target[spoil.field] = spoil.value;
  }
  return JSON.stringify(copy);
}

const caseArb = fc.record({
  bot: fc.constantFrom(...WEBHOOK_BOTS.map((b) => b.name)),
  spoils: fc.array(spoilArb, { minLength: 1, maxLength: 3 }),
  createPatients: fc.boolean(),
});

describe('no single event can get an endpoint disabled', () => {
  it('a genuine delivery of the bot’s own type is answered 2xx whatever its data holds, and again when redelivered, with one dead-letter at most', async () => {
    let quarantined = 0;
    let applied = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ bot: name, spoils, createPatients }) => {
        const world = new World({ secrets: { MEDBLOCKS_CREATE_MISSING_PATIENTS: String(createPatients) } });
        const bot = world.bot(name);
        const event = ownEvent(name);
        const rawBody = spoiled(event, spoils);
        for (const attempt of [1, 2]) {
          const answer = await bot.deliver(event, { rawBody, now: Date.parse(event.created_at) + attempt * 60_000 });
          expect(APPLIED, bot.logs.at(-1) ?? '').toContain(answer.status);
          if (answer.status === 'quarantined') quarantined++;
          else applied++;
        }
        expect((await deadLetters(world)).length).toBeLessThanOrEqual(1);
        expect(await duplicatedKeys(world)).toEqual([]);
      }),
      { numRuns: 150 }
    );
    // Both sides are reached: the generator does make poison, and does leave some events applicable.
    expect(quarantined).toBeGreaterThan(20);
    expect(applied).toBeGreaterThan(5);
  }, 60_000);

  it('never 2xx for a forged signature, a body changed after signing, or no signature, and no FHIR request', async () => {
    await fc.assert(
      fc.asyncProperty(
        caseArb,
        fc.constantFrom('forged' as const, 'tampered' as const, 'unsigned' as const),
        async ({ bot: name, spoils }, attack) => {
          const world = new World();
          const bot = world.bot(name);
          const event = ownEvent(name);
          const rawBody = spoiled(event, spoils);
          // A spoil that changed nothing leaves a genuine delivery: not an attack.
          fc.pre(attack !== 'tampered' || rawBody !== serialise(event));
          const options =
            attack === 'forged'
              ? { rawBody, secret: 'whsec_attacker' }
              : attack === 'unsigned'
                ? { rawBody, headers: { 'medblocks-signature': undefined } }
                : // Signed over the valid event, delivered with the spoiled body.
                  { rawBody, headers: { 'medblocks-signature': signatureFor(event) } };
          await expect(bot.deliver(event, options)).rejects.toThrow(/^Delivery rejected: /);
          expect(bot.requests).toEqual([]);
        }
      ),
      { numRuns: 100 }
    );
  });
});

/** The header Medblocks would have sent for the unspoiled event. */
function signatureFor(event: MedblocksEvent): string {
  return signatureHeader(TEST_SECRET, Math.floor(Date.parse(event.created_at) / 1000), serialise(event));
}
