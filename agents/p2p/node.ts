/**
 * The p2p node: libp2p (TCP, or WebSockets for browsers, with TLS 1.3 or noise and yamux, or QUIC; identify, ping, Kademlia DHT)
 * plus the `/muri/fragment/1.0.0` protocol, behind one object that starts its parts in order and
 * stops them in reverse. Which transports it offers, and in which order, is `P2PNodeInit.transports`
 * (default DEFAULT_TRANSPORTS: TCP + TLS 1.3, then TCP + noise for peers without TLS).
 *
 * Peers come from three places: `bootstrap` multiaddrs dialed at start, `addPeers` (the multiaddrs
 * nodes registered on chain), and the DHT. Provider records (`provide` / `findProviders`) tell a
 * node who holds a CID. The DHT runs in server mode by default (every MuriData node is dialable)
 * under its own protocol id, so it never mixes with the public IPFS DHT.
 */
import { noise } from "@chainsafe/libp2p-noise";
import { quic } from "@chainsafe/libp2p-quic";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify, type Identify } from "@libp2p/identify";
import type { ComponentLogger, Connection, Libp2p, Logger, PeerId, PrivateKey } from "@libp2p/interface";
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, removePublicAddressesMapper, type KadDHT } from "@libp2p/kad-dht";
import { ping, type Ping } from "@libp2p/ping";
import { prometheusMetrics } from "@libp2p/prometheus-metrics";
import { peerIdFromString } from "@libp2p/peer-id";
import { tcp } from "@libp2p/tcp";
import { tls } from "@libp2p/tls";
import { webSockets } from "@libp2p/websockets";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { createLibp2p, type Libp2pOptions } from "libp2p";
import type { CID } from "multiformats/cid";
import type { Registry } from "prom-client";
import { PeerBanList } from "./ban-list.js";
import {
  BOOTSTRAP_DIAL_TIMEOUT_MS,
  PEER_DIAL_CONCURRENCY,
  DEFAULT_LIMITS,
  DEFAULT_LISTEN,
  DEFAULT_QUIC_LISTEN,
  DEFAULT_TRANSPORTS,
  DHT_PROTOCOL,
  FIND_PROVIDERS_TIMEOUT_MS,
  PROVIDE_TIMEOUT_MS,
  TRANSPORT_NAMES,
  YAMUX_DEFAULTS,
  type TransportName,
} from "./constants.js";
import { InvalidMultiaddrError, InvalidTransportError, NodeNotStartedError, RequestAbortedError } from "./errors.js";
import { FragmentProtocol, type FragmentTarget } from "./fragment-protocol.js";
import { dhtKey } from "./dht-key.js";
import { createP2PMetrics } from "./metrics.js";
import type { FetchOptions, FragmentSink, FragmentSource, P2PLimits, PushOptions, PushPolicy, ServePolicy } from "./types.js";

/** Which addresses the DHT passes on: `lan` keeps private ones (loopback, 10/8, ...), `public` drops them. */
export type DhtAddressScope = "all" | "lan" | "public";

export interface DhtInit {
  /** Kademlia protocol id (default DHT_PROTOCOL). */
  protocol?: string;
  /** Client-only: query the DHT but do not answer queries or store records (default false). */
  clientMode?: boolean;
  /** Address filter applied to peer records (default `all`). */
  addresses?: DhtAddressScope;
}

/** A metric every libp2p node registers with its metrics: its presence marks a registry as taken. */
const LIBP2P_METRIC = "libp2p_data_transfer_bytes_total";

/**
 * Whether libp2p's metrics go into `registry`: one node's per registry (a second node given the
 * same registry, as in-process tests do, counts its `muri_p2p_*` there only). At creation libp2p
 * empties its module-wide table of metrics, so each node registers its own, and prom-client's
 * global registry, which the agents never use.
 */
function libp2pMetricsInto(registry: Registry | undefined): registry is Registry {
  return registry !== undefined && registry.getSingleMetric(LIBP2P_METRIC) === undefined;
}

/** The connection-manager settings the node exposes. */
export interface ConnectionLimits {
  /** Most open connections. */
  maxConnections?: number;
  /** Inbound connections accepted per second from one host (libp2p default 5). */
  inboundConnectionThreshold?: number;
  /** Multiaddrs (IP networks) exempt from the inbound rate limit and the connection cap. */
  allow?: string[];
}

/** yamux tuning; defaults in constants.ts (YAMUX_DEFAULTS). */
export interface YamuxTuning {
  /** Receive window a stream starts with (bytes the remote may send before a window update). */
  initialStreamWindowSize: number;
  /** Largest the receive window may grow to. */
  maxStreamWindowSize: number;
}

export interface P2PNodeInit {
  /** Identity; see keys.ts to keep it across restarts. A fresh Ed25519 key when omitted. */
  privateKey?: PrivateKey;
  /**
   * Transports offered, most preferred first (default DEFAULT_TRANSPORTS). The `tcp-*` entries
   * become TCP's connection encrypters in the order given; keep `tcp-noise` in the list to connect
   * with peers that speak only noise.
   */
  transports?: readonly TransportName[];
  /**
   * Listen multiaddrs (default `/ip4/127.0.0.1/tcp/0` when a `tcp-*` transport is offered, plus
   * `/ip4/127.0.0.1/udp/0/quic-v1` when `quic` is).
   */
  listen?: string[];
  /**
   * Multiaddrs others should dial (a public address behind NAT or a port forward): when given,
   * `multiaddrs` reports these instead of the listen addresses (libp2p `addresses.announce`).
   */
  announce?: string[];
  /** Multiaddrs (with `/p2p/<id>`) dialed at start; failures are logged, not fatal. */
  bootstrap?: Array<string | Multiaddr>;
  /** Where served fragments are read from. */
  source: FragmentSource;
  /** Where verified pushed fragments are written. */
  sink: FragmentSink;
  /** Protocol limits; unset fields take DEFAULT_LIMITS. */
  limits?: Partial<P2PLimits>;
  /** Decides whether to accept a push (default: any valid push). */
  acceptPush?: PushPolicy;
  /** Decides whether to serve a fetch (default: any stored fragment to any peer). */
  authorizeFetch?: ServePolicy;
  dht?: DhtInit;
  yamux?: Partial<YamuxTuning>;
  /** Connection limits passed to libp2p's connection manager (its defaults when unset). */
  connections?: ConnectionLimits;
  /**
   * prom-client registry for `muri_p2p_*` counters and libp2p's own metrics (`libp2p_*`:
   * connections, streams and bytes per protocol, the DHT; with the process's CPU, memory and
   * event-loop lag). None by default: libp2p then counts nothing.
   */
  metricsRegistry?: Registry;
  /** libp2p component logger (default: libp2p's `debug`-based logger). */
  logger?: ComponentLogger;
}

/** A peer that announced it provides a CID. */
export interface ProviderInfo {
  id: PeerId;
  multiaddrs: Multiaddr[];
}

export interface FindProvidersOptions {
  signal?: AbortSignal;
  /** Stop after this long and return what was found (default FIND_PROVIDERS_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Stop after this many providers. */
  limit?: number;
}

export interface ProvideOptions {
  signal?: AbortSignal;
  /** Default PROVIDE_TIMEOUT_MS. */
  timeoutMs?: number;
}

/** Services registered on the libp2p instance. */
export interface P2PServices extends Record<string, unknown> {
  identify: Identify;
  ping: Ping;
  dht: KadDHT;
}

/** A peer to talk to: its id (addresses from the peer store), a multiaddr, or either as a string. */
export type PeerTarget = PeerId | Multiaddr | string;

/** The node; see the module comment. */
export interface P2PNode {
  readonly peerId: PeerId;
  /** Addresses the node listens on, each ending in `/p2p/<peerId>` (empty before start). */
  readonly multiaddrs: Multiaddr[];
  /** The underlying libp2p instance (for tests and tools; the node owns its lifecycle). */
  readonly libp2p: Libp2p<P2PServices>;
  /** Peers cut off for protocol violations. */
  readonly banList: PeerBanList;
  /** Effective limits. */
  readonly limits: Readonly<P2PLimits>;
  /**
   * Inbound transfer slots in use (`active`), and how many of them only abandoned work holds: a
   * store or policy call that outlived its request's deadline keeps its slot until it ends.
   */
  transferSlots(): { active: number; abandoned: number };
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Dials a multiaddr; returns the remote peer id. */
  dial(addr: Multiaddr | string, options?: { signal?: AbortSignal }): Promise<PeerId>;
  /**
   * Adds peers by multiaddr (e.g. registered on chain): each must end in `/p2p/<id>`; the addresses
   * go to the peer store and, with `dial`, are dialed (failures ignored). Returns the peer ids.
   */
  addPeers(addrs: Array<Multiaddr | string>, options?: { dial?: boolean; signal?: AbortSignal }): Promise<PeerId[]>;
  /** Fetches fragment `cid` from a peer; the bytes are verified against the CID. */
  fetchFragment(target: PeerTarget, cid: CID, options?: FetchOptions): Promise<Uint8Array>;
  /** Pushes fragment `cid` to a peer; resolves once the peer verified and stored it. */
  pushFragment(target: PeerTarget, cid: CID, bytes: Uint8Array, options?: PushOptions): Promise<void>;
  /** Announces on the DHT that this node holds `cid`. */
  provide(cid: CID, options?: ProvideOptions): Promise<void>;
  /** Looks up on the DHT who holds `cid` (this node excluded). */
  findProviders(cid: CID, options?: FindProvidersOptions): Promise<ProviderInfo[]>;
}

function toMultiaddr(addr: Multiaddr | string): Multiaddr {
  if (typeof addr !== "string") return addr;
  try {
    return multiaddr(addr);
  } catch (err) {
    throw new InvalidMultiaddrError(addr, "cannot parse", err);
  }
}

function peerIdOf(addr: Multiaddr): PeerId {
  const id = addr.getComponents().find((c) => c.name === "p2p")?.value;
  if (id == null) throw new InvalidMultiaddrError(addr.toString(), "no /p2p/<peer id> part");
  try {
    return peerIdFromString(id);
  } catch (err) {
    throw new InvalidMultiaddrError(addr.toString(), "bad peer id", err);
  }
}

function toTarget(target: PeerTarget): FragmentTarget {
  if (typeof target !== "string") return target;
  if (target.startsWith("/")) return toMultiaddr(target);
  try {
    return peerIdFromString(target);
  } catch (err) {
    throw new InvalidMultiaddrError(target, "neither a multiaddr nor a peer id", err);
  }
}

const ADDRESS_MAPPERS = {
  all: passthroughMapper,
  lan: removePublicAddressesMapper,
  public: removePrivateAddressesMapper,
} as const;

type TransportFactory = NonNullable<Libp2pOptions["transports"]>[number];
type EncrypterFactory = NonNullable<Libp2pOptions["connectionEncrypters"]>[number];

/** libp2p transports, connection encrypters and default listen addresses for a `transports` list. */
function transportStack(names: readonly TransportName[]): { transports: TransportFactory[]; encrypters: EncrypterFactory[]; listen: string[] } {
  const value = names.join(",");
  if (names.length === 0) throw new InvalidTransportError(value, "at least one is needed");
  for (const name of names) {
    if (!(TRANSPORT_NAMES as readonly string[]).includes(name)) throw new InvalidTransportError(value, `unknown transport ${JSON.stringify(name)}; known: ${TRANSPORT_NAMES.join(", ")}`);
  }
  if (new Set(names).size !== names.length) throw new InvalidTransportError(value, "listed twice");
  const encrypters: EncrypterFactory[] = [];
  for (const name of names) {
    if (name === "tcp-tls") encrypters.push(tls());
    if (name === "tcp-noise") encrypters.push(noise());
  }
  const transports: TransportFactory[] = [];
  const listen: string[] = [];
  if (encrypters.length > 0) {
    // WebSockets ride on the same encrypters and yamux: a listen address ending in `/ws` is how
    // browsers (the light client, agents/light/) reach a node; peers dial such addresses too.
    transports.push(tcp(), webSockets());
    listen.push(DEFAULT_LISTEN);
  }
  if (names.includes("quic")) {
    transports.push(quic());
    listen.push(DEFAULT_QUIC_LISTEN);
  }
  return { transports, encrypters, listen };
}

/** Creates a node (not started). */
export async function createP2PNode(init: P2PNodeInit): Promise<P2PNode> {
  const limits: P2PLimits = { ...DEFAULT_LIMITS, ...init.limits };
  const tuning: YamuxTuning = { ...YAMUX_DEFAULTS, ...init.yamux };
  const stack = transportStack(init.transports ?? DEFAULT_TRANSPORTS);
  const banList = new PeerBanList({ banMs: limits.banMs, maxEntries: limits.maxBannedPeers });
  const denyBanned = (peer: PeerId): boolean => banList.isBanned(peer);

  const libp2p = await createLibp2p<P2PServices>({
    start: false,
    ...(init.privateKey !== undefined ? { privateKey: init.privateKey } : {}),
    ...(init.logger !== undefined ? { logger: init.logger } : {}),
    addresses: { listen: init.listen ?? stack.listen, ...(init.announce?.length ? { announce: init.announce } : {}) },
    connectionManager: { ...init.connections },
    ...(libp2pMetricsInto(init.metricsRegistry) ? { metrics: prometheusMetrics({ registry: init.metricsRegistry }) } : {}),
    transports: stack.transports,
    connectionEncrypters: stack.encrypters,
    streamMuxers: [
      yamux({
        streamOptions: {
          initialStreamWindowSize: tuning.initialStreamWindowSize,
          maxStreamWindowSize: tuning.maxStreamWindowSize,
          // A paused stream may still receive a full window; never reset it for that.
          maxReadBufferLength: tuning.maxStreamWindowSize + limits.chunkBytes,
        },
      }),
    ],
    connectionGater: {
      denyDialPeer: denyBanned,
      denyInboundEncryptedConnection: denyBanned,
      denyOutboundEncryptedConnection: denyBanned,
    },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: init.dht?.protocol ?? DHT_PROTOCOL,
        clientMode: init.dht?.clientMode ?? false,
        peerInfoMapper: ADDRESS_MAPPERS[init.dht?.addresses ?? "all"],
      }),
    },
  });
  const log: Logger = libp2p.logger.forComponent("muri:p2p");
  const metrics = createP2PMetrics(init.metricsRegistry);
  const fragments = new FragmentProtocol(
    { libp2p, source: init.source, sink: init.sink, banList, log: libp2p.logger.forComponent("muri:p2p:fragment"), metrics },
    { limits, acceptPush: init.acceptPush, authorizeFetch: init.authorizeFetch },
  );
  const bootstrap = (init.bootstrap ?? []).map(toMultiaddr);
  let running = false;

  const requireRunning = (method: string): void => {
    if (!running) throw new NodeNotStartedError(method);
  };

  const dial = async (addr: Multiaddr | string, options: { signal?: AbortSignal } = {}): Promise<PeerId> => {
    requireRunning("dial");
    const connection: Connection = await libp2p.dial(toMultiaddr(addr), options);
    return connection.remotePeer;
  };

  const addPeers = async (addrs: Array<Multiaddr | string>, options: { dial?: boolean; signal?: AbortSignal } = {}): Promise<PeerId[]> => {
    const parsed = addrs.map(toMultiaddr).map((ma) => ({ ma, id: peerIdOf(ma) }));
    const ids: PeerId[] = [];
    for (const { ma, id } of parsed) {
      if (id.equals(libp2p.peerId)) continue;
      await libp2p.peerStore.merge(id, { multiaddrs: [ma.decapsulateCode(421)] });
      if (!ids.some((known) => known.equals(id))) ids.push(id);
    }
    if (options.dial === true && running) {
      const signal = AbortSignal.any([AbortSignal.timeout(BOOTSTRAP_DIAL_TIMEOUT_MS), ...(options.signal ? [options.signal] : [])]);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < ids.length && !signal.aborted) {
          const id = ids[next++];
          try {
            await libp2p.dial(id, { signal });
          } catch (err) {
            log("dialing %s failed: %s", id, (err as Error).message);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(PEER_DIAL_CONCURRENCY, ids.length) }, worker));
    }
    return ids;
  };

  const node: P2PNode = {
    peerId: libp2p.peerId,
    get multiaddrs() {
      return libp2p.getMultiaddrs();
    },
    libp2p,
    banList,
    limits,

    transferSlots() {
      return { active: fragments.activeTransfers, abandoned: fragments.abandonedTransfers };
    },

    async start() {
      if (running) return;
      await libp2p.start();
      await fragments.start();
      running = true;
      if (bootstrap.length > 0) await addPeers(bootstrap, { dial: true });
    },

    async stop() {
      if (!running) return;
      running = false;
      // libp2p's stop waits for each connection's 'close' event bounded only by unref'd timers
      // (AbortSignal.timeout(500)); when that event never comes and the sockets are already gone, a
      // process with nothing else to do (a `muri` command, which listens on nothing) has an empty
      // event loop and exits with code 13 in the middle of the stop. Keep the loop alive meanwhile.
      const keepAlive = setInterval(() => undefined, 1_000);
      try {
        await fragments.stop();
        await libp2p.stop();
      } finally {
        clearInterval(keepAlive);
      }
    },

    dial,
    addPeers,

    fetchFragment(target, cid, options) {
      return fragments.fetch(toTarget(target), cid, options);
    },

    pushFragment(target, cid, bytes, options) {
      return fragments.push(toTarget(target), cid, bytes, options);
    },

    async provide(cid, options = {}) {
      requireRunning("provide");
      const signal = AbortSignal.any([
        AbortSignal.timeout(options.timeoutMs ?? PROVIDE_TIMEOUT_MS),
        ...(options.signal ? [options.signal] : []),
      ]);
      await libp2p.contentRouting.provide(dhtKey(cid), { signal });
    },

    async findProviders(cid, options = {}) {
      requireRunning("findProviders");
      const limit = options.limit ?? Number.POSITIVE_INFINITY;
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(), options.timeoutMs ?? FIND_PROVIDERS_TIMEOUT_MS);
      const signal = AbortSignal.any([deadline.signal, ...(options.signal ? [options.signal] : [])]);
      const found: ProviderInfo[] = [];
      try {
        for await (const provider of libp2p.contentRouting.findProviders(dhtKey(cid), { signal })) {
          if (provider.id.equals(libp2p.peerId) || found.some((p) => p.id.equals(provider.id))) continue;
          found.push({ id: provider.id, multiaddrs: provider.multiaddrs });
          if (found.length >= limit) break;
        }
      } catch (err) {
        if (options.signal?.aborted === true) throw new RequestAbortedError("findProviders", cid.toString(), undefined, options.signal.reason);
        if (!deadline.signal.aborted) throw err;
        // our own deadline: return what was found so far
      } finally {
        clearTimeout(timer);
      }
      return found;
    },
  };
  return node;
}
