// The records import under simulated FHIR latency: ours (a page of up to 100 records in three or
// four batches) beside a per-resource import (for each record, a search by its identifier, then a
// create or an update: the pattern of Medplum's integration examples, here without Provenance,
// which only favours it). Both read the same pages from a local Medblocks over loopback, plan each
// record with the same pure planner and write to the test World under the import bot's policy; a
// fixed delay is awaited before every FHIR request, as in the other latency rows.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MedplumClient } from '@medplum/core';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { recordKeyValue, recordToken } from '../../runtime/import/identity';
import { fetchRecordsPage } from '../../runtime/import/medblocks-records';
import { keyOfItem, planPage } from '../../runtime/import/plan';
import type { StoredCopy } from '../../runtime/import/plan';
import { runImport } from '../../runtime/import/run';
import { DEFAULT_IMPORT_TYPES } from '../../runtime/import/settings';
import { recordsSyncCompleted } from '../fixtures/events';
import { generatePatientRecords } from '../fixtures/patient-records';
import { World } from '../harness/world';
import { startLocalMedblocks } from '../medblocks-local/server';

export interface ImportRow {
  readonly implementation: 'ours' | 'per-resource';
  readonly records: number;
  readonly ms: number;
  readonly recordsPerSecond: number;
  readonly fhirRequestsPerRecord: number;
  readonly fhirRequests: number;
  /** Pages Medblocks serves for these records: per imported type, its records in pages of 100 (at least one). */
  readonly pages: number;
  /** Records in Medplum afterwards: both must import every one. */
  readonly imported: number;
}

const PATIENT_ID = 'pt_bench_import';
const SOURCE = 'fhirsrc_bench';

export async function measureImport(
  implementation: ImportRow['implementation'],
  count: number,
  fhirLatencyMs: number
): Promise<ImportRow> {
  const mb = await startLocalMedblocks();
  try {
    const world = new World();
    const items = generatePatientRecords({ patientId: PATIENT_ID, source: SOURCE, count });
    mb.putRecords(PATIENT_ID, items);
    const event = recordsSyncCompleted(
      { patient_id: PATIENT_ID, connection_id: SOURCE, total: items.length },
      { created_at: new Date().toISOString() }
    );
    await world.bot('medblocks-records-sync-completed').deliver(event);
    let requests = 0;
    const importer = world.scheduled('medblocks-records-import', {
      faults: async () => {
        requests++;
        await sleep(fhirLatencyMs);
        return undefined;
      },
    });
    const connection = { baseUrl: mb.url, apiKey: mb.apiKey, fetch };
    const start = performance.now();
    if (implementation === 'ours') {
      const secrets = {
        MEDBLOCKS_API_KEY: { name: 'MEDBLOCKS_API_KEY', valueString: mb.apiKey },
        MEDBLOCKS_API_BASE_URL: { name: 'MEDBLOCKS_API_BASE_URL', valueString: mb.url },
      };
      const summary = await runImport(importer.medplum, secrets, { budgetMs: 600_000 });
      if (summary.status !== 'done') throw new Error(`the import ended ${summary.status}`);
    } else {
      const [patient] = await world.patients();
      await perResourceImport(importer.medplum, connection, { reference: `Patient/${patient?.id ?? ''}` });
    }
    const ms = performance.now() - start;
    let imported = 0;
    for (const type of DEFAULT_IMPORT_TYPES) imported += (await world.all(type)).length;
    const records = items.filter((i) => i.resource.resourceType !== 'Patient').length;
    const pages = DEFAULT_IMPORT_TYPES.reduce(
      (sum, type) => sum + Math.max(1, Math.ceil(items.filter((i) => i.resource.resourceType === type).length / 100)),
      0
    );
    return {
      implementation,
      records,
      ms,
      recordsPerSecond: (records / ms) * 1000,
      fhirRequestsPerRecord: requests / records,
      fhirRequests: requests,
      pages,
      imported,
    };
  } finally {
    await mb.close();
  }
}

/** For each record: a search by its identifier, then a create or an update of that one resource. */
async function perResourceImport(
  medplum: MedplumClient,
  connection: Parameters<typeof fetchRecordsPage>[0],
  patient: { reference: string }
): Promise<void> {
  const known = new Map<string, string>();
  const importTypes = new Set<string>(DEFAULT_IMPORT_TYPES);
  for (const type of DEFAULT_IMPORT_TYPES) {
    let cursor: string | undefined;
    do {
      const page = await fetchRecordsPage(connection, {
        patientId: PATIENT_ID,
        types: [type],
        since: undefined,
        cursor,
      });
      for (const item of page.items) {
        const key = keyOfItem(item);
        if (!key) continue;
        const found = (await medplum.search(key.resourceType as Resource['resourceType'], {
          identifier: recordToken(key),
        })) as Bundle<StoredCopy>;
        const existing = new Map<string, StoredCopy>();
        const copy = found.entry?.[0]?.resource;
        if (copy) existing.set(recordKeyValue(key), copy);
        const [write] = planPage([item], { patient, importTypes, existing, known }).writes;
        if (!write) continue;
        const stored =
          write.kind === 'create'
            ? await medplum.createResource(write.resource)
            : await medplum.updateResource(write.resource as StoredCopy);
        if (stored.id) known.set(recordKeyValue(key), stored.id);
      }
      cursor = page.nextCursor;
    } while (cursor);
  }
}
