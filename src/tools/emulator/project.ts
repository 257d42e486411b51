// The emulated Medplum project: a Project (features, secrets), and per bot an AccessPolicy, a Bot
// and the bot's ProjectMembership, written into the store like the admin API
// `POST /admin/projects/{id}/bot` does — so the webhook route finds them where Medplum would, and
// anyone can inspect them at /fhir/R4.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AccessPolicy, Bot, Practitioner, Project, ProjectMembership, ProjectSetting } from '@medplum/fhirtypes';
import { ALL_BOTS, WEBHOOK_BOTS } from '../../runtime/registry';
import { SETTING_NAMES } from '../../runtime/settings';
import { botIdFor, devSecret, EMULATOR_PROJECT_ID, membershipIdFor, stableId } from './identity';
import type { EmulatorStore } from './store';

/** How one bot is set up in the emulated project. */
export interface EmulatedBotSpec {
  readonly name: string;
  /** The bundle to run (`dist/<name>.js` by default); re-read on every run so a rebuild applies at once. */
  readonly file?: string;
  /** Inline code instead of a file (tests' probe bundles). */
  readonly code?: string;
  /** The membership's policy; `null` leaves the membership without one (Medplum then answers 403). */
  readonly policy?: AccessPolicy | null;
  readonly publicWebhook?: boolean;
  readonly rawBody?: boolean;
  /** Seconds; bounds synchronous work only, as in vmcontext. */
  readonly timeout?: number;
  /**
   * `Bot.cronString` of a scheduled bot: provision compares it, and `runScheduled` fires only a bot
   * with a valid one (CRON-2); the emulator never fires it on the clock.
   */
  readonly cronString?: string;
  /** The project secret holding this bot's Medblocks signing secret, when it has one. */
  readonly secretName?: string;
}

export interface SeededBot {
  readonly name: string;
  readonly botId: string;
  readonly membershipId: string;
  readonly secretName: string | undefined;
  readonly source: { readonly file?: string; readonly code?: string };
}

/**
 * Every bundle in `dist/`, each with the policy from `access-policies/<name>.json` (none when the
 * file is missing). Catalog bots are webhook bots (`publicWebhook` and `rawBody` on, their signing
 * secret); any other bundle — e.g. a cron bot — gets neither, as provisioning would configure it.
 */
export function discoverBots(root = process.cwd()): EmulatedBotSpec[] {
  const dist = join(root, 'dist');
  if (!existsSync(dist)) return [];
  return readdirSync(dist)
    .filter((f) => f.endsWith('.js'))
    .sort()
    .map((f) => {
      const name = basename(f, '.js');
      const catalog = WEBHOOK_BOTS.find((b) => b.name === name);
      // Configured as provisioning configures it, so that `npm run provision` against the emulator
      // finds nothing to change but the code to deploy.
      const entry = ALL_BOTS.find((b) => b.name === name);
      return {
        name,
        file: join(dist, f),
        policy: loadPolicyFile(root, name),
        publicWebhook: catalog !== undefined,
        rawBody: catalog !== undefined,
        secretName: catalog?.secretName,
        timeout: entry?.timeoutSeconds,
        cronString: entry?.schedule,
      };
    });
}

export function loadPolicyFile(root: string, botName: string): AccessPolicy | null {
  const file = join(root, 'access-policies', `${botName}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as AccessPolicy) : null;
}

/**
 * Project secrets: the given values, plus a dev signing secret for every bot secret not given.
 * Blank values are dropped, so an empty environment variable does not shadow the dev default.
 */
export function projectSecrets(bots: readonly EmulatedBotSpec[], given: Record<string, string>): ProjectSetting[] {
  const values = new Map<string, string>();
  for (const bot of bots) {
    if (bot.secretName) values.set(bot.secretName, devSecret(bot.secretName));
  }
  for (const [name, value] of Object.entries(given)) {
    if (value.trim() !== '') values.set(name, value);
  }
  return [...values].map(([name, valueString]) => ({ name, valueString }));
}

/** Names an operator may set through the environment: every bot signing secret and every setting. */
export function configurableSecretNames(bots: readonly EmulatedBotSpec[]): string[] {
  const names = new Set<string>(Object.values(SETTING_NAMES));
  for (const bot of bots) {
    if (bot.secretName) names.add(bot.secretName);
  }
  return [...names].sort();
}

/** Writes the project, an admin (a non-bot membership) and every bot into the store. */
export async function seedProject(
  store: EmulatorStore,
  bots: readonly EmulatedBotSpec[],
  secrets: ProjectSetting[]
): Promise<{ bots: SeededBot[]; adminMembershipId: string }> {
  const repo = store.repo;
  await repo.createResource<Project>({
    resourceType: 'Project',
    id: EMULATOR_PROJECT_ID,
    name: 'Medblocks emulator',
    features: [...store.features],
    secret: secrets,
  });
  const project = { reference: `Project/${EMULATOR_PROJECT_ID}` };

  const adminId = stableId('practitioner:admin');
  await repo.createResource<Practitioner>({ resourceType: 'Practitioner', id: adminId });
  const adminMembershipId = stableId('membership:admin');
  await repo.createResource<ProjectMembership>({
    resourceType: 'ProjectMembership',
    id: adminMembershipId,
    project,
    user: { reference: `User/${stableId('user:admin')}` },
    profile: { reference: `Practitioner/${adminId}` },
    admin: true,
  });

  const seeded: SeededBot[] = [];
  for (const spec of bots) {
    const botId = botIdFor(spec.name);
    const membershipId = membershipIdFor(spec.name);
    await repo.createResource<Bot>({
      resourceType: 'Bot',
      id: botId,
      meta: { project: EMULATOR_PROJECT_ID },
      name: spec.name,
      runtimeVersion: 'vmcontext',
      publicWebhook: spec.publicWebhook ?? false,
      rawBody: spec.rawBody ?? false,
      timeout: spec.timeout,
      cronString: spec.cronString,
      auditEventTrigger: 'always',
      auditEventDestination: ['resource'],
    });
    let accessPolicy: { reference: string } | undefined;
    if (spec.policy) {
      const policyId = stableId(`policy:${spec.name}`);
      await repo.createResource<AccessPolicy>({ ...spec.policy, id: policyId });
      accessPolicy = { reference: `AccessPolicy/${policyId}` };
    }
    await repo.createResource<ProjectMembership>({
      resourceType: 'ProjectMembership',
      id: membershipId,
      project,
      user: { reference: `Bot/${botId}` },
      profile: { reference: `Bot/${botId}` },
      accessPolicy,
    });
    seeded.push({
      name: spec.name,
      botId,
      membershipId,
      secretName: spec.secretName,
      source: { file: spec.file, code: spec.code },
    });
  }
  return { bots: seeded, adminMembershipId };
}
