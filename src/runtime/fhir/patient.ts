// Patients belong to the customer: the bots find or create them, and never write demographics
// (Medblocks sends none) or replace a Patient someone else maintains.
import type { Patient } from '@medplum/fhirtypes';
import { patientIdentifier } from './systems';

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

/** Customers who build on Medplum usually start flows with their Medplum Patient id. */
export function isFhirId(value: string): boolean {
  return FHIR_ID.test(value);
}

/** The only Patient the bots ever create: one carrying nothing but the Medblocks patient identifier. */
export function buildPatient(patientId: string): Patient {
  return { resourceType: 'Patient', identifier: [patientIdentifier(patientId)] };
}
