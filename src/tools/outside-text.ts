// Text that came from outside (a Medblocks or Medplum answer: event ids and types, error messages,
// EHR names, fragments of a malformed body) reaches a terminal, a JSON report or a FHIR resource.
// Raw, a hostile answer could clear the screen (ESC[2J), retitle the window (OSC), ring the bell,
// drive a C1-aware terminal, or reorder what the reader sees with bidi controls (U+202E, U+2066).
// One rule for every tool, at the two places text leaves them: what is printed, and what is written.

/**
 * C0 controls but tab and line feed, DEL, C1, the bidi embedding/override/isolate controls and
 * marks, the line and paragraph separators, and lone surrogates.
 */
// With the `u` flag a surrogate range matches only a lone surrogate (a pair is one code point).
/* eslint-disable no-control-regex -- matching control characters is this module's purpose */
const UNSAFE =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/gu;
/* eslint-enable no-control-regex */

/**
 * A line as a terminal may show it: each unsafe character becomes its `\uXXXX` escape, visible and
 * inert. The escape is JSON's own, so a `--json` line stays valid JSON with the same value.
 */
export function terminalSafe(line: string): string {
  return line.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Outside text written into a resource (an EHR name): unsafe characters removed, not escaped. */
export function withoutControls(text: string): string {
  return text.replace(UNSAFE, '');
}
