// Index the FHIR definitions once per test worker, so MockClient searches behave as on a server.
import { indexFhirDefinitions } from '../src/tools/emulator/definitions';

indexFhirDefinitions();
