// From what Medplum hands a bot (a BotEvent) to a verified, typed Medblocks event — or a typed
// failure whose message is short, PHI-free and safe to echo to the unauthenticated caller (Medplum
// puts a throwing bot's console output and error text into its 400 answer). Two kinds, classified
// in src/runtime/failures.ts: a delivery that is not genuine or not for this bot is *rejected*
// (DeliveryRejectedError); a genuine one this package cannot read is *permanent* (InvalidPayloadError,
// quarantined by the pipeline, never answered outside 2xx).
import { createHash } from 'node:crypto';
import type { BotEvent } from '@medplum/core';
import { ClassifiedFailure } from './failures';
import type { RejectedReason } from './failures';
import type * as v from 'valibot';
import { isEventType } from './events';
import { parseEvent, usableEventId } from './medblocks/events';
import type { EventEnvelope } from './medblocks/events';
import { SIGNATURE_HEADER, verifySignature } from './medblocks/signature';
import { readSettings, readSigningSecrets } from './settings';
import type { BotSettings, Secrets } from './settings';
import { notAppliedMessage, rejectedMessage } from './summary';

/** Far above any real delivery (a 50-connection flow is about 15 KB), far below what could hurt. */
export const MAX_BODY_BYTES = 256 * 1024;

export type RejectionReason = RejectedReason;

/** The `type` a quarantine reports when the body names no event type this package knows. */
export const UNKNOWN_EVENT_TYPE = 'unknown';

/** A delivery refused before any FHIR request. The message never contains input values. */
export class DeliveryRejectedError extends ClassifiedFailure {
  readonly reason: RejectionReason;
  /** Set only when the event was verified and validated, so its id and type are safe to log. */
  readonly event: { readonly id: string; readonly type: string } | undefined;
  constructor(reason: RejectionReason, detail?: string, event?: { id: string; type: string }) {
    super(rejectedMessage(reason, detail));
    this.name = 'DeliveryRejectedError';
    this.reason = reason;
    this.event = event;
  }
}

/**
 * A genuine (signed) delivery of this bot's event type that this package cannot read: not a JSON
 * object, or a field missing or of the wrong type. Permanent: a retry would bring the same bytes.
 * `key` identifies its dead-letter: the event id when well-formed, else `sha256-<hex>` of the body.
 */
export class InvalidPayloadError extends ClassifiedFailure {
  readonly reason = 'invalid_payload' as const;
  readonly key: string;
  /** A type this package knows, or UNKNOWN_EVENT_TYPE; never text from the body otherwise. */
  readonly type: string;
  constructor(key: string, type: string, path: string | undefined, detail: string) {
    super(notAppliedMessage('invalid_payload', detail), path);
    this.name = 'InvalidPayloadError';
    this.key = key;
    this.type = type;
  }
}

/** The dead-letter key of a body without a usable event id: the same bytes always give the same key. */
export function bodyKey(rawBody: string | Uint8Array): string {
  return `sha256-${createHash('sha256').update(rawBody).digest('hex')}`;
}

/**
 * What one bot accepts: the event types it is wired to, the schema of their deliveries (only its
 * own event type's, so its bundle carries no other) and the project secret holding its signing secret.
 */
export interface ReceiverSpec<E extends EventEnvelope> {
  readonly eventTypes: readonly string[];
  readonly schema: v.GenericSchema<unknown, E>;
  readonly secretName: string;
}

export interface VerifiedDelivery<E extends EventEnvelope> {
  readonly event: E;
  readonly settings: BotSettings;
  /** True when the body was re-serialised from a parsed object (`MEDBLOCKS_ALLOW_PARSED_BODY`). */
  readonly verifiedAgainstReserialisedBody: boolean;
}

export interface ReceiveOptions {
  readonly now?: () => number;
}

const MESSAGES: Partial<Record<RejectionReason, string>> = {
  missing_header: 'no Medblocks-Signature header',
  malformed_header: 'Medblocks-Signature header is not t=<seconds>,v1=<64 hex>',
  timestamp_out_of_tolerance: 'signature timestamp outside the allowed window; check clocks and retries',
  signature_mismatch: 'signature does not match any configured secret',
  body_not_raw:
    'bot received a parsed JSON object; set Bot.rawBody to true (Medplum 5.2+) so the signature can be checked over the exact bytes',
  body_too_large: `body larger than ${MAX_BODY_BYTES} bytes`,
};

/**
 * Verifies and parses one delivery for one bot. Order matters: the signature is checked over the
 * exact bytes before the body is parsed, and nothing here talks to the FHIR server.
 */
export function receiveDelivery<E extends EventEnvelope>(
  botEvent: BotEvent,
  spec: ReceiverSpec<E>,
  options: ReceiveOptions = {}
): VerifiedDelivery<E> {
  // Typed as required, but a hand-built event (or an older server) may omit it: fail closed, not crash.
  const secrets = botEvent.secrets as Secrets | undefined;
  const settings = readSettings(secrets ?? {});
  const { rawBody, reserialised } = extractRawBody(botEvent.input, settings);

  const signingSecrets = readSigningSecrets(secrets ?? {}, spec.secretName);
  const check = verifySignature({
    header: findHeader(botEvent.headers, SIGNATURE_HEADER),
    rawBody,
    secrets: signingSecrets,
    toleranceSeconds: settings.toleranceSeconds,
    now: options.now,
  });
  if (!check.ok) {
    const detail =
      check.reason === 'no_secret_configured' ? `project secret ${spec.secretName} is not set` : MESSAGES[check.reason];
    throw new DeliveryRejectedError(check.reason, detail);
  }

  const parsed = parseJsonObject(rawBody);
  if (parsed === undefined) {
    throw new InvalidPayloadError(bodyKey(rawBody), UNKNOWN_EVENT_TYPE, undefined, 'body is not a JSON object');
  }
  const id = usableEventId(parsed.id);
  const type: unknown = parsed.type;
  if (typeof type === 'string' && !spec.eventTypes.includes(type)) {
    // Misrouted: the endpoint is subscribed to events this bot does not take. A known type is named
    // (it leaks nothing); anything else is not echoed.
    const known = isEventType(type);
    throw new DeliveryRejectedError(
      'unexpected_event_type',
      known
        ? `${type} is not handled by this bot; point that Medblocks endpoint at the matching bot`
        : 'the event type is not one this bot handles; point that Medblocks endpoint at the matching bot',
      known && id !== undefined ? { id, type } : undefined
    );
  }
  // Only this bot's event types get here (a string of another type was refused above), so its own
  // schema gives the answer every event type's schemas would: the discriminator's issue is the same.
  const result = parseEvent(spec.schema, parsed);
  if (!result.ok) {
    throw new InvalidPayloadError(
      id ?? bodyKey(rawBody),
      isEventType(type) ? type : UNKNOWN_EVENT_TYPE,
      result.path,
      result.problems.join('; ')
    );
  }
  if (!spec.eventTypes.includes(result.event.type)) {
    // Unreachable after the type check above (the schema takes only this bot's names); kept so that it is checked, not assumed.
    throw new DeliveryRejectedError('unexpected_event_type', 'the event type is not one this bot handles');
  }
  return { event: result.event, settings, verifiedAgainstReserialisedBody: reserialised };
}

function extractRawBody(
  input: unknown,
  settings: BotSettings
): { rawBody: string | Uint8Array; reserialised: boolean } {
  if (typeof input === 'string') {
    if (utf8Length(input) > MAX_BODY_BYTES) {
      throw new DeliveryRejectedError('body_too_large', MESSAGES.body_too_large);
    }
    return { rawBody: input, reserialised: false };
  }
  if (input instanceof Uint8Array) {
    if (input.byteLength > MAX_BODY_BYTES) {
      throw new DeliveryRejectedError('body_too_large', MESSAGES.body_too_large);
    }
    return { rawBody: input, reserialised: false };
  }
  if (settings.allowParsedBody && typeof input === 'object' && input !== null && !Array.isArray(input)) {
    // Matches only when Medblocks' JSON was compact with the same key order and escapes, which is
    // what it sends today; an explicit opt-in for servers that predate Bot.rawBody.
    return { rawBody: JSON.stringify(input), reserialised: true };
  }
  throw new DeliveryRejectedError('body_not_raw', MESSAGES.body_not_raw);
}

/**
 * The body's size in bytes as sent. A UTF-16 length never exceeds the UTF-8 byte count and a code
 * unit takes at most 3 bytes, so only bodies between the two bounds are encoded to be measured.
 */
function utf8Length(text: string): number {
  if (text.length > MAX_BODY_BYTES || text.length * 3 <= MAX_BODY_BYTES) return text.length;
  return new TextEncoder().encode(text).byteLength;
}

/** Node lower-cases header names, but callers other than Medplum may not: match case-insensitively. */
export function findHeader(
  headers: Record<string, string | string[] | undefined> | undefined,
  name: string
): string | string[] | undefined {
  if (!headers) {
    return undefined;
  }
  const direct = headers[name];
  if (direct !== undefined) {
    return direct;
  }
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

/** The body as a JSON object, or undefined when it is not one (not UTF-8, not JSON, or not an object). */
function parseJsonObject(rawBody: string | Uint8Array): Record<string, unknown> | undefined {
  try {
    const text = typeof rawBody === 'string' ? rawBody : new TextDecoder('utf-8', { fatal: true }).decode(rawBody);
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
