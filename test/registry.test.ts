// The registry is the one description of the bots; what else describes them must agree with it.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_BOTS, botForEventType, REGISTRY, WEBHOOK_BOTS } from '../src/runtime/registry';
import { defineWebhookBot } from '../src/runtime/webhook-bot';
import { connectionTokenRefreshFailed as refresh } from '../src/runtime/events/connection-token-refresh-failed';
import { definitionOf, EVENT_TYPES } from '../src/runtime/events';

const root = new URL('..', import.meta.url);

describe('the bot registry', () => {
  it('medplum.config.json lists exactly the registry’s bots, with their source and dist', () => {
    const config = JSON.parse(readFileSync(new URL('medplum.config.json', root), 'utf8')) as {
      bots: { name: string; source: string; dist: string }[];
    };
    expect(config.bots.map(({ name, source, dist }) => ({ name, source, dist }))).toEqual(
      ALL_BOTS.map(({ name, source, dist }) => ({ name, source, dist }))
    );
  });

  it('access-policies/ holds exactly one policy per bot, and bots/ one entry file per bot', () => {
    expect(readdirSync(new URL('access-policies/', root)).sort()).toEqual(
      ALL_BOTS.map((b) => b.policyFile.replace('access-policies/', '')).sort()
    );
    const entries = readdirSync(new URL('bots/', root)).filter((f) => !f.endsWith('.test.ts'));
    expect(entries.map((f) => `bots/${f}`).sort()).toEqual(ALL_BOTS.map((b) => b.source).sort());
  });

  it('every Medblocks event type has exactly one bot', () => {
    for (const type of EVENT_TYPES) {
      expect(
        WEBHOOK_BOTS.filter((b) => (b.eventTypes as readonly string[]).includes(type)),
        type
      ).toHaveLength(1);
      expect(botForEventType(type).eventTypes).toContain(type);
    }
  });

  it.each(WEBHOOK_BOTS.map((b) => [b.name, b] as const))(
    '%s: its bot file binds its registry entry',
    async (_, spec) => {
      type BotFile = { bot: typeof spec & { handler: unknown }; handler: unknown };
      const file = (await import(`../${spec.source}`)) as BotFile;
      expect(typeof file.handler).toBe('function');
      const { handler: _handler, schema, ...entry } = file.bot;
      const { schema: registered, ...registeredEntry } = spec;
      expect(entry).toEqual(registeredEntry);
      // Both parse with the bot's own event type's delivery schema only.
      const own = { type: 'variant', options: [definitionOf(spec.medblocksEvent).schema] };
      expect(schema).toMatchObject(own);
      expect(registered).toMatchObject(own);
    }
  );

  it('a handler wired to another bot’s event type does not compile', () => {
    // The line below is a type error (npm test typechecks the tests): records.sync.completed
    // deliveries cannot reach the token-refresh handler.
    // @ts-expect-error the handler's event type does not cover the entry's event types
    const miswired = defineWebhookBot(REGISTRY['medblocks-records-sync-completed'], refresh.handler);
    expect(miswired.eventTypes).toEqual(['records.sync.completed']);
  });
});
