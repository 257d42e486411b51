// Everything a user can configure lives in Medplum project secrets (Project Admin → Secrets), which
// every bot of the project shares. Values are read defensively: trimmed, blanks treated as unset,
// and anything unparseable falls back to the safe default rather than failing open.
import type { ProjectSetting, Task } from '@medplum/fhirtypes';
import { DEFAULT_TOLERANCE_SECONDS } from './medblocks/signature';

export type Secrets = Readonly<Record<string, ProjectSetting | undefined>>;

/** Project-secret names, in one place so the README, provisioning and the bots agree. */
export const SETTING_NAMES = {
  toleranceSeconds: 'MEDBLOCKS_SIGNATURE_TOLERANCE_SECONDS',
  taskOwner: 'MEDBLOCKS_TASK_OWNER',
  createMissingPatients: 'MEDBLOCKS_CREATE_MISSING_PATIENTS',
  allowParsedBody: 'MEDBLOCKS_ALLOW_PARSED_BODY',
  markerRetentionDays: 'MEDBLOCKS_MARKER_RETENTION_DAYS',
} as const;

export const DEFAULT_MARKER_RETENTION_DAYS = 90;

const OWNER_REFERENCE =
  /^(Organization|Practitioner|PractitionerRole|CareTeam|Group|Device|HealthcareService|RelatedPerson|Patient)\/[A-Za-z0-9\-.]{1,64}$/;

export interface BotSettings {
  readonly toleranceSeconds: number;
  readonly taskOwner: NonNullable<Task['owner']> | undefined;
  readonly createMissingPatients: boolean;
  readonly allowParsedBody: boolean;
}

/** Reads the shared settings once per delivery, so that a change in Project Admin applies to the next one. */
export function readSettings(secrets: Secrets): BotSettings {
  const owner = readString(secrets, SETTING_NAMES.taskOwner);
  return {
    toleranceSeconds: readPositiveInteger(secrets, SETTING_NAMES.toleranceSeconds) ?? DEFAULT_TOLERANCE_SECONDS,
    taskOwner: owner && OWNER_REFERENCE.test(owner) ? { reference: owner } : undefined,
    createMissingPatients: readBoolean(secrets, SETTING_NAMES.createMissingPatients) ?? true,
    allowParsedBody: readBoolean(secrets, SETTING_NAMES.allowParsedBody) ?? false,
  };
}

/**
 * Reads a signing-secret setting. One value may hold several secrets separated by commas or
 * whitespace, so that a secret can be rotated without a window in which deliveries fail.
 */
export function readSigningSecrets(secrets: Secrets, name: string): string[] {
  const value = readString(secrets, name);
  return value ? value.split(/[\s,]+/).filter((s) => s.length > 0) : [];
}

export function readString(secrets: Secrets, name: string): string | undefined {
  const setting = secrets[name];
  const raw = setting?.valueString ?? setting?.valueInteger ?? setting?.valueDecimal ?? setting?.valueBoolean;
  if (raw === undefined) {
    return undefined;
  }
  const text = String(raw).trim();
  return text === '' ? undefined : text;
}

export function readBoolean(secrets: Secrets, name: string): boolean | undefined {
  const text = readString(secrets, name)?.toLowerCase();
  if (text === 'true' || text === '1' || text === 'yes') {
    return true;
  }
  if (text === 'false' || text === '0' || text === 'no') {
    return false;
  }
  return undefined;
}

export function readPositiveInteger(secrets: Secrets, name: string): number | undefined {
  const text = readString(secrets, name);
  if (text === undefined || !/^\d{1,9}$/.test(text)) {
    return undefined;
  }
  const value = Number(text);
  return value > 0 ? value : undefined;
}
