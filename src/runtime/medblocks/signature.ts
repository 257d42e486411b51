// Medblocks-Signature: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, `${t}.${rawBody}`)>`.
// Only node: builtins are imported, never the Buffer/crypto globals: Medplum's vmcontext sandbox
// has neither, and this module must run unchanged there and on Lambda.
import { Buffer } from 'node:buffer';
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header Medblocks sends; Node (and so Medplum) hands it to bots lower-cased. */
export const SIGNATURE_HEADER = 'medblocks-signature';

/** Medblocks' documented default window, applied both to the past and to the future. */
export const DEFAULT_TOLERANCE_SECONDS = 300;

/** Longer headers are refused unparsed, so an attacker cannot make us split megabytes. */
export const MAX_SIGNATURE_HEADER_LENGTH = 8192;

const TIMESTAMP_PATTERN = /^\d{1,12}$/;
const V1_PATTERN = /^[0-9a-f]{64}$/;

export type SignatureFailureReason =
  'missing_header' | 'malformed_header' | 'timestamp_out_of_tolerance' | 'signature_mismatch' | 'no_secret_configured';

export type SignatureCheck =
  { readonly ok: true; readonly timestamp: number } | { readonly ok: false; readonly reason: SignatureFailureReason };

export interface VerifySignatureInput {
  /** The header value exactly as received; an array (repeated header) is malformed. */
  readonly header: string | readonly string[] | undefined;
  /** The exact bytes Medblocks signed: Medplum's raw body string, or bytes. */
  readonly rawBody: string | Uint8Array;
  /** Every currently valid secret (rotation); blanks are ignored, never used as an empty key. */
  readonly secrets: readonly string[];
  readonly toleranceSeconds?: number;
  /** Injectable clock (milliseconds since the epoch) so tests and replays are deterministic. */
  readonly now?: () => number;
}

interface ParsedHeader {
  readonly timestamp: number;
  readonly timestampText: string;
  readonly v1: readonly string[];
}

/** Returns the usable secrets: trimmed, blanks dropped, so that an unset secret can never become an empty HMAC key. */
export function usableSecrets(secrets: readonly (string | undefined)[]): string[] {
  return secrets.map((s) => (typeof s === 'string' ? s.trim() : '')).filter((s) => s.length > 0);
}

/**
 * Checks a Medblocks-Signature header against the raw body. Returns a named reason instead of
 * throwing, so that callers can log and answer without leaking anything about the input; no input
 * can make it throw.
 */
export function verifySignature(input: VerifySignatureInput): SignatureCheck {
  const secrets = usableSecrets(input.secrets);
  if (secrets.length === 0) {
    return { ok: false, reason: 'no_secret_configured' };
  }
  if (input.header === undefined || input.header === '') {
    return { ok: false, reason: 'missing_header' };
  }
  const parsed = parseSignatureHeader(input.header);
  if (!parsed) {
    return { ok: false, reason: 'malformed_header' };
  }

  const toleranceSeconds = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((input.now ?? Date.now)() / 1000);
  if (!(Math.abs(nowSeconds - parsed.timestamp) <= toleranceSeconds)) {
    return { ok: false, reason: 'timestamp_out_of_tolerance' };
  }

  const received = parsed.v1.map((hex) => Buffer.from(hex, 'hex'));
  for (const secret of secrets) {
    const expected = hmac(secret, parsed.timestampText, input.rawBody);
    // Every received v1 is compared with this secret's value, each pair in constant time and with no
    // early exit among the candidates; secrets are tried in order (which one matched is not secret).
    let matched = false;
    for (const candidate of received) {
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
        matched = true;
      }
    }
    if (matched) {
      return { ok: true, timestamp: parsed.timestamp };
    }
  }
  return { ok: false, reason: 'signature_mismatch' };
}

/** Computes the `v1` value as Medblocks does; the sender and tests use it to sign deliveries. */
export function computeSignature(secret: string, timestampSeconds: number, rawBody: string | Uint8Array): string {
  return hmac(secret, String(timestampSeconds), rawBody).toString('hex');
}

/** Builds a complete header value, signing with a fresh timestamp per attempt as Medblocks does. */
export function signatureHeader(secret: string, timestampSeconds: number, rawBody: string | Uint8Array): string {
  if (usableSecrets([secret]).length === 0) {
    throw new Error('Refusing to sign with an empty secret');
  }
  return `t=${timestampSeconds},v1=${computeSignature(secret, timestampSeconds, rawBody)}`;
}

function hmac(secret: string, timestampText: string, rawBody: string | Uint8Array): Buffer {
  const mac = createHmac('sha256', Buffer.from(secret, 'utf8'));
  mac.update(Buffer.from(`${timestampText}.`, 'utf8'));
  mac.update(typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody);
  return mac.digest();
}

/**
 * Shape-checks the header before any crypto: exactly one `t` of 1–12 digits, at least one
 * well-formed `v1` (64 lowercase hex digits). Unusable `v1` candidates are skipped; the header is
 * malformed only when none is usable. Other schemes (`v0`, future ones) are ignored and can never
 * satisfy the check.
 */
function parseSignatureHeader(header: string | readonly string[]): ParsedHeader | undefined {
  if (typeof header !== 'string' || header.length > MAX_SIGNATURE_HEADER_LENGTH) {
    return undefined;
  }
  let timestampText: string | undefined;
  const v1: string[] = [];
  for (const item of header.split(',')) {
    const trimmed = item.trim();
    if (trimmed === '') {
      continue; // tolerate `t=1, ,v1=…` and a trailing comma: nothing is lost by skipping it
    }
    const eq = trimmed.indexOf('=');
    if (eq <= 0) {
      return undefined;
    }
    const key = trimmed.slice(0, eq).trim();
    const value = trimmed.slice(eq + 1).trim();
    if (key === 't') {
      if (timestampText !== undefined || !TIMESTAMP_PATTERN.test(value)) {
        return undefined;
      }
      timestampText = value;
    } else if (key === 'v1' && V1_PATTERN.test(value)) {
      // Any matching v1 wins; a candidate we cannot use (uppercase hex, wrong length) is skipped,
      // not fatal: one stale or foreign value must not hide a valid signature next to it.
      v1.push(value);
    }
  }
  if (timestampText === undefined || v1.length === 0) {
    return undefined;
  }
  // Normalise to the digits Medblocks signed: `t` is hashed as received, so "0017" stays "0017".
  return { timestamp: Number(timestampText), timestampText, v1 };
}
