import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scanComposeArgv } from '../../src/compose/argv.ts';
import { selectComposeFiles, projectNameOf, parseDotenv } from '../../src/compose/files.ts';

test('v1 globals: files pulled out, everything else kept in order', () => {
  const a = scanComposeArgv(['-f', 'a.yml', '--file=b.yml', '-p', 'proj', '--verbose', '--env-file', 'x.env', 'up', '-d', '--build'], 'v1');
  assert.deepEqual(a.files, ['a.yml', 'b.yml']);
  assert.deepEqual(a.globals, ['--verbose', '--env-file', 'x.env']);
  assert.deepEqual(a.projectArgs, ['-p', 'proj']);
  assert.equal(a.projectName, 'proj');
  assert.equal(a.envFile, 'x.env');
  assert.equal(a.command, 'up');
  assert.deepEqual(a.rest, ['-d', '--build']);
  assert.deepEqual(a.hosts, []);
});

test('attached short values, --project-directory, remote daemons', () => {
  const a = scanComposeArgv(['-fa.yml', '-pdemo', '--project-directory', '/srv/p', '-H', 'tcp://x:2375', 'run', 'web', 'sh'], 'v1');
  assert.deepEqual(a.files, ['a.yml']);
  assert.equal(a.projectName, 'demo');
  assert.equal(a.projectDirectory, '/srv/p');
  assert.deepEqual(a.hosts, ['tcp://x:2375']);
  assert.deepEqual([a.command, ...a.rest], ['run', 'web', 'sh']);
  assert.equal(scanComposeArgv(['--context=lab2', 'up'], 'v1').context, 'lab2');
});

test('v2 grammar: --profile, --env-file, --progress take values; the command args are not globals', () => {
  const a = scanComposeArgv(['--profile', 'gpu', '--env-file', '.env.lab', '--progress', 'plain', '-f', 'compose.yaml', 'up', '-d', '-f'], 'v2');
  assert.deepEqual(a.files, ['compose.yaml']);
  assert.deepEqual(a.globals, ['--profile', 'gpu', '--env-file', '.env.lab', '--progress', 'plain']);
  assert.deepEqual(a.rest, ['-d', '-f']);
});

test('a value option without its value is a usage error', () => {
  assert.throws(() => scanComposeArgv(['-f'], 'v1'), /compose option -f needs a value/);
});

const tree = (paths: string[]) => (p: string) => paths.includes(p);

test('file selection: -f wins, relative to the working directory', () => {
  const s = selectComposeFiles({ dialect: 'v1', cwd: '/w/p', files: ['a.yml', '../b.yml'], env: { COMPOSE_FILE: 'c.yml' }, exists: tree([]), readFile: () => undefined });
  assert.deepEqual(s.files, ['/w/p/a.yml', '/w/b.yml']);
  assert.equal(s.from, '-f');
  assert.equal(s.projectDir, '/w/p');
});

test('file selection: COMPOSE_FILE with its separator, from env or .env', () => {
  const s = selectComposeFiles({ dialect: 'v1', cwd: '/w/p', files: [], env: { COMPOSE_FILE: 'a.yml;sub/b.yml', COMPOSE_PATH_SEPARATOR: ';' }, exists: tree([]), readFile: () => undefined });
  assert.deepEqual(s.files, ['/w/p/a.yml', '/w/p/sub/b.yml']);
  const d = selectComposeFiles({ dialect: 'v1', cwd: '/w/p', files: [], env: {}, exists: tree([]), readFile: (p) => (p === '/w/p/.env' ? 'COMPOSE_FILE=x.yml:y.yml\n' : undefined) });
  assert.deepEqual(d.files, ['/w/p/x.yml', '/w/p/y.yml']);
  assert.equal(d.from, 'COMPOSE_FILE');
});

test('file selection: discovery in parents with the matching override (v1 and v2 name order)', () => {
  const files = ['/w/docker-compose.yml', '/w/compose.yaml', '/w/docker-compose.override.yml'];
  const v1 = selectComposeFiles({ dialect: 'v1', cwd: '/w/p/q', files: [], env: {}, exists: tree(files), readFile: () => undefined });
  assert.deepEqual(v1.files, ['/w/docker-compose.yml', '/w/docker-compose.override.yml']);
  assert.equal(v1.projectDir, '/w');
  const v2 = selectComposeFiles({ dialect: 'v2', cwd: '/w/p', files: [], env: {}, exists: tree(files), readFile: () => undefined });
  assert.deepEqual(v2.files, ['/w/compose.yaml', '/w/docker-compose.override.yml']);
  assert.throws(() => selectComposeFiles({ dialect: 'v1', cwd: '/w', files: [], env: {}, exists: tree([]), readFile: () => undefined }), /no compose file found in \/w/);
});

test('file selection: a file on stdin cannot be checked', () => {
  assert.throws(() => selectComposeFiles({ dialect: 'v1', cwd: '/w', files: ['-'], env: {}, exists: tree([]) }), /-f -/);
});

test('project name as compose derives it', () => {
  const s = selectComposeFiles({ dialect: 'v1', cwd: '/w/My Proj.1', files: ['c.yml'], env: {}, exists: tree([]), readFile: () => undefined });
  assert.equal(projectNameOf(s, undefined, {}), 'myproj1');
  assert.equal(projectNameOf(s, 'Given', {}), 'given');
  assert.equal(projectNameOf(s, undefined, { COMPOSE_PROJECT_NAME: 'fromenv' }), 'fromenv');
  assert.deepEqual(parseDotenv('# c\nexport A=1\nB="two words"\nC=\'x\'\nbad line\n'), { A: '1', B: 'two words', C: 'x' });
});
