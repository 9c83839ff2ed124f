/**
 * Peers cut off for breaking the fragment protocol. A banned peer's connections are refused by the
 * connection gater and its streams are reset until the ban expires. The list is bounded: past
 * `maxEntries` the oldest ban is forgotten.
 */
import type { PeerId } from "@libp2p/interface";

export interface PeerBanListInit {
  /** How long a ban lasts; 0 disables banning (violations still cut the connection). */
  banMs: number;
  /** Most bans kept at once. */
  maxEntries: number;
  /** Clock, for tests. */
  now?: () => number;
}

/** A ban in force. */
export interface PeerBan {
  until: number;
  reason: string;
}

/** Bounded, expiring set of banned peers. */
export class PeerBanList {
  private readonly bans = new Map<string, PeerBan>();
  private readonly banMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(init: PeerBanListInit) {
    this.banMs = init.banMs;
    this.maxEntries = Math.max(1, init.maxEntries);
    this.now = init.now ?? Date.now;
  }

  /**
   * Bans `peer` for `ms` (default: the configured time); returns the ban, or undefined when
   * banning is off. A shorter ban never cuts a longer one in force short.
   */
  ban(peer: PeerId | string, reason: string, ms: number = this.banMs): PeerBan | undefined {
    if (this.banMs <= 0 || ms <= 0) return undefined;
    const key = peer.toString();
    const current = this.get(key);
    const until = this.now() + ms;
    const ban = current !== undefined && current.until > until ? current : { until, reason };
    this.bans.delete(key);
    this.bans.set(key, ban);
    while (this.bans.size > this.maxEntries) {
      const oldest = this.bans.keys().next();
      if (oldest.done === true) break;
      this.bans.delete(oldest.value);
    }
    return ban;
  }

  /** The ban in force on `peer`, if any (expired bans are dropped here). */
  get(peer: PeerId | string): PeerBan | undefined {
    const key = peer.toString();
    const ban = this.bans.get(key);
    if (ban === undefined) return undefined;
    if (ban.until <= this.now()) {
      this.bans.delete(key);
      return undefined;
    }
    return ban;
  }

  /** True while `peer` is banned. */
  isBanned(peer: PeerId | string): boolean {
    return this.get(peer) !== undefined;
  }

  /** Lifts a ban early. */
  unban(peer: PeerId | string): void {
    this.bans.delete(peer.toString());
  }

  /** Number of bans recorded (some may have expired but not yet been dropped). */
  get size(): number {
    return this.bans.size;
  }
}
