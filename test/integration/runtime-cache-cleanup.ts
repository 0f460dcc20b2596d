/** The wrapper's cache entries for a test's temp policy file, removed when the test is done (they are keyed by the policy path). */
import { rmSync } from 'node:fs';
import { CACHE_DIR, cacheEntryPath } from '../../src/oci-hook/real-runtime.ts';
import { fnv1a, POLICY_CACHE_DIR } from '../../src/policy/cache.ts';

export function forgetCacheEntries(policyPath: string): void {
  rmSync(cacheEntryPath(policyPath, CACHE_DIR), { force: true });
  rmSync(`${POLICY_CACHE_DIR}/policy-${fnv1a(policyPath)}.json`, { force: true });
}
