/**
 * `/muri/fragment/1.0.0`: fetch and push fragments by CID (byte layout in framing.ts).
 *
 * Listener side: waits for a request (bounded idle time), reads its header with a timeout on every
 * read, then either streams the fragment from the `FragmentSource` in chunks, respecting the
 * stream's back-pressure, or receives a pushed fragment into a buffer of exactly the declared
 * size, hashing it as it arrives, and hands it to the `FragmentSink` only if it matches the CID.
 * It then waits for the next request on the same stream. A peer that sends a malformed,
 * oversized, truncated or lying frame is cut off: its stream is reset, its connection closed and
 * (unless `banMs` is 0) it is banned for a while; nothing it sent is stored.
 *
 * Dialer side: `fetch` and `push` bound the whole exchange by a deadline and verify a fetched
 * fragment against its CID before returning it; a peer that answers with bytes that do not match
 * is cut off the same way. Streams whose exchange ended cleanly are parked in a per-peer pool and
 * reused (opening a libp2p stream costs about as much CPU as moving a fragment); a parked stream
 * that turns out to be closed is retried once on a fresh one.
 */
import type { Connection, Libp2p, Logger, PeerId, Stream } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { CID } from "multiformats/cid";
import type { PeerBanList } from "./ban-list.js";
import { CLOSE_TIMEOUT_MS, FRAGMENT_PROTOCOL, MAX_REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES } from "./constants.js";
import {
  CidMismatchError,
  FrameTooLargeError,
  InvalidFragmentError,
  MalformedFrameError,
  NodeNotStartedError,
  P2PError,
  PeerBannedError,
  ReadTimeoutError,
  RemoteBadRequestError,
  RemoteNotFoundError,
  RemoteRefusedError,
  RemoteTooLargeError,
  RequestAbortedError,
  RequestTimeoutError,
  StreamClosedError,
  TransferTooSlowError,
  TruncatedFrameError,
} from "./errors.js";
import {
  Op,
  Status,
  decodeRequestHeader,
  decodeResponseHeader,
  encodeErrorResponse,
  encodeRequestHeader,
  encodeResponseHeader,
  requestHeaderLength,
  statusName,
  type RequestHeader,
} from "./framing.js";
import type { P2PMetrics } from "./metrics.js";
import { RateFloor, TokenBuckets } from "./rate.js";
import { StreamReader, allocUninitialized, writeChunked } from "./stream-io.js";
import { StreamPool, retire, type PooledStream } from "./stream-pool.js";
import type { FetchOptions, FragmentSink, FragmentSource, P2PLimits, PushOptions, PushPolicy, ServePolicy, TransferOptions } from "./types.js";
import { CidVerifier, assertVerifiableCid } from "./verify.js";

/** The part of libp2p the protocol uses. */
export type FragmentLibp2p = Pick<Libp2p, "handle" | "unhandle" | "dial">;

/** Where a request goes: a peer already known to the peer store, or an address to dial. */
export type FragmentTarget = PeerId | Multiaddr | Multiaddr[];

export interface FragmentProtocolInit {
  limits: P2PLimits;
  /** Decides whether to take a push; default takes every valid push. */
  acceptPush?: PushPolicy;
  /** Decides whether to serve a fetch; default serves every stored fragment to any peer. */
  authorizeFetch?: ServePolicy;
}

export interface FragmentProtocolComponents {
  libp2p: FragmentLibp2p;
  source: FragmentSource;
  sink: FragmentSink;
  banList: PeerBanList;
  log: Logger;
  metrics: P2PMetrics;
}

type Violation = MalformedFrameError | FrameTooLargeError | TruncatedFrameError | CidMismatchError;

/** Errors that mean the remote broke the protocol (as opposed to being slow, busy or gone). */
function isViolation(err: unknown): err is Violation {
  return (
    err instanceof MalformedFrameError ||
    err instanceof FrameTooLargeError ||
    err instanceof TruncatedFrameError ||
    err instanceof CidMismatchError ||
    err instanceof TransferTooSlowError
  );
}

/** A peer that was too slow rather than hostile: cut off, banned for `slowBanMs` only. */
function isSlow(err: unknown): boolean {
  return err instanceof TransferTooSlowError || err instanceof ReadTimeoutError;
}

/** A well-formed non-ok answer: the stream is still in step and may carry another request. */
function isRemoteAnswer(err: unknown): boolean {
  return (
    err instanceof RemoteNotFoundError ||
    err instanceof RemoteRefusedError ||
    err instanceof RemoteTooLargeError ||
    err instanceof RemoteBadRequestError
  );
}

/** libp2p's errors for writing to, or waiting on, a stream that was closed or reset. */
const STREAM_STATE_ERRORS = new Set(["StreamStateError", "StreamResetError", "StreamClosedError", "StreamAbortedError"]);

function errorCode(err: unknown): string {
  if (err instanceof P2PError) return err.code;
  const e = err as { code?: unknown; name?: unknown } | undefined;
  const code = e?.code ?? e?.name;
  return typeof code === "string" ? code : "ERR_UNKNOWN";
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown } | undefined;
  return e?.name === "FragmentNotFoundError" || (typeof e?.code === "string" && e.code.includes("NOT_FOUND"));
}

/** Waits for `value`, but no longer than `signal` allows (the call itself cannot be cancelled). */
async function bounded<T>(value: T | Promise<T>, signal: AbortSignal): Promise<T> {
  if (!(value instanceof Promise)) return value;
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      value,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason);
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}

/**
 * One inbound transfer's slot. It is held until the request has ended and every store or policy
 * call it started has settled: a call abandoned at the request's deadline (a store read, a push
 * policy's chain read) cannot be cancelled, so it keeps its slot until it ends, and abandoned work
 * can never pile up beyond the slot limits.
 */
class TransferSlot {
  private open = 1;
  private abandoned = false;

  constructor(private readonly release: (abandoned: boolean) => void, private readonly onAbandon: () => void) {}

  /** `bounded(value, signal)`, with the slot held until `value` settles. */
  hold<T>(value: T | Promise<T>, signal: AbortSignal): Promise<T> {
    if (value instanceof Promise) {
      this.open++;
      const drop = (): void => this.drop();
      value.then(drop, drop);
    }
    return bounded(value, signal);
  }

  /** The request is over (answered, failed or timed out). */
  end(): void {
    if (this.open > 1 && !this.abandoned) {
      this.abandoned = true;
      this.onAbandon();
    }
    this.drop();
  }

  private drop(): void {
    if (--this.open === 0) this.release(this.abandoned);
  }
}

/** The `/p2p/<id>` a target names, if it names one. */
function targetPeer(target: FragmentTarget | PeerId): string | undefined {
  const addr = Array.isArray(target) ? target[0] : target;
  if (addr === undefined) return undefined;
  if ("getComponents" in addr) return addr.getComponents().find((c) => c.name === "p2p")?.value ?? undefined;
  return addr.toString();
}

/** Serves and requests fragments over `/muri/fragment/1.0.0`. */
export class FragmentProtocol {
  private readonly limits: P2PLimits;
  private readonly acceptPush: PushPolicy | undefined;
  private readonly authorizeFetch: ServePolicy | undefined;
  private readonly components: FragmentProtocolComponents;
  private readonly log: Logger;
  private readonly pool: StreamPool;
  private readonly highWaterMark: number;
  private controller: AbortController | undefined;
  private active = 0;
  /** Slots whose request ended while a store or policy call it started still runs. */
  private abandoned = 0;
  /** Inbound transfers in progress per peer (bounded by `maxTransfersPerPeer`). */
  private readonly activeByPeer = new Map<string, number>();
  /** Requests each peer may still start (`peerRequestsPerSec`, `peerRequestBurst`). */
  private readonly requestBuckets: TokenBuckets;

  constructor(components: FragmentProtocolComponents, init: FragmentProtocolInit) {
    this.components = components;
    this.limits = init.limits;
    this.acceptPush = init.acceptPush;
    this.authorizeFetch = init.authorizeFetch;
    this.log = components.log;
    this.pool = new StreamPool({ maxPerPeer: init.limits.maxIdleStreamsPerPeer, idleMs: init.limits.pooledStreamIdleMs });
    this.highWaterMark = MAX_REQUEST_HEADER_BYTES + init.limits.chunkBytes;
    this.requestBuckets = new TokenBuckets({
      perSec: init.limits.peerRequestsPerSec,
      burst: init.limits.peerRequestBurst,
      maxKeys: init.limits.maxBannedPeers,
    });
  }

  /** Registers the stream handler. */
  async start(): Promise<void> {
    if (this.controller !== undefined) return;
    this.controller = new AbortController();
    await this.components.libp2p.handle(FRAGMENT_PROTOCOL, this.onStream, {
      maxInboundStreams: this.limits.maxInboundStreams,
      maxOutboundStreams: this.limits.maxOutboundStreams,
    });
  }

  /** Unregisters the handler, closes parked streams and aborts requests in flight. */
  async stop(): Promise<void> {
    const controller = this.controller;
    if (controller === undefined) return;
    this.controller = undefined;
    controller.abort(new NodeNotStartedError("stop"));
    this.pool.clear();
    await this.components.libp2p.unhandle(FRAGMENT_PROTOCOL);
  }

  /** Inbound transfer slots in use now (a request in progress, or abandoned work still running). */
  get activeTransfers(): number {
    return this.active;
  }

  /** Slots held only by abandoned work: their request ended, a store or policy call did not. */
  get abandonedTransfers(): number {
    return this.abandoned;
  }

  /** Streams parked for reuse. */
  get idleStreams(): number {
    return this.pool.size;
  }

  // ---------------------------------------------------------------- dialer side

  /** Fetches the fragment `cid` from `target`; the bytes returned are verified against the CID. */
  async fetch(target: FragmentTarget, cid: CID, options: FetchOptions = {}): Promise<Uint8Array> {
    const maxBytes = Math.min(options.maxBytes ?? this.limits.maxFragmentBytes, this.limits.maxFragmentBytes);
    assertVerifiableCid(cid);
    return this.request("fetch", target, cid, options, async ({ stream, reader }, peer, signal) => {
      stream.send(encodeRequestHeader({ op: Op.Fetch, cid, length: maxBytes }));
      const verifier = new CidVerifier(cid);
      const body = await this.readResponse(reader, cid, peer, maxBytes, signal, verifier);
      if (!verifier.matches()) throw new CidMismatchError(cid.toString(), peer);
      this.components.metrics.fetched(body.length);
      return body;
    });
  }

  /** Pushes `bytes` as fragment `cid` to `target`; resolves once the remote has verified and stored it. */
  async push(target: FragmentTarget, cid: CID, bytes: Uint8Array, options: PushOptions = {}): Promise<void> {
    if (bytes.length > this.limits.maxFragmentBytes) {
      throw new InvalidFragmentError(cid.toString(), `${bytes.length} bytes exceed the ${this.limits.maxFragmentBytes}-byte limit`);
    }
    assertVerifiableCid(cid);
    const mismatch = (): InvalidFragmentError => new InvalidFragmentError(cid.toString(), "bytes do not hash to the CID");
    if (bytes.length === 0 && !new CidVerifier(cid).matches()) throw mismatch();
    await this.request("push", target, cid, options, async ({ stream, reader }, peer, signal) => {
      // Bytes that do not match would get this node banned by the receiver: unless the caller
      // vouches for them, hash them on the way out and reset the stream before the last chunk.
      const verifier = options.verified === true ? undefined : new CidVerifier(cid);
      stream.send(encodeRequestHeader({ op: Op.Push, cid, length: bytes.length }));
      const floor = this.floor(bytes.length, "push payload", peer);
      try {
        await writeChunked(stream, bytes, {
          chunkBytes: this.limits.chunkBytes,
          idleTimeoutMs: this.limits.readTimeoutMs,
          signal: AbortSignal.any([signal, floor.signal]),
          phase: "push payload",
          peer,
          inspect: (chunk, last) => {
            verifier?.update(chunk);
            if (last && verifier !== undefined && !verifier.matches()) throw mismatch();
            floor.add(chunk.length);
          },
        });
      } finally {
        floor.stop();
      }
      await this.readResponse(reader, cid, peer, 0, signal);
      this.components.metrics.pushed(bytes.length);
    });
  }

  /**
   * Runs one exchange on a parked or new stream under a deadline, parks the stream again if the
   * exchange left it in step, and maps failures to named errors.
   */
  private async request<T>(
    op: "fetch" | "push",
    target: FragmentTarget,
    cid: CID,
    options: TransferOptions,
    exchange: (entry: PooledStream, peer: string, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const stopSignal = this.controller?.signal;
    if (stopSignal === undefined) throw new NodeNotStartedError(op);
    const timeoutMs = options.timeoutMs ?? this.limits.requestTimeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = AbortSignal.any(options.signal !== undefined ? [stopSignal, deadline, options.signal] : [stopSignal, deadline]);

    for (let attempt = 0; ; attempt++) {
      let entry: PooledStream | undefined;
      let peer = targetPeer(target);
      let reused = false;
      try {
        this.throwIfBanned(peer);
        if (attempt === 0 && peer !== undefined) entry = this.pool.take(peer);
        reused = entry !== undefined;
        if (entry === undefined) {
          const connection = await this.components.libp2p.dial(target, { signal });
          peer = connection.remotePeer.toString();
          this.throwIfBanned(peer);
          const stream = await connection.newStream(FRAGMENT_PROTOCOL, { signal, maxOutboundStreams: this.limits.maxOutboundStreams });
          entry = { stream, reader: new StreamReader(stream, { peer, highWaterMark: this.highWaterMark }), connection };
        }
        const value = await exchange(entry, peer!, signal);
        this.pool.give(peer!, entry);
        return value;
      } catch (err) {
        const mapped = this.mapRequestError(err, op, cid, peer, timeoutMs, options.signal, deadline, stopSignal);
        if (entry !== undefined) {
          if (op === "fetch" && isRemoteAnswer(mapped)) this.pool.give(peer!, entry);
          else {
            entry.reader.detach();
            entry.stream.abort(toError(mapped));
          }
        }
        // A parked stream the remote had already closed: once more on a fresh stream.
        if (reused && attempt === 0 && mapped instanceof StreamClosedError && !signal.aborted) continue;
        if (isViolation(mapped) && entry !== undefined) this.cutOff(entry.connection, mapped);
        this.components.metrics.failed(op, errorCode(mapped));
        throw mapped;
      }
    }
  }

  private mapRequestError(
    err: unknown,
    op: string,
    cid: CID,
    peer: string | undefined,
    timeoutMs: number,
    userSignal: AbortSignal | undefined,
    deadline: AbortSignal,
    stopSignal: AbortSignal,
  ): unknown {
    if (err instanceof P2PError) return err;
    if (userSignal?.aborted === true) return new RequestAbortedError(op, cid.toString(), peer, userSignal.reason);
    if (deadline.aborted) return new RequestTimeoutError(op, cid.toString(), timeoutMs, peer);
    if (stopSignal.aborted) return new NodeNotStartedError(op);
    if (STREAM_STATE_ERRORS.has((err as Error | undefined)?.name ?? "")) return new StreamClosedError(op, peer, err);
    return err;
  }

  private throwIfBanned(peer: string | undefined): void {
    if (peer === undefined) return;
    const ban = this.components.banList.get(peer);
    if (ban !== undefined) throw new PeerBannedError(peer, ban.until, ban.reason);
  }

  /**
   * Reads one response; returns the ok body (empty for a push) or throws the remote's answer as a
   * Remote*Error. An ok body is fed to `verifier` as it arrives.
   */
  private async readResponse(
    reader: StreamReader,
    cid: CID,
    peer: string,
    maxBody: number,
    signal: AbortSignal,
    verifier?: CidVerifier,
  ): Promise<Uint8Array> {
    const { readTimeoutMs } = this.limits;
    let headerBytes: Uint8Array;
    try {
      headerBytes = await reader.readExactly(RESPONSE_HEADER_BYTES, "response header", readTimeoutMs, signal);
    } catch (err) {
      // Closing without answering is rude, not malicious (it is also how an idle stream ends).
      if (err instanceof TruncatedFrameError && err.context.received === 0) throw new StreamClosedError("response header", peer, err);
      throw err;
    }
    let header;
    try {
      header = decodeResponseHeader(headerBytes, maxBody);
    } catch (err) {
      if (err instanceof FrameTooLargeError) throw new FrameTooLargeError(err.context.length, err.context.max, peer);
      if (err instanceof MalformedFrameError) throw new MalformedFrameError(err.context.reason, peer);
      throw err;
    }
    const ok = header.status === Status.Ok;
    const body = ok ? allocUninitialized(header.length) : new Uint8Array(header.length);
    const floor = this.floor(body.length, "response body", peer);
    try {
      await reader.readInto(body, "response body", readTimeoutMs, AbortSignal.any([signal, floor.signal]), (chunk) => {
        if (ok) verifier?.update(chunk);
        floor.add(chunk.length);
      });
    } finally {
      floor.stop();
    }
    if (reader.buffered > 0) throw new MalformedFrameError(`${reader.buffered} bytes after the response`, peer);
    if (ok) return body;
    const context = { cid: cid.toString(), peer, reason: new TextDecoder().decode(body) || statusName(header.status) };
    switch (header.status) {
      case Status.NotFound:
        throw new RemoteNotFoundError(context);
      case Status.Refused:
        throw new RemoteRefusedError(context);
      case Status.TooLarge:
        throw new RemoteTooLargeError(context);
      default:
        throw new RemoteBadRequestError(context);
    }
  }

  // -------------------------------------------------------------- listener side

  private readonly onStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const peer = connection.remotePeer.toString();
    const stopSignal = this.controller?.signal;
    const ban = this.components.banList.get(peer);
    if (stopSignal === undefined || ban !== undefined) {
      const reason = ban !== undefined ? new PeerBannedError(peer, ban.until, ban.reason) : new NodeNotStartedError("serve");
      stream.abort(reason);
      if (ban !== undefined) connection.abort(reason);
      return;
    }
    const reader = new StreamReader(stream, { peer, highWaterMark: this.highWaterMark });
    try {
      // A dialer opens a stream to send a request at once: the first one may take as long as any
      // read (`readTimeoutMs`, a loaded dialer can take longer than a short idle time to write
      // it); between requests the stream is idle and `streamIdleTimeoutMs` applies.
      let wait = Math.max(this.limits.streamIdleTimeoutMs, this.limits.readTimeoutMs);
      for (;;) {
        const next = await reader.waitForMore(wait, stopSignal);
        wait = this.limits.streamIdleTimeoutMs;
        const banned = this.components.banList.get(peer);
        if (banned !== undefined) {
          // Banned meanwhile (a violation on another stream of this peer).
          stream.abort(new PeerBannedError(peer, banned.until, banned.reason));
          return;
        }
        if (next !== "data") {
          // The dialer is done with the stream (or let it idle too long): close our side too.
          retire({ stream, reader, connection });
          return;
        }
        // A flood is refused before it costs a slot or a store lookup; "busy" tells an honest
        // client to ask again shortly.
        if (!this.requestBuckets.take(peer)) {
          await this.answerAndClose(stream, encodeErrorResponse(Status.Refused, "busy: rate limit"), true);
          return;
        }
        const mine = this.activeByPeer.get(peer) ?? 0;
        if (this.active >= this.limits.maxConcurrentTransfers || mine >= this.limits.maxTransfersPerPeer) {
          await this.answerAndClose(stream, encodeErrorResponse(Status.Refused, mine >= this.limits.maxTransfersPerPeer ? "busy: too many transfers from this peer" : "busy"), true);
          return;
        }
        const slot = this.openSlot(peer);
        let keepOpen: boolean;
        try {
          keepOpen = await this.serveRequest(stream, reader, connection.remotePeer, stopSignal, slot);
        } finally {
          slot.end();
        }
        if (!keepOpen) return;
      }
    } catch (err) {
      if (isViolation(err)) {
        const status = err instanceof FrameTooLargeError ? Status.TooLarge : Status.BadRequest;
        // A slow peer gets no answer: it is not reading, and the reset frees its slot at once.
        if (isSlow(err)) stream.abort(err);
        else await this.answerAndClose(stream, encodeErrorResponse(status, err.message), false);
        this.cutOff(connection, err);
      } else if (err instanceof ReadTimeoutError) {
        // A stall mid-request holds a slot as dribbling does: the same short ban.
        stream.abort(err);
        this.cutOff(connection, err);
      } else {
        this.log("fragment stream from %s failed: %s", peer, (err as Error | undefined)?.message);
        stream.abort(toError(err));
      }
    } finally {
      reader.detach();
    }
  };

  /** Takes an inbound transfer slot for `peer` (the caller has checked the limits). */
  private openSlot(peer: string): TransferSlot {
    this.active++;
    this.activeByPeer.set(peer, (this.activeByPeer.get(peer) ?? 0) + 1);
    return new TransferSlot(
      (abandoned) => {
        this.active--;
        if (abandoned) this.abandoned--;
        const left = (this.activeByPeer.get(peer) ?? 1) - 1;
        if (left > 0) this.activeByPeer.set(peer, left);
        else this.activeByPeer.delete(peer);
      },
      () => {
        this.abandoned++;
      },
    );
  }

  /** A rate floor for a payload of `total` bytes (see RateFloor). */
  private floor(total: number, phase: string, peer: string): RateFloor {
    return new RateFloor(this.limits.minTransferBytesPerSec, this.limits.transferGraceMs, total, phase, peer);
  }

  /** Handles one request; resolves false when the stream cannot carry another one. */
  private async serveRequest(stream: Stream, reader: StreamReader, remotePeer: PeerId, stopSignal: AbortSignal, slot: TransferSlot): Promise<boolean> {
    const peer = remotePeer.toString();
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(this.limits.requestTimeoutMs)]);
    let op: "serve" | "receive" = "serve";
    try {
      const header = await this.readRequestHeader(reader, peer, signal);
      if (header.op === Op.Fetch) {
        await this.serveFetch(stream, header, remotePeer, signal, slot);
        return true;
      }
      op = "receive";
      return await this.receivePush(stream, reader, header, remotePeer, signal, slot);
    } catch (err) {
      this.components.metrics.failed(op, errorCode(err));
      throw err;
    }
  }

  private async readRequestHeader(reader: StreamReader, peer: string, signal: AbortSignal): Promise<RequestHeader> {
    const { readTimeoutMs, maxFragmentBytes } = this.limits;
    const header = new Uint8Array(MAX_REQUEST_HEADER_BYTES);
    await reader.readInto(header.subarray(0, 2), "request header", readTimeoutMs, signal);
    let total: number;
    try {
      total = requestHeaderLength(header[0], header[1]);
    } catch (err) {
      if (err instanceof MalformedFrameError) throw new MalformedFrameError(err.context.reason, peer);
      throw err;
    }
    await reader.readInto(header.subarray(2, total), "request header", readTimeoutMs, signal);
    try {
      return decodeRequestHeader(header.subarray(0, total), maxFragmentBytes);
    } catch (err) {
      if (err instanceof FrameTooLargeError) throw new FrameTooLargeError(err.context.length, err.context.max, peer);
      if (err instanceof MalformedFrameError) throw new MalformedFrameError(err.context.reason, peer);
      throw err;
    }
  }

  private async serveFetch(stream: Stream, header: RequestHeader, remotePeer: PeerId, signal: AbortSignal, slot: TransferSlot): Promise<void> {
    const { readTimeoutMs, chunkBytes, maxFragmentBytes } = this.limits;
    const peer = remotePeer.toString();
    let bytes: Uint8Array | undefined;
    try {
      if (this.authorizeFetch !== undefined) {
        const denied = await slot.hold(this.authorizeFetch({ peer: remotePeer, cid: header.cid }), signal);
        if (denied !== undefined) {
          this.components.metrics.failed("serve", "ERR_ACCESS_DENIED");
          stream.send(encodeErrorResponse(Status.Refused, `access denied: ${denied}`));
          return;
        }
      }
      const { source } = this.components;
      if (await slot.hold(source.has(header.cid), signal)) bytes = await slot.hold(source.get(header.cid), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      if (!isNotFound(err)) {
        this.log.error("reading %s for %s failed: %s", header.cid, peer, (err as Error | undefined)?.message);
        stream.send(encodeErrorResponse(Status.Refused, "fragment unavailable"));
        return;
      }
    }
    if (bytes === undefined) {
      stream.send(encodeErrorResponse(Status.NotFound, "not found"));
      return;
    }
    const limit = Math.min(header.length, maxFragmentBytes);
    if (bytes.length > limit) {
      stream.send(encodeErrorResponse(Status.TooLarge, `fragment is ${bytes.length} bytes, limit ${limit}`));
      return;
    }
    stream.send(encodeResponseHeader(Status.Ok, bytes.length));
    const floor = this.floor(bytes.length, "fetch payload", peer);
    try {
      await writeChunked(stream, bytes, {
        chunkBytes,
        idleTimeoutMs: readTimeoutMs,
        signal: AbortSignal.any([signal, floor.signal]),
        phase: "fetch payload",
        peer,
        inspect: (chunk) => floor.add(chunk.length),
      });
    } finally {
      floor.stop();
    }
    this.components.metrics.served(bytes.length);
  }

  private async receivePush(
    stream: Stream,
    reader: StreamReader,
    header: RequestHeader,
    remotePeer: PeerId,
    signal: AbortSignal,
    slot: TransferSlot,
  ): Promise<boolean> {
    const { readTimeoutMs } = this.limits;
    const peer = remotePeer.toString();
    const push = { peer: remotePeer, cid: header.cid, length: header.length };
    const verdict = this.acceptPush === undefined ? true : await slot.hold(this.acceptPush(push), signal);
    if (verdict !== true) {
      // Not a violation: answer and reset, so the payload in flight is dropped rather than read.
      const reason = typeof verdict === "string" ? verdict : "push not accepted";
      await this.answerAndClose(stream, encodeErrorResponse(Status.Refused, reason), true);
      return false;
    }
    const bytes = allocUninitialized(header.length);
    const verifier = new CidVerifier(header.cid);
    const floor = this.floor(bytes.length, "push payload", peer);
    try {
      await reader.readInto(bytes, "push payload", readTimeoutMs, AbortSignal.any([signal, floor.signal]), (chunk) => {
        verifier.update(chunk);
        floor.add(chunk.length);
      });
    } finally {
      floor.stop();
    }
    if (!verifier.matches()) throw new CidMismatchError(header.cid.toString(), peer);
    try {
      await slot.hold(this.components.sink.put(header.cid, bytes, remotePeer), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      const message = (err as Error | undefined)?.message ?? "error";
      this.log("storing pushed %s from %s failed: %s", header.cid, peer, message);
      stream.send(encodeErrorResponse(Status.Refused, `not stored: ${message}`));
      return true;
    }
    stream.send(encodeResponseHeader(Status.Ok, 0));
    this.components.metrics.received(bytes.length);
    return true;
  }

  /** Best-effort answer: send, half-close within CLOSE_TIMEOUT_MS, and optionally reset. */
  private async answerAndClose(stream: Stream, answer: Uint8Array, reset: boolean): Promise<void> {
    try {
      stream.send(answer);
      await stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) });
    } catch {
      // the remote may already be gone; the answer is a courtesy
    }
    if (reset) stream.abort(new Error("request refused"));
  }

  /** Closes the connection (resetting its streams) and bans the peer (briefly, if it was only slow). */
  private cutOff(connection: Connection, err: P2PError): void {
    const peer = connection.remotePeer.toString();
    this.components.metrics.violation(err.code);
    const ms = isSlow(err) ? this.limits.slowBanMs : this.limits.banMs;
    const ban = this.components.banList.ban(connection.remotePeer, err.code, ms);
    const until = ban !== undefined ? ` (banned until ${new Date(ban.until).toISOString()})` : "";
    this.log.error("cutting off %s: %s%s", peer, err.message, until);
    connection.abort(err);
  }
}
