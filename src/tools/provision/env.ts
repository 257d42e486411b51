// Credentials and endpoints, read the way the Medplum CLI reads them: the environment first, then a
// `.env` file in the working directory. `.env` is parsed by Node's own `util.parseEnv` (the same
// dotenv dialect as `node --env-file`), so quoting, `export ` and comments behave as users expect.
//
// MEDPLUM_BASE_URL has no default: the tools change a project, and which server they
// change must be the user's choice, not a silent fall-back to hosted Medplum. A missing or
// malformed URL is an error naming the variable and the usual values.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
// The bots' default too (the import and the reconciler read the same API): one constant.
import { DEFAULT_MEDBLOCKS_API_BASE_URL } from '../../runtime/import/settings';

export { DEFAULT_MEDBLOCKS_API_BASE_URL };

/** Hosted Medplum's API server: one of the two usual values of MEDPLUM_BASE_URL. */
export const HOSTED_MEDPLUM_BASE_URL = 'https://api.medplum.com/';
/** `npm run dev`'s emulator (8913: not 8103, the port a local Medplum server uses by default). */
export const LOCAL_MEDPLUM_BASE_URL = 'http://127.0.0.1:8913/';
/** Medblocks' API; used when MEDBLOCKS_API_KEY is set and MEDBLOCKS_API_BASE_URL is not. */

/** A setting that cannot work; the message names the variable and what to set it to. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

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

/**
 * Environment variables win over `.env`, as with dotenv in the Medplum CLI. Throws SettingsError
 * when MEDPLUM_BASE_URL is missing, or either base URL is not an http(s) URL, before any request.
 */
export function readSettings(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): Settings {
  const get = loadEnv(env, root);
  const medplum = get('MEDPLUM_BASE_URL');
  if (!medplum) {
    throw new SettingsError(
      `MEDPLUM_BASE_URL is not set (environment or .env): set it to the Medplum API server the tools should talk to, ` +
        `e.g. MEDPLUM_BASE_URL=${LOCAL_MEDPLUM_BASE_URL} for \`npm run dev\` (a local Medplum server: http://localhost:8103/) ` +
        `or MEDPLUM_BASE_URL=${HOSTED_MEDPLUM_BASE_URL} for hosted Medplum`
    );
  }
  return {
    medplumBaseUrl: withSlash(
      httpUrl('MEDPLUM_BASE_URL', medplum, `${LOCAL_MEDPLUM_BASE_URL} or ${HOSTED_MEDPLUM_BASE_URL}`)
    ),
    clientId: get('MEDPLUM_CLIENT_ID'),
    clientSecret: get('MEDPLUM_CLIENT_SECRET'),
    medblocksApiKey: get('MEDBLOCKS_API_KEY'),
    medblocksBaseUrl: httpUrl(
      'MEDBLOCKS_API_BASE_URL',
      get('MEDBLOCKS_API_BASE_URL') ?? DEFAULT_MEDBLOCKS_API_BASE_URL,
      `${DEFAULT_MEDBLOCKS_API_BASE_URL} or http://127.0.0.1:8914 (a local Medblocks)`
    ),
    lookup: get,
  };
}

/** The value when it is an absolute http(s) URL; else a SettingsError naming the variable. */
function httpUrl(variable: string, value: string, examples: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(value);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw new SettingsError(`${variable}=${value} is not an http(s) URL: use e.g. ${examples}`);
  }
  return value;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
