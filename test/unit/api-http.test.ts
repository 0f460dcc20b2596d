/** The API face's pure parts: strict HTTP framing, the request target as dockerd's router reads it, the route table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedDecoder, HttpError, headEnd, parseRequestHead, parseResponseHead } from '../../src/api/http.ts';
import { cleanPath, parseTarget, queryOne, serializeTarget } from '../../src/api/target.ts';
import { route } from '../../src/api/routes.ts';

const head = (s: string) => parseRequestHead(Buffer.from(s, 'latin1'));
const status = (fn: () => unknown): number | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
};

test('request heads: framing from Content-Length or chunked; keep-alive by version and Connection', () => {
  const h = head('POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 12\r\n\r\n');
  assert.deepEqual([h.method, h.target, h.version, h.framing, h.keepAlive], ['POST', '/containers/create', '1.1', { kind: 'length', length: 12 }, true]);
  assert.deepEqual(head('POST /build HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n').framing, { kind: 'chunked' });
  assert.equal(head('GET /_ping HTTP/1.0\r\n\r\n').keepAlive, false);
  assert.equal(head('GET /_ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').keepAlive, true);
  assert.equal(head('GET /_ping HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n').keepAlive, false);
  assert.equal(head('POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n').expectContinue, true);
  assert.deepEqual(head('GET /_ping HTTP/1.1\r\nX-A:   spaced value \t\r\n\r\n').headers, [['X-A', 'spaced value']]);
});

test('request heads: everything ambiguous is refused', () => {
  const cases: [string, string, number][] = [
    ['CL and TE', 'POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['two CLs (even equal)', 'POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n', 400],
    ['a CL list', 'POST /x HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n', 400],
    ['signed CL', 'POST /x HTTP/1.1\r\nContent-Length: +3\r\n\r\n', 400],
    ['TE chunked twice', 'POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 501],
    ['TE gzip, chunked', 'POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 501],
    ['TE in HTTP/1.0', 'POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400],
    ['space before colon', 'GET /x HTTP/1.1\r\nContent-Length : 3\r\n\r\n', 400],
    ['obs-fold', 'GET /x HTTP/1.1\r\nA: b\r\n c\r\n\r\n', 400],
    ['NUL in a value', 'GET /x HTTP/1.1\r\nA: b\x00c\r\n\r\n', 400],
    ['absolute-form target', 'GET http://d/containers/json HTTP/1.1\r\n\r\n', 400],
    ['HTTP/2.0', 'GET /x HTTP/2.0\r\n\r\n', 505],
    ['lower-case version', 'GET /x http/1.1\r\n\r\n', 400],
    ['two spaces', 'GET  /x HTTP/1.1\r\n\r\n', 400],
    ['CR inside a line', 'GET /x HTTP/1.1\r\nA: b\rc\r\n\r\n', 400],
  ];
  for (const [what, text, want] of cases) assert.equal(status(() => head(text)), want, what);
  assert.equal(status(() => headEnd(Buffer.from('GET /x HTTP/1.1\nHost: d\r\n\r\n'))), 400, 'bare LF');
  assert.equal(status(() => headEnd(Buffer.alloc(300 * 1024, 0x41))), 431);
  assert.equal(headEnd(Buffer.from('GET /x HTTP/1.1\r\nHost: d\r\n\r\n{"a":\n1}')), 28, 'LF in the body after the head is fine');
});

test('chunked bodies: decoded across any split, extensions and trailers dropped, malformed sizes refused', () => {
  const wire = '5;name=v\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT';
  for (let split = 0; split <= wire.length; split++) {
    const dec = new ChunkedDecoder();
    const a = dec.push(Buffer.from(wire.slice(0, split)));
    const b = dec.done ? { data: [], rest: Buffer.from(wire.slice(split)) } : dec.push(Buffer.from(wire.slice(split)));
    assert.equal(Buffer.concat([...a.data, ...b.data]).toString(), 'hello world', `split ${split}`);
    assert.ok(dec.done);
    assert.equal(Buffer.concat([a.rest ?? Buffer.alloc(0), b.rest ?? Buffer.alloc(0)]).toString(), 'NEXT', `split ${split}`);
  }
  for (const bad of ['zz\r\n', '-1\r\n', '5 5\r\nhello\r\n', '5\r\nhelloXX', '5\nhello\r\n', '1234567890abcdef0\r\n', '\r\n']) {
    assert.equal(status(() => new ChunkedDecoder().push(Buffer.from(bad))), 400, JSON.stringify(bad));
  }
});

test('response heads from dockerd: framing by status, method, TE and CL', () => {
  const r = (s: string, m = 'GET') => parseResponseHead(Buffer.from(s), m).framing.kind;
  assert.equal(r('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 'none');
  assert.equal(r('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), 'length');
  assert.equal(r('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 'HEAD'), 'none');
  assert.equal(r('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), 'chunked');
  assert.equal(r('HTTP/1.1 204 No Content\r\n\r\n'), 'none');
  assert.equal(r('HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n'), 'close');
  assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\n'), 'POST').status, 101);
});

test('request targets are read as dockerd\'s router reads them and forwarded as decided', () => {
  const t = (s: string) => {
    const p = parseTarget(s);
    return [p.version, p.path, p.query];
  };
  assert.deepEqual(t('/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D'), ['/v1.41', '/containers/json', [['all', '1'], ['filters', '{"label":["a=b"]}']]]);
  assert.deepEqual(t('/containers/json'), ['', '/containers/json', []]);
  assert.deepEqual(t('//v1.41//containers//abc/./json'), ['/v1.41', '/containers/abc/json', []]);
  assert.deepEqual(t('/v1.41/images/../containers/abc/kill'), ['/v1.41', '/containers/abc/kill', []]);
  assert.deepEqual(t('/v1.41/containers/%61bc/kill'), ['/v1.41', '/containers/abc/kill', []]);
  assert.deepEqual(t('/v1.41/containers/a%2Fb/json'), ['/v1.41', '/containers/a/b/json', []], 'mux matches the decoded path');
  assert.deepEqual(t('/networks/'), ['', '/networks/', []], 'a trailing slash is kept, as mux does');
  assert.deepEqual(t('/x?a+b=c+d&e'), ['', '/x', [['a b', 'c d'], ['e', '']]]);
  assert.equal(status(() => parseTarget('/x%zz')), 400);
  assert.equal(status(() => parseTarget('/x%c3%28')), 400, 'not UTF-8');
  assert.equal(status(() => parseTarget('/x%00y')), 400);
  assert.equal(status(() => parseTarget('/x?a=1;b=2')), 400);
  assert.equal(status(() => queryOne(parseTarget('/commit?container=a&container=b'), 'container')), 400);
  assert.equal(queryOne(parseTarget('/commit?container=a&x=1&x=2'), 'container'), 'a');
  assert.equal(serializeTarget(parseTarget('/v1.41/containers/%61bc/archive?path=%2Ftmp%2Fa+b')), '/v1.41/containers/abc/archive?path=%2Ftmp%2Fa%20b');
  assert.equal(serializeTarget(parseTarget('/images/library%2Fbusybox:latest/json')), '/images/library/busybox:latest/json');
  assert.equal(serializeTarget({ version: '', path: '/containers/a b?#/json', query: [] }), '/containers/a%20b%3F%23/json');
  assert.equal(cleanPath('/'), '/');
  assert.equal(cleanPath('/a/../../b/'), '/b/');
});

test('the route table: every container verb resolves its container; unknown endpoints are unknown', () => {
  const r = (m: string, p: string) => route(m, p);
  assert.deepEqual(r('POST', '/containers/abc/stop'), { kind: 'container', verb: 'stop', ref: 'abc' });
  assert.deepEqual(r('POST', '/containers/abc/attach'), { kind: 'container', verb: 'attach', ref: 'abc', hijack: true });
  assert.deepEqual(r('GET', '/containers/abc/attach/ws'), { kind: 'container', verb: 'attach', ref: 'abc', hijack: true });
  assert.deepEqual(r('DELETE', '/containers/a/b'), { kind: 'container', verb: 'remove', ref: 'a/b' }, 'a name with a slash is dockerd\'s to resolve (and refuse)');
  assert.deepEqual(r('GET', '/containers/json/json'), { kind: 'container', verb: 'json', ref: 'json' });
  assert.deepEqual(r('GET', '/containers/json'), { kind: 'containers-list' });
  assert.deepEqual(r('PUT', '/containers/abc/archive'), { kind: 'container', verb: 'archive-put', ref: 'abc' });
  assert.deepEqual(r('HEAD', '/containers/abc/archive'), { kind: 'container', verb: 'archive', ref: 'abc' });
  assert.deepEqual(r('POST', '/exec/e1/start'), { kind: 'exec', verb: 'start', id: 'e1' });
  assert.deepEqual(r('GET', '/networks/'), { kind: 'networks-list' });
  assert.deepEqual(r('POST', '/images/prune').kind, 'admin');
  assert.deepEqual(r('GET', '/swarm').kind, 'admin');
  assert.deepEqual(r('POST', '/session'), { kind: 'allow', what: 'BuildKit session', hijack: true });
  for (const [m, p] of [
    ['GET', '/containers/abc/frobnicate'],
    ['PATCH', '/containers/abc/json'],
    ['POST', '/containers/json'],
    ['GET', '/debug/pprof'],
    ['GET', '/'],
  ]) {
    assert.deepEqual(r(m!, p!), { kind: 'unknown' }, `${m} ${p}`);
  }
});
