// Transitional view of registry.ts for modules not yet moved to it; removed with the new layout.
import { WEBHOOK_BOTS } from './registry';
import type { WebhookBotEntry, WebhookBotName } from './registry';

export type BotName = WebhookBotName;
export type BotDescriptor = WebhookBotEntry;
export const BOTS = WEBHOOK_BOTS as readonly (WebhookBotEntry & { name: WebhookBotName })[];

export function botDescriptor(name: BotName): BotDescriptor {
  const found = BOTS.find((b) => b.name === name);
  if (!found) throw new Error(`unknown bot ${name}`);
  return found;
}
