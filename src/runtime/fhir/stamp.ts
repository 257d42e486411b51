// "Newest event wins": every mutable resource remembers the newest event applied to it as a stamp
// (created_at, then event id as tie-breaker — Medblocks' event ids are time-sortable), stored in
// an extension. Comparing stamps is what makes any delivery order converge to one state.
import type { Extension, Resource } from '@medplum/fhirtypes';

export interface EventStamp {
  /** ISO 8601 instant, as Medblocks sent it. */
  readonly at: string;
  readonly eventId: string;
}

/** Negative when a is older than b; compares instants numerically so that offsets and precision don't matter. */
export function compareStamps(a: EventStamp, b: EventStamp): number {
  const byTime = Date.parse(a.at) - Date.parse(b.at);
  if (byTime !== 0) {
    return byTime;
  }
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}

export function isNewer(candidate: EventStamp, than: EventStamp | undefined): boolean {
  return than === undefined || compareStamps(candidate, than) > 0;
}

export function newestOf(a: EventStamp | undefined, b: EventStamp | undefined): EventStamp | undefined {
  if (!a) return b;
  if (!b) return a;
  return compareStamps(a, b) >= 0 ? a : b;
}

export function oldestOf(a: EventStamp | undefined, b: EventStamp | undefined): EventStamp | undefined {
  if (!a) return b;
  if (!b) return a;
  return compareStamps(a, b) <= 0 ? a : b;
}

/** The earlier of two ISO 8601 instants, compared as instants (`a` when they are the same moment). */
export function earliest(a: string | undefined, b: string): string {
  return a !== undefined && Date.parse(a) <= Date.parse(b) ? a : b;
}

export function stampExtension(url: string, stamp: EventStamp): Extension {
  return {
    url,
    extension: [
      { url: 'eventId', valueString: stamp.eventId },
      { url: 'createdAt', valueInstant: stamp.at },
    ],
  };
}

export function readStamp(
  resource: Pick<Resource, 'resourceType'> & { extension?: Extension[] },
  url: string
): EventStamp | undefined {
  const ext = resource.extension?.find((e) => e.url === url);
  const eventId = ext?.extension?.find((e) => e.url === 'eventId')?.valueString;
  const at = ext?.extension?.find((e) => e.url === 'createdAt')?.valueInstant;
  return eventId && at ? { eventId, at } : undefined;
}
