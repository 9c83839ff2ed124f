/**
 * Idle `/muri/fragment/1.0.0` streams kept per peer for reuse. Opening a libp2p stream costs a
 * multistream-select round trip plus peer-store and logger work on both ends, comparable to
 * moving a whole fragment; a stream whose last exchange ended cleanly is parked here and the next
 * request to that peer takes it instead. Parked streams are half-closed after `idleMs`, and at most
 * `maxPerPeer` are parked per peer.
 */
import type { Connection, Stream } from "@libp2p/interface";
import { CLOSE_TIMEOUT_MS } from "./constants.js";
import type { StreamReader } from "./stream-io.js";

/** A stream with the reader that owns its 'message' events. */
export interface PooledStream {
  stream: Stream;
  reader: StreamReader;
  connection: Connection;
}

interface Parked extends PooledStream {
  timer: NodeJS.Timeout;
  /** Retires the stream early when the remote closes or resets it while parked. */
  onRemoteClose: () => void;
}

export interface StreamPoolInit {
  maxPerPeer: number;
  idleMs: number;
}

/** True while `entry` can carry another exchange. */
function reusable(entry: PooledStream): boolean {
  const { stream, reader, connection } = entry;
  return (
    connection.status === "open" &&
    stream.status === "open" &&
    stream.writeStatus === "writable" &&
    stream.remoteWriteStatus === "writable" &&
    reader.buffered === 0 &&
    !reader.finished
  );
}

/** Ends a stream we no longer need: half-close (the remote then closes its side), bounded. */
export function retire(entry: PooledStream): void {
  entry.reader.detach();
  if (entry.stream.status !== "open") return;
  entry.stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) }).catch((err: unknown) => {
    entry.stream.abort(err instanceof Error ? err : new Error(String(err)));
  });
}

/** Per-peer stacks of parked streams. */
export class StreamPool {
  private readonly parked = new Map<string, Parked[]>();
  private readonly maxPerPeer: number;
  private readonly idleMs: number;

  constructor(init: StreamPoolInit) {
    this.maxPerPeer = init.maxPerPeer;
    this.idleMs = init.idleMs;
  }

  /** A parked stream to `peer` that can still be used, if any (most recently parked first). */
  take(peer: string): PooledStream | undefined {
    const stack = this.parked.get(peer);
    while (stack !== undefined && stack.length > 0) {
      const entry = stack.pop()!;
      this.unwatch(entry);
      if (stack.length === 0) this.parked.delete(peer);
      if (reusable(entry)) return { stream: entry.stream, reader: entry.reader, connection: entry.connection };
      retire(entry);
    }
    return undefined;
  }

  /** Parks a stream after a clean exchange, or retires it if it cannot be reused or the pool is full. */
  give(peer: string, entry: PooledStream): void {
    const stack = this.parked.get(peer) ?? [];
    if (this.maxPerPeer <= 0 || stack.length >= this.maxPerPeer || !reusable(entry)) {
      retire(entry);
      return;
    }
    const evict = (): void => {
      const current = this.parked.get(peer);
      const i = current?.indexOf(parked) ?? -1;
      if (current !== undefined && i >= 0) {
        current.splice(i, 1);
        if (current.length === 0) this.parked.delete(peer);
      }
      this.unwatch(parked);
      retire(parked);
    };
    const parked: Parked = { ...entry, timer: setTimeout(evict, this.idleMs), onRemoteClose: evict };
    parked.timer.unref();
    entry.stream.addEventListener("remoteCloseWrite", evict);
    entry.stream.addEventListener("close", evict);
    stack.push(parked);
    this.parked.set(peer, stack);
  }

  private unwatch(entry: Parked): void {
    clearTimeout(entry.timer);
    entry.stream.removeEventListener("remoteCloseWrite", entry.onRemoteClose);
    entry.stream.removeEventListener("close", entry.onRemoteClose);
  }

  /** Retires every parked stream. */
  clear(): void {
    for (const stack of this.parked.values()) {
      for (const entry of stack) {
        this.unwatch(entry);
        retire(entry);
      }
    }
    this.parked.clear();
  }

  /** Number of parked streams (all peers). */
  get size(): number {
    let n = 0;
    for (const stack of this.parked.values()) n += stack.length;
    return n;
  }
}
