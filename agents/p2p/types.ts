/**
 * Structural interfaces the p2p layer codes against, so it does not depend on the store's
 * concrete class: anything with these methods (the LevelDB fragment store, an in-memory map in a
 * test) can serve and receive fragments.
 */
import type { CID } from "multiformats/cid";
import type { PeerId } from "@libp2p/interface";

/** Where served fragments come from. `get` may throw when the fragment is missing. */
export interface FragmentSource {
  has(cid: CID): boolean | Promise<boolean>;
  get(cid: CID): Uint8Array | Promise<Uint8Array>;
}

/** Where verified pushed fragments go. A throw (quota full, disk error) refuses the push. */
export interface FragmentSink {
  /** `from`: the peer that pushed them. */
  put(cid: CID, bytes: Uint8Array, from?: PeerId): unknown;
}

/** A push about to be received, for the optional accept policy. */
export interface IncomingPush {
  peer: PeerId;
  cid: CID;
  length: number;
}

/**
 * Decides whether to take a push (e.g. only fragments this node is assigned): true takes it, false
 * refuses it ("push not accepted"), a string refuses it and is the reason the pusher reads (e.g.
 * that the store's quota is full).
 */
export type PushPolicy = (push: IncomingPush) => boolean | string | Promise<boolean | string>;

/** A fetch about to be served, for the optional serve policy. */
export interface IncomingFetch {
  peer: PeerId;
  cid: CID;
}

/**
 * Decides whether `peer` may read `cid`: undefined serves it, a string refuses it and is the
 * reason the asking peer reads (e.g. which grant is missing).
 */
export type ServePolicy = (fetch: IncomingFetch) => string | undefined | Promise<string | undefined>;

/** Limits of the fragment protocol and the ban list; defaults in constants.ts (DEFAULT_LIMITS). */
export interface P2PLimits {
  /** Largest fragment served, accepted or fetched. */
  maxFragmentBytes: number;
  /** Longest wait for the next bytes (or for the remote to read) before a stream is aborted. */
  readTimeoutMs: number;
  /** Longest a whole fetch or push may take. */
  requestTimeoutMs: number;
  /** Concurrent inbound fragment streams per connection. */
  maxInboundStreams: number;
  /** Concurrent outbound fragment streams per connection. */
  maxOutboundStreams: number;
  /** Inbound transfers handled at once across all peers; more are answered `refused`. */
  maxConcurrentTransfers: number;
  /** Inbound transfers one peer may have at once (the rest of its requests are refused "busy"). */
  maxTransfersPerPeer: number;
  /** How long a peer that broke the protocol stays banned (0: never banned, only disconnected). */
  banMs: number;
  /** Payload rate a transfer must keep after `transferGraceMs` (0: no floor). */
  minTransferBytesPerSec: number;
  /** Start of a transfer the rate floor leaves alone. */
  transferGraceMs: number;
  /** How long a peer that was too slow (below the floor, or stalled mid-request) stays banned. */
  slowBanMs: number;
  /** Requests one peer may start per second on average (0: unlimited); more are refused "busy". */
  peerRequestsPerSec: number;
  /** Size of each peer's request bucket. */
  peerRequestBurst: number;
  /** Most bans remembered. */
  maxBannedPeers: number;
  /** Chunk size of fragment writes. */
  chunkBytes: number;
  /** Listener: how long a stream may sit idle between exchanges before it is closed. */
  streamIdleTimeoutMs: number;
  /** Dialer: idle streams kept per peer for reuse (0 opens a stream per request). */
  maxIdleStreamsPerPeer: number;
  /** Dialer: how long an idle stream is kept for reuse. */
  pooledStreamIdleMs: number;
}

/** Options of one fetch or push. */
export interface TransferOptions {
  /** Cancels the request. */
  signal?: AbortSignal;
  /** Deadline of the whole request (default: limits.requestTimeoutMs). */
  timeoutMs?: number;
}

/** Options of a push. */
export interface PushOptions extends TransferOptions {
  /**
   * The caller produced or verified these bytes as fragment `cid` itself (an encoder's output, a
   * fragment read back with verification): they are not hashed again on the way out. Default
   * false: the push hashes them and refuses to send bytes that would get this node banned.
   */
  verified?: boolean;
}

/** Options of a fetch. */
export interface FetchOptions extends TransferOptions {
  /** Largest fragment accepted (default and cap: limits.maxFragmentBytes). */
  maxBytes?: number;
}
