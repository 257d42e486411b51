// Every bot this package deploys: the four webhook bots from the bot catalog plus the scheduled
// marker sweeper. Provisioning, the monitor and medplum.config.json are all derived from this list.
import { BOTS } from '../bot/catalog';

/** Far below Medblocks' 5 s deadline, above the engine's 2.5 s retry budget: a stuck run answers 400 before Medblocks gives up. */
export const WEBHOOK_TIMEOUT_SECONDS = 4;
/** The sweeper's own work budget (20 s) fits well inside this. */
export const SWEEPER_TIMEOUT_SECONDS = 60;
/** Daily at 03:17 UTC: off the hour, when deliveries are usually quiet. */
export const SWEEPER_CRON = '17 3 * * *';
export const SWEEPER_NAME = 'medblocks-marker-sweeper';

export type Runtime = 'awslambda' | 'vmcontext';

export interface DeployedBot {
  readonly name: string;
  readonly kind: 'webhook' | 'scheduled';
  readonly timeoutSeconds: number;
  /** Webhook bots: the project secret with the Medblocks endpoint's signing secret. */
  readonly secretName?: string;
  /** Webhook bots: the Medblocks event type its endpoint is registered for. */
  readonly medblocksEvent?: string;
  /** Scheduled bots: the cron expression. */
  readonly cron?: string;
  readonly source: string;
  readonly dist: string;
  readonly policyFile: string;
}

function files(name: string): Pick<DeployedBot, 'source' | 'dist' | 'policyFile'> {
  return { source: `bots/${name}.ts`, dist: `dist/${name}.js`, policyFile: `access-policies/${name}.json` };
}

export const DEPLOYED_BOTS: readonly DeployedBot[] = [
  ...BOTS.map((b): DeployedBot => ({
    name: b.name,
    kind: 'webhook',
    timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
    secretName: b.secretName,
    medblocksEvent: b.medblocksEvent,
    ...files(b.name),
  })),
  {
    name: SWEEPER_NAME,
    kind: 'scheduled',
    timeoutSeconds: SWEEPER_TIMEOUT_SECONDS,
    cron: SWEEPER_CRON,
    ...files(SWEEPER_NAME),
  },
];
