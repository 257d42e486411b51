// GET /patients/{id}/records (api.getPatientRecords) on the local Medblocks, as published: `count`
// 1–100 (default 100), `starting_after` / `ending_before` cursors (12 characters, 7 days), `type`
// and `since` filters, and the stable (change time, source, resourceType, id) order that makes
// paging neither skip nor repeat. The clock is the server's injectable `now`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM } from '../../src/runtime/fhir/systems';
import { generatePatientRecords, secondSync } from '../../src/tools/fixtures/patient-records';
import { RECORD_CURSOR_TTL_MS } from '../../src/tools/medblocks-local/records';
import type { PatientRecordItem, PatientRecordsPage } from '../../src/tools/medblocks-local/records';
import { startLocalMedblocks } from '../../src/tools/medblocks-local/server';
import type { RunningLocalMedblocks } from '../../src/tools/medblocks-local/server';
import { MedblocksApi } from '../../src/tools/provision/medblocks-api';

const SOURCE_A = 'fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc';
const SOURCE_B = 'fhirsrc_0a9Ea55aR4u7HaWMyFBN8wcc';
const PATIENT = 'user_records';
const T1 = Date.parse('2026-04-25T15:00:00.000Z');
const T2 = Date.parse('2026-04-26T09:30:00.000Z');

let clock = T1;
let mb: RunningLocalMedblocks;
const fromA = generatePatientRecords({ patientId: PATIENT, source: SOURCE_A, seed: 1, count: 120 });
const fromB = generatePatientRecords({ patientId: PATIENT, source: SOURCE_B, seed: 2, count: 30 });
const TOTAL = fromA.length + fromB.length;

beforeAll(async () => {
  mb = await startLocalMedblocks({ timeScale: 1e9, now: () => clock });
  clock = T1;
  mb.putRecords(PATIENT, [...fromB, ...fromA]);
});
afterAll(async () => {
  await mb.close();
});

interface Answer {
  status: number;
  json: unknown;
}
async function get(path: string): Promise<Answer> {
  const response = await fetch(`${mb.url}${path}`, { headers: { authorization: `Bearer ${mb.apiKey}` } });
  return { status: response.status, json: await response.json() };
}
async function page(query: string, patient = PATIENT): Promise<PatientRecordsPage> {
  const answer = await get(`/patients/${patient}/records${query ? `?${query}` : ''}`);
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  return answer.json as PatientRecordsPage;
}
async function refused(query: string): Promise<{ status: number; type: string; code: string; param: string | null }> {
  const answer = await get(`/patients/${PATIENT}/records?${query}`);
  const { error } = answer.json as { error: { type: string; code: string; param: string | null } };
  return { status: answer.status, type: error.type, code: error.code, param: error.param };
}
const keyOf = (i: PatientRecordItem): string => `${i.source ?? ''}|${i.resource.resourceType}/${i.resource.id ?? ''}`;

/** Follows next_cursor from the first page to the last, keeping the query's filters on every page. */
async function walk(query: string): Promise<PatientRecordsPage[]> {
  const pages = [await page(query)];
  for (let last = pages[0]; last?.next_cursor; last = pages.at(-1)) {
    pages.push(await page(`${query}&starting_after=${last.next_cursor}`));
    if (pages.length > 100) throw new Error('paging does not end');
  }
  return pages;
}

describe('GET /patients/{id}/records', () => {
  it('pages to the end with count 7: every record exactly once, in the stable order, 12-character cursors', async () => {
    const pages = await walk('count=7');
    expect(pages).toHaveLength(Math.ceil(TOTAL / 7));
    const seen = pages.flatMap((p) => p.data.map(keyOf));
    expect(seen).toHaveLength(TOTAL);
    expect(new Set(seen).size).toBe(TOTAL);
    // the served order is the store's: change time, then source, resourceType, id
    expect(seen).toEqual(mb.records(PATIENT).map(keyOf));
    // one put, so one change time: by source (A's `fhirsrc_02…` before B's `fhirsrc_0a…`), resourceType, id
    const tuple = (i: PatientRecordItem): string[] => [i.source ?? '', i.resource.resourceType, i.resource.id ?? ''];
    const byKey = (a: PatientRecordItem, b: PatientRecordItem): number => {
      const [x, y] = [tuple(a), tuple(b)];
      const at = x.findIndex((v, n) => v !== y[n]);
      return at < 0 ? 0 : (x[at] ?? '') < (y[at] ?? '') ? -1 : 1;
    };
    expect(seen).toEqual([...fromB, ...fromA].sort(byKey).map(keyOf));
    expect(seen.slice(0, fromA.length).every((k) => k.startsWith(SOURCE_A))).toBe(true);
    for (const [i, p] of pages.entries()) {
      expect(p.data.length).toBeLessThanOrEqual(7);
      expect(p.has_more).toBe(i < pages.length - 1);
      expect(p.previous_cursor === null).toBe(i === 0);
      for (const c of [p.next_cursor, p.previous_cursor]) if (c !== null) expect(c).toMatch(/^[A-Za-z0-9]{12}$/);
    }
    expect(pages.at(-1)?.next_cursor).toBeNull();
  });

  it('defaults to 100 a page', async () => {
    const first = await page('');
    expect(first.data).toHaveLength(100);
    expect(first).toMatchObject({ resource_type: 'list', patient_id: PATIENT, has_more: true, previous_cursor: null });
    const rest = await page(`starting_after=${first.next_cursor ?? ''}`);
    expect(rest.data).toHaveLength(TOTAL - 100);
    expect(rest.has_more).toBe(false);
  });

  it('ending_before pages back: the previous_cursor of page 3 gives page 2, of page 2 page 1', async () => {
    const pages = await walk('count=7');
    const [p1, p2, p3] = pages;
    if (!p1 || !p2 || !p3) throw new Error('too few pages');
    const back2 = await page(`count=7&ending_before=${p3.previous_cursor ?? ''}`);
    expect(back2.data.map(keyOf)).toEqual(p2.data.map(keyOf));
    expect(back2.has_more).toBe(true); // more lies further back
    const back1 = await page(`count=7&ending_before=${back2.previous_cursor ?? ''}`);
    expect(back1.data.map(keyOf)).toEqual(p1.data.map(keyOf));
    expect(back1).toMatchObject({ has_more: false, previous_cursor: null });
    // and forward again from a page reached backwards
    expect((await page(`count=7&starting_after=${back1.next_cursor ?? ''}`)).data.map(keyOf)).toEqual(
      p2.data.map(keyOf)
    );
    // from the last page all the way back, everything once
    let at = pages.at(-1);
    const backwards = [...(at?.data ?? [])];
    while (at?.previous_cursor) {
      at = await page(`count=7&ending_before=${at.previous_cursor}`);
      backwards.unshift(...at.data);
    }
    expect(backwards.map(keyOf)).toEqual(pages.flatMap((p) => p.data.map(keyOf)));
  });

  it('type filters by FHIR resource type, identically across pages', async () => {
    const pages = await walk('type=Observation,Condition&count=7');
    const items = pages.flatMap((p) => p.data);
    const expected = [...fromA, ...fromB].filter((i) => ['Observation', 'Condition'].includes(i.resource.resourceType));
    expect(items.map(keyOf).sort()).toEqual(expected.map(keyOf).sort());
    expect((await page('type=Immunization')).data.every((i) => i.resource.resourceType === 'Immunization')).toBe(true);
    expect((await page('type=Basic')).data).toEqual([]);
    // a cursor is for the filters it was issued with
    const cursor = pages[0]?.next_cursor ?? '';
    expect(await refused(`type=Observation&count=7&starting_after=${cursor}`)).toMatchObject({
      status: 400,
      param: 'starting_after',
    });
    expect(await refused('type=observation%20OR%201')).toMatchObject({ status: 400, param: 'type' });
  });

  it('every FHIR Patient carries the Medblocks patient id as urn:medblocks:patient-id', async () => {
    const patients = (await page('type=Patient')).data;
    expect(patients).toHaveLength(2);
    for (const { resource } of patients) {
      const identifiers = resource.resourceType === 'Patient' ? (resource.identifier ?? []) : [];
      expect(identifiers.filter((i) => i.system === SYSTEM.patientId)).toEqual([
        { system: SYSTEM.patientId, value: PATIENT },
      ]);
      expect(identifiers.some((i) => i.system !== SYSTEM.patientId)).toBe(true); // the EHR's MRN kept
    }
  });

  it('count out of 1–100 or not an integer, bad or expired cursors: 400 invalid_request_error naming the param', async () => {
    for (const count of ['0', '101', 'abc', '7.5', '-1', '1e1'])
      expect(await refused(`count=${count}`), `count=${count}`).toEqual({
        status: 400,
        type: 'invalid_request_error',
        code: 'invalid_data',
        param: 'count',
      });
    expect(await refused('count=100&since=yesterday')).toMatchObject({ status: 400, param: 'since' });
    expect(await refused('starting_after=AAAAAAAAAAAA')).toMatchObject({ status: 400, param: 'starting_after' });
    expect(await refused('ending_before=AAAAAAAAAAAA')).toMatchObject({ status: 400, param: 'ending_before' });
    const first = await page('count=7');
    const second = await page(`count=7&starting_after=${first.next_cursor ?? ''}`);
    // a next_cursor is for starting_after, a previous_cursor for ending_before
    expect(await refused(`ending_before=${first.next_cursor ?? ''}`)).toMatchObject({ param: 'ending_before' });
    expect(await refused(`starting_after=${second.previous_cursor ?? ''}`)).toMatchObject({ param: 'starting_after' });
    expect(
      await refused(`starting_after=${first.next_cursor ?? ''}&ending_before=${second.previous_cursor ?? ''}`)
    ).toMatchObject({ status: 400, type: 'invalid_request_error' });
    // another patient's cursor is unknown here
    mb.putRecords('user_other', fromB.slice(0, 10));
    const others = await page('count=3', 'user_other');
    expect(await refused(`starting_after=${others.next_cursor ?? ''}`)).toMatchObject({ param: 'starting_after' });

    const issuedAt = clock;
    try {
      clock = issuedAt + RECORD_CURSOR_TTL_MS - 1000;
      expect((await page(`count=7&starting_after=${first.next_cursor ?? ''}`)).data.map(keyOf)).toEqual(
        second.data.map(keyOf)
      );
      clock = issuedAt + RECORD_CURSOR_TTL_MS + 1000;
      expect(await refused(`count=7&starting_after=${first.next_cursor ?? ''}`)).toEqual({
        status: 400,
        type: 'invalid_request_error',
        code: 'invalid_data',
        param: 'starting_after',
      });
      expect(await refused(`count=7&ending_before=${second.previous_cursor ?? ''}`)).toMatchObject({
        param: 'ending_before',
      });
    } finally {
      clock = issuedAt;
    }
  });

  it('an unknown patient is the usual 404', async () => {
    const answer = await get('/patients/nobody/records');
    expect(answer.status).toBe(404);
    expect(answer.json).toMatchObject({ error: { type: 'not_found_error', code: 'resource_not_found', param: 'id' } });
  });
});

describe('putRecords and since', () => {
  it('a second put stamps only what changed; since returns exactly that, as date-time or date', async () => {
    const patient = 'user_since';
    const first = generatePatientRecords({ patientId: patient, source: SOURCE_A, seed: 3, count: 60 });
    clock = T1;
    expect(mb.putRecords(patient, first)).toMatchObject({ created: 60, updated: 0, unchanged: 0 });
    const second = secondSync(first);
    clock = T2;
    const result = mb.putRecords(patient, second.items);
    expect(result).toMatchObject({ created: 2, updated: 2, unchanged: 58, changedAt: new Date(T2).toISOString() });
    const changedKeys = [...second.changed, ...second.added].map(keyOf).sort();

    const sinceT1 = await page(`since=${new Date(T1).toISOString()}`, patient);
    expect(sinceT1.data.map(keyOf).sort()).toEqual(changedKeys);
    expect(sinceT1.data.map((i) => i.resource)).toContainEqual(second.changed[0]?.resource);
    // an offset written unencoded (`+` read as a space) means the same instant
    expect((await page(`since=2026-04-25T17:00:00+02:00`, patient)).data.map(keyOf).sort()).toEqual(changedKeys);
    expect((await page('since=2026-04-26', patient)).data.map(keyOf).sort()).toEqual(changedKeys);
    expect((await page('since=2026-04-25', patient)).data).toHaveLength(62);
    expect((await page(`since=${new Date(T2).toISOString()}`, patient)).data).toEqual([]);

    // paging with since keeps since
    const pages: PatientRecordsPage[] = [await page(`since=${new Date(T1).toISOString()}&count=3`, patient)];
    const next = pages[0]?.next_cursor ?? '';
    pages.push(await page(`since=${new Date(T1).toISOString()}&count=3&starting_after=${next}`, patient));
    expect(pages.flatMap((p) => p.data.map(keyOf)).sort()).toEqual(changedKeys);
    expect(await refused(`count=3&starting_after=${next}`)).toMatchObject({ status: 400 });

    // unchanged content keeps its change time; a changed item moves to the end of the order
    const stored = mb.records(patient);
    expect(stored.filter((r) => r.changedAt === new Date(T1).toISOString())).toHaveLength(58);
    expect(stored.slice(-4).map(keyOf).sort()).toEqual(changedKeys);
    const corrected = second.changed[0];
    expect(stored.find((r) => corrected && keyOf(r) === keyOf(corrected))?.resource).toEqual(corrected?.resource);

    // a put of the very same content changes nothing, even with its keys in another order
    clock = T2 + 60_000;
    const reordered = second.items.map((i) => ({
      source: i.source,
      resource: Object.fromEntries(Object.entries(i.resource).reverse()) as typeof i.resource,
    }));
    expect(mb.putRecords(patient, reordered)).toMatchObject({ created: 0, updated: 0, unchanged: 62 });
    expect((await page(`since=${new Date(T2).toISOString()}`, patient)).data).toEqual([]);
  });

  it('with syncCompleted, emits one records.sync.completed per source to subscribed endpoints; without, none', async () => {
    const api = new MedblocksApi(mb.url, mb.apiKey);
    const endpoint = await api.createEndpoint({
      url: 'http://localhost:1/records-sync',
      events: ['records.sync.completed'],
      description: 'records',
    });
    const patient = 'user_sync';
    mb.putRecords(patient, fromB.slice(0, 5));
    await mb.idle();
    expect(await api.listEvents(endpoint.id)).toEqual([]);
    const items = [
      ...generatePatientRecords({ patientId: patient, source: SOURCE_A, seed: 4, count: 30 }),
      ...generatePatientRecords({ patientId: patient, source: SOURCE_B, seed: 5, count: 25 }),
    ];
    const result = mb.putRecords(patient, items, { syncCompleted: { duration_ms: 812 } });
    await mb.idle();
    expect(result.events.map((e) => e['data'])).toEqual([
      {
        object: {
          resource_type: 'records_sync',
          patient_id: patient,
          connection_id: SOURCE_A,
          total: 30,
          errors: 0,
          duration_ms: 812,
        },
      },
      {
        object: {
          resource_type: 'records_sync',
          patient_id: patient,
          connection_id: SOURCE_B,
          total: 25,
          errors: 0,
          duration_ms: 812,
        },
      },
    ]);
    const delivered = await api.listEvents(endpoint.id);
    expect(delivered.map((e) => e.id).sort()).toEqual(result.events.map((e) => e.id).sort());
    expect(delivered.every((e) => e.type === 'records.sync.completed')).toBe(true);
  });
});
