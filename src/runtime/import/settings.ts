// The import's settings, project secrets like every other setting of the package. The import is
// opt-in: without MEDBLOCKS_API_KEY it does nothing (and says so in one line).
import { readString } from '../settings';
import type { Secrets } from '../settings';

export const IMPORT_SETTING_NAMES = {
  apiKey: 'MEDBLOCKS_API_KEY',
  apiBaseUrl: 'MEDBLOCKS_API_BASE_URL',
  types: 'MEDBLOCKS_IMPORT_TYPES',
} as const;

export const DEFAULT_MEDBLOCKS_API_BASE_URL = 'https://app.medblocks.com';

/**
 * What is imported unless MEDBLOCKS_IMPORT_TYPES says otherwise, in the order the passes run:
 * targets before what points at them (an Encounter before the Observations made in it, Observations
 * before the DiagnosticReport that groups them), so most references resolve in one pass.
 */
export const DEFAULT_IMPORT_TYPES = [
  'Encounter',
  'Condition',
  'AllergyIntolerance',
  'MedicationRequest',
  'MedicationStatement',
  'Immunization',
  'Procedure',
  'Observation',
  'DiagnosticReport',
  'DocumentReference',
] as const;

export type ImportSettings =
  | { readonly enabled: false; readonly why: string }
  | {
      readonly enabled: true;
      readonly apiKey: string;
      readonly baseUrl: string;
      readonly types: readonly string[];
      readonly ignoredTypes: readonly string[];
    };

/**
 * Types outside the default list are ignored (and reported): the bot's AccessPolicy grants exactly
 * the default types, so any other would be refused by Medplum on every write anyway.
 */
export function readImportSettings(secrets: Secrets): ImportSettings {
  const apiKey = readString(secrets, IMPORT_SETTING_NAMES.apiKey);
  if (!apiKey) return { enabled: false, why: `${IMPORT_SETTING_NAMES.apiKey} is not set` };
  const baseUrl = readString(secrets, IMPORT_SETTING_NAMES.apiBaseUrl) ?? DEFAULT_MEDBLOCKS_API_BASE_URL;
  if (!/^https?:\/\/[^\s/]+/.test(baseUrl)) {
    return { enabled: false, why: `${IMPORT_SETTING_NAMES.apiBaseUrl} is not an http(s) URL` };
  }
  const asked = (readString(secrets, IMPORT_SETTING_NAMES.types) ?? DEFAULT_IMPORT_TYPES.join(','))
    .split(/[\s,]+/)
    .filter((t) => t.length > 0);
  const allowed = new Set<string>(DEFAULT_IMPORT_TYPES);
  const types = DEFAULT_IMPORT_TYPES.filter((t) => asked.includes(t));
  const ignoredTypes = asked.filter((t) => !allowed.has(t));
  if (types.length === 0) return { enabled: false, why: `${IMPORT_SETTING_NAMES.types} names no importable type` };
  return { enabled: true, apiKey, baseUrl, types, ignoredTypes };
}
