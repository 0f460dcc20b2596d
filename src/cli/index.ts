/** The `gpuguard` admin CLI: a table of subcommands, each in its own module, loaded on use. */
import { UsageError } from '../errors.ts';
import pkg from '../../package.json' with { type: 'json' };

type Command = { summary: string; run: (args: string[]) => Promise<number> };

const commands: Record<string, Command> = {
  version: { summary: 'print the version', run: async () => (console.log(`gpuguard ${pkg.version}`), 0) },
  policy: { summary: 'policy check [FILE] | policy schema | policy show --user NAME [--json]', run: async (a) => (await import('./policy.ts')).run(a) },
  explain: { summary: 'explain [--json] -- docker run …: the rewritten argv and why, running nothing', run: async (a) => (await import('../docker-shim/explain.ts')).run(a) },
  gpus: { summary: 'gpus [--json]: every GPU device, its holder and container', run: async (a) => (await import('../gpu/cli.ts')).run(a) },
  ps: { summary: 'ps [--json] [--user NAME]: every container with its owner', run: async (a) => (await import('../ownership/cli.ts')).runPs(a) },
  who: { summary: 'who CONTAINER: the owner of a container and the evidence', run: async (a) => (await import('../ownership/cli.ts')).runWho(a) },
  install: { summary: 'install [--dry-run] [--concourse [DIR]] [--root DIR] …: put gpuguard in place (install.sh runs this)', run: async (a) => (await import('../install/index.ts')).runInstall(a) },
  uninstall: { summary: 'uninstall [--dry-run] [--root DIR]: undo every change install made, byte for byte', run: async (a) => (await import('../install/index.ts')).runUninstall(a) },
  serve: { summary: 'serve [--listen PATH] [--upstream PATH]: the API face, deciding every Engine API request on the socket users reach (root)', run: async (a) => (await import('../api/index.ts')).serve(a) },
  decider: { summary: 'decider [--listen PATH] [--docker-socket PATH]: decide docker run/create/ps for the native front without a Bun start per call (root)', run: async (a) => (await import('../decider/index.ts')).run(a) },
  reap: { summary: 'reap [--dry-run] [--json]: warn, stop and remove idle and over-age containers; host GPU processes (root, from a timer)', run: async (a) => (await import('../lifecycle/reap.ts')).run(a) },
  doctor: { summary: 'doctor [--json]: check the installation, one line per check', run: async (a) => (await import('../doctor/index.ts')).run(a) },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    'usage: gpuguard COMMAND [ARGS]',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'As `docker` it is the docker CLI shim, as `gpuguard-runc`/`runc` the OCI runtime wrapper.',
  ].join('\n');
}

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') return commands.version!.run([]);
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}"; run \`gpuguard help\` for the list`);
  return command.run(rest);
}
