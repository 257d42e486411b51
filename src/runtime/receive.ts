// From what Medplum hands a bot (a BotEvent) to a verified, typed Medblocks event — or a typed
// refusal whose message is short, PHI-free and safe to echo to the unauthenticated caller (Medplum
// puts a throwing bot's console output and error text into its 400 answer).
import type { BotEvent } from '@medplum/core';
import { parseMedblocksEvent } from './medblocks/events';
import type { EventType, MedblocksEvent } from './medblocks/events';
import { SIGNATURE_HEADER, verifySignature } from './medblocks/signature';
import type { SignatureFailureReason } from './medblocks/signature';
import { readSettings, readSigningSecrets } from './settings';
import type { BotSettings, Secrets } from './settings';
import { rejectedMessage } from './summary';

/** Far above any real delivery (a 50-connection flow is about 15 KB), far below what could hurt. */
export const MAX_BODY_BYTES = 256 * 1024;

export type RejectionReason =
  | SignatureFailureReason
  | 'body_not_raw'
  | 'body_too_large'
  | 'malformed_json'
  | 'invalid_payload'
  | 'unexpected_event_type';

/** A delivery refused before any FHIR request. The message never contains input values. */
export class DeliveryRejectedError extends Error {
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

/** What one bot accepts: the event types it is wired to and the project secret holding its signing secret. */
export interface ReceiverSpec<T extends EventType = EventType> {
  readonly eventTypes: readonly T[];
  readonly secretName: string;
}

export interface VerifiedDelivery<T extends EventType = EventType> {
  readonly event: Extract<MedblocksEvent, { type: T }>;
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
  malformed_json: 'body is not a JSON object',
};

/**
 * Verifies and parses one delivery for one bot. Order matters: the signature is checked over the
 * exact bytes before the body is parsed, and nothing here talks to the FHIR server.
 */
export function receiveDelivery<T extends EventType>(
  botEvent: BotEvent,
  spec: ReceiverSpec<T>,
  options: ReceiveOptions = {}
): VerifiedDelivery<T> {
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

  const parsed = parseJson(rawBody);
  const result = parseMedblocksEvent(parsed);
  if (!result.ok) {
    throw new DeliveryRejectedError('invalid_payload', result.problems.join('; '));
  }
  if (!isOfType(result.event, spec.eventTypes)) {
    // The type was validated against the known list above, so naming it leaks nothing.
    throw new DeliveryRejectedError(
      'unexpected_event_type',
      `${result.event.type} is not handled by this bot; point that Medblocks endpoint at the matching bot`,
      { id: result.event.id, type: result.event.type }
    );
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

function isOfType<T extends EventType>(
  event: MedblocksEvent,
  types: readonly T[]
): event is Extract<MedblocksEvent, { type: T }> {
  return (types as readonly EventType[]).includes(event.type);
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

function parseJson(rawBody: string | Uint8Array): unknown {
  try {
    const text = typeof rawBody === 'string' ? rawBody : new TextDecoder('utf-8', { fatal: true }).decode(rawBody);
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new Error('not an object');
    }
    return value;
  } catch {
    throw new DeliveryRejectedError('malformed_json', MESSAGES.malformed_json);
  }
}
