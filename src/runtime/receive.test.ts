import type { BotEvent } from '@medplum/core';
import { describe, expect, it } from 'vitest';
import { medplumBotEvent, TEST_SECRET } from '../tools/harness/world';
import { patientFlowCompleted, recordsSyncFailed, serialise } from '../tools/fixtures/events';
import type { MedblocksEvent, RecordsSyncFailedEvent } from './events';
import { REGISTRY } from './registry';
import { signatureHeader } from './medblocks/signature';
import { createHash } from 'node:crypto';
import { DeliveryRejectedError, InvalidPayloadError, MAX_BODY_BYTES, receiveDelivery } from './receive';
import type { ReceiverSpec, RejectionReason } from './receive';

const SPEC: ReceiverSpec<RecordsSyncFailedEvent> = REGISTRY['medblocks-records-sync-failed'];
const EVENT = recordsSyncFailed();
const SIGNED_AT = Date.parse(EVENT.created_at);

function botEvent(
  overrides: Parameters<typeof medplumBotEvent>[1] extends infer O ? Partial<O> : never = {},
  event: MedblocksEvent = EVENT
): BotEvent {
  return medplumBotEvent(event, { signedAt: SIGNED_AT, secretName: SPEC.secretName, ...overrides });
}

function receive(event: BotEvent, now = SIGNED_AT) {
  return receiveDelivery(event, SPEC, { now: () => now });
}

function rejection(run: () => unknown): DeliveryRejectedError {
  try {
    run();
  } catch (err) {
    if (err instanceof DeliveryRejectedError) return err;
    throw err;
  }
  throw new Error('expected a DeliveryRejectedError');
}

/** A genuine delivery this package cannot read: permanent (the pipeline quarantines it), never a refusal. */
function expectInvalid(run: () => unknown): InvalidPayloadError {
  try {
    run();
  } catch (err) {
    if (err instanceof InvalidPayloadError) return err;
    throw err;
  }
  throw new Error('expected an InvalidPayloadError');
}

function expectRejected(run: () => unknown, reason: RejectionReason): DeliveryRejectedError {
  const err = rejection(run);
  expect(err.reason).toBe(reason);
  return err;
}

describe('receiveDelivery accepts what Medplum hands a bot with Bot.rawBody: true', () => {
  it('verifies the raw string body and returns the typed event and settings', () => {
    const delivery = receive(botEvent());
    expect(delivery.event).toEqual(EVENT);
    expect(delivery.settings.toleranceSeconds).toBe(300);
    expect(delivery.verifiedAgainstReserialisedBody).toBe(false);
  });

  it('accepts the body as bytes', () => {
    const bytes = new TextEncoder().encode(serialise(EVENT));
    expect(receive(botEvent({ rawBody: bytes })).event.id).toBe(EVENT.id);
  });

  it('finds the header whatever its case', () => {
    const event = botEvent();
    const header = event.headers?.['medblocks-signature'];
    const headers = { 'content-type': 'application/json', 'Medblocks-Signature': header };
    expect(receive({ ...event, headers }).event.id).toBe(EVENT.id);
  });

  it('accepts any of several secrets in one project secret (rotation)', () => {
    const event = botEvent();
    const secrets = { [SPEC.secretName]: { name: SPEC.secretName, valueString: `whsec_old_one, ${TEST_SECRET}` } };
    expect(receive({ ...event, secrets }).event.id).toBe(EVENT.id);
  });

  it('reads the tolerance from the project secret', () => {
    const event = botEvent({ secrets: { MEDBLOCKS_SIGNATURE_TOLERANCE_SECONDS: '900' } });
    expect(receive(event, SIGNED_AT + 899_000).event.id).toBe(EVENT.id);
    expectRejected(() => receive(event, SIGNED_AT + 901_000), 'timestamp_out_of_tolerance');
  });

  it('verifies a parsed body against its compact re-serialisation only when explicitly allowed', () => {
    const parsed = JSON.parse(serialise(EVENT)) as Record<string, unknown>;
    const allowed = botEvent({ rawBody: parsed, secrets: { MEDBLOCKS_ALLOW_PARSED_BODY: 'true' } });
    const delivery = receive(allowed);
    expect(delivery.event.id).toBe(EVENT.id);
    expect(delivery.verifiedAgainstReserialisedBody).toBe(true);
  });

  /** What Medplum before 5.2 hands the bot for bytes Medblocks signed: the parsed JSON. */
  function parsedDelivery(sent: string): BotEvent {
    const event = botEvent({
      rawBody: JSON.parse(sent) as Record<string, unknown>,
      secrets: { MEDBLOCKS_ALLOW_PARSED_BODY: 'true' },
    });
    const header = signatureHeader(TEST_SECRET, Math.floor(SIGNED_AT / 1000), sent);
    return { ...event, headers: { ...event.headers, 'medblocks-signature': header } };
  }
  const reversed = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(reversed)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.entries(value)
              .reverse()
              .map(([k, v]) => [k, reversed(v)])
          )
        : value;

  it('the fallback does not depend on key order: parsing and re-serialising keep the order sent', () => {
    // As on a real 5.1.29: a body signed with its keys in another order is accepted.
    const delivery = receive(parsedDelivery(JSON.stringify(reversed(EVENT))));
    expect(delivery.event.id).toBe(EVENT.id);
  });

  it('the fallback refuses what re-serialising changes: pretty-printed or escaped JSON', () => {
    expectRejected(() => receive(parsedDelivery(JSON.stringify(EVENT, null, 2))), 'signature_mismatch');
    const escaped = JSON.stringify(EVENT).replace('"event"', '"\\u0065vent"');
    expectRejected(() => receive(parsedDelivery(escaped)), 'signature_mismatch');
  });
});

describe('receiveDelivery refuses, with a typed reason and a safe message', () => {
  it('a parsed object (Bot.rawBody off) → body_not_raw, naming Bot.rawBody', () => {
    const err = expectRejected(
      () => receive(botEvent({ rawBody: JSON.parse(serialise(EVENT)) as Record<string, unknown> })),
      'body_not_raw'
    );
    expect(err.message).toContain('Bot.rawBody');
  });

  it('no body at all → body_not_raw', () => {
    expectRejected(() => receive({ ...botEvent(), input: undefined }), 'body_not_raw');
  });

  it('missing header → missing_header', () => {
    expectRejected(() => receive({ ...botEvent(), headers: { 'content-type': 'application/json' } }), 'missing_header');
  });

  it('no headers at all → missing_header', () => {
    const { headers: _headers, ...withoutHeaders } = botEvent();
    expectRejected(() => receive(withoutHeaders), 'missing_header');
  });

  it('repeated header (array) → malformed_header', () => {
    const event = botEvent();
    const header = event.headers?.['medblocks-signature'] as string;
    expectRejected(
      () => receive({ ...event, headers: { 'medblocks-signature': [header, header] } }),
      'malformed_header'
    );
  });

  it('signing secret not configured → no_secret_configured, naming the project secret', () => {
    const err = expectRejected(() => receive({ ...botEvent(), secrets: {} }), 'no_secret_configured');
    expect(err.message).toContain(SPEC.secretName);
  });

  it('blank signing secret → no_secret_configured (never an empty HMAC key)', () => {
    const secrets = { [SPEC.secretName]: { name: SPEC.secretName, valueString: '   ' } };
    expectRejected(() => receive({ ...botEvent(), secrets }), 'no_secret_configured');
  });

  it('another bot’s secret → signature_mismatch', () => {
    expectRejected(() => receive(botEvent({ secret: 'whsec_for_another_endpoint' })), 'signature_mismatch');
  });

  it('tampered body → signature_mismatch', () => {
    const event = botEvent();
    const tampered = (event.input as string).replace('503', '200');
    expectRejected(() => receive({ ...event, input: tampered }), 'signature_mismatch');
  });

  it('stale timestamp → timestamp_out_of_tolerance', () => {
    expectRejected(() => receive(botEvent(), SIGNED_AT + 301_000), 'timestamp_out_of_tolerance');
  });

  it('signed but not a JSON object → invalid_payload keyed by the sha256 of the exact bytes, type unknown', () => {
    for (const body of ['not json', '[1,2]', new Uint8Array([0xff, 0xfe, 0x7b])]) {
      const err = expectInvalid(() => receive(botEvent({ rawBody: body })));
      expect(err).toMatchObject({ reason: 'invalid_payload', type: 'unknown', path: undefined });
      expect(err.key).toBe(`sha256-${createHash('sha256').update(body).digest('hex')}`);
    }
  });

  it('signed but not a valid event → invalid_payload keyed by its event id, with the field path and no value', () => {
    const body = serialise({ ...EVENT, data: { object: { ...EVENT.data.object, patient_id: 42 } } });
    const err = expectInvalid(() => receive(botEvent({ rawBody: body })));
    expect(err).toMatchObject({ key: EVENT.id, type: 'records.sync.failed', path: 'data.object.patient_id' });
    expect(err.message).toMatch(/^Delivery not applied: invalid_payload: data\.object\.patient_id: expected/);
    expect(err.message).not.toContain('42');
  });

  it('an id that is not a well-formed event id is not used as the key (the body hash is)', () => {
    const body = serialise({ ...EVENT, id: 'user_42 Jane', data: {} });
    const err = expectInvalid(() => receive(botEvent({ rawBody: body })));
    expect(err.key).toBe(`sha256-${createHash('sha256').update(body).digest('hex')}`);
  });

  it('an event type that is not this bot’s → unexpected_event_type, rejected even when the payload is invalid too', () => {
    const err = expectRejected(() => receive(botEvent({}, patientFlowCompleted())), 'unexpected_event_type');
    expect(err.message).toContain('patient_flow.completed');
    expect(err.event).toMatchObject({ type: 'patient_flow.completed' });
    const invalid = serialise({ ...patientFlowCompleted(), data: 7 });
    expectRejected(() => receive(botEvent({ rawBody: invalid })), 'unexpected_event_type');
  });

  it('a type this package does not know → unexpected_event_type, without echoing it', () => {
    const err = expectRejected(
      () => receive(botEvent({ rawBody: serialise({ ...EVENT, type: 'user_42.Jane' }) })),
      'unexpected_event_type'
    );
    expect(err.message).not.toContain('Jane');
    expect(err.event).toBeUndefined();
  });

  it('oversized body → body_too_large, before any HMAC', () => {
    const huge = 'x'.repeat(MAX_BODY_BYTES + 1);
    expectRejected(() => receive(botEvent({ rawBody: huge })), 'body_too_large');
  });

  it('measures the body in bytes as sent, not in UTF-16 code units', () => {
    // 'é' is one code unit and two UTF-8 bytes: this body has MAX/2 + 1 code units, MAX + 2 bytes.
    expectRejected(() => receive(botEvent({ rawBody: 'é'.repeat(MAX_BODY_BYTES / 2 + 1) })), 'body_too_large');
    // Exactly MAX bytes passes the size check (and is then found to be what it is: not JSON).
    expectInvalid(() => receive(botEvent({ rawBody: 'é'.repeat(MAX_BODY_BYTES / 2) })));
  });

  it('checks the signature before parsing: a forged body that is not JSON is a signature failure', () => {
    const event = botEvent();
    expectRejected(() => receive({ ...event, input: '{{{' }), 'signature_mismatch');
  });

  it('never puts payload values, the patient id or secrets in a refusal or invalid-payload message', () => {
    const attempts: (() => unknown)[] = [
      () => receive(botEvent({ secret: 'whsec_wrong' })),
      () => receive(botEvent({}, patientFlowCompleted())),
      () => receive(botEvent({ rawBody: serialise({ ...EVENT, created_at: 'user_42 Jane Doe' }) })),
      () => receive({ ...botEvent(), headers: { 'medblocks-signature': `t=1,v1=${'a'.repeat(64)},user_42=1` } }),
    ];
    for (const attempt of attempts) {
      let message = '';
      try {
        attempt();
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).not.toBe('');
      expect(message).not.toContain('user_42');
      expect(message).not.toContain('Jane');
      expect(message).not.toContain(TEST_SECRET);
      expect(message).not.toContain('503');
    }
  });

  it('a header signed over the re-serialised body does not pass when the raw body differs (no JSON.stringify(input) verification)', () => {
    const pretty = JSON.stringify(EVENT, null, 2);
    const header = signatureHeader(TEST_SECRET, Math.floor(SIGNED_AT / 1000), serialise(EVENT));
    expectRejected(
      () => receive({ ...botEvent({ rawBody: pretty }), headers: { 'medblocks-signature': header } }),
      'signature_mismatch'
    );
  });
});
