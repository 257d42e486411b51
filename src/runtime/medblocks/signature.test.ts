// The shared signature vectors are vendored beside this test (a copy of the team reference in
// shared/reference/signature-vectors.json), so that a clone of this repository alone passes.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  computeSignature,
  DEFAULT_TOLERANCE_SECONDS,
  MAX_SIGNATURE_HEADER_LENGTH,
  signatureHeader,
  verifySignature,
} from './signature';
import type { SignatureFailureReason, VerifySignatureInput } from './signature';

interface Vector {
  name: string;
  secret: string;
  t: number;
  body: string;
  v1: string;
}
const vectors = (
  JSON.parse(readFileSync(new URL('./signature-vectors.json', import.meta.url), 'utf8')) as {
    vectors: Vector[];
  }
).vectors;

const SECRET = 'whsec_test_secret';
const T = 1_700_000_000;
const BODY = '{"id":"evt_1","object":"event"}';
const atT =
  (offsetSeconds = 0) =>
  () =>
    (T + offsetSeconds) * 1000;
const goodHeader = signatureHeader(SECRET, T, BODY);
const goodV1 = computeSignature(SECRET, T, BODY);

function check(overrides: Partial<VerifySignatureInput>) {
  return verifySignature({ header: goodHeader, rawBody: BODY, secrets: [SECRET], now: atT(), ...overrides });
}

function expectReason(overrides: Partial<VerifySignatureInput>, reason: SignatureFailureReason) {
  expect(check(overrides)).toEqual({ ok: false, reason });
}

describe('signature vectors computed independently of this project', () => {
  it('has the documented example and the shared vectors to check', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(4);
  });

  it.each(vectors)('$name: computes v1 and verifies', (vector) => {
    expect(computeSignature(vector.secret, vector.t, vector.body)).toBe(vector.v1);
    const result = verifySignature({
      header: `t=${vector.t},v1=${vector.v1}`,
      rawBody: vector.body,
      secrets: [vector.secret],
      now: () => vector.t * 1000,
    });
    expect(result).toEqual({ ok: true, timestamp: vector.t });
  });

  it('hashes a Uint8Array body as its exact bytes, the same as the string', () => {
    const unicode = vectors.find((x) => x.name.startsWith('unicode'));
    if (!unicode) throw new Error('unicode vector missing from signature-vectors.json');
    const bytes = new TextEncoder().encode(unicode.body);
    expect(computeSignature(unicode.secret, unicode.t, bytes)).toBe(unicode.v1);
    expect(
      verifySignature({
        header: `t=${unicode.t},v1=${unicode.v1}`,
        rawBody: bytes,
        secrets: [unicode.secret],
        now: () => unicode.t * 1000,
      }).ok
    ).toBe(true);
  });

  it('matches the documented example in medblocks-webhooks.md (324-byte body)', () => {
    const documented = vectors[0];
    expect(documented?.v1).toBe('7363d85d14d2bf7ebfbf22b1eb927d1b094d957ba385370d1cb7b299a6cf23a9');
    expect(new TextEncoder().encode(documented?.body).byteLength).toBe(324);
  });
});

describe('verifySignature accepts genuine deliveries', () => {
  it('accepts a fresh signature', () => {
    expect(check({})).toEqual({ ok: true, timestamp: T });
  });

  it('accepts odd whitespace around items, keys and values, and empty items', () => {
    expect(check({ header: `  t = ${T} ,  v1 =  ${goodV1} ,` }).ok).toBe(true);
  });

  it('accepts when any v1 matches (several v1 values)', () => {
    expect(check({ header: `t=${T},v1=${'0'.repeat(64)},v1=${goodV1}` }).ok).toBe(true);
  });

  it('accepts when any configured secret matches (rotation)', () => {
    expect(check({ secrets: ['whsec_old', SECRET] }).ok).toBe(true);
  });

  it('trims configured secrets and ignores blank ones', () => {
    expect(check({ secrets: ['  ', `  ${SECRET}\n`] }).ok).toBe(true);
  });

  it.each([
    ['upper-case hex', goodV1.toUpperCase()],
    ['128 hex digits', `${goodV1}${goodV1}`],
    ['63 hex digits', goodV1.slice(1)],
    ['not hex', 'xyz'],
    ['empty', ''],
  ])('skips an unusable v1 (%s) next to a matching one, before or after it', (_name, unusable) => {
    expect(check({ header: `t=${T},v1=${unusable},v1=${goodV1}` }).ok).toBe(true);
    expect(check({ header: `t=${T},v1=${goodV1},v1=${unusable}` }).ok).toBe(true);
  });

  it('ignores other schemes next to a valid v1', () => {
    expect(check({ header: `t=${T},v0=whatever,v1=${goodV1},v2=zz` }).ok).toBe(true);
  });

  it('accepts exactly at the edges of the window, past and future', () => {
    expect(check({ now: atT(DEFAULT_TOLERANCE_SECONDS) }).ok).toBe(true);
    expect(check({ now: atT(-DEFAULT_TOLERANCE_SECONDS) }).ok).toBe(true);
  });

  it('uses a configurable tolerance', () => {
    expect(check({ now: atT(1000), toleranceSeconds: 1000 }).ok).toBe(true);
    expect(check({ now: atT(1001), toleranceSeconds: 1000 })).toEqual({
      ok: false,
      reason: 'timestamp_out_of_tolerance',
    });
  });
});

describe('verifySignature refuses, naming the reason', () => {
  const v0Only = `t=${T},v0=${goodV1}`;
  const cases: [string, Partial<VerifySignatureInput>, SignatureFailureReason][] = [
    ['no secret configured', { secrets: [] }, 'no_secret_configured'],
    ['only blank secrets (never an empty HMAC key)', { secrets: ['', '   '] }, 'no_secret_configured'],
    ['header absent', { header: undefined }, 'missing_header'],
    ['header empty', { header: '' }, 'missing_header'],
    ['header repeated (array)', { header: [goodHeader, goodHeader] }, 'malformed_header'],
    ['no t', { header: `v1=${goodV1}` }, 'malformed_header'],
    ['two t', { header: `t=${T},t=${T},v1=${goodV1}` }, 'malformed_header'],
    ['t not digits', { header: `t=17e8,v1=${goodV1}` }, 'malformed_header'],
    ['t negative', { header: `t=-${T},v1=${goodV1}` }, 'malformed_header'],
    ['t empty', { header: `t=,v1=${goodV1}` }, 'malformed_header'],
    ['t huge (13 digits)', { header: `t=9999999999999,v1=${goodV1}` }, 'malformed_header'],
    ['t in multibyte digits', { header: `t=١٧٠٠٠٠٠٠٠٠,v1=${goodV1}` }, 'malformed_header'],
    ['no v1', { header: `t=${T}` }, 'malformed_header'],
    ['only a v0 (never a downgrade)', { header: v0Only }, 'malformed_header'],
    ['empty v1=', { header: `t=${T},v1=` }, 'malformed_header'],
    ['truncated real v1', { header: `t=${T},v1=${goodV1.slice(0, 63)}` }, 'malformed_header'],
    ['v1 too long', { header: `t=${T},v1=${goodV1}0` }, 'malformed_header'],
    ['v1 upper-case hex', { header: `t=${T},v1=${goodV1.toUpperCase()}` }, 'malformed_header'],
    ['v1 with multibyte characters', { header: `t=${T},v1=${'é'.repeat(64)}` }, 'malformed_header'],
    ['only unusable v1 candidates', { header: `t=${T},v1=xyz,v1=${goodV1.toUpperCase()}` }, 'malformed_header'],
    [
      'a usable but wrong v1 next to unusable ones',
      { header: `t=${T},v1=${goodV1.toUpperCase()},v1=${'0'.repeat(64)},v1=${goodV1}${goodV1}` },
      'signature_mismatch',
    ],
    ['item without =', { header: `t=${T},garbage,v1=${goodV1}` }, 'malformed_header'],
    ['item with empty key', { header: `t=${T},=x,v1=${goodV1}` }, 'malformed_header'],
    [
      'header over 8 KB',
      { header: `t=${T},v1=${goodV1},x=${'a'.repeat(MAX_SIGNATURE_HEADER_LENGTH)}` },
      'malformed_header',
    ],
    ['timestamp too old', { now: atT(DEFAULT_TOLERANCE_SECONDS + 1) }, 'timestamp_out_of_tolerance'],
    ['timestamp in the future', { now: atT(-DEFAULT_TOLERANCE_SECONDS - 1) }, 'timestamp_out_of_tolerance'],
    ['wrong secret', { secrets: ['whsec_other'] }, 'signature_mismatch'],
    ['body changed by one byte', { rawBody: BODY.replace('evt_1', 'evt_2') }, 'signature_mismatch'],
    ['body re-serialised with spaces', { rawBody: JSON.stringify(JSON.parse(BODY), null, 1) }, 'signature_mismatch'],
    ['signature for another timestamp', { header: `t=${T + 1},v1=${goodV1}` }, 'signature_mismatch'],
    ['all-zero signature', { header: `t=${T},v1=${'0'.repeat(64)}` }, 'signature_mismatch'],
    ['secret without its whsec_ prefix', { secrets: ['test_secret'] }, 'signature_mismatch'],
  ];

  it.each(cases)('%s', (_name, overrides, reason) => {
    expectReason(overrides, reason);
  });

  it('checks the secret before anything about the header', () => {
    expectReason({ secrets: [], header: undefined }, 'no_secret_configured');
  });

  it('checks the shape before the clock, so garbage is never reported as merely late', () => {
    expectReason({ header: `t=1,v1=${goodV1.slice(1)}`, now: atT(10_000) }, 'malformed_header');
  });
});

describe('signatureHeader', () => {
  it('refuses to sign with an empty secret', () => {
    expect(() => signatureHeader('  ', T, BODY)).toThrow(/empty secret/);
  });

  it('produces the t=…,v1=… form that verifySignature accepts', () => {
    expect(goodHeader).toBe(`t=${T},v1=${goodV1}`);
    expect(goodV1).toMatch(/^[0-9a-f]{64}$/);
  });
});
