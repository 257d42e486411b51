// Where verify delivers on a real server: each webhook bot found by name, its webhook URL from its
// ProjectMembership (`{base}webhook/{membership id}`, not the Bot id), and its signing secret from
// the project's secrets (a project admin reads Project.secret) or, failing that, from the
// environment under the same name; and whether the records import is on (its bot, the project
// secret MEDBLOCKS_API_KEY), for verify's import rows. Read-only.
import { REGISTRY, WEBHOOK_BOTS } from '../../runtime/registry';
import type { WebhookBotName } from '../../runtime/registry';
import type { EnvLookup } from '../provision/env';
import { call, membershipOf, readProject } from '../provision/medplum';
import type { MedplumSession } from '../provision/medplum';
import { byExactName, supportsRawBody, webhookUrl } from '../provision/plan';
import { parsedBodyExplanation, secretIsTrue } from '../provision/preflight';
import type { VerifyBot, VerifyTarget } from './verify';
import { importSetting } from './import-check';
import { readBoolean, SETTING_NAMES } from '../../runtime/settings';

export interface FoundTarget {
  readonly target: VerifyTarget;
  /** Why verify cannot run (a bot missing, no secret to sign with); each names the fix. */
  readonly problems: readonly string[];
  /** Context worth printing first: the server, where each secret came from, the fallback. */
  readonly notes: readonly string[];
}

const IMPORT_BOT = REGISTRY['medblocks-records-import'].name;

/** The first of several secrets (a rotation list) as the bots read them. */
function firstSecret(value: string | undefined): string | undefined {
  return value?.split(/[\s,]+/).find((s) => s.length > 0);
}

export async function findTarget(session: MedplumSession, lookup: EnvLookup): Promise<FoundTarget> {
  const { medplum } = session;
  const problems: string[] = [];
  const notes: string[] = [];
  const { project, readable } = await readProject(session);
  const secrets = project.secret ?? [];
  const rawBodySupported = supportsRawBody(session.version);
  notes.push(
    `Medplum ${session.version ?? 'version unknown'} at ${session.baseUrl}, Project/${session.projectId}` +
      (readable ? '' : ' (its secrets are not readable: signing secrets come from the environment)')
  );
  if (rawBodySupported === false) {
    notes.push(parsedBodyExplanation(session.version, secretIsTrue(secrets, SETTING_NAMES.allowParsedBody)));
  }

  const bots: VerifyBot[] = [];
  for (const descriptor of WEBHOOK_BOTS) {
    const name: WebhookBotName = descriptor.name;
    const bot = byExactName(await call('GET', 'fhir/R4/Bot', () => medplum.searchResources('Bot', { name })), name);
    if (!bot?.id) {
      problems.push(`Bot "${name}" is not in Project/${session.projectId}: run npm run provision first.`);
      continue;
    }
    const membership = await membershipOf(medplum, bot.id);
    if (!membership?.id) {
      problems.push(`Bot/${bot.id} (${name}) has no ProjectMembership, so no webhook URL: run npm run provision.`);
      continue;
    }
    const fromProject = firstSecret(secrets.find((s) => s.name === descriptor.secretName)?.valueString);
    const fromEnv = firstSecret(lookup(descriptor.secretName));
    const secret = fromProject ?? fromEnv;
    if (!secret) {
      problems.push(
        `No signing secret for ${name}: set ${descriptor.secretName} in Project Admin → Secrets, or put it in the ` +
          'environment or .env and run npm run provision, which stores it.'
      );
    }
    notes.push(
      `${name}: ${webhookUrl(session.baseUrl, membership.id)} (secret from ${fromProject ? 'the project' : fromEnv ? 'the environment' : 'nowhere'})`
    );
    bots.push({ name, botId: bot.id, webhookUrl: webhookUrl(session.baseUrl, membership.id), secret });
  }
  const byName = readable ? Object.fromEntries(secrets.map((x) => [x.name, x])) : undefined;
  const createsMissingPatients = byName
    ? (readBoolean(byName, SETTING_NAMES.createMissingPatients) ?? true)
    : undefined;
  const importBot = byExactName(
    await call('GET', 'fhir/R4/Bot', () => medplum.searchResources('Bot', { name: IMPORT_BOT })),
    IMPORT_BOT
  );
  const recordsImport = importSetting(importBot?.id, byName);
  return { target: { bots, medplum, rawBodySupported, createsMissingPatients, recordsImport }, problems, notes };
}
