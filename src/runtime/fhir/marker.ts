// The dedupe marker: a Basic resource per applied event. It is an optimisation and an audit record
// (every write is idempotent anyway), written last so that it never claims work that did not happen.
import type { Basic, Reference } from '@medplum/fhirtypes';
import { CODE, CODE_DISPLAY, SYSTEM, token } from './systems';

export function buildMarker(
  eventId: string,
  eventType: string,
  eventCreatedAt: string,
  subject: Reference | undefined
): Basic {
  const marker: Basic = {
    resourceType: 'Basic',
    identifier: [{ system: SYSTEM.eventId, value: eventId }],
    code: {
      coding: [{ system: SYSTEM.code, code: CODE.webhookEvent, display: CODE_DISPLAY[CODE.webhookEvent] }],
      text: eventType,
    },
    // Basic.created is a date: the retention sweeper deletes by it.
    created: eventCreatedAt.slice(0, 10),
  };
  return subject?.reference ? { ...marker, subject: { reference: subject.reference } } : marker;
}

export function markerQuery(eventId: string): string {
  return `identifier=${encodeURIComponent(token(SYSTEM.eventId, eventId))}`;
}
