/**
 * The OCI config (config.json) behind an interface, so that modifiers work on
 * an object and never touch disk: `FileSpec` loads a bundle's config.json
 * once and flushes once; `MemorySpec` is the same for tests.
 *
 * The object modifiers see is the parsed JSON itself, typed by the generated
 * OCI types: fields the schema or this code does not know are kept because
 * nothing is ever re-serialised through a narrower type. The flush writes a
 * temp file in the bundle directory, fsyncs it, renames it over config.json
 * (same mode and owner) and fsyncs the directory: a reader (runc) sees the
 * old file or the new one, never half of one, and a failed or killed write
 * leaves the original intact.
 */
import {
  closeSync, fchmodSync, fchownSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, constants,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { GpuguardError } from '../errors.ts';
import type { ConfigSchema } from './config.generated.ts';

export type OciConfig = ConfigSchema;
export type OciMount = NonNullable<ConfigSchema['mounts']>[number];
export type OciHook = NonNullable<NonNullable<ConfigSchema['hooks']>['prestart']>[number];

export interface Spec {
  /** The config, mutable in place by modifiers. */
  readonly config: OciConfig;
  /** Whether the config differs from what was loaded. */
  changed(): boolean;
  /** Persist the config if it changed; returns whether anything was written. */
  flush(): boolean;
}

/** config.json is missing or is not a JSON object: leave it to the real runtime, which reports it. */
export class SpecUnreadable extends GpuguardError {
  override name = 'SpecUnreadable';
}

/** Writing config.json failed; the original is intact. */
export class SpecWriteError extends GpuguardError {
  override name = 'SpecWriteError';
}

export function parseConfig(text: string, where: string): OciConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SpecUnreadable(`${where}: not JSON (${(err as Error).message})`, 1, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new SpecUnreadable(`${where}: not a JSON object`);
  return value as OciConfig;
}

/** Serialisation as dockerd and containerd write it: compact JSON. */
export function serialiseConfig(config: OciConfig): string {
  return JSON.stringify(config);
}

export class MemorySpec implements Spec {
  readonly config: OciConfig;
  private readonly original: string;
  /** What each flush wrote, for tests. */
  readonly writes: string[] = [];

  constructor(config: OciConfig | string) {
    this.config = typeof config === 'string' ? parseConfig(config, 'config') : structuredClone(config);
    this.original = serialiseConfig(this.config);
  }

  changed(): boolean {
    return serialiseConfig(this.config) !== this.original;
  }

  flush(): boolean {
    if (!this.changed()) return false;
    this.writes.push(serialiseConfig(this.config));
    return true;
  }
}

/** The system calls a flush makes, replaceable so tests can fail one. */
export interface FlushIo {
  writeSync(fd: number, buf: Buffer, offset: number, length: number): number;
  fsyncSync(fd: number): void;
  renameSync(from: string, to: string): void;
}

const realIo: FlushIo = {
  writeSync: (fd, buf, off, len) => writeSync(fd, buf, off, len),
  fsyncSync,
  renameSync,
};

export class FileSpec implements Spec {
  readonly config: OciConfig;
  private readonly original: string;

  private constructor(
    readonly path: string,
    text: string,
    private readonly io: FlushIo,
  ) {
    this.config = parseConfig(text, path);
    this.original = serialiseConfig(this.config);
  }

  /** Load `<bundle>/config.json`. Throws SpecUnreadable when it is missing or not a JSON object. */
  static load(bundle: string, io: FlushIo = realIo): FileSpec {
    const path = join(bundle, 'config.json');
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new SpecUnreadable(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 1, { cause: err });
    }
    return new FileSpec(path, text, io);
  }

  changed(): boolean {
    return serialiseConfig(this.config) !== this.original;
  }

  flush(): boolean {
    if (!this.changed()) return false;
    const data = Buffer.from(serialiseConfig(this.config), 'utf8');
    const dir = dirname(this.path);
    const tmp = join(dir, `.${basename(this.path)}.gpuguard-${process.pid}.tmp`);
    let fd: number | undefined;
    let renamed = false;
    try {
      const orig = statOf(this.path);
      fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      if (orig) {
        fchmodSync(fd, orig.mode & 0o7777);
        if (process.getuid?.() === 0) fchownSync(fd, orig.uid, orig.gid);
      }
      for (let off = 0; off < data.length; ) {
        const n = this.io.writeSync(fd, data, off, data.length - off);
        if (n <= 0) throw new Error('short write');
        off += n;
      }
      this.io.fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      this.io.renameSync(tmp, this.path);
      renamed = true;
      syncDir(dir);
      return true;
    } catch (err) {
      throw new SpecWriteError(`cannot write ${this.path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); it was left as it was`, 1, {
        cause: err,
      });
    } finally {
      if (fd !== undefined) closeSync(fd);
      if (!renamed) {
        try {
          unlinkSync(tmp);
        } catch {
          /* never created */
        }
      }
    }
  }
}

function statOf(path: string): { mode: number; uid: number; gid: number } | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY);
    const st = fstatSync(fd);
    return { mode: st.mode, uid: st.uid, gid: st.gid };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    /* the rename happened; a directory that cannot be fsynced is not an error */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
