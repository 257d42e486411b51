// Every written resource valid against HL7's R4 JSON schema, whatever characters a genuine value
// carries. Medblocks' patient ids are the customer's own opaque strings; HL7's
// `string` refuses Unicode whitespace other than space, tab, CR and LF. The rule
// (docs/parsing-and-normalisation.md): an id valid as a FHIR string is kept exactly; any other is
// percent-encoded under a second identifier system, so the mapping stays one-to-one.
import type { Task } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { buildPatient } from '../src/runtime/fhir/patient';
import { asFhirText, decodePatientIdentifier, patientIdentifier, SYSTEM } from '../src/runtime/fhir/systems';
import { recordsSyncCompleted, recordsSyncFailed } from '../src/tools/fixtures/events';
import { World } from '../src/tools/harness/world';
import { hl7SchemaErrors } from './support/hl7-schema';

const ODD_IDS = [
  'user\u00a07',
  'line\u2028sep',
  'para\u2029',
  'ideo\u3000space',
  'zw\ufeffnb',
  'ogham\u1680',
  'thin\u2009',
];

describe('patient identifiers', () => {
  it('keeps every id HL7 accepts exactly as Medblocks sent it, under urn:medblocks:patient-id', () => {
    for (const id of ['user_42', 'a b', '50%', 'x,y|z$\\', 'émoji 🙂', '0123456789']) {
      expect(patientIdentifier(id)).toEqual({ system: SYSTEM.patientId, value: id });
      expect(hl7SchemaErrors(buildPatient(id))).toEqual([]);
    }
  });

  it('encodes an id HL7 refuses under its own system, valid and decodable', () => {
    for (const id of ODD_IDS) {
      const identifier = patientIdentifier(id);
      expect(identifier.system).toBe(SYSTEM.patientIdEncoded);
      expect(decodePatientIdentifier(identifier)).toBe(id);
      expect(hl7SchemaErrors(buildPatient(id))).toEqual([]);
    }
    // As written before this rule, the Patient HL7's schema refused:
    expect(
      hl7SchemaErrors({ resourceType: 'Patient', identifier: [{ system: SYSTEM.patientId, value: ODD_IDS[0] }] })
    ).not.toEqual([]);
  });

  it('is one-to-one: an encoded value can never be mistaken for a raw id that looks like it', () => {
    const raw = patientIdentifier('user%C2%A07');
    const encoded = patientIdentifier('user\u00a07');
    expect(encoded.value).toBe(raw.value);
    expect(encoded.system).not.toBe(raw.system);
    expect(patientIdentifier('50%\u00a0')).toEqual({ system: SYSTEM.patientIdEncoded, value: '50%25%C2%A0' });
  });
});

describe('what the bots write from such values passes HL7’s schema', () => {
  it('a records sync for an odd patient id: one Patient, found again on the next event, and a valid Task', async () => {
    const world = new World();
    for (const id of ODD_IDS) {
      await world.bot('medblocks-records-sync-completed').deliver(recordsSyncCompleted({ patient_id: id }));
      await world.bot('medblocks-records-sync-completed').deliver(recordsSyncCompleted({ patient_id: id }));
    }
    const patients = await world.patients();
    expect(patients).toHaveLength(ODD_IDS.length);
    for (const resource of [...patients, ...(await world.tasks())]) {
      expect(hl7SchemaErrors(resource), JSON.stringify(resource)).toEqual([]);
    }
  });

  it('a sync failure whose message carries U+2028 and U+00A0 keeps the text, with those as spaces', async () => {
    const world = new World();
    await world
      .bot('medblocks-records-sync-failed')
      .deliver(recordsSyncFailed({ error_message: 'Upstream\u2028EHR\u00a0timed out' }));
    const [task] = (await world.tasks()) as Task[];
    expect(task?.statusReason?.text).toBe('Upstream EHR timed out');
    expect(hl7SchemaErrors(task as Task)).toEqual([]);
    expect(asFhirText('a\u2028b\tc\nd')).toBe('a b\tc\nd');
  });
});
