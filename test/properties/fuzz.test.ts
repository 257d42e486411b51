// Fuzzing the receiver, a whole bot, and the emulator's HTTP path with generated and mutated
// bodies, headers and signatures. Properties:
// - never an answer (Medplum's 2xx) unless an independent check finds a valid signature;
// - a genuinely signed, well-formed delivery is accepted (so that "refuse everything" fails);
// - a genuinely signed delivery this package cannot read is quarantined (2xx), never refused;
// - no FHIR request before verification: refused deliveries make none;
// - nothing thrown but the typed errors (DeliveryRejectedError, InvalidPayloadError for a signed
//   body; from a bot, "Delivery rejected: …" or a FHIR failure);
// - no payload value, header or secret in any answer, error or log line: canaries planted in
//   patient_id, error_message, metadata, keys, headers and secrets never come back out.
import { createHmac } from 'node:crypto';
import { Buffer } from 'node:buffer';
import type { BotEvent } from '@medplum/core';
import type { AuditEvent, ProjectSetting } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookBotSpecs } from '../../src/tools/bench/bundles';
import { WEBHOOK_BOTS, REGISTRY } from '../../src/runtime/registry';
import type { WebhookBotName } from '../../src/runtime/registry';
import { createWebhookBot, defineWebhookBot } from '../../src/runtime/webhook-bot';
import { DeliveryRejectedError, InvalidPayloadError, MAX_BODY_BYTES, receiveDelivery } from '../../src/runtime/receive';
import type { RejectionReason } from '../../src/runtime/receive';
import { startEmulator } from '../../src/tools/emulator/server';
import type { RunningEmulator } from '../../src/tools/emulator/server';
import {
  connection,
  patientFlowCompleted,
  recordsSyncCompleted,
  recordsSyncFailed,
  serialise,
  tokenRefreshFailed,
} from '../../src/tools/fixtures/events';
import { medblocksEventHandler } from '../../src/runtime/events';
import type { MedblocksEvent } from '../../src/runtime/events';
import { World } from '../../src/tools/harness/world';
import { botForEvent } from './support';

const CANARY = 'CANARY-PHI-91c4';
const SECRET = 'whsec_CANARY-SECRET-5be2d0';
const OTHER_SECRET = 'whsec_CANARY-OTHER-77aa01';
const NOW = Date.parse('2026-04-25T14:36:12.000Z');
const TOLERANCE = 300;

const REASONS: readonly RejectionReason[] = [
  'missing_header',
  'malformed_header',
  'timestamp_out_of_tolerance',
  'signature_mismatch',
  'no_secret_configured',
  'body_not_raw',
  'body_too_large',
  'unexpected_event_type',
];

/** Valid events of every type, with canaries wherever a payload carries customer data. */
const EVENTS: readonly MedblocksEvent[] = [
  recordsSyncFailed({ patient_id: CANARY, error_message: `${CANARY} upstream said ${CANARY}` }),
  recordsSyncCompleted({ patient_id: `${CANARY}-2`, connection_id: `fhirsrc_${CANARY}` }),
  patientFlowCompleted({
    patient_id: CANARY,
    metadata: { note: CANARY },
    return_url: `https://example.com/${CANARY}`,
    connections: [connection({ id: `conn_${CANARY}`, failure_code: CANARY })],
  }),
  tokenRefreshFailed({ id: `conn_${CANARY}`, patient_id: CANARY, failure_code: CANARY }),
];

// ---------------------------------------------------------------------------------------------
// Recipes: what to send, independent of the clock and the configured secrets.

type BodyRecipe =
  | { kind: 'exact' }
  | { kind: 'mutated'; at: number; remove: number; insert: string }
  | { kind: 'wrongTypes'; path: 'total' | 'type' | 'patient_id' | 'created_at' | 'data' | 'key' }
  | { kind: 'random'; text: string }
  | { kind: 'json'; value: unknown }
  | { kind: 'bytes' }
  | { kind: 'randomBytes'; bytes: Uint8Array }
  | { kind: 'parsedObject' }
  | { kind: 'notText'; value: number | null | undefined | boolean }
  | { kind: 'tooLarge' };

type HeaderRecipe =
  | { kind: 'genuine'; skew: number; signOriginal: boolean; secret: 'configured' | 'other' }
  | { kind: 'mutated'; skew: number; at: number; char: string }
  | { kind: 'extraV1'; skew: number; randomHex: string; genuineLast: boolean }
  | { kind: 'v0Only'; skew: number }
  | { kind: 'repeated'; skew: number }
  | { kind: 'random'; text: string }
  | { kind: 'missing' };

type SecretsRecipe = 'one' | 'rotating' | 'otherOnly' | 'blank' | 'unset';

interface Recipe {
  readonly bot: WebhookBotName;
  readonly event: number;
  readonly body: BodyRecipe;
  readonly header: HeaderRecipe;
  readonly headerName: 'medblocks-signature' | 'Medblocks-Signature';
  readonly secrets: SecretsRecipe;
}

const withCanary = fc.oneof(fc.string({ maxLength: 12 }), fc.constant(CANARY), fc.constant(`"${CANARY}"`));
const skewArb = fc.oneof(
  fc.integer({ min: -TOLERANCE, max: TOLERANCE }),
  fc.integer({ min: -10_000_000, max: 10_000_000 })
);

const bodyArb: fc.Arbitrary<BodyRecipe> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'exact' as const }), weight: 4 },
  {
    arbitrary: fc.record({
      kind: fc.constant('mutated' as const),
      at: fc.nat(),
      remove: fc.integer({ min: 0, max: 3 }),
      insert: withCanary,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('wrongTypes' as const),
      path: fc.constantFrom(
        'total' as const,
        'type' as const,
        'patient_id' as const,
        'created_at' as const,
        'data' as const,
        'key' as const
      ),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('random' as const), text: fc.string({ maxLength: 60 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('json' as const), value: fc.jsonValue({ maxDepth: 3 }) }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'bytes' as const }), weight: 1 },
  {
    arbitrary: fc.record({ kind: fc.constant('randomBytes' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
    weight: 1,
  },
  { arbitrary: fc.constant({ kind: 'parsedObject' as const }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('notText' as const),
      value: fc.constantFrom(42, null, undefined, true),
    }),
    weight: 1,
  },
  { arbitrary: fc.constant({ kind: 'tooLarge' as const }), weight: 1 }
);

const headerArb: fc.Arbitrary<HeaderRecipe> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('genuine' as const),
      skew: skewArb,
      signOriginal: fc.boolean(),
      secret: fc.constantFrom('configured' as const, 'other' as const),
    }),
    weight: 5,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('mutated' as const),
      skew: fc.integer({ min: -60, max: 60 }),
      at: fc.nat(),
      char: fc.oneof(fc.constantFrom('0', 'f', ',', ' ', '=', 'v', '1'), fc.string({ minLength: 1, maxLength: 1 })),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('extraV1' as const),
      skew: fc.integer({ min: -60, max: 60 }),
      randomHex: fc.stringMatching(/^[0-9a-f]{64}$/),
      genuineLast: fc.boolean(),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('v0Only' as const), skew: fc.integer({ min: -60, max: 60 }) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('repeated' as const), skew: fc.integer({ min: -60, max: 60 }) }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('random' as const), text: withCanary }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'missing' as const }), weight: 1 }
);

const recipeArb: fc.Arbitrary<Recipe> = fc
  .record({
    event: fc.integer({ min: 0, max: EVENTS.length - 1 }),
    /** Usually the bot that takes the event; sometimes a misrouted delivery. */
    otherBot: fc.option(fc.constantFrom(...WEBHOOK_BOTS.map((b) => b.name)), { freq: 4 }),
    body: bodyArb,
    header: headerArb,
    headerName: fc.constantFrom('medblocks-signature' as const, 'Medblocks-Signature' as const),
    secrets: fc.constantFrom<SecretsRecipe>('one', 'one', 'one', 'rotating', 'otherOnly', 'blank', 'unset'),
  })
  .map(({ otherBot, ...rest }) => ({
    ...rest,
    bot: otherBot ?? botForEvent(EVENTS[rest.event] ?? { type: 'records.sync.failed' }),
  }));

/** Genuine deliveries, so that the accepting path (and what it logs and answers) is fuzzed too. */
const genuineArb: fc.Arbitrary<Recipe> = fc
  .record({
    event: fc.integer({ min: 0, max: EVENTS.length - 1 }),
    body: fc.constantFrom<BodyRecipe>({ kind: 'exact' }, { kind: 'bytes' }),
    skew: fc.integer({ min: -TOLERANCE, max: TOLERANCE }),
    secrets: fc.constantFrom<SecretsRecipe>('one', 'rotating'),
  })
  .map(({ event, body, skew, secrets }) => ({
    event,
    bot: botForEvent(EVENTS[event] ?? { type: 'records.sync.failed' }),
    body,
    header: { kind: 'genuine', skew, signOriginal: false, secret: 'configured' },
    headerName: 'medblocks-signature',
    secrets,
  }));

const anyRecipeArb: fc.Arbitrary<Recipe> = fc.oneof(
  { arbitrary: recipeArb, weight: 4 },
  { arbitrary: genuineArb, weight: 1 }
);

// ---------------------------------------------------------------------------------------------
// Materialising a recipe for a clock and a configured secret.

type Input = string | Uint8Array | Record<string, unknown> | number | boolean | null | undefined;

interface Delivery {
  readonly input: Input;
  readonly header: string | string[] | undefined;
  /** The configured value of the bot's signing-secret setting, if any. */
  readonly secretSetting: string | undefined;
  /** A genuine signature, over exactly these bytes, by a configured secret, within tolerance, of an event this bot takes. */
  readonly mustAccept: boolean;
}

function hmacHex(secret: string, t: string, body: string | Uint8Array): string {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'));
  mac.update(`${t}.`);
  mac.update(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  return mac.digest('hex');
}

function bodyFor(recipe: BodyRecipe, event: MedblocksEvent): Input {
  const exact = serialise(event);
  switch (recipe.kind) {
    case 'exact':
      return exact;
    case 'mutated': {
      const at = recipe.at % (exact.length + 1);
      return exact.slice(0, at) + recipe.insert + exact.slice(at + recipe.remove);
    }
    case 'wrongTypes': {
      const copy = JSON.parse(exact) as {
        type: unknown;
        created_at: unknown;
        data: { object: Record<string, unknown> };
      };
      if (recipe.path === 'type') copy.type = CANARY;
      else if (recipe.path === 'created_at') copy.created_at = CANARY;
      else if (recipe.path === 'data') (copy as Record<string, unknown>).data = CANARY;
      else if (recipe.path === 'key') copy.data.object[CANARY] = { [CANARY]: CANARY };
      else if (recipe.path === 'total') copy.data.object.total = CANARY;
      else copy.data.object.patient_id = { value: CANARY, n: 7 };
      return JSON.stringify(copy);
    }
    case 'random':
      return recipe.text;
    case 'json':
      return JSON.stringify(recipe.value);
    case 'bytes':
      return new TextEncoder().encode(exact);
    case 'randomBytes':
      return recipe.bytes;
    case 'parsedObject':
      return JSON.parse(exact) as Record<string, unknown>;
    case 'notText':
      return recipe.value;
    case 'tooLarge':
      return `{"pad":"${CANARY}${'x'.repeat(MAX_BODY_BYTES)}"}`;
  }
}

function signable(input: Input): string | Uint8Array | undefined {
  return typeof input === 'string' || input instanceof Uint8Array ? input : undefined;
}

function materialise(
  recipe: Recipe,
  nowMs: number,
  configured: { readonly [name: string]: string | undefined }
): Delivery {
  const event = EVENTS[recipe.event] ?? EVENTS[0];
  if (!event) throw new Error('no events');
  const input = bodyFor(recipe.body, event);
  const signed = signable(input) ?? serialise(event);
  const nowS = Math.floor(nowMs / 1000);
  const configuredSecret = configured.current ?? SECRET;
  const sign = (
    skew: number,
    secret = configuredSecret,
    body: string | Uint8Array = signed
  ): { t: string; v1: string } => {
    const t = String(nowS + skew);
    return { t, v1: hmacHex(secret, t, body) };
  };
  let header: string | string[] | undefined;
  let genuine = false;
  const h = recipe.header;
  switch (h.kind) {
    case 'genuine': {
      const { t, v1 } = sign(
        h.skew,
        h.secret === 'configured' ? configuredSecret : OTHER_SECRET,
        h.signOriginal ? serialise(event) : signed
      );
      header = `t=${t},v1=${v1}`;
      genuine =
        h.secret === 'configured' && Math.abs(h.skew) <= TOLERANCE && (!h.signOriginal || recipe.body.kind === 'exact');
      break;
    }
    case 'mutated': {
      const { t, v1 } = sign(h.skew);
      const text = `t=${t},v1=${v1}`;
      const at = h.at % text.length;
      header = text.slice(0, at) + h.char + text.slice(at + 1);
      break;
    }
    case 'extraV1': {
      const { t, v1 } = sign(h.skew);
      header = h.genuineLast ? `t=${t},v1=${h.randomHex},v1=${v1}` : `t=${t},v1=${v1},v1=${h.randomHex}`;
      genuine = true;
      break;
    }
    case 'v0Only': {
      const { t, v1 } = sign(h.skew);
      header = `t=${t},v0=${v1}`;
      break;
    }
    case 'repeated': {
      const { t, v1 } = sign(h.skew);
      header = [`t=${t},v1=${v1}`, `t=${t},v1=${v1}`];
      break;
    }
    case 'random':
      header = h.text;
      break;
    case 'missing':
      header = undefined;
      break;
  }
  const secretSetting =
    recipe.secrets === 'one'
      ? configuredSecret
      : recipe.secrets === 'rotating'
        ? `whsec_retired_${CANARY}, ${configuredSecret}`
        : recipe.secrets === 'otherOnly'
          ? OTHER_SECRET
          : recipe.secrets === 'blank'
            ? '   '
            : undefined;
  const secretWorks = recipe.secrets === 'one' || recipe.secrets === 'rotating';
  const bodyIsExact = recipe.body.kind === 'exact' || recipe.body.kind === 'bytes';
  const accepted = (REGISTRY[recipe.bot].eventTypes as readonly string[]).includes(event.type);
  return {
    input,
    header,
    secretSetting,
    mustAccept: genuine && secretWorks && bodyIsExact && accepted && recipe.headerName === 'medblocks-signature',
  };
}

function botEventFor(recipe: Recipe, delivery: Delivery): BotEvent {
  const secretName = REGISTRY[recipe.bot].secretName;
  const secrets: Record<string, ProjectSetting> = {};
  if (delivery.secretSetting !== undefined) {
    secrets[secretName] = { name: secretName, valueString: delivery.secretSetting };
  }
  secrets.MEDBLOCKS_TASK_OWNER = { name: 'MEDBLOCKS_TASK_OWNER', valueString: `Organization/${CANARY}` };
  return {
    bot: { reference: 'Bot/fuzz' },
    contentType: 'application/json',
    input: delivery.input,
    secrets,
    headers: {
      'content-type': 'application/json',
      'x-forwarded-for': CANARY,
      authorization: `Bearer ${CANARY}`,
      [recipe.headerName]: delivery.header,
    },
  };
}

/**
 * An independent check, written from Medblocks' documentation rather than from our verifier: some
 * `v1` in the header is the HMAC, keyed with a configured secret, of `${t}.${exact body}` with `t`
 * within the tolerance. A delivery can only be accepted when this holds.
 */
function independentlySigned(
  header: string | string[] | undefined,
  input: Input,
  secretSetting: string | undefined,
  nowMs: number
): boolean {
  const body = signable(input);
  if (typeof header !== 'string' || body === undefined || secretSetting === undefined) return false;
  const items = header.split(',').map((s) => s.trim());
  const ts = items.filter((s) => s.startsWith('t=')).map((s) => s.slice(2));
  const v1s = items.filter((s) => s.startsWith('v1=')).map((s) => s.slice(3));
  const secrets = secretSetting.split(/[\s,]+/).filter((s) => s !== '');
  return ts.some(
    (t) =>
      /^\d+$/.test(t) &&
      Math.abs(Number(t) - Math.floor(nowMs / 1000)) <= TOLERANCE &&
      secrets.some((secret) => v1s.includes(hmacHex(secret, t, body)))
  );
}

/** Removes `evt=…` tokens and `"event":"…"` fields: the one payload value the bots log and answer on purpose. */
function withoutEventIds(text: string): string {
  return text.replace(/evt=\S+/g, 'evt=').replace(/\\?"event\\?":\\?"[^"\\]*\\?"/g, '');
}

function expectNoCanary(text: string, what: string): void {
  expect(text.includes('CANARY'), `${what} must not echo payload, header or secret values: ${text.slice(0, 300)}`).toBe(
    false
  );
}

describe('fuzzing receiveDelivery', () => {
  it('answers only genuinely signed deliveries, throws only DeliveryRejectedError (or InvalidPayloadError for a signed body), and never echoes input', () => {
    let accepted = 0;
    fc.assert(
      fc.property(anyRecipeArb, (recipe) => {
        const delivery = materialise(recipe, NOW, {});
        const botEvent = botEventFor(recipe, delivery);
        let result: ReturnType<typeof receiveDelivery> | undefined;
        try {
          result = receiveDelivery<MedblocksEvent>(botEvent, REGISTRY[recipe.bot], { now: () => NOW });
        } catch (err) {
          if (err instanceof InvalidPayloadError) {
            // Genuine but unreadable: the pipeline quarantines it (answered 2xx), so it must be signed.
            expect(independentlySigned(delivery.header, delivery.input, delivery.secretSetting, NOW)).toBe(true);
            expect(err.message.startsWith('Delivery not applied: invalid_payload')).toBe(true);
            expectNoCanary(err.message + (err.path ?? '') + err.type, 'the quarantine');
            expect(delivery.mustAccept, `a genuine delivery was quarantined: ${err.message}`).toBe(false);
            return;
          }
          expect(err).toBeInstanceOf(DeliveryRejectedError);
          const rejected = err as DeliveryRejectedError;
          expect(REASONS).toContain(rejected.reason);
          expect(rejected.message.startsWith(`Delivery rejected: ${rejected.reason}`)).toBe(true);
          expectNoCanary(rejected.message, 'the refusal');
          expect(delivery.mustAccept, `a genuine delivery was refused: ${rejected.message}`).toBe(false);
          return;
        }
        accepted++;
        expect(independentlySigned(delivery.header, delivery.input, delivery.secretSetting, NOW)).toBe(true);
        expect(REGISTRY[recipe.bot].eventTypes as readonly string[]).toContain(result.event.type);
      }),
      { numRuns: 1500 }
    );
    // The generator does reach the accepting path (otherwise the properties above say little).
    expect(accepted).toBeGreaterThan(20);
  });
});

describe('fuzzing a whole bot (on MockClient under its AccessPolicy)', () => {
  it('no FHIR request and a "Delivery rejected" error for anything not genuinely signed; no canary in answers or logs', async () => {
    let processed = 0;
    await fc.assert(
      fc.asyncProperty(anyRecipeArb, async (recipe) => {
        const world = new World();
        const bot = world.bot(recipe.bot);
        const logs: string[] = [];
        const handler = createWebhookBot(
          defineWebhookBot<MedblocksEvent>(REGISTRY[recipe.bot], medblocksEventHandler),
          {
            now: () => NOW,
            sleep: () => Promise.resolve(),
            log: (line) => logs.push(line),
          }
        );
        const delivery = materialise(recipe, NOW, {});
        const signedOk = independentlySigned(delivery.header, delivery.input, delivery.secretSetting, NOW);
        const outcome = await handler(bot.medplum, botEventFor(recipe, delivery)).then(
          (answer) => ({ ok: true as const, answer }),
          (err: unknown) => ({ ok: false as const, err })
        );
        expect(logs).toHaveLength(1);
        expect(logs[0]).toMatch(/^medblocks evt=\S+ type=\S+ outcome=\S+ fhir_requests=\d+ ms=\d+$/);
        const line = logs[0] ?? '';
        if (signedOk) {
          // Event ids are logged and answered by design (a signed delivery's id, at most 64 characters).
          expectNoCanary(line.replace(/ evt=\S+ /, ' '), 'the log line');
        } else {
          expect(line, 'nothing from an unverified body is logged').toMatch(
            /^medblocks evt=- type=- outcome=rejected:/
          );
        }
        if (outcome.ok) {
          processed++;
          expect(signedOk).toBe(true);
          expectNoCanary(JSON.stringify({ ...outcome.answer, event: undefined }), 'the answer');
          if (outcome.answer.status === 'quarantined') {
            expect(
              Object.keys(outcome.answer)
                .filter((k) => k !== 'path')
                .sort()
            ).toEqual(['event', 'reason', 'status', 'type']);
          } else {
            expect(Object.keys(outcome.answer).sort()).toEqual(['event', 'status', 'type']);
          }
        } else {
          expect(outcome.err).toBeInstanceOf(Error);
          const message = (outcome.err as Error).message;
          expectNoCanary(message, 'the error');
          expect(message).toMatch(/^(Delivery (rejected|not applied): |FHIR (read|write|marker|dead-letter) failed: )/);
          if (!signedOk) {
            expect(message.startsWith('Delivery rejected: ')).toBe(true);
          }
          if (message.startsWith('Delivery rejected: ')) {
            expect(bot.requests, 'no FHIR request before verification').toEqual([]);
          }
        }
        if (delivery.mustAccept) {
          expect(outcome.ok, 'a genuine delivery is applied').toBe(true);
        }
      }),
      { numRuns: 200 }
    );
    expect(processed).toBeGreaterThan(5);
  });
});

describe('fuzzing the emulator’s HTTP path (POST /webhook/:id on loopback, the built bundles in the vm sandbox)', () => {
  let emulator: RunningEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({
      bots: await webhookBotSpecs(),
      secrets: Object.fromEntries(WEBHOOK_BOTS.map((b) => [b.secretName, SECRET])),
    });
  });
  afterAll(async () => {
    await emulator.close();
  });

  it('never a 2xx without a valid signature, no FHIR request for a refusal, no canary in any answer or AuditEvent', async () => {
    let ok = 0;
    await fc.assert(
      fc.asyncProperty(anyRecipeArb, async (recipe) => {
        const now = Date.now();
        const delivery = materialise(recipe, now, {});
        const target = emulator.bot(recipe.bot);
        const body =
          typeof delivery.input === 'string' || delivery.input instanceof Uint8Array
            ? delivery.input
            : JSON.stringify(delivery.input ?? null);
        const headers = new Headers({ 'content-type': 'application/json', 'x-canary': CANARY });
        for (const value of Array.isArray(delivery.header)
          ? delivery.header
          : delivery.header === undefined
            ? []
            : [delivery.header]) {
          // Node joins repeated headers with ", " before Medplum hands them to the bot.
          if (/^[\t\x20-\x7e]*$/.test(value)) headers.append('medblocks-signature', value);
        }
        const sentHeader = headers.get('medblocks-signature') ?? undefined;
        const before = emulator.store.requests;
        const response = await fetch(target.webhookUrl, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(10_000),
        });
        const text = await response.text();
        const fhirRequests = emulator.store.requests - before;
        const signedOk = independentlySigned(sentHeader, body, SECRET, now);
        // A signed delivery's event id is logged and answered by design; nothing else may come back.
        expectNoCanary(signedOk ? withoutEventIds(text) : text, `the HTTP answer (${response.status})`);
        if (response.status >= 200 && response.status < 300) {
          ok++;
          expect(signedOk, 'a 2xx needs a valid signature').toBe(true);
        } else if (!signedOk) {
          expect(response.status).toBe(400);
          expect(fhirRequests, 'no FHIR request before verification').toBe(0);
        }
      }),
      { numRuns: 60 }
    );
    const audits = await emulator.store.all<AuditEvent>('AuditEvent');
    expect(audits.length).toBeGreaterThan(0);
    for (const audit of audits) expectNoCanary(withoutEventIds(audit.outcomeDesc ?? ''), 'AuditEvent.outcomeDesc');
    expect(ok).toBeGreaterThan(0);
  });
});
