/**
 * What searching may cost a node: searches run on the agent's event loop (the prover's too), so
 * each peer gets a share of the loop's time, and all peers together a larger one. Time is charged
 * after each search as it was measured (by the index worker, when the search ran there: its own
 * time, not its wait behind other peers' searches); a peer (or the node as a whole) whose balance is spent is
 * answered "busy" until its budget refills. Time-based rather than counted per request, so an exact
 * search over a large Magu costs what it really costs.
 */

export interface SearchBudgetInit {
  /** Search time one peer may use per second of wall time, ms (default 250: a quarter of a core). */
  perPeerMsPerSecond?: number;
  /** Search time all peers together may use per second, ms (default 600). */
  totalMsPerSecond?: number;
  /** Longest a budget can save up, in seconds of refill (default 10). */
  burstSeconds?: number;
  /** Peers remembered at most; the longest idle are forgotten first (default 10,000). */
  maxPeers?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

export const SEARCH_BUDGET_DEFAULTS = { perPeerMsPerSecond: 250, totalMsPerSecond: 600, burstSeconds: 10, maxPeers: 10_000 } as const;

interface Bucket {
  balance: number;
  at: number;
}

/** Refused: the message says whose budget and when to retry. */
export class SearchBudgetExceededError extends Error {
  readonly code = "ERR_SEARCH_BUDGET";
  constructor(
    readonly scope: "peer" | "node",
    readonly retryAfterMs: number,
  ) {
    super(`busy: ${scope === "peer" ? "this peer's" : "this node's"} search time is spent, retry in ${Math.ceil(retryAfterMs)} ms`);
    this.name = "SearchBudgetExceededError";
  }
}

/** What a budget has let through and refused since it was made (for `/metrics`). */
export interface SearchBudgetStats {
  /** Searches run. */
  served: number;
  /** Searches refused because the asking peer's share was spent. */
  refusedPeer: number;
  /** Searches refused because the node's total was spent. */
  refusedNode: number;
  /** Search time charged, in ms. */
  chargedMs: number;
  /** Peers with a bucket now. */
  peers: number;
}

export class SearchBudget {
  private readonly counts = { served: 0, refusedPeer: 0, refusedNode: 0, chargedMs: 0 };
  private readonly perPeer: number;
  private readonly total: number;
  private readonly burst: number;
  private readonly maxPeers: number;
  private readonly now: () => number;
  private readonly peers = new Map<string, Bucket>();
  private readonly node: Bucket;

  constructor(init: SearchBudgetInit = {}) {
    this.perPeer = init.perPeerMsPerSecond ?? SEARCH_BUDGET_DEFAULTS.perPeerMsPerSecond;
    this.total = init.totalMsPerSecond ?? SEARCH_BUDGET_DEFAULTS.totalMsPerSecond;
    this.burst = init.burstSeconds ?? SEARCH_BUDGET_DEFAULTS.burstSeconds;
    this.maxPeers = init.maxPeers ?? SEARCH_BUDGET_DEFAULTS.maxPeers;
    this.now = init.now ?? (() => performance.now());
    for (const [name, v] of [["perPeerMsPerSecond", this.perPeer], ["totalMsPerSecond", this.total], ["burstSeconds", this.burst], ["maxPeers", this.maxPeers]] as const) {
      if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`search budget: ${name} must be a positive number, got ${v}`);
    }
    this.node = { balance: this.total * this.burst, at: this.now() };
  }

  /** Throws `SearchBudgetExceededError` unless `peer` and the node both have time left. */
  check(peer: string): void {
    const p = this.refill(this.peerBucket(peer), this.perPeer);
    if (p.balance <= 0) {
      this.counts.refusedPeer++;
      throw new SearchBudgetExceededError("peer", (-p.balance / this.perPeer) * 1000 + 1);
    }
    const n = this.refill(this.node, this.total);
    if (n.balance <= 0) {
      this.counts.refusedNode++;
      throw new SearchBudgetExceededError("node", (-n.balance / this.total) * 1000 + 1);
    }
  }

  /** Counts since the budget was made. */
  stats(): SearchBudgetStats {
    return { ...this.counts, peers: this.peers.size };
  }

  /** Charges `ms` of search time to `peer` and to the node. */
  charge(peer: string, ms: number): void {
    this.counts.chargedMs += ms;
    this.refill(this.peerBucket(peer), this.perPeer).balance -= ms;
    this.refill(this.node, this.total).balance -= ms;
  }

  /**
   * Runs `search` for `peer` if its budget allows, and charges what `costMs` says the answer cost
   * (the index's own time, when the search waited for a worker shared with others), else the
   * time it took.
   */
  async run<T>(peer: string, search: () => Promise<T>, costMs?: (answer: T) => number): Promise<T> {
    this.check(peer);
    this.counts.served++;
    const started = this.now();
    let answer: T;
    try {
      answer = await search();
    } catch (err) {
      this.charge(peer, this.now() - started);
      throw err;
    }
    this.charge(peer, costMs !== undefined ? costMs(answer) : this.now() - started);
    return answer;
  }

  private peerBucket(peer: string): Bucket {
    let b = this.peers.get(peer);
    if (b === undefined) {
      b = { balance: this.perPeer * this.burst, at: this.now() };
      if (this.peers.size >= this.maxPeers) this.peers.delete(this.peers.keys().next().value!);
    } else {
      this.peers.delete(peer); // re-insert: the map's order is least recently used first
    }
    this.peers.set(peer, b);
    return b;
  }

  private refill(b: Bucket, perSecond: number): Bucket {
    const t = this.now();
    b.balance = Math.min(perSecond * this.burst, b.balance + ((t - b.at) / 1000) * perSecond);
    b.at = t;
    return b;
  }
}
