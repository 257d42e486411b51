// `npm run sources [-- --dry-run]`: names the EHRs in Medplum. The bots show an EHR's name in Task
// descriptions and Consent actors only when an Organization carries it (events carry only ids); this
// command keeps one such Organization per source the bots' Consents use, named as Medblocks names
// it. See src/tools/sources/ and docs/commands.md.
import { readSettings } from '../provision/env';
import { MedblocksApi } from '../provision/medblocks-api';
import { connectMedplum } from '../provision/medplum';
import { formatSources } from '../sources/plan';
import { syncSources } from '../sources/sources';
import { exitWith, failureLine, isEntryPoint, printToConsole, runCommand } from './args';
import type { CommandSpec } from './args';

export const SOURCES_SPEC = {
  name: 'sources',
  summary:
    'names the EHRs in Medplum: finds the EHR sources (fhirsrc_…) on the Consents the bots wrote, asks Medblocks for each source’s name, and creates or updates one Organization per source (identifier urn:medblocks:fhir-source-id), which the bots then use in Task descriptions and Consent actors. Idempotent: a second run changes nothing and says so.',
  options: {
    'dry-run': { type: 'boolean', description: 'print the plan, change nothing in Medplum' },
  },
  notes:
    'Settings (environment or .env): MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID, MEDPLUM_CLIENT_SECRET (a project-admin ClientApplication), MEDBLOCKS_API_KEY, MEDBLOCKS_API_BASE_URL. Run it after new EHRs appear (or on a schedule); names already set change only when Medblocks’ name changes. A source Medblocks does not know keeps its Organization as it is.',
  examples: ['npm run sources -- --dry-run', 'npm run sources'],
  exitCodes: {
    0: 'every source looked up (or dry run); sources Medblocks does not know are listed, not an error',
    1: 'an error: a missing or invalid setting (the message names the variable), a server refusal or an unreachable server (the message says what to do)',
  },
} as const satisfies CommandSpec;

/** Runs the command and returns its exit code; output goes through `print`. */
export function runSources(
  argv: readonly string[],
  io: {
    print: (line: string) => void;
    root?: string;
    env?: NodeJS.ProcessEnv;
    fetchFn?: typeof fetch;
    sleep?: (ms: number) => Promise<void>;
  }
): Promise<number> {
  return runCommand(
    SOURCES_SPEC,
    argv,
    async (values) => {
      try {
        const settings = readSettings(io.env, io.root ?? process.cwd());
        if (!settings.medblocksApiKey) {
          throw new Error('MEDBLOCKS_API_KEY must be set (environment or .env): the names come from Medblocks');
        }
        const session = await connectMedplum(settings, io.fetchFn);
        const api = new MedblocksApi(settings.medblocksBaseUrl, settings.medblocksApiKey, io.fetchFn, {
          sleep: io.sleep,
          onWait: io.print,
        });
        const dryRun = values['dry-run'];
        const result = await syncSources({ medplum: session.medplum, api, dryRun, print: io.print });
        io.print(`Medplum ${session.baseUrl}, project ${session.projectId}`);
        for (const line of formatSources(result.actions, {
          dryRun,
          consents: result.consents,
          created: result.created,
        }))
          io.print(line);
        return 0;
      } catch (err) {
        io.print(failureLine('sources', err));
        return 1;
      }
    },
    { print: io.print, printError: io.print }
  );
}

if (isEntryPoint(import.meta.url)) {
  exitWith(runSources(process.argv.slice(2), { print: printToConsole }));
}
