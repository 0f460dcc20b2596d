/**
 * `gpuguard explain [--json] -- docker run …`: what the shim would run for
 * this command line and why, one line per decision. Runs nothing; it asks
 * docker only for the user's container count (and says so when it cannot).
 */
import { UsageError } from '../errors.ts';
import { createCommand, scanGlobals, targetsLocalDaemon } from './globals.ts';
import { currentContext } from './index.ts';
import { shellJoin } from './quote.ts';

export async function run(args: string[]): Promise<number> {
  let json = false;
  let rest = args;
  while (rest[0]?.startsWith('-') && rest[0] !== '--') {
    if (rest[0] === '--json') json = true;
    else throw new UsageError(`explain: unknown option ${rest[0]}; usage: gpuguard explain [--json] -- docker run …`);
    rest = rest.slice(1);
  }
  if (rest[0] === '--') rest = rest.slice(1);
  const env = process.env;
  const out = (o: Record<string, unknown>, lines: string[]) => {
    process.stdout.write(json ? `${JSON.stringify(o, null, 2)}\n` : `${lines.join('\n')}\n`);
    return 0;
  };
  if (rest[0] === 'docker-compose' || rest[0]?.endsWith('/docker-compose')) {
    const e = await (await import('./compose.ts')).explainCompose('v1', rest.slice(1), env);
    return out(e.object, e.lines);
  }
  if (rest[0] === 'docker' || rest[0]?.endsWith('/docker')) rest = rest.slice(1);
  if (!rest.length) throw new UsageError('explain: no command; usage: gpuguard explain [--json] -- docker run …');
  const globals = scanGlobals(rest);
  if (globals.command === 'compose' && !globals.error) {
    const e = await (await import('./compose.ts')).explainCompose('v2', rest, env);
    return out(e.object, e.lines);
  }
  const cmd = createCommand(rest, globals);
  if (!cmd) {
    const why = `docker ${globals.command ?? ''} is not run/create: passed to the real docker unchanged`.replace('  ', ' ');
    return out({ argv: ['docker', ...rest], passthrough: why }, [shellJoin(['docker', ...rest]), `  pass   ${why}`]);
  }
  const target = targetsLocalDaemon(globals, env, () => currentContext(globals, env));
  if (cmd.kind === 'volume-create') {
    const v = await (await import('./standalone.ts')).prepareVolumeCreate(rest, globals, cmd.flagsFrom, target, env);
    if (v.kind === 'pass') return out({ argv: ['docker', ...rest], passthrough: v.why }, [shellJoin(['docker', ...rest]), `  pass   ${v.why}`]);
    const decisions = v.decisions!;
    return out(
      { argv: v.refusal ? null : ['docker', ...rest], user: v.user!.user, mode: v.policy!.mode, ...(v.refusal ? { refusal: v.refusal } : {}), decisions },
      [v.refusal ? `# refused (exit 125), nothing would run: ${v.refusal.reason}` : shellJoin(['docker', ...rest]), ...decisions.map((d) => `  ${d.verdict.padEnd(8)} ${d.rule}: ${d.reason}`)],
    );
  }
  const { prepareCreate } = await import('./create.ts');
  const p = await prepareCreate(rest, globals, cmd, target, env, { dryRun: true });
  if (p.kind === 'pass') return out({ argv: ['docker', ...rest], passthrough: p.why }, [shellJoin(['docker', ...rest]), `  pass   ${p.why}`]);
  const r = p.rewrite!;
  const argv = ['docker', ...r.argv];
  const lines = [
    r.refusal ? `# refused (exit 125), nothing would run: ${r.refusal.reason}` : shellJoin(argv),
    ...r.decisions.map((d) => `  ${d.verdict.padEnd(8)} ${d.rule}: ${d.reason}`),
  ];
  return out(
    {
      argv: r.refusal ? null : argv,
      decision: r.decision,
      user: p.user!.user,
      group: p.user!.group,
      mode: p.policy!.mode,
      ...(r.refusal ? { refusal: r.refusal } : {}),
      decisions: r.decisions,
    },
    lines,
  );
}
