// Pure planning for provisioning: given what exists, what must change. Every function here
// compares desired with observed state and returns the difference, so a second run over an
// unchanged project plans nothing. No I/O: provision.ts observes and applies.
import type { AccessPolicy, Bot, ProjectMembership, ProjectSetting, Reference } from '@medplum/fhirtypes';
import type { BotEntry as DeployedBot } from '../../runtime/registry';
import type { MedblocksEndpoint } from './medblocks-api';

/** Where Medplum runs the bots: AWS Lambda (hosted Medplum) or inside the server (self-hosted). */
export type Runtime = 'awslambda' | 'vmcontext';

export interface MedplumBotConfig {
  readonly name: string;
  readonly id: string;
  readonly source: string;
  readonly dist: string;
}

export interface MedplumConfig {
  readonly bots?: readonly MedplumBotConfig[];
  readonly [key: string]: unknown;
}

/**
 * Medplum added Bot.rawBody in 5.2.0; older servers refuse the field on strict projects (`Invalid
 * additional property "rawBody"`) and hand bots a parsed object. Undefined when the version is unreadable.
 */
export function supportsRawBody(version: string | undefined): boolean | undefined {
  const match = /^(\d+)\.(\d+)\./.exec(version ?? '');
  if (!match) return undefined;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  return major > 5 || (major === 5 && minor >= 2);
}

/** The first of several resources with exactly this name (name searches match prefixes). */
export function byExactName<T extends { name?: string }>(found: readonly T[], name: string): T | undefined {
  return found.find((r) => r.name === name);
}

/** Whether an existing policy's grants differ from the file's. Only name and resource[] are ours. */
export function policyDiffers(desired: AccessPolicy, existing: AccessPolicy): boolean {
  return JSON.stringify(desired.resource ?? []) !== JSON.stringify(existing.resource ?? []);
}

export type BotSettings = Pick<
  Bot,
  | 'publicWebhook'
  | 'rawBody'
  | 'auditEventTrigger'
  | 'auditEventDestination'
  | 'runtimeVersion'
  | 'timeout'
  | 'cronString'
>;

/**
 * The Bot fields provisioning owns. `runtime` is only enforced when given: an existing bot keeps
 * the runtime someone chose (new bots get the preflight's choice). rawBody is left out on servers
 * that predate it (they would refuse the field).
 */
export function desiredBotSettings(spec: DeployedBot, runtime: Runtime | undefined, rawBody: boolean): BotSettings {
  const common: BotSettings = {
    auditEventTrigger: 'always',
    auditEventDestination: ['resource'],
    timeout: spec.timeoutSeconds,
    ...(runtime ? { runtimeVersion: runtime } : {}),
  };
  if (spec.kind === 'cron') {
    // A scheduled bot needs no public URL; leaving one open would let anyone trigger it.
    return { ...common, publicWebhook: false, cronString: spec.schedule };
  }
  return { ...common, publicWebhook: true, ...(rawBody ? { rawBody: true } : {}) };
}

/** Human-readable differences, e.g. `publicWebhook false → true`; empty when the bot is as desired. */
export function botDrift(bot: Bot, desired: BotSettings): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(desired) as [keyof BotSettings, unknown][]) {
    const current = bot[key] as unknown;
    if (JSON.stringify(current) !== JSON.stringify(value)) {
      out.push(`${key} ${current === undefined ? 'unset' : JSON.stringify(current)} → ${JSON.stringify(value)}`);
    }
  }
  return out;
}

export function policyReference(policyId: string): Reference<AccessPolicy> {
  return { reference: `AccessPolicy/${policyId}` };
}

/**
 * A bot's membership must carry exactly its own policy: Medplum refuses public webhooks without
 * one, and any other policy (or extra `access` entries) would widen what the bot may do.
 */
export function membershipDrift(membership: ProjectMembership, policyId: string): string | undefined {
  const current = membership.accessPolicy?.reference;
  if (current === `AccessPolicy/${policyId}` && !membership.access?.length) return undefined;
  if (!current && !membership.access?.length) return 'no access policy → own policy';
  return `access policy ${current ?? 'access[]'} → own policy`;
}

export function withOwnPolicy(membership: ProjectMembership, policyId: string): ProjectMembership {
  const { access: _access, ...rest } = membership;
  return { ...rest, accessPolicy: policyReference(policyId) };
}

/** `{base}/webhook/{membership id}`: the URL Medblocks posts to (the membership id, not the Bot id). */
export function webhookUrl(baseUrl: string, membershipId: string): string {
  return new URL(`webhook/${membershipId}`, baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`).toString();
}

/**
 * medplum.config.json with every deployed bot listed once, ids filled in where known. Other
 * entries and keys are kept. Returns undefined when nothing changes.
 */
export function configWithBots(
  config: MedplumConfig,
  bots: readonly DeployedBot[],
  ids: Readonly<Record<string, string | undefined>>
): MedplumConfig | undefined {
  const existing = config.bots ?? [];
  const ours = new Set(bots.map((b) => b.name));
  const entries: MedplumBotConfig[] = existing.filter((b) => !ours.has(b.name));
  for (const bot of bots) {
    const before = existing.find((b) => b.name === bot.name);
    entries.push({ name: bot.name, id: ids[bot.name] ?? before?.id ?? '', source: bot.source, dist: bot.dist });
  }
  const next = { ...config, bots: entries };
  return JSON.stringify(next) === JSON.stringify(config) ? undefined : next;
}

export type EndpointPlan =
  | { readonly action: 'reuse'; readonly endpoint: MedblocksEndpoint }
  | { readonly action: 'enable'; readonly endpoint: MedblocksEndpoint }
  | { readonly action: 'create' };

/**
 * One endpoint per bot: an existing one with the bot's URL subscribed to any of the names of its
 * event (the flow event has two: `patient_flow.completed`, `patient_session.completed`) is reused,
 * re-enabled if disabled.
 */
export function planEndpoint(
  endpoints: readonly MedblocksEndpoint[],
  url: string,
  events: readonly string[]
): EndpointPlan {
  const matching = endpoints.filter(
    (e) => e.url === url && (e.events.some((name) => events.includes(name)) || e.events.includes('*'))
  );
  const active = matching.find((e) => e.status === 'active');
  if (active) return { action: 'reuse', endpoint: active };
  const disabled = matching[0];
  return disabled ? { action: 'enable', endpoint: disabled } : { action: 'create' };
}

/** Whether the project has a non-blank value for this secret name. */
export function hasSecret(secrets: readonly ProjectSetting[], name: string): boolean {
  const setting = secrets.find((s) => s.name === name);
  return Boolean(setting?.valueString?.trim());
}

/**
 * Project secrets given in the environment under their own names (a bot's signing secret, a
 * setting such as MEDBLOCKS_ALLOW_PARSED_BODY) whose project value differs: what provisioning stores.
 */
export function secretsFromEnv(
  secrets: readonly ProjectSetting[],
  names: readonly string[],
  lookup: (name: string) => string | undefined
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const wanted = lookup(name);
    const current = secrets.find((s) => s.name === name);
    const value = current?.valueString ?? current?.valueBoolean ?? current?.valueInteger ?? current?.valueDecimal;
    if (wanted !== undefined && String(value ?? '').trim() !== wanted) out[name] = wanted;
  }
  return out;
}

/** The project's secret list with these names set; every other secret kept as it was. */
export function mergeSecrets(
  secrets: readonly ProjectSetting[],
  updates: Readonly<Record<string, string>>
): ProjectSetting[] {
  const names = Object.keys(updates);
  const kept = secrets.filter((s) => !names.includes(s.name));
  return [...kept, ...names.map((name) => ({ name, valueString: updates[name] }))];
}
