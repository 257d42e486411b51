// Bench-only bot entry (bundled in memory for the emulator, never deployed): the same signature
// check and parsing as our bots, then the per-resource pattern of src/tools/bench/naive.ts.
import type { BotEvent, MedplumClient } from '@medplum/core';
import { EVENT_TYPES, medblocksEventSchema } from '../../runtime/events';
import { receiveDelivery } from '../../runtime/receive';
import { medblocksEventHandler } from '../../runtime/events';
import { naiveApply } from './naive';

export const NAIVE_BOT_NAME = 'bench-per-resource-pattern';
export const NAIVE_SECRET_NAME = 'BENCH_NAIVE_WEBHOOK_SECRET';

export async function handler(medplum: MedplumClient, botEvent: BotEvent): Promise<{ requests: number }> {
  const { event, settings } = receiveDelivery(botEvent, {
    eventTypes: EVENT_TYPES,
    schema: medblocksEventSchema(),
    secretName: NAIVE_SECRET_NAME,
  });
  const requests = await naiveApply(medplum, event, medblocksEventHandler, settings);
  console.log(`bench-naive type=${event.type} fhir_requests=${requests}`);
  return { requests };
}
