// Medblocks disables a webhook endpoint once a delivery exhausts its retries (3.6 days) and tells
// no one; from then on nothing it sends reaches Medplum. The reconciler turns that into an ops Task
// where the care team already looks: one per endpoint of this package (Medblocks' `description`
// names its bot, as provisioning writes it), `requested` and urgent while disabled, `completed` once
// the endpoint delivers again (or no longer exists). A run that finds nothing new writes nothing.
import type { MedplumClient } from '@medplum/core';
import type { Task } from '@medplum/fhirtypes';
import { businessStatus, inputOf } from '../fhir/tasks/parts';
import { CODE, packageCode, SYSTEM, TASK_KEY, token } from '../fhir/systems';
import { listEndpoints } from '../medblocks/endpoints';
import type { MedblocksEndpointRecord } from '../medblocks/endpoints';
import type { MedblocksConnection } from '../medblocks/http';
import { WEBHOOK_BOTS } from '../registry';
import { FhirFailureError, statusOfError } from '../store/errors';

export interface EndpointCheck {
  /** This package's endpoints Medblocks reports disabled now. */
  readonly disabled: number;
  readonly opened: number;
  readonly closed: number;
}

/** Provisioning describes each endpoint as `Medplum bot <name>` (the local tools: the bare name). */
export function endpointBot(endpoint: Pick<MedblocksEndpointRecord, 'description'>): string | undefined {
  const description = endpoint.description ?? '';
  return WEBHOOK_BOTS.find((b) => description === b.name || description === `Medplum bot ${b.name}`)?.name;
}

/** The ops Task of a disabled endpoint, or its resolution; keeps what people added (notes, owner). */
export function endpointTask(
  endpoint: Pick<MedblocksEndpointRecord, 'id' | 'url'>,
  bot: string,
  disabled: boolean,
  at: string,
  existing?: Task
): Task {
  return {
    ...existing,
    resourceType: 'Task',
    identifier: [{ system: SYSTEM.taskKey, value: TASK_KEY.endpointDisabled(endpoint.id) }],
    code: packageCode(CODE.endpointDisabled),
    intent: 'order',
    status: disabled ? 'requested' : 'completed',
    priority: disabled ? 'urgent' : 'routine',
    businessStatus: businessStatus(disabled ? 'endpoint-disabled' : 'endpoint-re-enabled'),
    description: disabled
      ? `Medblocks disabled its webhook endpoint ${endpoint.id} for ${bot} after its deliveries kept failing: nothing it sends reaches Medplum. Find the cause (npm run monitor), fix it, then run npm run redeliver -- --reenable.`
      : `Medblocks' webhook endpoint ${endpoint.id} for ${bot} delivers again; nothing to do.`,
    input: [
      inputOf('endpoint-id', { valueString: endpoint.id }),
      inputOf('endpoint-url', { valueString: endpoint.url }),
    ],
    authoredOn: existing?.authoredOn ?? at,
    lastModified: at,
  };
}

async function write(medplum: MedplumClient, task: Task): Promise<void> {
  try {
    if (task.id) {
      await medplum.updateResource(task);
    } else {
      const key = task.identifier?.[0]?.value ?? '';
      await medplum.createResourceIfNoneExist(task, `identifier=${encodeURIComponent(token(SYSTEM.taskKey, key))}`);
    }
  } catch (err) {
    throw FhirFailureError.of(statusOfError(err), 'write');
  }
}

/** Reads Medblocks' endpoints and brings the ops Tasks in line with them. */
export async function checkEndpoints(
  medplum: MedplumClient,
  connection: MedblocksConnection,
  at: string,
  counter: { requests: number }
): Promise<EndpointCheck> {
  const endpoints = (await listEndpoints(connection)).flatMap((e) => {
    const bot = endpointBot(e);
    return bot ? [{ endpoint: e, bot }] : [];
  });
  counter.requests++;
  let tasks: Task[];
  try {
    tasks = await medplum.searchResources('Task', `code=${SYSTEM.code}|${CODE.endpointDisabled}&_count=200`);
  } catch (err) {
    throw FhirFailureError.of(statusOfError(err), 'read');
  }
  const byKey = new Map(tasks.map((t) => [t.identifier?.find((i) => i.system === SYSTEM.taskKey)?.value, t]));
  let opened = 0;
  let closed = 0;
  const seen = new Set<string>();
  for (const { endpoint, bot } of endpoints) {
    const key = TASK_KEY.endpointDisabled(endpoint.id);
    seen.add(key);
    const existing = byKey.get(key);
    const disabled = endpoint.status === 'disabled';
    if (disabled && existing?.status !== 'requested') {
      counter.requests++;
      await write(medplum, endpointTask(endpoint, bot, true, at, existing));
      opened++;
    } else if (!disabled && existing?.status === 'requested') {
      counter.requests++;
      await write(medplum, endpointTask(endpoint, bot, false, at, existing));
      closed++;
    }
  }
  // An open Task whose endpoint Medblocks no longer lists (deleted, or the key changed): closed, said so.
  for (const [key, task] of byKey) {
    if (key === undefined || seen.has(key) || task.status !== 'requested') continue;
    counter.requests++;
    await write(medplum, {
      ...task,
      status: 'completed',
      statusReason: { text: 'The endpoint no longer exists at Medblocks.' },
      lastModified: at,
    });
    closed++;
  }
  return { disabled: endpoints.filter((e) => e.endpoint.status === 'disabled').length, opened, closed };
}
