// Credentials and endpoints, read the way the Medplum CLI reads them: the environment first, then a
// `.env` file in the working directory (a minimal KEY=VALUE reader, so no dependency is needed).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEFAULT_MEDPLUM_BASE_URL = 'https://api.medplum.com/';
export const DEFAULT_MEDBLOCKS_API_BASE_URL = 'https://app.medblocks.com';

export interface Settings {
  readonly medplumBaseUrl: string;
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
  readonly medblocksApiKey: string | undefined;
  readonly medblocksBaseUrl: string;
}

/** Parses `.env` text: `KEY=value`, optional `export `, quotes, `#` comments. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match?.[1] || line.startsWith('#')) continue;
    let value = match[2] ?? '';
    const quoted = /^(['"])(.*)\1$/.exec(value);
    value = quoted ? (quoted[2] ?? '') : value.replace(/\s+#.*$/, '');
    out[match[1]] = value.trim();
  }
  return out;
}

/** Environment variables win over `.env`, as with dotenv in the Medplum CLI. Blank counts as unset. */
export function readSettings(env: NodeJS.ProcessEnv = process.env, root = process.cwd()): Settings {
  const path = join(root, '.env');
  const fromFile = existsSync(path) ? parseDotEnv(readFileSync(path, 'utf8')) : {};
  const get = (name: string): string | undefined => {
    const value = (env[name] ?? fromFile[name])?.trim();
    return value ? value : undefined;
  };
  return {
    medplumBaseUrl: withSlash(get('MEDPLUM_BASE_URL') ?? DEFAULT_MEDPLUM_BASE_URL),
    clientId: get('MEDPLUM_CLIENT_ID'),
    clientSecret: get('MEDPLUM_CLIENT_SECRET'),
    medblocksApiKey: get('MEDBLOCKS_API_KEY'),
    medblocksBaseUrl: get('MEDBLOCKS_API_BASE_URL') ?? DEFAULT_MEDBLOCKS_API_BASE_URL,
  };
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
