/**
 * Bounded reads and back-pressured writes on a libp2p 3 message stream.
 *
 * libp2p 3 streams deliver data as 'message' events; yamux grants the sender more window as soon
 * as a frame is received unless the stream is paused. `StreamReader` keeps at most `highWaterMark`
 * unread bytes: above it the stream is paused (yamux stops granting window, so the sender stalls),
 * and it resumes once the reader has drained half of it. Every wait for bytes has its own timeout,
 * and every read can be cancelled by a signal.
 */
import type { Stream, StreamCloseEvent, StreamMessageEvent } from "@libp2p/interface";
import { Uint8ArrayList } from "uint8arraylist";
import { ReadTimeoutError, StreamClosedError, TruncatedFrameError } from "./errors.js";

export interface StreamReaderInit {
  /** Peer id (as text) used in error context. */
  peer?: string;
  /** Unread bytes above which the stream is paused. */
  highWaterMark: number;
}

/** Reads exact byte counts from a stream with per-wait timeouts; see the module comment. */
export class StreamReader {
  private readonly stream: Stream;
  private readonly peer: string | undefined;
  private readonly highWaterMark: number;
  private readonly queue = new Uint8ArrayList();
  private ended = false;
  private closedError: Error | undefined;
  private wake: (() => void) | undefined;
  private paused = false;

  constructor(stream: Stream, init: StreamReaderInit) {
    this.stream = stream;
    this.peer = init.peer;
    this.highWaterMark = init.highWaterMark;
    this.ended = stream.readableEnded;
    stream.addEventListener("message", this.onMessage);
    stream.addEventListener("end", this.onEnd);
    stream.addEventListener("close", this.onClose);
  }

  /** Bytes received but not yet read. */
  get buffered(): number {
    return this.queue.byteLength;
  }

  /** True once the remote closed its writable end (or reset) and every byte has been read. */
  get finished(): boolean {
    return this.queue.byteLength === 0 && (this.ended || this.closedError !== undefined);
  }

  /**
   * Waits between exchanges: resolves `data` when the next byte is available, `end` when the remote
   * closed its writable end cleanly, `idle` after `timeoutMs` without either. A reset throws
   * StreamClosedError.
   */
  async waitForMore(timeoutMs: number, signal?: AbortSignal): Promise<"data" | "end" | "idle"> {
    for (;;) {
      if (this.queue.byteLength > 0) return "data";
      if (this.closedError !== undefined) throw new StreamClosedError("idle wait", this.peer, this.closedError);
      if (this.ended) return "end";
      try {
        await this.waitForData("idle wait", timeoutMs, signal);
      } catch (err) {
        if (err instanceof ReadTimeoutError) return "idle";
        throw err;
      }
    }
  }

  /** Reads exactly `n` bytes into a new array. */
  async readExactly(n: number, phase: string, timeoutMs: number, signal?: AbortSignal): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    await this.readInto(out, phase, timeoutMs, signal);
    return out;
  }

  /**
   * Fills `dest` with the next `dest.length` bytes, copying each received chunk once; `onChunk`
   * sees each filled piece of `dest` as it lands (to hash while receiving). Throws
   * TruncatedFrameError if the remote ends its side first, StreamClosedError if the stream is
   * reset, ReadTimeoutError if no byte arrives for `timeoutMs`, and the signal's reason if aborted.
   */
  async readInto(
    dest: Uint8Array,
    phase: string,
    timeoutMs: number,
    signal?: AbortSignal,
    onChunk?: (filled: Uint8Array) => void,
  ): Promise<void> {
    let offset = 0;
    while (offset < dest.length) {
      if (this.queue.byteLength > 0) {
        const copied = this.drainInto(dest, offset);
        onChunk?.(dest.subarray(offset, offset + copied));
        offset += copied;
        continue;
      }
      if (this.closedError !== undefined) throw new StreamClosedError(phase, this.peer, this.closedError);
      if (this.ended) throw new TruncatedFrameError(phase, dest.length, offset, this.peer);
      await this.waitForData(phase, timeoutMs, signal);
    }
  }

  /** Removes the listeners; unread bytes are dropped. */
  detach(): void {
    this.stream.removeEventListener("message", this.onMessage);
    this.stream.removeEventListener("end", this.onEnd);
    this.stream.removeEventListener("close", this.onClose);
    this.queue.consume(this.queue.byteLength);
    this.wake?.();
  }

  private drainInto(dest: Uint8Array, offset: number): number {
    const want = Math.min(dest.length - offset, this.queue.byteLength);
    let copied = 0;
    for (const chunk of this.queue) {
      if (copied === want) break;
      const take = Math.min(chunk.byteLength, want - copied);
      dest.set(take === chunk.byteLength ? chunk : chunk.subarray(0, take), offset + copied);
      copied += take;
    }
    this.queue.consume(copied);
    if (this.paused && this.queue.byteLength <= this.highWaterMark / 2) {
      this.paused = false;
      if (this.stream.readStatus === "paused") this.stream.resume();
    }
    return copied;
  }

  private waitForData(phase: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.wake = undefined;
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new ReadTimeoutError(phase, timeoutMs, this.peer));
      }, timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.wake = () => {
        cleanup();
        resolve();
      };
    });
  }

  private readonly onMessage = (event: StreamMessageEvent): void => {
    this.queue.append(event.data);
    if (!this.paused && this.queue.byteLength > this.highWaterMark && this.stream.readStatus === "readable") {
      this.paused = true;
      this.stream.pause();
    }
    this.wake?.();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake?.();
  };

  private readonly onClose = (event: StreamCloseEvent): void => {
    if (event.error !== undefined) this.closedError = event.error;
    else if (this.stream.readBufferLength === 0) this.ended = true;
    this.wake?.();
  };
}

/** A buffer for `n` bytes that are about to be overwritten: not zero-filled, not from Buffer's shared pool. */
export function allocUninitialized(n: number): Uint8Array {
  const buf = Buffer.allocUnsafeSlow(n);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

export interface WriteChunkedOptions {
  chunkBytes: number;
  /** Bound on each wait for the remote to read. */
  idleTimeoutMs: number;
  signal: AbortSignal;
  phase: string;
  peer?: string;
  /** Sees each chunk before it is sent (`last` for the final one); throwing stops the write. */
  inspect?: (chunk: Uint8Array, last: boolean) => void;
}

/**
 * Writes `bytes` in `chunkBytes` pieces (views, no copies), waiting for 'drain' whenever the
 * stream's send buffer is full. Each wait is bounded by `idleTimeoutMs` and by `signal`.
 */
export async function writeChunked(stream: Stream, bytes: Uint8Array, options: WriteChunkedOptions): Promise<void> {
  const { chunkBytes, idleTimeoutMs, signal, phase, peer, inspect } = options;
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    const end = Math.min(bytes.length, offset + chunkBytes);
    const chunk = bytes.subarray(offset, end);
    inspect?.(chunk, end === bytes.length);
    if (!stream.send(chunk)) await waitForDrain(stream, idleTimeoutMs, signal, phase, peer);
  }
}

/**
 * Waits until the stream can take more data, bounded by `idleTimeoutMs` and `signal`.
 *
 * libp2p's `stream.onDrain()` is not used: it keeps the promise of the first 'drain' it created
 * and, once that has resolved, returns it resolved for the rest of the stream's life, so every
 * later wait would end at once and the writer would pile its whole payload into the stream's
 * unbounded write buffer (the flake of issue 9). Besides, yamux dispatches 'drain' to every stream
 * of a connection when the socket drains, whether or not that stream's window has room. So this
 * waits for each 'drain' (or 'close') event itself and re-checks `writableNeedsDrain` after the
 * stream has retried its send queue, until there is room, the stream closes, or the wait times out.
 */
export async function waitForDrain(
  stream: Stream,
  idleTimeoutMs: number,
  signal: AbortSignal,
  phase: string,
  peer?: string,
): Promise<void> {
  if (!stream.writableNeedsDrain) return;
  const idle = AbortSignal.timeout(idleTimeoutMs);
  const both = AbortSignal.any([signal, idle]);
  while (stream.writableNeedsDrain) {
    if (stream.status !== "open") throw new StreamClosedError(phase, peer, new Error(`stream is ${stream.status}`));
    try {
      await nextDrain(stream, both);
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (idle.aborted) throw new ReadTimeoutError(`${phase} (waiting for the remote to read)`, idleTimeoutMs, peer);
      throw new StreamClosedError(phase, peer, err);
    }
    // The stream's own 'drain' listener retries its send queue in a microtask; let it run so
    // `writableNeedsDrain` tells whether the window really has room.
    await Promise.resolve();
  }
}

/** Resolves on the stream's next 'drain', rejects on its 'close' or when `signal` aborts. */
function nextDrain(stream: Stream, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      stream.removeEventListener("drain", onDrain);
      stream.removeEventListener("close", onClose);
      signal.removeEventListener("abort", onAbort);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (event: StreamCloseEvent): void => {
      cleanup();
      reject(event.error ?? new Error("stream closed while waiting to write"));
    };
    const onAbort = (): void => {
      cleanup();
      reject(signal.reason);
    };
    stream.addEventListener("drain", onDrain);
    stream.addEventListener("close", onClose);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
