// Credentials and endpoints, read the way the Medplum CLI reads them: the environment first, then a
// `.env` file in the working directory. `.env` is parsed by Node's own `util.parseEnv` (the same
// dotenv dialect as `node --env-file`), so quoting, `export ` and comments behave as users expect.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';

export const DEFAULT_MEDPLUM_BASE_URL = 'https://api.medplum.com/';
export const DEFAULT_MEDBLOCKS_API_BASE_URL = 'https://app.medblocks.com';

/** Looks a variable up: environment first, then `.env`; trimmed, and blank counts as unset. */
export type EnvLookup = (name: string) => string | undefined;

export interface Settings {
  readonly medplumBaseUrl: string;
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
  readonly medblocksApiKey: string | undefined;
  readonly medblocksBaseUrl: string;
  /**
   * Any other variable, e.g. a bot's signing secret under its project-secret name: provisioning
   * stores those in the project, `npm run verify` signs with them.
   */
  readonly lookup: EnvLookup;
}

/** Parses `.env` text with Node's dotenv parser. */
export function parseDotEnv(text: string): Record<string, string> {
  return parseEnv(text) as Record<string, string>;
}

/** The environment over `.env` in `root`, as one lookup. */
export function loadEnv(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): EnvLookup {
  const path = join(root, '.env');
  const fromFile = existsSync(path) ? parseDotEnv(readFileSync(path, 'utf8')) : {};
  return (name) => {
    const value = (env[name] ?? fromFile[name])?.trim();
    return value ? value : undefined;
  };
}

/** Environment variables win over `.env`, as with dotenv in the Medplum CLI. */
export function readSettings(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): Settings {
  const get = loadEnv(env, root);
  return {
    medplumBaseUrl: withSlash(get('MEDPLUM_BASE_URL') ?? DEFAULT_MEDPLUM_BASE_URL),
    clientId: get('MEDPLUM_CLIENT_ID'),
    clientSecret: get('MEDPLUM_CLIENT_SECRET'),
    medblocksApiKey: get('MEDBLOCKS_API_KEY'),
    medblocksBaseUrl: get('MEDBLOCKS_API_BASE_URL') ?? DEFAULT_MEDBLOCKS_API_BASE_URL,
    lookup: get,
  };
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
