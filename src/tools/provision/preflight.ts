// The read-only preflight provisioning runs before it changes anything: every
// trap that used to leave a half-provisioned project on a real server is checked here first —
// the `bots` feature, a usable runtime, the server version and Bot.rawBody, a project-admin
// client — and each problem is stated with the variable or setting that fixes it. A missing `cron`
// feature is only a warning: the webhook bots work without it, the scheduled sweeper does not.
import type { ProjectSetting } from '@medplum/fhirtypes';
import { ALL_BOTS } from '../../runtime/registry';
import type { CronBotEntry } from '../../runtime/registry';
import { SETTING_NAMES } from '../../runtime/settings';
import type { Runtime } from './plan';
import { supportsRawBody } from './plan';

/** What the server and the project look like, as far as a read-only look can tell. */
export interface ServerFacts {
  readonly baseUrl: string;
  /** `/healthcheck`'s version, e.g. `5.2.13-abc1234`. */
  readonly version: string | undefined;
  readonly projectId: string;
  readonly projectName: string | undefined;
  /**
   * `Project.features`; `bots` is required for `$deploy` and for every run, `cron` for any schedule
   * (Medplum's cron worker registers none for a project without it).
   */
  readonly features: readonly string[];
  readonly clientId: string;
  /** The client's ProjectMembership.admin. */
  readonly admin: boolean;
  readonly superAdmin: boolean;
  /** Whether `GET fhir/R4/Project/{id}` answered: provisioning rewrites the whole secret list from it. */
  readonly projectReadable: boolean;
  /** The project's secrets as they will be after provisioning stores the ones given in the environment. */
  readonly secrets: readonly ProjectSetting[];
}

export interface Preflight {
  readonly hosted: boolean;
  /** The runtime for new bots (and for existing ones when `--runtime` was given). */
  readonly runtime: Runtime;
  readonly runtimeReason: string;
  /** Send `Bot.rawBody: true`: only to servers that know the field. */
  readonly rawBody: boolean;
  /** Each stops provisioning before any change. */
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
  /** One line saying what was found. */
  readonly summary: string;
}

export class PreflightError extends Error {
  readonly preflight: Preflight;
  constructor(preflight: Preflight) {
    super(`preflight found ${preflight.errors.length} problem(s); nothing was changed`);
    this.name = 'PreflightError';
    this.preflight = preflight;
  }
}

/**
 * Medplum's hosted service runs bots on AWS Lambda; a self-hosted server usually has no Lambda
 * and runs them in-process (`vmcontext`), which is also what `$deploy` can do without AWS.
 */
export function isHostedMedplum(baseUrl: string): boolean {
  try {
    const host = new URL(baseUrl).hostname;
    return host === 'medplum.com' || host.endsWith('.medplum.com');
  } catch {
    return false;
  }
}

/** `true`/`1`/`yes` as the bots read it (src/runtime/settings.ts). */
export function secretIsTrue(secrets: readonly ProjectSetting[], name: string): boolean {
  const setting = secrets.find((s) => s.name === name);
  const raw = setting?.valueString ?? setting?.valueBoolean;
  return ['true', '1', 'yes'].includes(
    String(raw ?? '')
      .trim()
      .toLowerCase()
  );
}

/** What provisioning prints when the server predates Bot.rawBody, with the fallback's limits. */
export function parsedBodyExplanation(version: string | undefined, fallbackOn: boolean): string {
  const head = `Medplum ${version ?? '?'} predates Bot.rawBody (added in 5.2): rawBody is not sent (the server would refuse it as an unknown property), and bots receive the parsed JSON, not the bytes Medblocks signed.`;
  const limits =
    'It matches only while Medblocks sends compact JSON with the same key order and no escapes (such as \\u00e9) or pretty-printing; any other delivery is refused with signature_mismatch and retried until Medblocks disables the endpoint.';
  if (fallbackOn) {
    return `${head} ${SETTING_NAMES.allowParsedBody}=true is set, so the bots verify the signature against JSON.stringify of the parsed body. ${limits} Upgrade Medplum to 5.2 or later, run provision again and remove ${SETTING_NAMES.allowParsedBody}.`;
  }
  return `${head} Every delivery is refused with body_not_raw. Upgrade Medplum to 5.2 or later, then run provision again. Stopgap: set the project secret ${SETTING_NAMES.allowParsedBody}=true (or put it in the environment and run provision, which stores it): the bots then verify against JSON.stringify of the parsed body. ${limits}`;
}

/** The scheduled bots provisioning deploys by default: the ones a project without `cron` never runs. */
type ScheduledBot = Pick<CronBotEntry, 'name' | 'unscheduled'>;

const SCHEDULED_BOTS: readonly ScheduledBot[] = ALL_BOTS.filter((b): b is CronBotEntry => b.kind === 'cron');

/**
 * What provisioning prints when the project lacks `cron`. Medplum's cron worker
 * (packages/server/src/workers/cron.ts `addCronJobs`) returns without scheduling anything for such a
 * project, and registers a schedule only when a Bot is saved with a cron string different from its
 * previous version's: adding the feature later does not schedule a sweeper that already exists, so
 * the fix names the super admin's reload (`POST /admin/super/reloadcron`, packages/server/src/admin/super.ts).
 */
export function cronMissingExplanation(
  project: string,
  baseUrl: string,
  scheduledBots: readonly ScheduledBot[]
): string {
  const bots = scheduledBots.map((b) => b.name).join(', ');
  const consequences = scheduledBots.map((b) => `${b.name} will never run (${b.unscheduled})`).join('; ');
  return (
    `${project} does not have the "cron" feature: Medplum schedules no bot in it (its cron worker logs "Cron not enabled" and registers nothing), ` +
    `so ${consequences}. ` +
    'The webhook bots do not need it, so provisioning goes on. ' +
    `Fix: a super admin adds "cron" to ${project}'s features (Medplum app → Projects → the project → Edit → Features, as a super admin; ` +
    "a project admin's edit of Project.features is answered 200 and silently ignored). " +
    `If ${bots} already existed before that, its schedule is registered only once reloaded: as a super admin, ` +
    `POST ${baseUrl}admin/super/reloadcron with the header "Prefer: respond-async". Run provision again: this warning is then gone.`
  );
}

/**
 * Pure: what the facts mean for provisioning. `scheduledBots` are the cron bots being provisioned
 * (by default the registry's), named in the warning when the project cannot schedule them.
 */
export function analysePreflight(
  facts: ServerFacts,
  requested: Runtime | undefined,
  scheduledBots: readonly ScheduledBot[] = SCHEDULED_BOTS
): Preflight {
  const errors: string[] = [];
  const warnings: string[] = [];
  const hosted = isHostedMedplum(facts.baseUrl);
  const project = `Project/${facts.projectId}`;

  if (!facts.version) {
    errors.push(
      `${facts.baseUrl}healthcheck did not say the server version, so provisioning cannot tell whether the server knows Bot.rawBody. Check MEDPLUM_BASE_URL: it must be the Medplum API server's base URL (the one that serves /healthcheck and /fhir/R4).`
    );
  }
  if (!facts.admin && !facts.superAdmin) {
    errors.push(
      `The client MEDPLUM_CLIENT_ID=${facts.clientId} is not a project admin of ${project}: provisioning creates AccessPolicies and Bots and edits memberships and secrets, which only project admins may do. In the Medplum app, Project Admin → Clients → this client: tick "Admin" on its membership, or set MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET to a client that is.`
    );
  }
  if (!facts.projectReadable && (facts.admin || facts.superAdmin)) {
    errors.push(
      `GET fhir/R4/Project/${facts.projectId} was refused, so provisioning cannot see the project's features and secrets (and would overwrite the secrets it cannot see). Check the AccessPolicy of the client MEDPLUM_CLIENT_ID=${facts.clientId}: a project admin's must not restrict Project.`
    );
  }
  if (!facts.features.includes('bots')) {
    errors.push(
      `${project} does not have the "bots" feature: every $deploy would fail with "Bots not enabled" and no bot could run. Ask a super admin to add "bots" to ${project}'s features (Medplum app → Projects → the project, as a super admin). A project admin cannot change Project.features: the server answers 200 and silently ignores the edit.`
    );
  }
  if (scheduledBots.length > 0 && !facts.features.includes('cron')) {
    warnings.push(cronMissingExplanation(project, facts.baseUrl, scheduledBots));
  }

  let runtime: Runtime;
  let runtimeReason: string;
  if (requested) {
    runtime = requested;
    runtimeReason = '--runtime';
    if (requested === 'awslambda' && !hosted) {
      warnings.push(
        `--runtime awslambda on a self-hosted server: $deploy needs the server's AWS Lambda setup, else it fails with "Could not load credentials from any providers". Without Lambda use --runtime vmcontext.`
      );
    }
    if (requested === 'vmcontext' && hosted) {
      warnings.push(
        'Hosted Medplum runs bots on AWS Lambda; vmcontext bots run only on servers configured with vmContextBotsEnabled: true.'
      );
    }
  } else if (hosted) {
    runtime = 'awslambda';
    runtimeReason = 'hosted Medplum runs bots on AWS Lambda';
  } else {
    runtime = 'vmcontext';
    runtimeReason =
      'self-hosted: runs bots inside the server, no AWS needed (the server must set vmContextBotsEnabled: true); --runtime awslambda if it has Lambda';
  }

  const rawBodyKnown = supportsRawBody(facts.version);
  const rawBody = rawBodyKnown === true;
  if (rawBodyKnown === false) {
    warnings.push(parsedBodyExplanation(facts.version, secretIsTrue(facts.secrets, SETTING_NAMES.allowParsedBody)));
  }

  const summary =
    `Preflight (read-only): Medplum ${facts.version ?? 'version unknown'} at ${facts.baseUrl} (${hosted ? 'hosted' : 'self-hosted'}), ` +
    `${project}${facts.projectName ? ` "${facts.projectName}"` : ''} features [${facts.features.join(', ')}], ` +
    `client ${facts.admin || facts.superAdmin ? 'is' : 'is NOT'} a project admin, runtime ${runtime} (${runtimeReason}), ` +
    `Bot.rawBody ${rawBody ? 'supported' : rawBodyKnown === false ? 'not supported (server < 5.2)' : 'unknown'}`;
  return { hosted, runtime, runtimeReason, rawBody, errors, warnings, summary };
}
