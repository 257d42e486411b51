// The dedupe marker: a Basic resource per applied event. It is an optimisation and an audit record
// (every write is idempotent anyway), written last so that it never claims work that did not happen.
//
// `subject` records the patient as known WHEN the event was applied, and is never filled in later.
// A refresh failure applied before its flow event has no patient; filling its marker when the flow
// arrives would need the flow bot to search and update markers of another bot's event type (new
// Basic read/update grants, and exactly the cross-bot marker access a compromised bot could abuse
// to suppress or forge other bots' events), plus one more search per flow. The
// patient is found from the event's own resources instead: the Consent and reconnect Task of the
// connection get their patient when the flow arrives (WorkingSet.reportConnection, linkReconnectTask).
import type { Basic, Reference } from '@medplum/fhirtypes';
import { CODE, CODE_DISPLAY, SYSTEM, token } from './systems';

/**
 * `created` is the event's UTC date, but never after the day it is applied (`appliedAt`): each bot's
 * policy refuses a marker dated after the server's today, so that no marker escapes the sweeper by
 * a date in the future, and an event stamped a little ahead of our clock is still marked.
 */
export function buildMarker(
  eventId: string,
  eventType: string,
  eventCreatedAt: string,
  subject: Reference | undefined,
  appliedAt: string = eventCreatedAt
): Basic {
  const eventDay = eventCreatedAt.slice(0, 10);
  const appliedDay = appliedAt.slice(0, 10);
  const marker: Basic = {
    resourceType: 'Basic',
    identifier: [{ system: SYSTEM.eventId, value: eventId }],
    code: {
      coding: [{ system: SYSTEM.code, code: CODE.webhookEvent, display: CODE_DISPLAY[CODE.webhookEvent] }],
      text: eventType,
    },
    // Basic.created is a date: the retention sweeper deletes by it.
    created: eventDay < appliedDay ? eventDay : appliedDay,
  };
  return subject?.reference ? { ...marker, subject: { reference: subject.reference } } : marker;
}

/**
 * Whether a marker says this event was applied: only a marker naming the event's own type counts,
 * because each bot's policy lets it write markers of its own types only — a marker another bot wrote
 * (with this event's id) never suppresses the event.
 */
export function marksApplied(marker: Pick<Basic, 'code'> | undefined, eventType: string): boolean {
  return marker?.code.text === eventType;
}

export function markerQuery(eventId: string): string {
  return `identifier=${encodeURIComponent(token(SYSTEM.eventId, eventId))}`;
}
