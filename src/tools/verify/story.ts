// The demo story (src/tools/cli/demo-story.ts) made fresh for a real, persistent project: a new patient,
// new EHR sources and connection, and new event and flow ids on every run. The fixtures' ids are
// deterministic per process, so without this a second run would meet the first run's dedupe markers
// and answer `duplicate` everywhere; and a re-used patient would carry the first run's Consents.
import { randomInt } from 'node:crypto';
import { demoStory } from '../fixtures/demo-story';
import type { DemoIds, DemoStep } from '../fixtures/demo-story';
import { ulidAt } from '../fixtures/events';
import type { MedblocksEvent } from '../../runtime/events';

export interface FreshStory {
  readonly ids: DemoIds;
  readonly steps: readonly DemoStep[];
}

/** A time-ordered id with 48 random bits: unique across runs, sortable like Medblocks' own. */
export function freshUlid(now: number = Date.now(), random: () => number = () => randomInt(2 ** 47)): string {
  return ulidAt(now, random());
}

/** Verify's made-up EHR sources start so; `npm run sources` leaves them alone (Medblocks never knew them). */
export const VERIFY_SOURCE_PREFIX = 'fhirsrc_verify';

/**
 * The story with fresh ids. The same event keeps the same (new) id wherever it appears, so that the
 * redelivery step is still a duplicate of the first delivery and the forged and replayed steps
 * still carry one event.
 */
export function freshStory(now: number = Date.now(), random?: () => number): FreshStory {
  const tag = freshUlid(now, random).toLowerCase();
  const ids: DemoIds = {
    // An underscore makes it an invalid FHIR id, so the bots create the Patient by identifier
    // instead of looking for `Patient/<patient_id>`.
    patientId: `verify_${tag}`,
    sourceA: `${VERIFY_SOURCE_PREFIX}A${tag}`,
    sourceB: `${VERIFY_SOURCE_PREFIX}B${tag}`,
    connectionA: `conn_${freshUlid(now, random)}`,
  };
  const renamed = new Map<string, string>();
  const fresh = (old: string, prefix: string): string => {
    let id = renamed.get(old);
    if (!id) {
      id = `${prefix}${freshUlid(now, random)}`;
      renamed.set(old, id);
    }
    return id;
  };
  const withFreshIds = (event: MedblocksEvent): MedblocksEvent => {
    if (event.type === 'patient_flow.completed' || event.type === 'patient_session.completed') {
      const flow = event.data.object;
      return {
        ...event,
        id: fresh(event.id, 'evt_'),
        data: { ...event.data, object: { ...flow, id: fresh(flow.id, 'pf_') } },
      };
    }
    return { ...event, id: fresh(event.id, 'evt_') };
  };
  return { ids, steps: demoStory(ids).map((step) => ({ ...step, event: withFreshIds(step.event) })) };
}
