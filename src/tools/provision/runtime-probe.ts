// After deploy: can this server run vmcontext bots at all? Medplum reads its server setting
// `vmContextBotsEnabled` only when a bot runs (packages/server/src/bots/vmcontext.ts
// `runInVmContext`), never on `$deploy` (packages/server/src/fhir/operations/deploy.ts), so a server
// with the setting off accepts every deploy while failing every run. No endpoint shows the setting:
// not `/healthcheck` (packages/server/src/healthcheck.ts), `/auth/me` (auth/me.ts) or
// `/.well-known/*` (wellknown.ts). Running a bot to find out would write (a Login, the bot input,
// an AuditEvent) and would run the bot. What can be read is the trace of a past run: every run is
// an AuditEvent whose `outcomeDesc` is the run's log (packages/server/src/bots/execute.ts
// `executeBot` → util/auditevent.ts `createBotAuditEvent`), and a run refused for the setting logs
// exactly VM_CONTEXT_DISABLED. So the probe reads each vmcontext bot's newest AuditEvent; with no
// run yet it can only say so, and provisioning prints how to check the setting instead.
import type { MedplumClient } from '@medplum/core';
import type { AuditEvent } from '@medplum/fhirtypes';
import { call } from './medplum';

/** Medplum's whole log of a vmcontext run on a server with `vmContextBotsEnabled` off. */
export const VM_CONTEXT_DISABLED = 'VM Context bots not enabled on this server';

/** A provisioned bot that runs on vmcontext. */
export interface VmContextBot {
  readonly name: string;
  readonly id: string;
}

/** What each bot's newest run says about the server setting. */
export interface VmContextProbe {
  /** The newest run was refused for the setting: the server has it off (or had, at that run). */
  readonly refused: readonly { readonly name: string; readonly auditEvent: string; readonly recorded?: string }[];
  /** The newest run got past the check (whatever its outcome): the setting was on then. */
  readonly ran: readonly string[];
  /** No run recorded, or the AuditEvents could not be read: the probe cannot tell. */
  readonly unknown: readonly string[];
}

/** Whether a run was refused by the server setting rather than failed in the bot's own code. */
export function refusedForSetting(event: AuditEvent): boolean {
  return event.outcome === '4' && (event.outcomeDesc ?? '').includes(VM_CONTEXT_DISABLED);
}

/**
 * Reads, for each bot, its newest AuditEvent (`AuditEvent?entity=Bot/{id}&_sort=-date&_count=1`, the
 * search the monitor and the app's Event tab use). Read-only. A failed read makes that bot
 * `unknown`: the probe is advice after provisioning is done, never a reason to fail it.
 */
export async function probeVmContext(medplum: MedplumClient, bots: readonly VmContextBot[]): Promise<VmContextProbe> {
  const refused: { name: string; auditEvent: string; recorded?: string }[] = [];
  const ran: string[] = [];
  const unknown: string[] = [];
  for (const bot of bots) {
    let newest: AuditEvent | undefined;
    try {
      const found = await call('GET', `fhir/R4/AuditEvent?entity=Bot/${bot.id}`, () =>
        medplum.searchResources('AuditEvent', { entity: `Bot/${bot.id}`, _sort: '-date', _count: '1' })
      );
      newest = found[0];
    } catch {
      unknown.push(bot.name);
      continue;
    }
    if (!newest) unknown.push(bot.name);
    else if (refusedForSetting(newest)) {
      refused.push({
        name: bot.name,
        auditEvent: `AuditEvent/${newest.id ?? '?'}`,
        ...(newest.recorded ? { recorded: newest.recorded } : {}),
      });
    } else ran.push(bot.name);
  }
  return { refused, ran, unknown };
}

/** How to turn the setting on, for the server's operator (Medplum's config keys and environment). */
const ENABLE_FIX =
  'set vmContextBotsEnabled: true in the Medplum server config (config.json or the AWS Parameter Store, or the ' +
  'environment variable MEDPLUM_VM_CONTEXT_BOTS_ENABLED=true) and restart the server';

/**
 * Pure: the probe as report lines. A refused run is a warning (deliveries fail until the server
 * changes); bots that have not run yet get one note saying what cannot be seen and how to check it;
 * bots whose newest run got past the check say nothing.
 */
export function vmContextFindings(probe: VmContextProbe): { warnings: string[]; notes: string[] } {
  const warnings: string[] = [];
  const notes: string[] = [];
  if (probe.refused.length > 0) {
    const runs = probe.refused
      .map((r) => `${r.name} (${r.auditEvent}${r.recorded ? `, ${r.recorded}` : ''})`)
      .join(', ');
    warnings.push(
      `This server does not run vmcontext bots: the newest run of ${runs} failed with "${VM_CONTEXT_DISABLED}". ` +
        'Medplum checks its server setting vmContextBotsEnabled on every run, not on $deploy, so provisioning succeeds ' +
        'while every delivery fails (HTTP 400) and Medblocks retries it until it disables the endpoint. ' +
        `Fix, on the server: ${ENABLE_FIX}; or, on a server with AWS Lambda, run \`npm run provision -- --runtime awslambda\`. ` +
        'Then `npm run verify`.'
    );
  }
  if (probe.unknown.length > 0) {
    notes.push(
      `${probe.unknown.join(', ')} run on vmcontext, which Medplum runs only when the server's config sets ` +
        'vmContextBotsEnabled: true (off by default). No Medplum endpoint shows that setting without running a bot, and ' +
        `these bots have no run recorded yet, so provisioning cannot tell. If it is off, $deploy still succeeds but every ` +
        `run fails with "${VM_CONTEXT_DISABLED}". To check: ask the server's operator, or run \`npm run verify\` and read ` +
        `the bots' AuditEvents (\`AuditEvent?entity=Bot/{id}&outcome=4\`); run provision again after the first deliveries ` +
        `and it reads them for you. To fix: ${ENABLE_FIX}.`
    );
  }
  return { warnings, notes };
}
