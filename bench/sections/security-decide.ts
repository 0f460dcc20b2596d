/**
 * The security policy's own work on one `docker create` with five -v binds,
 * timed inside one process (Bun, like the shim): reading the asks from the
 * scan, resolving the five sources and the three roots on the file system,
 * deciding. Run by bench/sections/security.sh with a directory of bind
 * sources; prints the first call (cold) and the median of the next ones.
 */
import { statSync } from 'node:fs';
import { scanDockerArgv } from '../../src/docker-shim/argv.ts';
import { securityRequestOf } from '../../src/docker-shim/security.ts';
import { parsePolicy } from '../../src/policy/load.ts';
import { resolveUser } from '../../src/policy/effective.ts';
import { decideSecurity } from '../../src/policy/security.ts';
import { gatherSecurityFacts } from '../../src/security/facts.ts';

const srv = process.argv[2]!;
/** 5 (the five binds) or 0 (the same create without binds: only the policy's roots are resolved). */
const nBinds = Number(process.argv[3] ?? 5);
const policy = parsePolicy(`version: 1\nsecurity: {binds: ["{home}", "${srv}/*", "/scratch/{user}"]}\n`, 'bench.yaml');
// The user the process runs as (runuser -u alice): bind rights are checked with access(2), as in the shim.
const user = resolveUser(policy, { user: process.env.USER ?? 'alice', uid: process.getuid!(), unixGroups: [], home: '/home/alice' });
const binds = ['-v', `${srv}/data/a/b:/d`, '-v', `${srv}/models:/m`, '-v', `${srv}/runs/2026:/r`, '-v', `${srv}/link/b:/l`, '-v', `${srv}/out/new:/o`];
const argv = ['create', ...binds.slice(0, 2 * nBinds), 'bb'];

async function once(): Promise<number> {
  const t0 = performance.now();
  const scan = scanDockerArgv(argv)!;
  const request = securityRequestOf(scan, '/');
  const facts = await gatherSecurityFacts(policy, user, request, { local: true });
  const decisions = decideSecurity(policy, user, request, facts);
  const t = performance.now() - t0;
  if (decisions.some((d) => d.verdict !== 'keep') || decisions.length !== nBinds) throw new Error(`unexpected decisions: ${JSON.stringify(decisions)}`);
  return t;
}

// The shim's create path has used node:fs already (the policy cache) when security runs: so here too.
statSync(srv);
const cold = await once();
const warm: number[] = [];
for (let i = 0; i < 2000; i++) warm.push(await once());
warm.sort((a, b) => a - b);
console.log(`security decision, ${nBinds} binds: first call ${cold.toFixed(3)} ms, then median ${warm[1000]!.toFixed(3)} ms, p99 ${warm[1980]!.toFixed(3)} ms (2000 calls)`);
