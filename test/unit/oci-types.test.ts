import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate, OUTPUT, SCHEMA_DIR } from '../../build/gen-oci.ts';
import { IN_CI } from '../harness/tools.ts';

test('committed OCI types equal a fresh generation from the runtime-spec schema', async (t) => {
  if (!existsSync(join(SCHEMA_DIR, 'config-schema.json'))) {
    const why = `MISSING the OCI schema at ${SCHEMA_DIR} (set OCI_SCHEMA_DIR)`;
    if (IN_CI) throw new Error(why);
    console.error(`\n*** SKIPPED: ${why} ***\n`);
    return t.skip(why);
  }
  assert.equal(readFileSync(OUTPUT, 'utf8'), await generate(), 'src/oci/config.generated.ts is stale: run npm run gen:oci');
});
