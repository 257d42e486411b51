// `npm run dev`: the emulator on 127.0.0.1:8103 (Medplum's usual port). Builds dist/ first when it
// is missing, prints every bot's webhook URL and the signing secret configured for it (dev
// secrets, or the values of environment variables named like the project secrets), then logs one
// line per webhook run until Ctrl-C.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_EMULATOR_HOST, DEFAULT_EMULATOR_PORT } from '../emulator/identity';
import { configurableSecretNames, discoverBots } from '../emulator/project';
import { startEmulator } from '../emulator/server';
import type { RunningEmulator } from '../emulator/server';
import { buildBots } from '../bundling';

/** Builds the bundles when dist/ has none, so that a fresh clone can run `npm run dev` directly. */
export async function ensureBuilt(root = process.cwd()): Promise<void> {
  const dist = join(root, 'dist');
  if (!existsSync(dist) || !readdirSync(dist).some((f) => f.endsWith('.js'))) {
    await buildBots(root);
  }
}

/** Project secrets taken from the environment: every bot signing secret and every setting name. */
export function secretsFromEnvironment(env: NodeJS.ProcessEnv, root = process.cwd()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of configurableSecretNames(discoverBots(root))) {
    const value = env[name]?.trim();
    if (value) out[name] = value;
  }
  return out;
}

/** The startup printout, as text or as one JSON object (`--json`). */
export function describe(emulator: RunningEmulator, asJson: boolean, fhirWrites = false): string {
  const bots = emulator.bots.map((b) => ({
    name: b.name,
    webhookUrl: b.webhookUrl,
    membershipId: b.membershipId,
    secretName: b.secretName ?? null,
    secret: b.secret ?? null,
  }));
  if (asJson) {
    return JSON.stringify({ url: emulator.url, fhirUrl: emulator.fhirUrl, adminClient: emulator.adminClient, bots });
  }
  const lines = [
    `Medplum emulator on ${emulator.url}   FHIR (${fhirWrites ? 'read-write' : 'read-only'}, no auth): ${emulator.fhirUrl}`,
    '',
  ];
  for (const b of bots) {
    lines.push(b.name);
    lines.push(`  webhook  ${b.webhookUrl}`);
    lines.push(
      b.secretName ? `  secret   ${b.secretName}=${b.secret ?? ''}` : '  (no signing secret: not a webhook bot)'
    );
  }
  lines.push('', 'Dev secrets only. Send a delivery: npm run send -- --type records.sync.completed');
  const { clientId, clientSecret } = emulator.adminClient;
  lines.push(
    `Provision and monitor this emulator: MEDPLUM_BASE_URL=${emulator.url}/ MEDPLUM_CLIENT_ID=${clientId} \\`,
    `  MEDPLUM_CLIENT_SECRET=${clientSecret} npm run provision   (then the same with npm run monitor)`
  );
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      json: { type: 'boolean' },
      'latency-ms': { type: 'string' },
      'fhir-writes': { type: 'boolean' },
    },
  });
  await ensureBuilt();
  const emulator = await startEmulator({
    port: values.port ? Number(values.port) : DEFAULT_EMULATOR_PORT,
    host: DEFAULT_EMULATOR_HOST,
    latencyMs: values['latency-ms'] ? Number(values['latency-ms']) : 0,
    fhirWrites: values['fhir-writes'] === true,
    secrets: secretsFromEnvironment(process.env),
    // One line per run; on stderr with --json so that stdout stays one JSON object.
    onRun: (run) => {
      const line = `${new Date().toISOString()} ${run.bot} → ${run.status} (${run.ms} ms)`;
      if (values.json) console.error(line);
      else console.log(line);
    },
  });
  console.log(describe(emulator, values.json === true, values['fhir-writes'] === true));
  const stop = (): void => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1)
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
