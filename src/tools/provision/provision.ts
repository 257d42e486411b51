// `npm run provision`: connect, run the read-only preflight (./preflight.ts), plan with plan.ts,
// apply (unless dry-run), report. Order matters: nothing is written before the preflight passed;
// policies before bots (the admin API attaches the policy at creation), bots before memberships,
// ids into medplum.config.json before deploying, endpoints last (they need the webhook URLs).
// Secrets are handled here only as values passed from Medblocks or the environment to Medplum:
// they are never logged or reported.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AccessPolicy, Bot, CodeSystem, ProjectSetting, StructureDefinition } from '@medplum/fhirtypes';
import type { MedplumClient } from '@medplum/core';
import { SETTING_NAMES } from '../../runtime/settings';
import { IMPORT_SETTING_NAMES } from '../../runtime/import/settings';
import { ALL_BOTS } from '../../runtime/registry';
import type { BotEntry as DeployedBot } from '../../runtime/registry';
import type { Runtime } from './plan';
import type { Settings } from './env';
import { MedblocksApi, MedblocksApiError } from './medblocks-api';
import { observeRefusals, refusedEventName } from './medblocks-refusals';
import type { RefusalLog } from './medblocks-refusals';
import { reachableFetch } from './reach';
import { packageDefinitions } from './package-definitions';
import {
  call,
  connectMedplum,
  createBot,
  deployCode,
  membershipOf,
  readDeployedCode,
  readProject,
  setProjectSecrets,
  updateMembership,
} from './medplum';
import type { MedplumSession } from './medplum';
import {
  botDrift,
  byExactName,
  configWithBots,
  desiredBotSettings,
  hasSecret,
  membershipDrift,
  mergeSecrets,
  planEndpoint,
  policyDiffers,
  policyReference,
  secretsFromEnv,
  webhookUrl,
  withOwnPolicy,
} from './plan';
import type { MedplumConfig } from './plan';
import { analysePreflight, PreflightError } from './preflight';
import { probeVmContext, vmContextFindings } from './runtime-probe';
import { addOwnCategory, OWN_CATEGORY_TOKEN } from './consent-category';
import type { Preflight } from './preflight';

export const CONFIG_FILE = 'medplum.config.json';

export interface ProvisionOptions {
  readonly root: string;
  readonly settings: Settings;
  readonly dryRun: boolean;
  readonly runtime?: Runtime;
  readonly bots?: readonly DeployedBot[];
  readonly fetchFn?: typeof fetch;
  /** Builds missing bundles (defaults to esbuild via src/tools/cli/build.ts). */
  readonly build?: (root: string) => Promise<unknown>;
  /**
   * Turn on the records import: MEDBLOCKS_API_KEY (with MEDBLOCKS_API_BASE_URL and
   * MEDBLOCKS_IMPORT_TYPES when given) from the environment become project secrets.
   */
  readonly enableImport?: boolean;
  /** Called once the preflight passed, before any change: so that its warnings show even if a later step fails. */
  readonly onPreflight?: (preflight: Preflight) => void;
}

export interface Change {
  readonly target: string;
  readonly action: string;
  readonly detail?: string;
}

export interface BotOutcome {
  readonly name: string;
  readonly kind: DeployedBot['kind'];
  readonly id?: string;
  readonly membershipId?: string;
  readonly webhookUrl?: string;
}

export interface ProvisionReport {
  readonly dryRun: boolean;
  readonly baseUrl: string;
  readonly projectId: string;
  readonly medplumVersion: string | undefined;
  readonly preflight: Preflight;
  readonly changes: readonly Change[];
  /** Found while provisioning; the preflight's own are in `preflight.warnings`. */
  readonly warnings: readonly string[];
  /** What provisioning could not check and how to check it by hand (the vmcontext setting before any run). */
  readonly notes: readonly string[];
  readonly bots: readonly BotOutcome[];
}

/**
 * Every project secret a user may hand to provisioning through the environment, by name. With
 * MEDBLOCKS_API_KEY the signing secrets come from Medblocks only: a value from the environment
 * would overwrite the endpoint's real secret on every later run.
 */
export function projectSecretNames(
  bots: readonly DeployedBot[],
  medblocksManaged: boolean,
  enableImport = false
): string[] {
  const signing = bots.map((b) => b.secretName).filter((n): n is string => Boolean(n));
  // The import's settings are the tools' own variables (MEDBLOCKS_API_KEY…): stored only when asked.
  const importing = enableImport ? Object.values(IMPORT_SETTING_NAMES) : [];
  return [...(medblocksManaged ? [] : signing), ...Object.values(SETTING_NAMES), ...importing];
}

/**
 * Runs provisioning end to end. Idempotent: a second run over the same project reports no
 * changes. Throws PreflightError, having changed nothing, when the project cannot work.
 */
export async function provision(options: ProvisionOptions): Promise<ProvisionReport> {
  const { root, settings, dryRun } = options;
  const bots = options.bots ?? ALL_BOTS;
  const changes: Change[] = [];
  const change = (target: string, action: string, detail?: string): void => {
    changes.push({ target, action: dryRun ? `would ${action}` : action, ...(detail ? { detail } : {}) });
  };

  // 0. Read-only preflight: nothing below runs unless the project can work.
  const session = await connectMedplum(settings, options.fetchFn);
  const { project, readable } = await readProject(session);
  const projectSecrets = project.secret ?? [];
  const medblocksManaged = settings.medblocksApiKey !== undefined;
  const fromEnv = secretsFromEnv(
    projectSecrets,
    projectSecretNames(bots, medblocksManaged, options.enableImport),
    settings.lookup
  );
  const preflight = analysePreflight(
    {
      baseUrl: session.baseUrl,
      version: session.version,
      projectId: session.projectId,
      projectName: project.name,
      features: project.features ?? session.project.features ?? [],
      clientId: session.clientId,
      admin: session.membership?.admin === true,
      superAdmin: session.superAdmin,
      projectReadable: readable,
      secrets: mergeSecrets(projectSecrets, fromEnv),
    },
    options.runtime
  );
  if (preflight.errors.length > 0) throw new PreflightError(preflight);
  options.onPreflight?.(preflight);
  const warnings: string[] = [];
  if (medblocksManaged) {
    for (const bot of bots) {
      if (bot.secretName && settings.lookup(bot.secretName) !== undefined) {
        warnings.push(
          `${bot.secretName} from the environment is ignored: with MEDBLOCKS_API_KEY, Medblocks issues the signing secrets.`
        );
      }
    }
  }

  const missingDist = bots.filter((b) => !existsSync(join(root, b.dist)));
  if (missingDist.length > 0) {
    change('dist/', 'build', `${missingDist.length} bundle(s) missing`);
    if (!dryRun) await (options.build ?? defaultBuild)(root);
  }

  // 0b. Consents from before the package's own category: given it before the policies that confine by it.
  const { medplum } = session;
  const migrateConsents = async (when: string): Promise<void> => {
    const migration = await addOwnCategory(medplum, dryRun);
    if (migration.lacking > 0) {
      change(
        'Consent',
        'add the category',
        `${OWN_CATEGORY_TOKEN} to ${String(dryRun ? migration.lacking : migration.added)} of this package's Consents (${when})`
      );
    }
    if (migration.changedMeanwhile > 0) {
      warnings.push(
        `${String(migration.changedMeanwhile)} Consent(s) changed while the category ${OWN_CATEGORY_TOKEN} was being added (${when}): run provision again to add it to any an older bot rewrote.`
      );
    }
    if (migration.truncated) {
      warnings.push(
        `Only the first Consents were given the category ${OWN_CATEGORY_TOKEN}: run provision again until this warning is gone.`
      );
    }
  };
  await migrateConsents('before the policies');

  // 1. Access policies.
  const policyIds: Record<string, string | undefined> = {};
  for (const bot of bots) {
    const desired = JSON.parse(readFileSync(join(root, bot.policyFile), 'utf8')) as AccessPolicy;
    const name = desired.name ?? bot.name;
    const existing = byExactName(
      await call('GET', 'fhir/R4/AccessPolicy', () => medplum.searchResources('AccessPolicy', { name })),
      name
    );
    if (!existing?.id) {
      change(`AccessPolicy "${name}"`, 'create');
      if (!dryRun) {
        const created = await call('POST', 'fhir/R4/AccessPolicy', () =>
          medplum.createResource<AccessPolicy>({ ...desired, name })
        );
        policyIds[bot.name] = created.id;
      }
    } else {
      policyIds[bot.name] = existing.id;
      if (policyDiffers(desired, existing)) {
        change(`AccessPolicy/${existing.id}`, 'update', 'grants differ from the file');
        if (!dryRun) {
          await call('PUT', `fhir/R4/AccessPolicy/${existing.id}`, () =>
            medplum.updateResource<AccessPolicy>({ ...existing, name, resource: desired.resource })
          );
        }
      }
    }
  }

  // 1b. The package's CodeSystem and extension definitions, so that the app can show what its codes mean.
  for (const definition of packageDefinitions()) {
    await installDefinition(medplum, definition, dryRun, change);
  }

  // 2. Bots, their settings, memberships and deployed code.
  const outcomes: BotOutcome[] = [];
  for (const bot of bots) {
    outcomes.push(await provisionBot(session, bot, policyIds[bot.name], { options, preflight, change, warnings }));
  }

  // 2a. Once more: a bot of the old code still running until its new code was deployed rewrote its Consents without it.
  if (!dryRun) await migrateConsents('after the deploy');

  // 2b. A server with vmContextBotsEnabled off accepts every $deploy and fails every run: read the
  // bots' newest runs for that refusal (read-only; advice, never a reason to fail provisioning).
  const notes: string[] = [];
  if (!dryRun && preflight.runtime === 'vmcontext') {
    const deployed = outcomes.flatMap((o) => (o.id ? [{ name: o.name, id: o.id }] : []));
    const findings = vmContextFindings(await probeVmContext(medplum, deployed));
    warnings.push(...findings.warnings);
    notes.push(...findings.notes);
  }

  // 3. medplum.config.json, so that `npx medplum bot deploy 'medblocks-*'` finds every bot.
  const configPath = join(root, CONFIG_FILE);
  const config = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as MedplumConfig) : {};
  const ids = Object.fromEntries(outcomes.map((o) => [o.name, o.id]));
  const nextConfig = configWithBots(config, bots, ids);
  // The tracked file ships with the emulator's ids (stable, derived from the bot names): writing
  // any other ids from the emulator would leave it dirty.
  const emulated = session.version?.endsWith('-emulator') === true;
  if (nextConfig && emulated) {
    notes.push(
      `${CONFIG_FILE} left as it is: this is the local emulator (the file as shipped holds the emulator's bot ids, derived from the bot names). Against a real Medplum, provision writes the ids there for \`npx medplum bot deploy\`.`
    );
  } else if (nextConfig) {
    change(CONFIG_FILE, 'write', 'bot ids');
    if (!dryRun) writeFileSync(configPath, `${JSON.stringify(nextConfig, null, 2)}\n`, 'utf8');
  }

  // 4. Project secrets: those given in the environment, then Medblocks endpoints and their signing secrets.
  const secretUpdates: Record<string, string> = { ...fromEnv };
  const secretsAfterEnv = mergeSecrets(projectSecrets, fromEnv);
  const webhookBots = bots.filter((b) => b.kind === 'webhook');
  if (settings.medblocksApiKey) {
    const refusals: RefusalLog = { last: undefined };
    const medblocksFetch = observeRefusals(
      reachableFetch('MEDBLOCKS_API_BASE_URL', settings.medblocksBaseUrl, options.fetchFn),
      refusals
    );
    const medblocks = new MedblocksApi(settings.medblocksBaseUrl, settings.medblocksApiKey, medblocksFetch);
    warnings.push(...(await medblocksClockWarnings(medblocks, Date.now)));
    await registerEndpoints(medblocks, webhookBots, outcomes, secretsAfterEnv, {
      refusals,
      dryRun,
      change,
      warnings,
      secretUpdates,
    });
  } else {
    for (const bot of webhookBots) {
      if (bot.secretName && !hasSecret(secretsAfterEnv, bot.secretName)) {
        warnings.push(
          `Project secret ${bot.secretName} is not set: ${bot.name} will reject deliveries with no_secret_configured. ` +
            `Run with MEDBLOCKS_API_KEY to register the endpoint and store its signing secret, put ${bot.secretName}=whsec_… ` +
            'in the environment or .env and run provision again, or set it in Project Admin → Secrets.'
        );
      }
    }
  }
  const names = Object.keys(secretUpdates);
  if (names.length > 0) {
    change(
      'Project secrets',
      'set',
      names.map((n) => (n in fromEnv && fromEnv[n] === secretUpdates[n] ? `${n} (from the environment)` : n)).join(', ')
    );
    if (!dryRun) await setProjectSecrets(session, mergeSecrets(projectSecrets, secretUpdates));
  }

  return {
    dryRun,
    baseUrl: settings.medplumBaseUrl,
    projectId: session.projectId,
    medplumVersion: session.version,
    preflight,
    changes,
    warnings,
    notes,
    bots: outcomes,
  };
}

/** Beyond this, Medblocks' clock and ours disagree enough to name (the bots accept 300 s by default). */
const CLOCK_SKEW_WARNING_SECONDS = 60;

/**
 * Medblocks' `GET /health`: its clock against this machine's. The bots check a delivery's timestamp
 * against the Medplum server's clock within MEDBLOCKS_SIGNATURE_TOLERANCE_SECONDS (300 by default),
 * so a Medblocks far off ours is worth knowing before the first delivery is refused as stale. Advice
 * only: a failed health read is said, and provisioning goes on (the endpoint calls say the rest).
 */
export async function medblocksClockWarnings(medblocks: MedblocksApi, now: () => number): Promise<string[]> {
  try {
    const { serverTime } = await medblocks.health();
    const at = serverTime ? Date.parse(serverTime) : Number.NaN;
    if (Number.isNaN(at)) return [];
    const skew = Math.round((at - now()) / 1000);
    if (Math.abs(skew) <= CLOCK_SKEW_WARNING_SECONDS) return [];
    return [
      `Medblocks' clock (GET /health server_time) is ${String(Math.abs(skew))} s ${skew > 0 ? 'ahead of' : 'behind'} this machine's. ` +
        `The bots refuse a delivery whose signature timestamp is more than ${SETTING_NAMES.toleranceSeconds} (300 s by default) from the Medplum server's clock: ` +
        "if the Medplum server keeps this machine's time, check NTP on both sides.",
    ];
  } catch (err) {
    return [
      `Medblocks GET /health did not answer as published (${err instanceof Error ? err.message : 'unknown error'}); going on.`,
    ];
  }
}

type PackageDefinition = CodeSystem | StructureDefinition;

/** Key order and server bookkeeping (id, meta) do not count as a difference. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)))
      : v
  );
}

function withoutBookkeeping(resource: PackageDefinition): PackageDefinition {
  const { id: _id, meta: _meta, ...rest } = resource;
  return rest;
}

/** Creates the definition with its canonical URL, or updates it when it differs; nothing otherwise. */
async function installDefinition(
  medplum: MedplumClient,
  desired: PackageDefinition,
  dryRun: boolean,
  change: (target: string, action: string, detail?: string) => void
): Promise<void> {
  const type = desired.resourceType;
  const url = desired.url ?? '';
  const found: PackageDefinition[] = await call('GET', `fhir/R4/${type}?url=${url}`, () =>
    medplum.searchResources(type, { url })
  );
  const existing = found.find((r) => r.url === url);
  const detail =
    desired.resourceType === 'CodeSystem'
      ? `${desired.concept?.length ?? 0} codes with displays and definitions`
      : desired.title;
  if (!existing?.id) {
    change(`${type} ${url}`, 'create', detail);
    if (!dryRun) await call('POST', `fhir/R4/${type}`, () => medplum.createResource<PackageDefinition>(desired));
    return;
  }
  if (canonical(withoutBookkeeping(existing)) === canonical(desired)) return;
  change(`${type}/${existing.id}`, 'update', `${url} differs from this version's`);
  if (!dryRun) {
    const id = existing.id;
    await call('PUT', `fhir/R4/${type}/${id}`, () =>
      medplum.updateResource<PackageDefinition>({ ...desired, id, ...(existing.meta ? { meta: existing.meta } : {}) })
    );
  }
}

interface EndpointContext {
  /** The last Medblocks refusal's type and param (which event name was refused). */
  readonly refusals: RefusalLog;
  readonly dryRun: boolean;
  readonly change: (target: string, action: string, detail?: string) => void;
  readonly warnings: string[];
  /** Filled with the signing secrets Medblocks hands out. */
  readonly secretUpdates: Record<string, string>;
}

/** One Medblocks endpoint per event type, pointing at its bot; each signing secret into its project secret. */
async function registerEndpoints(
  medblocks: MedblocksApi,
  webhookBots: readonly DeployedBot[],
  outcomes: readonly BotOutcome[],
  secrets: readonly ProjectSetting[],
  { refusals, dryRun, change, warnings, secretUpdates }: EndpointContext
): Promise<void> {
  const endpoints = await medblocks.listEndpoints();
  const fromMedblocks = (secretName: string, secret: string): void => {
    secretUpdates[secretName] = secret;
  };
  for (const bot of webhookBots) {
    const outcome = outcomes.find((o) => o.name === bot.name);
    const event = bot.medblocksEvent ?? '';
    const secretName = bot.secretName ?? '';
    if (!outcome?.webhookUrl) {
      change(`Medblocks endpoint for ${event}`, 'register', 'once the bot exists');
      continue;
    }
    // The names the bot accepts, the documented one first (the flow event has two: the guides' older
    // name and the published API's, and an account may know only one of them).
    const names: readonly string[] = bot.eventTypes?.length ? bot.eventTypes : [event];
    const plan = planEndpoint(endpoints, outcome.webhookUrl, names);
    if (plan.action === 'create') {
      const alternatives = names.slice(1);
      if (dryRun) {
        change(
          `Medblocks endpoint for ${event}`,
          'register',
          `→ ${bot.name}; signing secret stored as ${secretName}` +
            (alternatives.length > 0 ? `; as ${alternatives.join(' or ')} if Medblocks refuses ${event}` : '')
        );
        continue;
      }
      const registered = await createWithFallback(medblocks, refusals, {
        url: outcome.webhookUrl,
        names,
        description: `Medplum bot ${bot.name}`,
      });
      const refused = names.slice(0, names.indexOf(registered.event));
      change(
        `Medblocks endpoint for ${registered.event}`,
        'register',
        `→ ${bot.name}; signing secret stored as ${secretName}` +
          (refused.length > 0
            ? `; registered as ${registered.event} because this Medblocks account refused ${refused.join(', ')} as an unknown event type`
            : '')
      );
      if (registered.secret) fromMedblocks(secretName, registered.secret);
      else warnings.push(`Medblocks returned no signing secret for ${registered.event}; set ${secretName} by hand.`);
      continue;
    }
    if (plan.action === 'enable') {
      change(`Medblocks endpoint ${plan.endpoint.id}`, 're-enable', `was ${plan.endpoint.status}`);
      if (!dryRun) await medblocks.updateEndpoint(plan.endpoint.id, { status: 'active' });
    }
    if (!hasSecret(secrets, secretName)) {
      // Medblocks shows a secret only at creation or rotation; without it the bot rejects every
      // delivery anyway, so rotating loses nothing.
      change(`Medblocks endpoint ${plan.endpoint.id}`, 'rotate signing secret', `${secretName} is missing in Medplum`);
      if (!dryRun) {
        const rotated = await medblocks.rotateSecret(plan.endpoint.id);
        if (rotated.secret) fromMedblocks(secretName, rotated.secret);
      }
    }
  }
}

/**
 * Registers an endpoint for the first event name Medblocks accepts. Only a refusal of the name
 * itself (400 invalid_request_error on `events`) moves on to the next name; any other failure,
 * or the last name refused, is thrown as it came.
 */
async function createWithFallback(
  medblocks: MedblocksApi,
  refusals: RefusalLog,
  request: { url: string; names: readonly string[]; description: string }
): Promise<{ event: string; secret: string | undefined }> {
  for (const [index, name] of request.names.entries()) {
    refusals.last = undefined;
    try {
      const created = await medblocks.createEndpoint({
        url: request.url,
        events: [name],
        description: request.description,
      });
      return { event: name, secret: created.secret };
    } catch (err) {
      const another = index < request.names.length - 1;
      if (!(err instanceof MedblocksApiError) || !refusedEventName(refusals.last) || !another) throw err;
    }
  }
  throw new Error('no event name to register');
}

interface BotContext {
  readonly options: ProvisionOptions;
  readonly preflight: Preflight;
  readonly change: (target: string, action: string, detail?: string) => void;
  readonly warnings: string[];
}

async function provisionBot(
  session: MedplumSession,
  spec: DeployedBot,
  policyId: string | undefined,
  { options, preflight, change, warnings }: BotContext
): Promise<BotOutcome> {
  const { medplum } = session;
  const { dryRun } = options;
  const desired = desiredBotSettings(spec, options.runtime, preflight.rawBody);
  let bot = byExactName(
    await call('GET', 'fhir/R4/Bot', () => medplum.searchResources('Bot', { name: spec.name })),
    spec.name
  );
  let runtimeBefore = bot?.runtimeVersion;
  if (!bot?.id) {
    change(`Bot "${spec.name}"`, 'create', `${preflight.runtime}, with its policy; then configure and deploy`);
    if (dryRun || !policyId) return { name: spec.name, kind: spec.kind };
    const created = await createBot(session, {
      name: spec.name,
      description: `Medblocks Connect → Medplum (${spec.kind})`,
      accessPolicy: policyReference(policyId),
      runtimeVersion: preflight.runtime,
    });
    bot = await call('GET', `fhir/R4/Bot/${created.id ?? ''}`, () => medplum.readResource('Bot', created.id ?? ''));
    runtimeBefore = undefined;
  } else if (!options.runtime && bot.runtimeVersion === 'awslambda' && !preflight.hosted) {
    warnings.push(
      `${spec.name} runs on awslambda on a self-hosted server. If its $deploy failed with "Could not load credentials from any providers", ` +
        'the server has its code but no Lambda: run `npm run provision -- --runtime vmcontext`.'
    );
  }
  const botId = bot.id;

  const runtime = options.runtime ?? bot.runtimeVersion ?? preflight.runtime;
  const drift = botDrift(bot, { runtimeVersion: runtime, ...desired });
  if (drift.length > 0) {
    change(`Bot/${botId} (${spec.name})`, 'update', drift.join(', '));
    if (!dryRun) {
      const current = bot;
      bot = await call('PUT', `fhir/R4/Bot/${botId}`, () =>
        medplum.updateResource<Bot>({ ...current, runtimeVersion: runtime, ...desired })
      );
    }
  }

  const membership = await membershipOf(medplum, botId);
  if (!membership?.id) {
    change(
      `Bot/${botId} (${spec.name})`,
      'report',
      'no ProjectMembership found: recreate the bot through the admin API'
    );
    return { name: spec.name, kind: spec.kind, id: botId };
  }
  const policyProblem = policyId ? membershipDrift(membership, policyId) : 'policy not created yet';
  if (policyProblem) {
    change(`ProjectMembership/${membership.id} (${spec.name})`, 'update', policyProblem);
    if (!dryRun && policyId) await updateMembership(session, withOwnPolicy(membership, policyId));
  }

  const code = readFileOrUndefined(join(options.root, spec.dist));
  if (code !== undefined) {
    const deployed = await readDeployedCode(medplum, bot);
    // A Lambda exists only after a $deploy with runtime awslambda: switching to it needs one.
    const newLambda = runtime === 'awslambda' && runtimeBefore !== 'awslambda';
    if (deployed !== code || newLambda) {
      change(`Bot/${botId} (${spec.name})`, 'deploy', `${spec.dist} (${code.length} bytes)`);
      if (!dryRun) {
        for (const warning of await deployCode(medplum, botId, code, basename(spec.dist))) {
          warnings.push(`$deploy of ${spec.name}: ${warning}`);
        }
      }
    }
  }

  return {
    name: spec.name,
    kind: spec.kind,
    id: botId,
    membershipId: membership.id,
    ...(spec.kind === 'webhook' ? { webhookUrl: webhookUrl(session.baseUrl, membership.id) } : {}),
  };
}

function readFileOrUndefined(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

async function defaultBuild(root: string): Promise<void> {
  const { buildBots } = await import('../bundling');
  await buildBots(root);
}

/** The report as lines for a terminal. Never contains secret values: only names. */
export function formatReport(report: ProvisionReport): string[] {
  const lines: string[] = [];
  lines.push(
    `Medplum ${report.baseUrl} (server ${report.medplumVersion ?? 'version unknown'}), project ${report.projectId}`
  );
  if (report.dryRun) lines.push('Dry run: nothing was changed.');
  for (const warning of report.warnings) lines.push(`WARNING: ${warning}`);
  if (report.changes.length === 0) {
    lines.push('No changes: everything was already provisioned.');
  } else {
    for (const c of report.changes)
      lines.push(`  ${c.action.padEnd(26)} ${c.target}${c.detail ? `  (${c.detail})` : ''}`);
    const newBots = report.changes.filter(
      (c) => (c.action === 'would create' && c.target.startsWith('Bot ')) || c.action === 'would build'
    ).length;
    lines.push(
      `${report.changes.length} change(s)${report.dryRun ? ' planned' : ' applied'}.` +
        (newBots > 0
          ? ` The run itself lists more: each new bot is then also configured and deployed, and each new bundle deployed, a line each.`
          : '')
    );
  }
  lines.push('');
  for (const bot of report.bots) {
    const where = bot.webhookUrl ?? (bot.kind === 'cron' ? 'scheduled (no webhook)' : 'not created yet');
    lines.push(`  ${bot.name.padEnd(44)} ${bot.id ? `Bot/${bot.id}` : '-'}  ${where}`);
  }
  for (const note of report.notes) lines.push('', `NOTE: ${note}`);
  // The bots name an EHR only once an Organization carries its name; nothing else creates those.
  if (!report.dryRun) {
    lines.push('', 'Next: once events have arrived, `npm run sources` names the EHRs in Tasks and Consents.');
  }
  return lines;
}

/** A passed preflight as lines: what was found, then what to know. */
export function formatPreflight(preflight: Preflight): string[] {
  return [preflight.summary, ...preflight.warnings.map((w) => `WARNING: ${w}`)];
}

/** A stopped preflight as lines: what was found, then each problem with its fix. */
export function formatPreflightFailure(preflight: Preflight): string[] {
  return [
    preflight.summary,
    ...preflight.errors.map((e) => `ERROR: ${e}`),
    ...preflight.warnings.map((w) => `WARNING: ${w}`),
    'provision stopped before changing anything.',
  ];
}
