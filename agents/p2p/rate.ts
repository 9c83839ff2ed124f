/**
 * Rate rules of the fragment protocol: a floor under each transfer's payload rate (a peer that
 * dribbles bytes, or reads ours one byte at a time, loses its slot and is banned for a while), and
 * a token bucket of requests per peer (a flood is answered "busy" before it costs a slot or a
 * store lookup).
 */
import { TransferTooSlowError } from "./errors.js";

/** How often a floor compares progress with what it asks for. */
const FLOOR_CHECK_MS = 250;

/**
 * Asks a transfer for at least `bytesPerSec` once `graceMs` have passed: at time t it must have
 * moved min(total, (t - graceMs) x bytesPerSec) bytes, or `signal` aborts with TransferTooSlowError.
 * A floor of 0 never aborts. `stop()` must be called when the transfer ends.
 */
export class RateFloor {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout | undefined;
  private moved = 0;

  constructor(
    private readonly bytesPerSec: number,
    private readonly graceMs: number,
    private readonly total: number,
    private readonly phase: string,
    private readonly peer?: string,
  ) {
    this.signal = this.controller.signal;
    if (bytesPerSec > 0 && total > 0) {
      this.timer = setInterval(() => this.check(), FLOOR_CHECK_MS);
      this.timer.unref();
    }
  }

  /** Counts `n` more bytes moved. */
  add(n: number): void {
    this.moved += n;
  }

  /** Ends the watch (idempotent). */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  private check(): void {
    const elapsed = performance.now() - this.started;
    if (elapsed <= this.graceMs || this.controller.signal.aborted) return;
    const owed = Math.min(this.total, ((elapsed - this.graceMs) / 1000) * this.bytesPerSec);
    if (this.moved >= owed) return;
    this.stop();
    this.controller.abort(new TransferTooSlowError(this.phase, this.moved, this.total, Math.round(elapsed), this.bytesPerSec, this.peer));
  }
}

export interface TokenBucketsInit {
  /** Tokens a key earns per second (0: unlimited, `take` always succeeds). */
  perSec: number;
  /** Most tokens a key can save up. */
  burst: number;
  /** Keys remembered at once; past this the least recently used is forgotten (it starts full again). */
  maxKeys: number;
  /** Clock in ms, for tests. */
  now?: () => number;
}

/** One token bucket per key (a peer id), bounded in the keys it remembers. */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  constructor(private readonly init: TokenBucketsInit) {
    this.now = init.now ?? (() => performance.now());
  }

  /** Takes one token from `key`'s bucket; false when it is empty. */
  take(key: string): boolean {
    const { perSec, burst, maxKeys } = this.init;
    if (perSec <= 0) return true;
    const now = this.now();
    const b = this.buckets.get(key);
    let tokens = burst;
    if (b !== undefined) {
      tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSec);
      this.buckets.delete(key); // re-inserted below: the map's order is least recently used first
    }
    const ok = tokens >= 1;
    this.buckets.set(key, { tokens: ok ? tokens - 1 : tokens, at: now });
    while (this.buckets.size > Math.max(1, maxKeys)) {
      const oldest = this.buckets.keys().next();
      if (oldest.done === true) break;
      this.buckets.delete(oldest.value);
    }
    return ok;
  }

  /** Keys remembered now. */
  get size(): number {
    return this.buckets.size;
  }
}
