// No endpoint is ever disabled by one event, whatever fails after verification.
// Medblocks retries an event 9 times over ~3.6 days, then disables the whole endpoint. A verified
// event whose delivery keeps failing — a bug of ours, a missing grant, a persistent conflict, a
// server error — is answered non-2xx while retries can still help, and quarantined (200, one
// dead-letter naming the cause) once Medblocks has been retrying it for 24 h (ESCALATE_AFTER_MS).
import { describe, expect, it } from 'vitest';
import { ESCALATE_AFTER_MS, FAILURES } from '../src/runtime/failures';
import type { FailureReason } from '../src/runtime/failures';
import { persistingCause } from '../src/runtime/webhook-bot';
import { patientFlowCompleted, recordsSyncCompleted } from '../src/tools/fixtures/events';
import { World } from '../src/tools/harness/world';
import type { FaultInjector } from '../src/tools/harness/world';
import { deadLetters } from './support/quarantine';
import { appliedMarks } from './support/assertions';

const SYNC = 'medblocks-records-sync-completed';
const HOUR = 60 * 60 * 1000;

/** Medblocks' attempt times, from the event's creation (reference: 0, +1 m, +5 m, +30 m, +2 h, +12 h, +24 h ×3). */
const SCHEDULE_MS = [0, 1, 5, 30, 120, 720, 1440, 1440, 1440].reduce<number[]>(
  (at, minutes) => [...at, (at.at(-1) ?? 0) + minutes * 60_000],
  []
);

/** The time of attempt `index` (0-based) after the event's creation. */
function attemptAt(index: number): number {
  const at = SCHEDULE_MS[index];
  if (at === undefined) throw new RangeError(`Medblocks makes 9 attempts, not ${String(index + 1)}`);
  return at;
}

const forbidden: FaultInjector = () => ({ status: 403 });

/** How many events the store says were applied (a sync's marker is its stamp on the sync Task). */
async function markers(world: World): Promise<number> {
  return (await appliedMarks(world)).length;
}

describe('persistingCause: the escalation rule', () => {
  it('escalates every transient reason at 24 h, none before, and never a rejected or permanent one', () => {
    const created = '2026-05-01T00:00:00.000Z';
    const at = Date.parse(created);
    for (const reason of Object.keys(FAILURES) as FailureReason[]) {
      const transient = FAILURES[reason].failureClass === 'transient';
      expect(persistingCause(reason, created, at + ESCALATE_AFTER_MS - 1), reason).toBeUndefined();
      expect(persistingCause(reason, created, at + ESCALATE_AFTER_MS), reason).toBe(transient ? reason : undefined);
    }
    expect(persistingCause('internal', undefined, at + 10 * ESCALATE_AFTER_MS), 'not verified').toBeUndefined();
    expect(persistingCause('internal', 'not a date', at + 10 * ESCALATE_AFTER_MS)).toBeUndefined();
  });

  it('leaves Medblocks two attempts after the first escalated one (in case the dead-letter cannot be written)', () => {
    const escalated = SCHEDULE_MS.filter((t) => t >= ESCALATE_AFTER_MS);
    expect(SCHEDULE_MS).toHaveLength(9);
    expect(escalated).toHaveLength(3);
    expect(SCHEDULE_MS.filter((t) => t < ESCALATE_AFTER_MS)).toHaveLength(6);
  });
});

describe('a verified event that keeps failing', () => {
  it('is answered non-2xx, with nothing written, while it is younger than 24 h', async () => {
    const world = new World();
    const event = recordsSyncCompleted();
    const at = Date.parse(event.created_at) + ESCALATE_AFTER_MS - HOUR;
    await expect(world.bot(SYNC, { faults: forbidden }).deliver(event, { signedAt: at, now: at })).rejects.toThrow(
      /access_denied/
    );
    expect(await deadLetters(world)).toHaveLength(0);
    expect(await markers(world)).toBe(0);
  });

  it('is quarantined once older than 24 h: 200, one open dead-letter naming the cause, nothing marked applied', async () => {
    const world = new World();
    const event = recordsSyncCompleted();
    const bot = world.bot(SYNC, {
      faults: (r) => (r.method === 'POST' && isWrite(r.body) ? { status: 403 } : undefined),
    });
    const at = Date.parse(event.created_at) + attemptAt(6);
    const answer = await bot.deliver(event, { signedAt: at, now: at });
    expect(answer).toEqual({
      status: 'quarantined',
      event: event.id,
      type: 'records.sync.completed',
      reason: 'retries_exhausted',
      cause: 'access_denied',
    });
    expect(bot.logs.at(-1)).toMatch(/outcome=quarantined:retries_exhausted cause=access_denied /);
    const [deadLetter, ...others] = await deadLetters(world);
    expect(others).toHaveLength(0);
    expect(deadLetter?.status).toBe('failed');
    expect(deadLetter?.statusReason?.text).toBe('retries_exhausted (cause: access_denied)');
    expect(deadLetter?.input).toContainEqual({ type: { text: 'cause' }, valueString: 'access_denied' });
    expect(await markers(world)).toBe(0);

    // After the fix, the redelivery applies it and closes its dead-letter.
    const later = at + HOUR;
    expect((await world.bot(SYNC).deliver(event, { signedAt: later, now: later })).status).toBe('processed');
    expect((await deadLetters(world))[0]?.status).toBe('completed');
    expect(await markers(world)).toBe(1);
  });

  it('a bug of ours (an unexpected exception) is quarantined too, its answer naming no detail', async () => {
    const world = new World();
    const event = patientFlowCompleted();
    const at = Date.parse(event.created_at) + attemptAt(7);
    const bot = world.bot('medblocks-patient-flow-completed', {
      runtime: {
        newUuid: () => {
          throw new RangeError('a bug with user_42 in it');
        },
      },
    });
    const answer = await bot.deliver(event, { signedAt: at, now: at });
    expect(answer).toMatchObject({ status: 'quarantined', reason: 'retries_exhausted', cause: 'internal' });
    expect(JSON.stringify(answer) + bot.logs.join('\n')).not.toContain('user_42');
    expect(await deadLetters(world)).toHaveLength(1);
  });

  it('when Medplum cannot be written at all, nothing can be recorded: the delivery fails (non-2xx) and says so', async () => {
    const world = new World();
    const event = recordsSyncCompleted();
    const at = Date.parse(event.created_at) + attemptAt(8);
    const down: FaultInjector = () => ({ status: 503 });
    await expect(world.bot(SYNC, { faults: down }).deliver(event, { signedAt: at, now: at })).rejects.toThrow(
      /server_error/
    );
    expect(await deadLetters(world)).toHaveLength(0);
  });

  it('a misrouted event is never escalated: a misconfigured endpoint stays loud', async () => {
    const world = new World();
    const event = patientFlowCompleted();
    const at = Date.parse(event.created_at) + attemptAt(8);
    await expect(world.bot(SYNC).deliver(event, { signedAt: at, now: at })).rejects.toThrow(/unexpected_event_type/);
    expect(await deadLetters(world)).toHaveLength(0);
  });
});

/** A write batch (not the read batch of GETs, not the dead-letter's one-entry batch). */
function isWrite(body: unknown): boolean {
  const entries = (body as { entry?: { request?: { method?: string }; resource?: unknown }[] } | undefined)?.entry;
  return (
    (entries ?? []).some((e) => e.request?.method !== 'GET') &&
    !JSON.stringify(entries ?? []).includes('webhook-dead-letter')
  );
}
