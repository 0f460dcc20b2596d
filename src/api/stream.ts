/**
 * A Bun socket as an async byte stream with backpressure both ways. Bun's
 * native sockets do not buffer: `write` returns how much the kernel took,
 * and the rest waits for `drain`. Reading is callback-driven: chunks are
 * queued, and past HIGH_WATER queued bytes the socket is paused until the
 * consumer catches up, so a fast sender cannot grow the face's memory.
 */

const HIGH_WATER = 1 << 20;
const LOW_WATER = 256 << 10;

/** The part of Bun's Socket this needs. */
export interface RawSocket {
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
  end(): void;
  shutdown(halfClose?: boolean): void;
  terminate(): void;
  pause(): void;
  resume(): void;
  readonly fd?: number;
}

export class Pipe {
  private queue: Buffer[] = [];
  private queued = 0;
  private paused = false;
  private waiter: (() => void) | undefined;
  private pending: { buf: Uint8Array; off: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** The peer sent FIN: no more data will come. */
  ended = false;
  /** The socket is closed (both ways). */
  closed = false;
  /** Our write side is shut. */
  writeEnded = false;
  private closeListeners: (() => void)[] = [];
  private endListeners: (() => void)[] = [];

  constructor(readonly socket: RawSocket) {}

  // --- called from Bun's socket handlers

  onData(chunk: Buffer): void {
    // Bun hands each callback its own buffer; it is queued as is.
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (!this.paused && this.queued > HIGH_WATER) {
      this.paused = true;
      this.socket.pause();
    }
    this.wake();
  }

  onEnd(): void {
    this.ended = true;
    this.wake();
    for (const l of this.endListeners.splice(0)) l();
  }

  onDrain(): void {
    this.flush();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.ended = true;
    this.wake();
    for (const l of this.endListeners.splice(0)) l();
    const err = new Error('socket closed');
    for (const p of this.pending.splice(0)) p.reject(err);
    for (const l of this.closeListeners.splice(0)) l();
  }

  /** Run `fn` when the peer sends FIN (or the socket closes). */
  whenEnded(fn: () => void): void {
    if (this.ended) fn();
    else this.endListeners.push(fn);
  }

  /** Run `fn` when the socket closes (at once if it has). */
  whenClosed(fn: () => void): void {
    if (this.closed) fn();
    else this.closeListeners.push(fn);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  // --- reading

  /** The next chunk, or null at end of stream. */
  async read(): Promise<Buffer | null> {
    for (;;) {
      const chunk = this.queue.shift();
      if (chunk) {
        this.queued -= chunk.length;
        if (this.paused && this.queued < LOW_WATER && !this.closed) {
          this.paused = false;
          this.socket.resume();
        }
        return chunk;
      }
      if (this.ended) return null;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** Put bytes back at the front (read too far: the next request, a pipelined body). */
  unshift(buf: Buffer): void {
    if (!buf.length) return;
    this.queue.unshift(buf);
    this.queued += buf.length;
  }

  /** Whether bytes are waiting without a read. */
  get hasBuffered(): boolean {
    return this.queued > 0;
  }

  // --- writing

  /** Write all of `buf`; resolves once the kernel has taken it. Rejects if the socket closes first. */
  write(buf: Uint8Array): Promise<void> {
    if (!buf.length) return Promise.resolve();
    if (this.closed || this.writeEnded) return Promise.reject(new Error('socket closed'));
    if (!this.pending.length) {
      const n = this.socket.write(buf);
      if (n === buf.length) return Promise.resolve();
      if (n < 0) return Promise.reject(new Error('socket closed'));
      return new Promise((resolve, reject) => this.pending.push({ buf, off: n, resolve, reject }));
    }
    return new Promise((resolve, reject) => this.pending.push({ buf, off: 0, resolve, reject }));
  }

  private flush(): void {
    while (this.pending.length) {
      const p = this.pending[0]!;
      const n = this.socket.write(p.buf, p.off, p.buf.length - p.off);
      if (n < 0) return;
      p.off += n;
      if (p.off < p.buf.length) return;
      this.pending.shift();
      p.resolve();
    }
  }

  /** Resolves once every write so far has gone to the kernel. */
  private drained(): Promise<void> {
    if (!this.pending.length) return Promise.resolve();
    const last = this.pending[this.pending.length - 1]!;
    return new Promise<void>((resolve) => {
      const { resolve: r0, reject: j0 } = last;
      last.resolve = () => (r0(), resolve());
      last.reject = (e) => (j0(e), resolve());
    });
  }

  /** Half-close: FIN after what is written. */
  async endWrite(): Promise<void> {
    if (this.writeEnded || this.closed) return;
    await this.drained();
    if (this.writeEnded || this.closed) return;
    this.writeEnded = true;
    try {
      this.socket.shutdown();
    } catch {
      /* already closed */
    }
  }

  /** Close now (what is queued for writing is dropped). */
  destroy(): void {
    if (this.closed) return;
    try {
      this.socket.terminate();
    } catch {
      /* already closed */
    }
    this.onClose();
  }

  /** Close once what is written has gone out. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.drained();
    try {
      this.socket.end();
      this.socket.shutdown(true);
    } catch {
      /* closed */
    }
  }
}

/** Handlers for Bun.listen / Bun.connect whose socket.data is a Pipe. */
export const pipeHandlers = {
  data(s: { data: Pipe }, chunk: Buffer) {
    s.data.onData(chunk);
  },
  end(s: { data: Pipe }) {
    s.data.onEnd();
  },
  drain(s: { data: Pipe }) {
    s.data.onDrain();
  },
  close(s: { data: Pipe }) {
    s.data.onClose();
  },
  error(s: { data: Pipe }) {
    s.data.onClose();
  },
};
