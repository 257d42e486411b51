// The in-memory search speed-up must not change what matches.
import { globalSchema } from '@medplum/core';
import { describe, expect, it } from 'vitest';

describe('specialised shared search parameters', () => {
  it('keeps only each type’s own branches of a shared expression', () => {
    expect(globalSchema.types.Consent?.searchParams?.patient?.expression).toBe('Consent.patient');
    expect(globalSchema.types.AllergyIntolerance?.searchParams?.patient?.expression).toBe('AllergyIntolerance.patient');
    expect(globalSchema.types.Task?.searchParams?.patient?.expression).toBe('Task.for.where(resolve() is Patient)');
  });
});
