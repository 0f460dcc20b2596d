/**
 * `docker exec --privileged`, read with exec's own grammar (flags end at the
 * container name; ownership/commands.ts has exec's value flags). Pure and
 * import-light: the shim asks it on every `docker exec`, and only a yes
 * loads the policy.
 */
import { GUARDED, scan } from '../ownership/commands.ts';
import { emptySecurityRequest, type SecurityRequest } from '../policy/security.ts';

/** The security asks of `docker exec`'s own words, or undefined when it asks for nothing (no --privileged). */
export function execSecurityRequest(args: readonly string[]): SecurityRequest | undefined {
  const flags = scan(GUARDED.exec!, args).flags.filter((f) => f.name === '--privileged');
  const last = flags.at(-1);
  // pflag's ParseBool; a value it cannot read is docker's to refuse, judged as asked.
  if (!last || ['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(last.value ?? '')) return undefined;
  const request = emptySecurityRequest();
  request.privileged.push({ from: `docker exec ${last.value === undefined ? '--privileged' : `--privileged=${last.value}`}` });
  return request;
}
