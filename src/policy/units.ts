/**
 * Docker's size and duration grammars, so that policy values read exactly
 * like the flags they are compared with (`--memory 32g`, `--shm-size 64m`).
 */

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i;
const SIZE_MULT: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Bytes from a docker size ("32g", "512m", "1.5GiB", "4096"), or undefined if malformed. */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.floor(input) : undefined;
  const m = SIZE_RE.exec(input.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase();
  // A bare "b"/"ib" suffix without a unit letter is bytes: "100b".
  return Math.floor(Number(m[1]) * (SIZE_MULT[unit] ?? 1));
}

export function formatSize(bytes: number): string {
  for (const [unit, mult] of [['t', 1024 ** 4], ['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) {
    if (bytes >= mult && bytes % mult === 0) return `${bytes / mult}${unit}`;
  }
  return `${bytes}b`;
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const DURATION_MULT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds from "30m", "10s", "1h", "250ms" or a number of seconds. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input * 1000 : undefined;
  const m = DURATION_RE.exec(input.trim());
  if (!m) return undefined;
  return Number(m[1]) * (DURATION_MULT[m[2] ?? 's'] ?? 1000);
}
