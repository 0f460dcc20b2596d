/** The docker argv scanner, table-driven: one line of input, one expected result. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scanDockerArgv, lastValue, values, gpuRequestFacts } from '../../src/docker-shim/argv.ts';
import { resolveCommand, scanGlobals, targetsLocalDaemon } from '../../src/docker-shim/globals.ts';
import { shellWords, shellJoin } from '../../src/docker-shim/quote.ts';

const scan = (line: string) => {
  const argv = shellWords(line);
  const s = scanDockerArgv(argv);
  return { argv, s };
};
/** [line, image word, command after it, insertAt word (what the additions go before)] */
const cases: [string, string | undefined, string[], string | undefined][] = [
  ['run --rm -it bb sh', 'bb', ['sh'], 'bb'],
  ['run -itd --name x bb', 'bb', [], 'bb'],
  ['run -itp80:80 bb', 'bb', [], 'bb'],
  ['run -itp 80:80 bb top', 'bb', ['top'], 'bb'],
  ['run --name=x -e=A=1 -eB=2 -e C=3 bb env', 'bb', ['env'], 'bb'],
  ['run --rm -- bb echo x', 'bb', ['echo', 'x'], '--'],
  ['run bb -- echo x', 'bb', ['--', 'echo', 'x'], 'bb'],
  ['run bb sh -c "ls -l --label x"', 'bb', ['sh', '-c', 'ls -l --label x'], 'bb'],
  ['run --unknown-flag bb', 'bb', [], 'bb'],
  ['run --unknown-flag=v bb x', 'bb', ['x'], 'bb'],
  ['run -d=false -t=true bb', 'bb', [], 'bb'],
  ['run --rm=false bb', 'bb', [], 'bb'],
  ['container create -w/tmp bb:latest pwd', 'bb:latest', ['pwd'], 'bb:latest'],
  ['-H unix:///x.sock --log-level debug run -h host bb', 'bb', [], 'bb'],
  ['-D -l info container run -l a=b bb', 'bb', [], 'bb'],
  ['--context default run --entrypoint "" bb', 'bb', [], 'bb'],
  ['run --entrypoint= bb', 'bb', [], 'bb'],
  ['run --net none --net-alias a --dns-opt x bb', 'bb', [], 'bb'],
  ['run -', '-', [], '-'],
];

for (const [line, image, command, insertBefore] of cases) {
  test(`scan: docker ${line}`, () => {
    const { argv, s } = scan(line);
    assert.ok(s, 'is a run/create');
    assert.equal(s.error, undefined);
    assert.equal(s.image === undefined ? undefined : argv[s.image], image);
    assert.deepEqual(s.command, command);
    assert.equal(argv[s.insertAt], insertBefore);
  });
}

test('scan: flag values and positions', () => {
  const { argv, s } = scan('run -itp80:80 -l a=1 --label=b=2 -lc=3 -l=d=4 --memory 1g -m2g bb');
  assert.ok(s);
  assert.deepEqual(values(s, 'label'), ['a=1', 'b=2', 'c=3', 'd=4']);
  assert.equal(lastValue(s, 'memory'), '2g');
  const p = s.flags.find((f) => f.name === 'publish')!;
  assert.deepEqual([p.value, p.cluster, p.start, p.end], ['80:80', true, 1, 2]);
  const m = s.flags.find((f) => f.spelled === '--memory')!;
  assert.deepEqual([argv[m.start], argv[m.end - 1]], ['--memory', '1g']);
  assert.deepEqual(s.flags.filter((f) => f.cluster).map((f) => f.name), ['interactive', 'tty', 'publish']);
});

test('scan: missing value and unknown shorthand are docker errors, passed through', () => {
  assert.match(scan('run --name').s!.error!, /needs an argument/);
  assert.match(scan('run -Z bb').s!.error!, /unknown shorthand/);
  assert.equal(scan('run -Z bb').s!.image, undefined);
});

test('scan: no image', () => {
  const { s } = scan('run --rm');
  assert.equal(s!.image, undefined);
  assert.equal(scan('create --help').s!.help, true);
});

test('scan: other commands are not run/create', () => {
  for (const line of ['ps -a', 'version', 'container ls', 'compose up', '-l run ps', 'image create x', 'exec -it x sh', 'run', '--help']) {
    const argv = shellWords(line);
    if (line === 'run') assert.ok(scanDockerArgv(argv));
    else assert.equal(scanDockerArgv(argv), undefined, line);
  }
});

test('globals: options, command, hosts, context', () => {
  const g = scanGlobals(shellWords('-H tcp://a:2375 --host=unix:///b -c ctx --config=/cfg -Dl debug stop x'));
  assert.deepEqual(g.hosts, ['tcp://a:2375', 'unix:///b']);
  assert.equal(g.context, 'ctx');
  assert.equal(g.config, '/cfg');
  assert.equal(g.command, 'stop');
  assert.equal(g.commandIndex, 8);
  assert.equal(g.options.find((o) => o.name === 'log-level')?.value, 'debug');
});

test('globals: which daemon', () => {
  const none = () => undefined;
  const t = (line: string, env: NodeJS.ProcessEnv = {}, current?: string) => targetsLocalDaemon(scanGlobals(shellWords(line)), env, () => current).local;
  assert.equal(t('run bb'), true);
  assert.equal(t('-H unix:///tmp/d.sock run bb'), true);
  assert.equal(t('-H tcp://10.0.0.1:2375 run bb'), false);
  assert.equal(t('-H ssh://me@host run bb'), false);
  assert.equal(t('run bb', { DOCKER_HOST: 'unix:///tmp/gg/docker.sock' }), true);
  assert.equal(t('run bb', { DOCKER_HOST: 'tcp://x:2376' }), false);
  assert.equal(t('run bb', { DOCKER_CONTEXT: 'remote' }), false);
  assert.equal(t('run bb', { DOCKER_CONTEXT: 'default' }), true);
  assert.equal(t('--context remote run bb', { DOCKER_HOST: 'unix:///x' }), false);
  assert.equal(t('-c default run bb', { DOCKER_CONTEXT: 'remote' }), true);
  assert.equal(t('run bb', {}, 'remote'), false);
  assert.equal(t('run bb', { DOCKER_HOST: 'unix:///x' }, 'remote'), true);
  void none;
});

test('gpu facts: every way to ask for a GPU is found with its position', () => {
  const { s } = scan('run --gpus all -e NVIDIA_VISIBLE_DEVICES=0 --env-file f --runtime nvidia --device nvidia.com/gpu=all bb');
  const f = gpuRequestFacts(s!);
  assert.deepEqual(
    [f.gpus[0]?.value, f.env[0]?.value, f.envFiles[0]?.value, f.runtime[0]?.value, f.devices[0]?.value],
    ['all', 'NVIDIA_VISIBLE_DEVICES=0', 'f', 'nvidia', 'nvidia.com/gpu=all'],
  );
});

test('shellWords / shellJoin round trip', () => {
  const argv = ['run', '-c', "it's", 'a b', '', 'x\ny', '$HOME', '--label=a=b'];
  assert.deepEqual(shellWords(shellJoin(argv)), argv);
});

test('resolveCommand: management prefix folded, args position', () => {
  const r = (line: string) => {
    const argv = shellWords(line);
    const c = resolveCommand(argv, scanGlobals(argv));
    return c && [c.group, c.verb, argv.slice(c.argsFrom).join(' ')];
  };
  assert.deepEqual(r('-H unix:///x container stop -t 1 web'), ['container', 'stop', '-t 1 web']);
  assert.deepEqual(r('stop web'), [undefined, 'stop', 'web']);
  assert.deepEqual(r('-D exec -it web sh'), [undefined, 'exec', '-it web sh']);
  assert.deepEqual(r('image'), ['image', '', '']);
  assert.equal(r('--log-level'), undefined);
});

test('targets: the socket to ask directly', () => {
  const t = (line: string, env: NodeJS.ProcessEnv = {}) => targetsLocalDaemon(scanGlobals(shellWords(line)), env, () => undefined).socket;
  assert.equal(t('run bb'), '/var/run/docker.sock');
  assert.equal(t('-H unix:///a.sock run bb'), '/a.sock');
  assert.equal(t('run bb', { DOCKER_HOST: 'unix:///tmp/d.sock' }), '/tmp/d.sock');
  assert.equal(t('--context default run bb', { DOCKER_HOST: 'unix:///tmp/d.sock' }), '/tmp/d.sock');
  assert.equal(t('run bb', { DOCKER_HOST: 'tcp://h:1' }), undefined);
});
