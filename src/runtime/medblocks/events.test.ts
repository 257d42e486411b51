import { describe, expect, it } from 'vitest';
import {
  connection,
  failedAttempt,
  patientFlowCompleted,
  recordsSyncCompleted,
  recordsSyncFailed,
  tokenRefreshFailed,
} from '../../tools/fixtures/events';
import { MAX_CONNECTIONS_PER_FLOW, normaliseTimestamp } from './events';
import { parseMedblocksEvent, unknownValueNotes } from '../events';
import type { MedblocksEvent } from '../events';

/** The four sample deliveries of medblocks-webhooks.md, byte for byte. */
const DOCUMENTED_SAMPLES = [
  '{"id":"evt_01J9YR9N3X4VZ6P2K5RH7M3LMP","object":"event","type":"patient_flow.completed","api_version":"2026-04-25","created_at":"2026-04-25T14:35:00.000Z","data":{"object":{"id":"pf_01J9YQ8M2X4VZ6P2K5RH7M3KQT","resource_type":"patient_flow","status":"complete","url":"https://app.medblocks.com/c/9c9b6f7a8e4f4a3b9c1e6f3a2d8b7c4d","patient_id":"user_42","connection_id":null,"recommended_connection_ids":["fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc","fhirsrc_0a9Ea55aR4u7HaWMyFBN8wcc"],"return_url":"https://app.example.com/connected","return_button_label":"Acme Health","connections":[{"id":"conn_01J9YR9N3X4VZ6P2K5RH7M3LMP","connection_id":"fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc","status":"active","failure_code":null,"failure_at":null,"created_at":"2026-04-25T14:33:10.000Z"},{"id":null,"connection_id":"fhirsrc_0a9Ea55aR4u7HaWMyFBN8wcc","status":"failed","failure_code":"access_denied","failure_at":"2026-04-25T14:34:40.000Z","created_at":"2026-04-25T14:34:05.000Z"}],"expires_at":"2026-04-25T15:00:00.000Z","metadata":{"signup_source":"checkout"},"created_at":"2026-04-25T14:30:00.000Z"}}}',
  '{"id":"evt_01JA0B1C2D3E4F5G6H7J8K9M0N","object":"event","type":"connection.token_refresh_failed","api_version":"2026-04-25","created_at":"2026-05-20T03:12:45.000Z","data":{"object":{"id":"conn_01J9YR9N3X4VZ6P2K5RH7M3LMP","connection_id":"fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc","status":"refresh_failed","failure_code":null,"failure_at":null,"created_at":"2026-04-25T14:33:10.000Z"}}}',
  '{"id":"evt_01JA0C2D3E4F5G6H7J8K9M0NPQ","object":"event","type":"records.sync.completed","api_version":"2026-04-25","created_at":"2026-04-25T14:36:12.000Z","data":{"object":{"resource_type":"records_sync","patient_id":"user_42","connection_id":"fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc","total":1342,"errors":0,"duration_ms":48211}}}',
  '{"id":"evt_01JA0D3E4F5G6H7J8K9M0NPQRS","object":"event","type":"records.sync.failed","api_version":"2026-04-25","created_at":"2026-04-25T14:36:12.000Z","data":{"object":{"resource_type":"records_sync","patient_id":"user_42","connection_id":"fhirsrc_02Zh2bnvRoWQJYgOAkI0Twcc","error_message":"FHIR server returned 503 for Observation search"}}}',
];

function problemsOf(value: unknown): readonly string[] {
  const result = parseMedblocksEvent(value);
  if (result.ok) throw new Error('expected the event to be refused');
  return result.problems;
}

const REMOVE = Symbol('remove');

/** A deep copy of `value` with the field at `path` replaced (or removed with REMOVE). */
function withField(value: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  const copy = JSON.parse(JSON.stringify(value)) as unknown;
  let parent = copy as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) {
    parent = parent[key] as Record<string | number, unknown>;
  }
  const last = path[path.length - 1] as string | number;
  if (replacement === REMOVE) {
    Reflect.deleteProperty(parent, last);
  } else {
    parent[last] = replacement;
  }
  return copy;
}

describe('parseMedblocksEvent accepts real deliveries', () => {
  it.each(DOCUMENTED_SAMPLES.map((s) => [(JSON.parse(s) as { type: string }).type, s]))(
    'documented sample: %s',
    (_type, sample) => {
      const result = parseMedblocksEvent(JSON.parse(sample));
      expect(result.ok).toBe(true);
    }
  );

  it('accepts the newer patient_session.completed name with ps_ ids', () => {
    const event = patientFlowCompleted(
      { id: 'ps_01J9YQ8M2X4VZ6P2K5RH7M3KQT', resource_type: 'patient_session' },
      { type: 'patient_session.completed' }
    );
    const result = parseMedblocksEvent(event);
    expect(result.ok && result.event.type).toBe('patient_session.completed');
  });

  it('tolerates unknown extra fields everywhere (forward compatibility)', () => {
    const base = recordsSyncCompleted();
    const event = {
      ...base,
      livemode: false,
      data: { ...base.data, previous_attributes: {}, object: { ...base.data.object, new_field: { nested: [1, 2] } } },
    };
    expect(parseMedblocksEvent(event).ok).toBe(true);
  });

  it('accepts a flow with no connections, a null duration and a null error message', () => {
    expect(parseMedblocksEvent(patientFlowCompleted({ connections: [] })).ok).toBe(true);
    expect(parseMedblocksEvent(recordsSyncCompleted({ duration_ms: null })).ok).toBe(true);
    expect(parseMedblocksEvent(recordsSyncFailed({ error_message: null })).ok).toBe(true);
  });

  it('accepts a refresh failure that one day carries a patient_id', () => {
    const event = tokenRefreshFailed({ id: 'conn_1', patient_id: 'user_42' });
    const result = parseMedblocksEvent(event);
    expect(
      result.ok && result.event.type === 'connection.token_refresh_failed' && result.event.data.object.patient_id
    ).toBe('user_42');
  });
});

describe('parseMedblocksEvent accepts what Medblocks may legitimately send (forward compatible)', () => {
  const flow = patientFlowCompleted();

  function parsed(value: unknown): MedblocksEvent {
    const result = parseMedblocksEvent(value);
    if (!result.ok) throw new Error(`refused: ${result.problems.join('; ')}`);
    return result.event;
  }

  it.each(['revoked', 'pending', 'Some Future Status'])('an unknown connection status (%s)', (status) => {
    const event = parsed(withField(flow, ['data', 'object', 'connections', 1, 'status'], status));
    expect(event.type === 'patient_flow.completed' && event.data.object.connections[1]?.status).toBe(status);
    expect(parsed(tokenRefreshFailed({ id: 'conn_1', status })).type).toBe('connection.token_refresh_failed');
  });

  it('unknown resource_type generations and flow statuses', () => {
    parsed(withField(flow, ['data', 'object', 'resource_type'], 'patient_journey'));
    parsed(withField(flow, ['data', 'object', 'status'], 'abandoned'));
    parsed(withField(recordsSyncCompleted(), ['data', 'object', 'resource_type'], 'records_sync_v2'));
  });

  it.each([
    'John Doe',
    'MRN|12345',
    'a,b',
    'cost$1',
    'back\\slash',
    ' padded ',
    'josé',
    '患者-42',
    '\u{1F600}',
    'p'.repeat(200),
  ])('an opaque patient_id: %s', (patientId) => {
    const event = parsed(recordsSyncCompleted({ patient_id: patientId }));
    expect(event.type === 'records.sync.completed' && event.data.object.patient_id).toBe(patientId);
  });

  it.each(['access denied', 'a|b', 'x,y', '$\\', ' spaced  out '])('an opaque failure_code: %s', (code) => {
    parsed(patientFlowCompleted({ connections: [failedAttempt({ failure_code: code })] }));
  });

  it('an envelope that says resource_type "event" (the API-wide convention) instead of object', () => {
    const conventional = withField(flow, ['object'], REMOVE) as Record<string, unknown>;
    parsed({ ...conventional, resource_type: 'event' });
    // Anything else in `object` is still refused, whatever resource_type says.
    const listed = withField(flow, ['object'], 'list') as Record<string, unknown>;
    expect(problemsOf({ ...listed, resource_type: 'event' })[0]).toMatch(/^object: expected/);
  });

  it('a fractional duration_ms (the published schema says number), never a negative one', () => {
    parsed(recordsSyncCompleted({ duration_ms: 48211.5 }));
    expect(problemsOf(recordsSyncCompleted({ duration_ms: -1 }))[0]).toMatch(/^data\.object\.duration_ms: expected/);
  });

  it('counts beyond int32 (they are written as decimals)', () => {
    parsed(recordsSyncCompleted({ total: 3_000_000_000, errors: 1e308, duration_ms: 2 ** 53 + 2 }));
  });

  it.each([
    ['2026-04-25T14:35:00.000Z', '2026-04-25T14:35:00.000Z'],
    ['2026-04-25T20:05:00+05:30', '2026-04-25T14:35:00.000Z'],
    ['2026-04-25T09:35:00.123456-05:00', '2026-04-25T14:35:00.123Z'],
    ['2026-04-25T14:35Z', '2026-04-25T14:35:00.000Z'],
    ['2026-04-26T00:35:00+10:00', '2026-04-25T14:35:00.000Z'],
    ['2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z'],
    ['2016-12-31T23:59:60Z', '2016-12-31T23:59:59.999Z'],
  ])('a timestamp %s, normalised to UTC %s with its instant kept', (input, output) => {
    const event = parsed(withField(flow, ['created_at'], input));
    expect(event.created_at).toBe(output);
    expect(normaliseTimestamp(input)).toBe(output);
  });

  it('normalises nested timestamps too', () => {
    const event = parsed(
      patientFlowCompleted({ connections: [connection({ created_at: '2026-04-25T16:33:10+02:00' })] })
    );
    expect(event.type === 'patient_flow.completed' && event.data.object.connections[0]?.created_at).toBe(
      '2026-04-25T14:33:10.000Z'
    );
  });
});

describe('unknownValueNotes', () => {
  it('names an unknown status only when it is a short safe token', () => {
    const flow = patientFlowCompleted(
      {
        connections: [
          connection({ status: 'revoked' }),
          connection({ status: 'revoked' }),
          connection({ status: 'Jane Doe 1970' }),
          connection({ status: 'active' }),
        ],
      },
      { id: 'evt_01ABC' }
    );
    expect(unknownValueNotes(parsedOk(flow))).toEqual([
      'medblocks evt=evt_01ABC note=unknown_connection_status status=revoked',
      'medblocks evt=evt_01ABC note=unknown_connection_status status=(not shown)',
    ]);
    expect(unknownValueNotes(parsedOk(patientFlowCompleted()))).toEqual([]);
  });
});

function parsedOk(value: unknown): MedblocksEvent {
  const result = parseMedblocksEvent(value);
  if (!result.ok) throw new Error('refused');
  return result.event;
}

describe('parseMedblocksEvent refuses bad input with field paths, never values', () => {
  const flow = patientFlowCompleted();

  it.each([
    [
      'unknown type',
      withField(flow, ['type'], 'patient.deleted'),
      'type: not a Medblocks event type this package knows',
    ],
    ['missing id', withField(flow, ['id'], REMOVE), 'id: expected'],
    ['id without evt_ prefix', withField(flow, ['id'], 'abc'), 'id: expected'],
    ['object not "event"', withField(flow, ['object'], 'list'), 'object: expected "event"'],
    ['created_at not ISO', withField(flow, ['created_at'], 'yesterday'), 'created_at: expected'],
    ['missing data.object', withField(flow, ['data', 'object'], REMOVE), 'data.object: expected'],
    [
      'missing patient_id',
      withField(flow, ['data', 'object', 'patient_id'], REMOVE),
      'data.object.patient_id: expected',
    ],
    ['empty patient_id', withField(flow, ['data', 'object', 'patient_id'], ''), 'data.object.patient_id: expected'],
    ['patient_id with a NUL', withField(flow, ['data', 'object', 'patient_id'], 'a\u0000b'), 'data.object.patient_id'],
    [
      'patient_id with an ESC',
      withField(flow, ['data', 'object', 'patient_id'], 'a\u001b[2Jb'),
      'data.object.patient_id',
    ],
    ['patient_id with a DEL', withField(flow, ['data', 'object', 'patient_id'], 'a\u007fb'), 'data.object.patient_id'],
    [
      'patient_id with a C1 control',
      withField(flow, ['data', 'object', 'patient_id'], 'a\u009bb'),
      'data.object.patient_id',
    ],
    [
      'patient_id with a lone surrogate',
      withField(flow, ['data', 'object', 'patient_id'], 'a\ud800'),
      'data.object.patient_id',
    ],
    ['patient_id of spaces only', withField(flow, ['data', 'object', 'patient_id'], '   '), 'data.object.patient_id'],
    [
      'failure_code with a control character',
      withField(flow, ['data', 'object', 'connections', 1, 'failure_code'], 'access\u0000denied'),
      'data.object.connections[1].failure_code',
    ],
    ['event id with an emoji', withField(flow, ['id'], 'evt_01J9\u{1F600}'), 'id: expected'],
    ['event id with a terminal escape', withField(flow, ['id'], 'evt_01J9\u001b[31m'), 'id: expected'],
    ['event id with punctuation', withField(flow, ['id'], 'evt_01J9-x'), 'id: expected'],
    ['event id too long', withField(flow, ['id'], `evt_${'A'.repeat(61)}`), 'id: expected'],
    ['impossible date (30 February)', withField(flow, ['created_at'], '2026-02-30T10:00:00.000Z'), 'created_at'],
    ['impossible time (24:00)', withField(flow, ['created_at'], '2026-02-10T24:00:00.000Z'), 'created_at'],
    ['date without a zone', withField(flow, ['created_at'], '2026-02-10T10:00:00.000'), 'created_at'],
    [
      'connection created_at on 31 April',
      withField(flow, ['data', 'object', 'connections', 0, 'created_at'], '2026-04-31T10:00:00Z'),
      'data.object.connections[0].created_at',
    ],
    [
      'status that is not a string',
      withField(flow, ['data', 'object', 'connections', 1, 'status'], 3),
      'data.object.connections[1].status: expected',
    ],
    [
      'status over 64 characters',
      withField(flow, ['data', 'object', 'connections', 1, 'status'], 's'.repeat(65)),
      'data.object.connections[1].status: expected',
    ],
    [
      'patient_id over 200 characters',
      withField(flow, ['data', 'object', 'patient_id'], 'p'.repeat(201)),
      'data.object.patient_id: expected',
    ],
    [
      'connections not an array',
      withField(flow, ['data', 'object', 'connections'], {}),
      'data.object.connections: expected',
    ],
    [
      'source id without prefix',
      withField(flow, ['data', 'object', 'connections', 0, 'connection_id'], 'src_1'),
      'data.object.connections[0].connection_id: expected',
    ],
    [
      'conn id of the wrong type',
      withField(flow, ['data', 'object', 'connections', 0, 'id'], 7),
      'data.object.connections[0].id: expected',
    ],
  ])('%s', (_name, value, expected) => {
    const problems = problemsOf(value);
    expect(problems.some((p) => p.startsWith(expected))).toBe(true);
  });

  it('refuses more connections than the bound', () => {
    const many = patientFlowCompleted({
      connections: Array.from({ length: MAX_CONNECTIONS_PER_FLOW + 1 }, (_, i) => ({
        id: `conn_${i}`,
        connection_id: 'fhirsrc_a',
        status: 'active' as const,
        failure_code: null,
        failure_at: null,
        created_at: '2026-04-25T14:33:10.000Z',
      })),
    });
    expect(problemsOf(many)).toContainEqual(expect.stringMatching(/^data\.object\.connections: expected <=50/));
  });

  it('refuses non-integer and negative counts in records.sync.completed', () => {
    expect(problemsOf(recordsSyncCompleted({ total: 1.5 }))[0]).toMatch(/^data\.object\.total: expected/);
    expect(problemsOf(recordsSyncCompleted({ errors: -1 }))[0]).toMatch(/^data\.object\.errors: expected/);
    expect(problemsOf(withField(recordsSyncCompleted(), ['data', 'object', 'total'], '12'))[0]).toMatch(
      /^data\.object\.total: expected number/
    );
  });

  it('never echoes a received value in a problem', () => {
    const secretish = 'Jane-Doe-1970-01-01-SSN-123';
    const values = [
      withField(flow, ['data', 'object', 'patient_id'], `${secretish}\u0000`),
      withField(flow, ['data', 'object', 'connections', 0, 'created_at'], secretish),
      withField(flow, ['data', 'object', 'connections', 0, 'status'], [secretish]),
      withField(flow, ['type'], secretish),
      withField(recordsSyncCompleted(), ['data', 'object', 'total'], secretish),
      withField(flow, ['id'], secretish),
    ];
    for (const value of values) {
      expect(problemsOf(value).join(' ')).not.toContain(secretish);
    }
  });

  it('does not echo attacker-chosen keys in paths', () => {
    const problems = problemsOf({ ...flow, data: { object: { connections: 1, 'Jane Doe': 1 } } });
    expect(problems.join(' ')).not.toContain('Jane');
  });

  it('reports at most five problems', () => {
    expect(problemsOf({}).length).toBeLessThanOrEqual(5);
    expect(problemsOf(42).length).toBeGreaterThan(0);
  });
});
