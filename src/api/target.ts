/**
 * The request-target as dockerd's router reads it, so the face decides on
 * the path dockerd will route: percent-escapes decoded (gorilla/mux matches
 * the decoded path), the path cleaned like mux's cleanPath (`//`, `.`, `..`
 * removed, a trailing slash kept), the `/vN.NN` prefix split off, the query
 * decoded as Go's url.ParseQuery does (`+` is a space). The face forwards
 * the target it serialises from this parse, never the client's bytes, so
 * what it decided on is exactly what dockerd gets.
 */
import { HttpError } from './http.ts';

export interface Target {
  /** The API version prefix as sent, "/v1.41", or "" for none. */
  version: string;
  /** Decoded, cleaned path after the version prefix: "/containers/abc/json". */
  path: string;
  /** Decoded query pairs in order; repeated keys kept. */
  query: [string, string][];
}

function percentDecode(s: string, plusIsSpace: boolean): string {
  const raw = plusIsSpace ? s.replace(/\+/g, ' ') : s;
  if (!raw.includes('%')) return raw;
  if (/%(?![0-9a-fA-F]{2})/.test(raw)) throw new HttpError(400, `malformed percent-escape in "${s.slice(0, 60)}"`);
  const bytes = Buffer.from(raw.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  const text = new TextDecoder('utf-8', { fatal: true });
  try {
    return text.decode(bytes);
  } catch {
    throw new HttpError(400, `percent-escapes in "${s.slice(0, 60)}" are not UTF-8`);
  }
}

/** mux's cleanPath: path.Clean, with a trailing slash put back. */
export function cleanPath(p: string): string {
  const trailing = p.length > 1 && p.endsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  const clean = `/${out.join('/')}`;
  return trailing && clean !== '/' ? `${clean}/` : clean;
}

const VERSION = /^\/v[0-9.]+(?=\/|$)/;

export function parseTarget(raw: string): Target {
  const q = raw.indexOf('?');
  const rawPath = q < 0 ? raw : raw.slice(0, q);
  const rawQuery = q < 0 ? '' : raw.slice(q + 1);
  if (rawPath.includes('#') || rawQuery.includes('#')) throw new HttpError(400, 'a fragment (#) in the request target');
  const decoded = percentDecode(rawPath, false);
  if (/[\x00-\x1f\x7f]/.test(decoded)) throw new HttpError(400, 'a control character in the request path');
  const full = cleanPath(decoded);
  const v = VERSION.exec(full);
  const version = v ? v[0] : '';
  const path = v ? full.slice(version.length) || '/' : full;
  const query: [string, string][] = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    // Go's ParseQuery refuses ';' (it would split differently): so does the face.
    if (part.includes(';')) throw new HttpError(400, 'a ";" in the query string');
    const eq = part.indexOf('=');
    const key = percentDecode(eq < 0 ? part : part.slice(0, eq), true);
    const value = eq < 0 ? '' : percentDecode(part.slice(eq + 1), true);
    query.push([key, value]);
  }
  return { version, path, query };
}

/** Characters kept literally in a forwarded path; everything else is percent-encoded. */
const PATH_SAFE = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;

function encodePath(p: string): string {
  let out = '';
  for (const ch of p) out += PATH_SAFE.test(ch) ? ch : encodeURIComponent(ch);
  return out;
}

export function serializeTarget(t: Target): string {
  const q = t.query.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return `${encodePath(t.version + t.path)}${q ? `?${q}` : ''}`;
}

/**
 * The one value of a query parameter the face decides on. dockerd reads the
 * first of repeated values; rather than rely on that, repeating a parameter
 * the decision depends on is refused.
 */
export function queryOne(t: Target, key: string): string | undefined {
  const values = t.query.filter(([k]) => k === key);
  if (values.length > 1) throw new HttpError(400, `query parameter "${key}" given ${values.length} times; give it once`);
  return values[0]?.[1];
}

export function withQuery(t: Target, key: string, value: string | undefined): Target {
  const query = t.query.filter(([k]) => k !== key);
  if (value !== undefined) query.push([key, value]);
  return { ...t, query };
}

/** A Go-style boolean query value (strconv.ParseBool, as dockerd's httputils.BoolValue is looser: anything but "", "0", "no", "false", "none"). */
export function boolValue(v: string | undefined): boolean {
  if (v === undefined) return false;
  const s = v.trim().toLowerCase();
  return !(s === '' || s === '0' || s === 'no' || s === 'false' || s === 'none');
}
