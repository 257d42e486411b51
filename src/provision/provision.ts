// `npm run provision`: observe the project, plan with plan.ts, apply (unless dry-run), report.
// Order matters: policies before bots (the admin API attaches the policy at creation), bots
// before memberships, ids into medplum.config.json before deploying, endpoints last (they need
// the webhook URLs). Secrets are handled here only as values passed from Medblocks to Medplum:
// they are never logged or reported.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AccessPolicy, Bot } from '@medplum/fhirtypes';
import { DEPLOYED_BOTS } from './catalog';
import type { DeployedBot, Runtime } from './catalog';
import type { Settings } from './env';
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
  supportsRawBody,
  webhookUrl,
  withOwnPolicy,
} from './plan';
import type { MedplumConfig } from './plan';
import { MedblocksApi, MedplumApi } from './remote';

export const CONFIG_FILE = 'medplum.config.json';

export interface ProvisionOptions {
  readonly root: string;
  readonly settings: Settings;
  readonly dryRun: boolean;
  readonly runtime?: Runtime;
  readonly bots?: readonly DeployedBot[];
  readonly fetchFn?: typeof fetch;
  /** Builds missing bundles (defaults to esbuild via src/cli/build.ts). */
  readonly build?: (root: string) => Promise<unknown>;
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
  readonly changes: readonly Change[];
  readonly warnings: readonly string[];
  readonly bots: readonly BotOutcome[];
}

/** Runs provisioning end to end. Idempotent: a second run over the same project reports no changes. */
export async function provision(options: ProvisionOptions): Promise<ProvisionReport> {
  const { root, settings, dryRun } = options;
  const bots = options.bots ?? DEPLOYED_BOTS;
  const changes: Change[] = [];
  const warnings: string[] = [];
  const change = (target: string, action: string, detail?: string): void => {
    changes.push({ target, action: dryRun ? `would ${action}` : action, ...(detail ? { detail } : {}) });
  };

  if (!settings.clientId || !settings.clientSecret) {
    throw new Error('MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET must be set (environment or .env)');
  }
  const missingDist = bots.filter((b) => !existsSync(join(root, b.dist)));
  if (missingDist.length > 0) {
    change('dist/', 'build', `${missingDist.length} bundle(s) missing`);
    if (!dryRun) await (options.build ?? defaultBuild)(root);
  }

  const medplum = await MedplumApi.fromSettings(settings, options.fetchFn);
  const health = await medplum.healthcheck().catch(() => ({ version: undefined }));
  const rawBodySupported = supportsRawBody(health.version);
  if (rawBodySupported === false) {
    warnings.push(
      `Medplum ${health.version ?? '?'} predates Bot.rawBody (added in 5.2): webhook bots will refuse every delivery ` +
        `with body_not_raw. Upgrade the server to 5.2 or later, then run provision again.`
    );
  } else if (rawBodySupported === undefined) {
    warnings.push('Could not read the Medplum version from /healthcheck; assuming Bot.rawBody is supported.');
  }

  // 1. Access policies.
  const policyIds: Record<string, string | undefined> = {};
  for (const bot of bots) {
    const desired = JSON.parse(readFileSync(join(root, bot.policyFile), 'utf8')) as AccessPolicy;
    const name = desired.name ?? bot.name;
    const existing = byExactName(await medplum.search<AccessPolicy>('AccessPolicy', { name }), name);
    if (!existing?.id) {
      change(`AccessPolicy "${name}"`, 'create');
      if (!dryRun) policyIds[bot.name] = (await medplum.create<AccessPolicy>({ ...desired, name })).id;
    } else {
      policyIds[bot.name] = existing.id;
      if (policyDiffers(desired, existing)) {
        change(`AccessPolicy/${existing.id}`, 'update', 'grants differ from the file');
        if (!dryRun) await medplum.update<AccessPolicy>({ ...existing, name, resource: desired.resource });
      }
    }
  }

  // 2. Bots, their settings, memberships and deployed code.
  const outcomes: BotOutcome[] = [];
  for (const bot of bots) {
    outcomes.push(
      await provisionBot(medplum, bot, policyIds[bot.name], { options, rawBody: rawBodySupported !== false, change })
    );
  }

  // 3. medplum.config.json, so that `npx medplum bot deploy 'medblocks-*'` finds every bot.
  const configPath = join(root, CONFIG_FILE);
  const config = existsSync(configPath) ? (JSON.parse(readFileSync(configPath, 'utf8')) as MedplumConfig) : {};
  const ids = Object.fromEntries(outcomes.map((o) => [o.name, o.id]));
  const nextConfig = configWithBots(config, bots, ids);
  if (nextConfig) {
    change(CONFIG_FILE, 'write', 'bot ids');
    if (!dryRun) writeFileSync(configPath, `${JSON.stringify(nextConfig, null, 2)}\n`, 'utf8');
  }

  // 4. Medblocks endpoints and the project secrets holding their signing secrets.
  const projectSecrets = await medplum.projectSecrets();
  const secretUpdates: Record<string, string> = {};
  const webhookBots = bots.filter((b) => b.kind === 'webhook');
  if (settings.medblocksApiKey) {
    const medblocks = new MedblocksApi(settings.medblocksBaseUrl, settings.medblocksApiKey, options.fetchFn);
    const endpoints = await medblocks.listEndpoints();
    for (const bot of webhookBots) {
      const outcome = outcomes.find((o) => o.name === bot.name);
      const event = bot.medblocksEvent ?? '';
      const secretName = bot.secretName ?? '';
      if (!outcome?.webhookUrl) {
        change(`Medblocks endpoint for ${event}`, 'register', 'once the bot exists');
        continue;
      }
      const plan = planEndpoint(endpoints, outcome.webhookUrl, event);
      if (plan.action === 'create') {
        change(`Medblocks endpoint for ${event}`, 'register', `→ ${bot.name}; signing secret stored as ${secretName}`);
        if (!dryRun) {
          const created = await medblocks.createEndpoint({
            url: outcome.webhookUrl,
            events: [event],
            description: `Medplum bot ${bot.name}`,
          });
          if (created.secret) secretUpdates[secretName] = created.secret;
          else warnings.push(`Medblocks returned no signing secret for ${event}; set ${secretName} by hand.`);
        }
        continue;
      }
      if (plan.action === 'enable') {
        change(`Medblocks endpoint ${plan.endpoint.id}`, 're-enable', `was ${plan.endpoint.status}`);
        if (!dryRun) await medblocks.updateEndpoint(plan.endpoint.id, { status: 'active' });
      }
      if (!hasSecret(projectSecrets, secretName)) {
        // Medblocks shows a secret only at creation or rotation; without it the bot rejects every
        // delivery anyway, so rotating loses nothing.
        change(
          `Medblocks endpoint ${plan.endpoint.id}`,
          'rotate signing secret',
          `${secretName} is missing in Medplum`
        );
        if (!dryRun) {
          const rotated = await medblocks.rotateSecret(plan.endpoint.id);
          if (rotated.secret) secretUpdates[secretName] = rotated.secret;
        }
      }
    }
  } else {
    for (const bot of webhookBots) {
      if (bot.secretName && !hasSecret(projectSecrets, bot.secretName)) {
        warnings.push(
          `Project secret ${bot.secretName} is not set: ${bot.name} will reject deliveries with no_secret_configured. ` +
            'Run with MEDBLOCKS_API_KEY to register the endpoint and store its signing secret, or set it in Project Admin → Secrets.'
        );
      }
    }
  }
  const names = Object.keys(secretUpdates);
  if (names.length > 0) {
    change('Project secrets', 'set', names.join(', '));
    await medplum.setProjectSecrets(mergeSecrets(projectSecrets, secretUpdates));
  }

  return {
    dryRun,
    baseUrl: settings.medplumBaseUrl,
    projectId: medplum.projectId,
    medplumVersion: health.version,
    changes,
    warnings,
    bots: outcomes,
  };
}

interface BotContext {
  readonly options: ProvisionOptions;
  readonly rawBody: boolean;
  readonly change: (target: string, action: string, detail?: string) => void;
}

async function provisionBot(
  medplum: MedplumApi,
  spec: DeployedBot,
  policyId: string | undefined,
  { options, rawBody, change }: BotContext
): Promise<BotOutcome> {
  const { dryRun } = options;
  const desired = desiredBotSettings(spec, options.runtime, rawBody);
  let bot = byExactName(await medplum.search<Bot>('Bot', { name: spec.name }), spec.name);
  if (!bot?.id) {
    const runtime = options.runtime ?? 'awslambda';
    change(`Bot "${spec.name}"`, 'create', `${runtime}, with its policy; then configure and deploy`);
    if (dryRun || !policyId) return { name: spec.name, kind: spec.kind };
    const created = await medplum.createBot(
      spec.name,
      `Medblocks Connect → Medplum (${spec.kind})`,
      policyReference(policyId),
      runtime
    );
    bot = await medplum.read<Bot>('Bot', created.id ?? '');
  }
  const botId = bot.id ?? '';

  const drift = botDrift(bot, { runtimeVersion: options.runtime ?? bot.runtimeVersion ?? 'awslambda', ...desired });
  if (drift.length > 0) {
    change(`Bot/${botId} (${spec.name})`, 'update', drift.join(', '));
    if (!dryRun) {
      bot = await medplum.update<Bot>({ ...bot, runtimeVersion: bot.runtimeVersion ?? 'awslambda', ...desired });
    }
  }

  const membership = await medplum.membershipOf(botId);
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
    if (!dryRun && policyId) await medplum.updateMembership(withOwnPolicy(membership, policyId));
  }

  const code = readFileOrUndefined(join(options.root, spec.dist));
  if (code !== undefined) {
    const deployedRef = bot.executableCode?.url;
    const deployed = deployedRef ? await medplum.readBinaryText(deployedRef) : undefined;
    if (deployed !== code) {
      change(`Bot/${botId} (${spec.name})`, 'deploy', `${spec.dist} (${code.length} bytes)`);
      if (!dryRun) await medplum.deploy(botId, code, basename(spec.dist));
    }
  }

  return {
    name: spec.name,
    kind: spec.kind,
    id: botId,
    membershipId: membership.id,
    ...(spec.kind === 'webhook' ? { webhookUrl: webhookUrl(medplum.baseUrl, membership.id) } : {}),
  };
}

function readFileOrUndefined(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

async function defaultBuild(root: string): Promise<void> {
  const { buildBots } = await import('../cli/build');
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
    lines.push(`${report.changes.length} change(s)${report.dryRun ? ' planned' : ' applied'}.`);
  }
  lines.push('');
  for (const bot of report.bots) {
    const where = bot.webhookUrl ?? (bot.kind === 'scheduled' ? 'scheduled (no webhook)' : 'not created yet');
    lines.push(`  ${bot.name.padEnd(44)} ${bot.id ? `Bot/${bot.id}` : '-'}  ${where}`);
  }
  return lines;
}
