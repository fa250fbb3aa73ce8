/**
 * Test support: compiles schemas from the official 3GPP OpenAPI files with ajv, resolving `$ref`s
 * across files. Each file's `components.schemas` is registered under a base URI of its own name,
 * so `TS29571_CommonData.yaml#/components/schemas/Uint32` resolves wherever it appears. OpenAPI
 * 3.0 specifics: `nullable` is ajv's own keyword; formats the files use beyond JSON Schema's
 * (int32, int64, float, double, byte, binary) are accepted; unknown keywords (`example`,
 * `x-…`) are ignored. Used by the conformance test only — the project never reads these files at
 * run time.
 */
import fs from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const BASE = 'https://specs.3gpp.local/';

export class SpecsMissingError extends Error {}

export function loadSpecValidators(dir: string, entry: string): { validator(schemaName: string, file?: string): ValidateFunction; files: string[] } {
  if (!fs.existsSync(path.join(dir, entry))) {
    throw new SpecsMissingError(`the 3GPP OpenAPI files are not at ${dir} (expected ${entry}); the conformance test needs them`);
  }
  const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false, validateSchema: false, discriminator: false });
  addFormats(ajv);
  for (const f of ['int32', 'int64', 'float', 'double', 'byte', 'binary', 'password', 'uint32', 'uint64']) ajv.addFormat(f, true);
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const full = path.join(dir, file);
    if (!fs.existsSync(full)) throw new SpecsMissingError(`${file}, referenced from the 3GPP files, is missing in ${dir}`);
    const doc = YAML.parse(fs.readFileSync(full, 'utf8')) as { components?: { schemas?: Record<string, unknown> } };
    const schemas = doc.components?.schemas ?? {};
    JSON.stringify(schemas, (key, value) => {
      if (key === '$ref' && typeof value === 'string') {
        const target = value.split('#')[0];
        if (target && !seen.has(target)) queue.push(target);
      }
      return value;
    });
    ajv.addSchema({ $id: BASE + file, components: { schemas } });
  }
  return {
    files: [...seen],
    validator: (schemaName, file = entry) => ajv.compile({ $ref: `${BASE}${file}#/components/schemas/${schemaName}` }),
  };
}
