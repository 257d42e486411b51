// What the local Medblocks holds and answers with: its options, its endpoints and delivery records
// in the published shapes, the patients and records it serves, and the one error it throws (the
// published error envelope's fields). The routes (./routes.ts) and the deliveries (./deliveries.ts)
// share this state; ./core.ts answers requests with them, ./server.ts over HTTP and ./in-process.ts
// as a `fetch`.
import { randomBytes } from 'node:crypto';
import type { PATIENT_SESSION_COMPLETED } from '../../runtime/events/patient-session-completed';
import type {
  createRecordsStore,
  PatientRecordItem,
  PutRecordsOptions,
  PutRecordsResult,
  StoredPatientRecord,
} from './records';

export type FlowEventName = (typeof PATIENT_SESSION_COMPLETED)[number];

export interface LocalMedblocksOptions {
  readonly port?: number;
  /** Loopback only: 127.0.0.1, ::1 or localhost. */
  readonly host?: string;
  readonly apiKey?: string;
  /** How many times faster than real time the retry schedule runs. */
  readonly timeScale?: number;
  /**
   * Which name of the flow event this Medblocks knows; the other is refused as unknown. Default:
   * the published API's `patient_session.completed` (the guides' older `patient_flow.completed` is
   * kept for testing an account that still uses it).
   */
  readonly flowEventName?: FlowEventName;
  /**
   * Every event name this account knows, when it is not the package's with one flow name (as
   * `flowEventName` gives): e.g. an account that knows neither flow name. Others are refused (MB-C5).
   */
  readonly knownEvents?: readonly string[];
  readonly now?: () => number;
  /** The EHR catalogue `GET /connections[/{id}]` serves (names by `fhirsrc_` id); a small table by default. */
  readonly sources?: Readonly<Record<string, string>>;
  /**
   * A fixed secret for an endpoint URL, so the local Medblocks can be wired to a receiver whose
   * secret is already set (the emulator's dev secrets); a random `whsec_` otherwise.
   */
  readonly secretForUrl?: (url: string) => string | undefined;
}

export interface LocalEndpoint {
  id: string;
  url: string;
  events: string[];
  status: 'active' | 'disabled';
  description: string | null;
  metadata: Record<string, string>;
  api_version: string;
  created_at: string;
  updated_at: string;
  secret: string;
}

export interface LocalDeliveryRecord {
  id: string;
  resource_type: 'event';
  webhook_endpoint_id: string;
  type: string;
  api_version: string;
  data: unknown;
  attempts: number;
  next_attempt_at: string | null;
  delivered_at: string | null;
  last_status_code: number | null;
  last_response_body: string | null;
  last_redelivered_at: string | null;
  created_at: string;
}

export interface MedblocksEvent {
  readonly id: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

/** A connection as `GET /patients/{id}` lists it (PatientDetail.connections[]). */
export interface LocalPatientConnection {
  readonly id: string;
  readonly connection_id: string;
  readonly status: 'active' | 'failed' | 'expired' | 'refresh_failed' | 'disconnected' | (string & {});
  readonly failure_code?: string | null;
  readonly failure_at?: string | null;
  readonly created_at: string;
  readonly updated_at: string;
  readonly patient_session_id?: string | null;
}

export interface LocalPutRecordsResult extends PutRecordsResult {
  /** The `records.sync.completed` events emitted (empty unless `syncCompleted` was asked). */
  readonly events: readonly MedblocksEvent[];
}

export interface RunningLocalMedblocks {
  readonly url: string;
  readonly apiKey: string;
  /** Sets what `GET /patients` and `GET /patients/{id}` answer for one patient (its connections, newest first). */
  setPatient(patientId: string, connections: readonly LocalPatientConnection[]): void;
  /**
   * Stores what `GET /patients/{id}/records` serves, upserting by (source, resourceType, id): a
   * changed item gets the server clock as its change time (what `since` compares), an unchanged one
   * keeps its own. An unknown patient becomes known (no connections), as a patient with records is.
   */
  putRecords(
    patientId: string,
    items: readonly PatientRecordItem[],
    options?: PutRecordsOptions
  ): LocalPutRecordsResult;
  /** The patient's stored records, in the order the API pages them, with their change times. */
  records(patientId: string): StoredPatientRecord[];
  /** Records the event for every active subscribed endpoint and starts its deliveries. */
  emit(event: MedblocksEvent): void;
  /** Resolves when no delivery attempt is pending or in flight. */
  idle(): Promise<void>;
  /** The endpoint record as held, secret included: a test may change it as Medblocks would (`status`). */
  endpoint(id: string): LocalEndpoint | undefined;
  /** Every endpoint record as held, in the order they were created. */
  endpoints(): LocalEndpoint[];
  /** One endpoint's delivery records as held (what `GET /webhooks/{id}/events` pages), oldest first. */
  deliveryRecords(endpointId: string): LocalDeliveryRecord[];
  close(): Promise<void>;
}

/** One patient as `GET /patients[/{id}]` serves it. */
export interface LocalPatient {
  readonly created_at: string;
  readonly connections: readonly LocalPatientConnection[];
}

/** Everything the routes and the deliveries read and change. */
export interface LocalMedblocksState {
  readonly now: () => number;
  /** The event names this Medblocks knows (an endpoint subscribed to another is refused). */
  readonly known: ReadonlySet<string>;
  /** The EHR catalogue by `fhirsrc_` id. */
  readonly sources: Readonly<Record<string, string>>;
  readonly secretForUrl: ((url: string) => string | undefined) | undefined;
  readonly endpoints: Map<string, LocalEndpoint>;
  readonly patients: Map<string, LocalPatient>;
  /** Endpoint id → event id → its delivery record. */
  readonly deliveries: Map<string, Map<string, LocalDeliveryRecord>>;
  /** Event id → the compact JSON that is signed and sent. */
  readonly bodies: Map<string, string>;
  readonly patientRecords: ReturnType<typeof createRecordsStore>;
}

/** A refusal in the published error envelope (`{error: {type, code, message, param, …}}`, MB-C3). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    readonly code: string,
    message: string,
    readonly param?: string,
    readonly retryAfter?: number
  ) {
    super(message);
  }
}

/** A Medblocks-style id: the prefix, then 26 upper-case characters. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(13).toString('hex').toUpperCase().slice(0, 26)}`;
}

export const iso = (ms: number): string => new Date(ms).toISOString();
