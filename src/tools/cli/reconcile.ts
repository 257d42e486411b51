// `npm run reconcile [-- --dry-run] [--patient ID]`: brings Medplum's Consents and reconnect Tasks
// to what Medblocks knows now (src/tools/reconcile/reconcile.ts), for the connection changes
// Medblocks never pushes (`expired`, `disconnected`) and as the backfill when a project adopts the
// package. See docs/commands.md.
import type { ProjectSetting } from '@medplum/fhirtypes';
import { readSettings as readBotSettings } from '../../runtime/settings';
import { readSettings } from '../provision/env';
import { MedblocksApi } from '../provision/medblocks-api';
import { connectMedplum, readProject } from '../provision/medplum';
import { printProgressToStderr } from '../progress';
import { formatReconcileSummary, reconcile } from '../reconcile/reconcile';
import { exitWith, failureLine, isEntryPoint, printToConsole, runCommand } from './args';
import type { CommandSpec } from './args';

export const RECONCILE_SPEC = {
  name: 'reconcile',
  summary:
    'brings Medplum to what Medblocks knows: reads every patient (GET /patients, GET /patients/{id}) and writes each connection’s Consent and reconnect Task as the bots would — an expired or disconnected connection, which no webhook reports, becomes an inactive Consent. Also the backfill for a project that adopts the package. A connection stands for an event stamped with its updated_at: anything the bots applied later wins. Idempotent: a second run changes nothing.',
  options: {
    'dry-run': { type: 'boolean', description: 'print what would change, write nothing' },
    patient: { type: 'string', valueName: 'ID', description: 'only this Medblocks patient id' },
  },
  notes:
    'Settings (environment or .env): MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET (a project-admin ClientApplication), MEDBLOCKS_API_KEY, MEDBLOCKS_API_BASE_URL. The bots’ settings (MEDBLOCKS_CREATE_MISSING_PATIENTS, MEDBLOCKS_TASK_OWNER) are read from the project secrets. Prints connection ids and statuses, never patient ids. Interrupted? Run it again: what is done is not redone.',
  examples: ['npm run reconcile -- --dry-run', 'npm run reconcile', 'npm run reconcile -- --patient user_42'],
  exitCodes: {
    0: 'done (or dry run): every patient read',
    1: 'an error: a missing or invalid setting (the message names the variable), a server refusal or an unreachable server (the message says what to do)',
  },
} as const satisfies CommandSpec;

function asSecrets(settings: readonly ProjectSetting[]): Record<string, ProjectSetting> {
  return Object.fromEntries(settings.map((s) => [s.name, s]));
}

/** Runs the command and returns its exit code; output goes through `print`. */
export function runReconcile(
  argv: readonly string[],
  io: {
    print: (line: string) => void;
    root?: string;
    env?: NodeJS.ProcessEnv;
    fetchFn?: typeof fetch;
    sleep?: (ms: number) => Promise<void>;
    /** Patients read so far with an estimate, and Medblocks' waits; stderr by default, so stdout stays the report. */
    progress?: (line: string) => void;
    now?: () => number;
  }
): Promise<number> {
  return runCommand(
    RECONCILE_SPEC,
    argv,
    async (values) => {
      try {
        const settings = readSettings(io.env, io.root ?? process.cwd());
        if (!settings.medblocksApiKey) {
          throw new Error('MEDBLOCKS_API_KEY must be set (environment or .env): the connections come from Medblocks');
        }
        const session = await connectMedplum(settings, io.fetchFn);
        const { project } = await readProject(session);
        const progress = io.progress ?? printProgressToStderr;
        const api = new MedblocksApi(settings.medblocksBaseUrl, settings.medblocksApiKey, io.fetchFn, {
          sleep: io.sleep,
          onWait: progress,
        });
        const dryRun = values['dry-run'];
        io.print(
          `Medplum ${session.baseUrl}, project ${session.projectId}${dryRun ? ' (dry run: nothing is written)' : ''}`
        );
        const summary = await reconcile({
          medplum: session.medplum,
          api,
          settings: readBotSettings(asSecrets(project.secret ?? [])),
          dryRun,
          patientIds: values.patient ? [values.patient] : undefined,
          print: io.print,
          progress,
          now: io.now,
        });
        io.print(formatReconcileSummary(summary, dryRun));
        return 0;
      } catch (err) {
        io.print(failureLine('reconcile', err));
        return 1;
      }
    },
    { print: io.print, printError: io.print }
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runReconcile(process.argv.slice(2), { print: printToConsole }));
}
