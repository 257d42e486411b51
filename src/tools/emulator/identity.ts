// Stable ids and dev secrets. The emulator derives every Bot and ProjectMembership id, and every
// default signing secret, from the bot's name, so that webhook URLs and secrets survive restarts:
// a Medblocks sender (or `npm run send`) configured once keeps working. Only for local use — the
// secrets are predictable by design and printed at startup.
import { createHash } from 'node:crypto';

/** A UUID-shaped FHIR id derived from a label; the same label always gives the same id. */
export function stableId(label: string): string {
  const hex = createHash('sha256').update(`medblocks-emulator:${label}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function botIdFor(botName: string): string {
  return stableId(`bot:${botName}`);
}

/** The id in `/webhook/{id}`: the bot's ProjectMembership, as on a real Medplum server. */
export function membershipIdFor(botName: string): string {
  return stableId(`membership:${botName}`);
}

/** The default signing secret for a project secret name when none is configured. */
export function devSecret(secretName: string): string {
  const hex = createHash('sha256').update(`medblocks-emulator-dev-secret:${secretName}`).digest('hex');
  return `whsec_dev_${hex.slice(0, 40)}`;
}

export const EMULATOR_PROJECT_ID = stableId('project');
export const DEFAULT_EMULATOR_PORT = 8913;
export const DEFAULT_EMULATOR_HOST = '127.0.0.1';
