/**
 * Defaults of the p2p layer, in one place. Every number used by the fragment protocol, the node
 * and the ban list comes from here (or from the caller's `P2PLimits`, which overrides these).
 */
import { FRAGMENT_SIZE } from "../data/constants.js";

/** Protocol id of the fragment exchange: fetch and push fragments by CID (framing.ts). */
export const FRAGMENT_PROTOCOL = "/muri/fragment/1.0.0";

/** Kademlia protocol id of the MuriData network (kept apart from the public IPFS DHT). */
export const DHT_PROTOCOL = "/muri/kad/1.0.0";

/** Default listen address: an ephemeral TCP port on loopback. */
export const DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0";

/** Default QUIC listen address (used when the node offers `quic`): an ephemeral UDP port on loopback. */
export const DEFAULT_QUIC_LISTEN = "/ip4/127.0.0.1/udp/0/quic-v1";

/**
 * The ways a node can secure and carry its connections, by name:
 *   - `tcp-tls`:   TCP + TLS 1.3 (@libp2p/tls, node:tls, i.e. OpenSSL's AES-GCM) + yamux
 *   - `tcp-noise`: TCP + noise (@chainsafe/libp2p-noise, ChaCha20-Poly1305) + yamux
 *   - `quic`:      QUIC v1 over UDP (@chainsafe/libp2p-quic, native; its own TLS 1.3 and streams)
 */
export const TRANSPORT_NAMES = ["tcp-tls", "tcp-noise", "quic"] as const;
export type TransportName = (typeof TRANSPORT_NAMES)[number];

/**
 * What a node offers unless told otherwise, most preferred first. TLS first: in bench/transfer.ts
 * its verified fetches cost 4.1-5.1 CPU ms per MiB (both ends) against noise's 5.2-7.7, and moved
 * as fast or faster (docs/BENCHMARKS.md); QUIC was 4-5x costlier still. Noise second so a peer that
 * only speaks noise still connects: libp2p proposes the encrypters in this order and the peers
 * settle on the first both speak.
 */
export const DEFAULT_TRANSPORTS: readonly TransportName[] = ["tcp-tls", "tcp-noise"];

/** Largest CID, in bytes, a request may carry (a CIDv1 raw sha2-256 is 36 bytes, a fragment-root CID 39). */
export const MAX_CID_BYTES = 96;

/** Fixed part of a request header: op (1) + CID length (1) + length (4). */
export const REQUEST_FIXED_BYTES = 6;

/** Largest request header: fixed part plus the largest CID. */
export const MAX_REQUEST_HEADER_BYTES = REQUEST_FIXED_BYTES + MAX_CID_BYTES;

/** Response header: status (1) + length (4). */
export const RESPONSE_HEADER_BYTES = 5;

/** Largest reason text that may follow a non-ok response status. */
export const MAX_REASON_BYTES = 256;

/** Chunk size used when writing a fragment to a stream (yamux frames are at most 256 KiB by default). */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

/** Default limits; each can be overridden through `P2PLimits`. */
export const DEFAULT_LIMITS = {
  /** Largest fragment accepted or served; a fragment is at most FRAGMENT_SIZE (docs/ENCODING.md). */
  maxFragmentBytes: FRAGMENT_SIZE,
  /** Longest wait for the next bytes on a stream (header or payload) before it is aborted. */
  readTimeoutMs: 10_000,
  /** Longest a whole fetch or push may take, from opening the stream to the last byte. */
  requestTimeoutMs: 30_000,
  /** Concurrent inbound fragment streams allowed per connection. */
  maxInboundStreams: 64,
  /** Concurrent outbound fragment streams allowed per connection. */
  maxOutboundStreams: 128,
  /** Inbound transfers (fetches served + pushes received) handled at once across all peers. */
  maxConcurrentTransfers: 64,
  /**
   * Of those, at most this many for one peer: a peer that dribbles bytes cannot hold every slot
   * (a client's get has up to 32 fetches in flight, spread over the holders).
   */
  maxTransfersPerPeer: 32,
  /** How long a peer that broke the protocol is refused (0 disables banning). */
  banMs: 10 * 60_000,
  /**
   * Payload rate every transfer must keep once `transferGraceMs` have passed (0: no floor). A peer
   * below it - dribbling a push, or reading a fetch that slowly - loses the slot and is banned for
   * `slowBanMs`; a stall mid-request (no byte for `readTimeoutMs`) is treated the same.
   */
  minTransferBytesPerSec: 64 * 1024,
  /** Start of a transfer that the floor leaves alone (connection warm-up, a busy event loop). */
  transferGraceMs: 3_000,
  /** How long a peer that was too slow is refused: shorter than `banMs`, it may be a bad link. */
  slowBanMs: 60_000,
  /**
   * Requests (fetches and pushes) one peer may start per second, on average (0: unlimited); more
   * are answered "busy: rate limit" before they take a slot. 512/s of 1 MiB fragments is 512 MiB/s.
   */
  peerRequestsPerSec: 512,
  /** Requests one peer may start at once after being quiet (its bucket's size). */
  peerRequestBurst: 1_024,
  /** Most peers remembered as banned at once; the oldest ban is forgotten first. */
  maxBannedPeers: 10_000,
  /** Size of the chunks a fragment is written in. */
  chunkBytes: DEFAULT_CHUNK_BYTES,
  /** Listener: how long a stream may sit between exchanges before it is closed (before its first request, at least readTimeoutMs). */
  streamIdleTimeoutMs: 30_000,
  /** Dialer: idle streams kept per peer for reuse (0 opens a stream per request). */
  maxIdleStreamsPerPeer: 32,
  /** Dialer: how long an idle stream is kept for reuse (below the listener's streamIdleTimeoutMs). */
  pooledStreamIdleMs: 10_000,
} as const;

/** yamux tuning: larger windows let one stream carry a 1 MiB fragment without waiting on updates. */
export const YAMUX_DEFAULTS = {
  /** Initial per-stream receive window (yamux minimum is 256 KiB). */
  initialStreamWindowSize: 1 << 20,
  /** Upper bound the window may grow to. */
  maxStreamWindowSize: 4 << 20,
} as const;

/** Bound on how long start() / addPeers spend dialing peers. */
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 5_000;

/** Peers dialed at once by start() / addPeers. */
export const PEER_DIAL_CONCURRENCY = 8;

/** Default bound on a provider lookup. */
export const FIND_PROVIDERS_TIMEOUT_MS = 10_000;

/** Default bound on announcing a provider record. */
export const PROVIDE_TIMEOUT_MS = 10_000;

/** How long a stream may stay half-closed while its last bytes are flushed. */
export const CLOSE_TIMEOUT_MS = 2_000;
