// Medblocks' patients as the reconciler reads them from inside a bot (published `api.listPatients`,
// `GET /patients`, and `api.getPatient`, `GET /patients/{id}`): every page to the end within a
// stated bound, each object type-checked. The schemas are the published shapes; the tools' client
// (src/tools/provision/medblocks-api.ts) uses the same ones.
import * as v from 'valibot';
import { listAll, MedblocksCallError, medblocksGet } from './http';
import type { MedblocksConnection } from './http';

/** A connection of `PatientDetail` (all required): the only place expired and disconnected show. */
export const PatientConnectionSchema = v.looseObject({
  id: v.string(),
  resource_type: v.optional(v.string()),
  patient_session_id: v.optional(v.nullable(v.string())),
  connection_id: v.string(),
  status: v.string(),
  scopes: v.optional(v.array(v.string())),
  failure_code: v.optional(v.nullable(v.string())),
  failure_at: v.optional(v.nullable(v.string())),
  created_at: v.string(),
  updated_at: v.string(),
});
export type MedblocksPatientConnection = v.InferOutput<typeof PatientConnectionSchema>;

/** `Patient` (the list item): `id` is the customer's own patient id. */
export const PatientSchema = v.looseObject({
  id: v.string(),
  resource_type: v.optional(v.string()),
  created_at: v.optional(v.string()),
});

/** `PatientDetail`: the patient and its connections, most recent first. */
export const PatientDetailSchema = v.looseObject({
  ...PatientSchema.entries,
  connections: v.array(PatientConnectionSchema),
});
export type MedblocksPatientDetail = v.InferOutput<typeof PatientDetailSchema>;

/** What reconciliation reads of Medblocks: the tools' client and the bot's both provide it. */
export interface PatientSource {
  listPatientIds(): Promise<string[]>;
  getPatient(patientId: string): Promise<MedblocksPatientDetail>;
}

/** Pages of `GET /patients` followed before the run says it stopped (10,000 patients). */
export const MAX_PATIENT_PAGES = 100;

/** The bot's side of PatientSource, over `fetch`. */
export function patientsOverFetch(connection: MedblocksConnection): PatientSource {
  return {
    async listPatientIds() {
      return (await listAll(connection, '/patients', PatientSchema, MAX_PATIENT_PAGES)).map((p) => p.id);
    },
    async getPatient(patientId) {
      const body = await medblocksGet(connection, `/patients/${encodeURIComponent(patientId)}`);
      const parsed = v.safeParse(PatientDetailSchema, body);
      if (!parsed.success) throw new MedblocksCallError('medblocks_error', 200, undefined, 'GET /patients/{id}');
      return parsed.output;
    },
  };
}
