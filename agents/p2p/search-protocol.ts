/**
 * `/muri/search/3.0.0`: JSON requests, and JSON or binary answers, for searches and small lookups
 * that are not fragment transfers (the roles layer defines the messages, see
 * roles/shared/vector-service.ts), carried by **sessions**: one long-lived stream per pair of
 * peers, many requests in flight on it.
 *
 * Frames, both ways: `id u32 | flag‖length u32 (big-endian) | body`: the top bit of the second
 * word set means the body is binary (a handler's `Uint8Array` answer, given to the dialer as a
 * `Uint8Array`), clear means UTF-8 JSON; the other 31 bits are the body's length. Requests are JSON
 * only: a binary request frame is answered `{ ok: false, error }` and the session goes on.
 * (2.0.0 had JSON bodies only; a search answer carried its hits as decimal strings and its proofs
 * as base64. It is no longer served.) The dialer numbers its
 * requests; the listener handles the requests of a stream concurrently and answers each with the
 * request's id, in the order they finish. A dialer that sends one frame and closes its writable end
 * (a one-shot request) is answered the same way; the listener closes a stream once the dialer has
 * closed its side and every answer is written, or after `sessionIdleMs` without a request.
 *
 * Why sessions: a stream per request costs a protocol negotiation and two closes, about 1 ms of CPU
 * per request on the machines this runs on, more than a small search itself; a search asks several
 * members at once and a client asks many times.
 *
 * Limits: requests up to `maxRequestBytes` (default 256 KiB), answers up to `maxResponseBytes`
 * (default 8 MiB); at most `maxConcurrent` requests handled at once by a listener over all streams
 * (more are answered "busy") and as many read from one stream before it is paused. A frame over
 * the limit or a body that is not JSON is a protocol violation (the stream is reset); every wait
 * for the next bytes of a frame is bounded by `readTimeoutMs` and each request by `timeoutMs`.
 *
 * The dialer (`searchRequest`) keeps one session per peer and per libp2p node, opened on first use
 * (the answer size bound and idle time of the request that opened it hold for the session); a
 * session whose stream closes fails the requests still waiting on it, and a request whose session
 * closed before answering it is sent once more on a new one.
 */
import type { Connection, Libp2p, PeerId, Stream } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import { CLOSE_TIMEOUT_MS } from "./constants.js";
import { FrameTooLargeError, MalformedFrameError, RequestTimeoutError, StreamClosedError, TruncatedFrameError } from "./errors.js";
import { StreamReader, waitForDrain, writeChunked } from "./stream-io.js";

/** Protocol id. */
export const SEARCH_PROTOCOL = "/muri/search/3.0.0";

/** Limits and timeouts of the search protocol. */
export interface SearchProtocolLimits {
  maxRequestBytes: number;
  maxResponseBytes: number;
  /** Longest wait for the rest of a frame once it began. */
  readTimeoutMs: number;
  /** Longest a request may take (dialer) or a handler may run (listener). */
  timeoutMs: number;
  /** Requests handled at once; more are answered with an error. */
  maxConcurrent: number;
  /** A session stream without a request for this long is closed (both sides). */
  sessionIdleMs: number;
}

export const SEARCH_LIMITS: SearchProtocolLimits = {
  maxRequestBytes: 256 * 1024,
  maxResponseBytes: 8 * 1024 * 1024,
  readTimeoutMs: 10_000,
  timeoutMs: 30_000,
  maxConcurrent: 16,
  sessionIdleMs: 60_000,
};

/**
 * Answers one request; a throw becomes `{ ok: false, error: message }` (with the error's `code` when
 * it has one). A `Uint8Array` answer is sent as a binary frame, anything else as JSON.
 */
export type SearchRequestHandler = (request: unknown, peer: string, signal: AbortSignal) => Promise<unknown>;

const HEADER_BYTES = 8;
/** Top bit of the length word: the body is binary, not JSON. */
const BINARY_FLAG = 0x8000_0000;

function encodeFrame(id: number, value: unknown, body?: Buffer): Uint8Array {
  const binary = body === undefined && value instanceof Uint8Array;
  const bytes = body ?? (binary ? Buffer.from((value as Uint8Array).buffer, (value as Uint8Array).byteOffset, (value as Uint8Array).byteLength) : Buffer.from(JSON.stringify(value), "utf8"));
  const out = Buffer.allocUnsafe(HEADER_BYTES + bytes.length);
  out.writeUInt32BE(id, 0);
  out.writeUInt32BE((binary ? BINARY_FLAG : 0) + bytes.length, 4);
  bytes.copy(out, HEADER_BYTES);
  return out;
}

/** A frame's id and body: parsed JSON, or the bytes of a binary body (`binary`). */
async function readFrame(reader: StreamReader, max: number, phase: string, timeoutMs: number, signal: AbortSignal, peer: string): Promise<{ id: number; body: unknown; binary: boolean }> {
  const head = Buffer.from(await reader.readExactly(HEADER_BYTES, phase, timeoutMs, signal));
  const id = head.readUInt32BE(0);
  const word = head.readUInt32BE(4);
  const binary = (word & BINARY_FLAG) !== 0;
  const length = word & ~BINARY_FLAG;
  if (length > max) throw new FrameTooLargeError(length, max, peer);
  const body = await reader.readExactly(length, phase, timeoutMs, signal);
  if (binary) return { id, body: Buffer.from(body), binary };
  try {
    return { id, body: JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8")), binary };
  } catch {
    throw new MalformedFrameError(`${phase} is not JSON`, peer);
  }
}

async function closeQuietly(stream: Stream): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) });
  } catch {
    // the remote may be gone already
  }
}

// ------------------------------------------------------------------------------- listener

/** The listener side: registers `handler` on `libp2p`; returns the unregister function. */
export async function handleSearchProtocol(
  libp2p: Pick<Libp2p, "handle" | "unhandle">,
  handler: SearchRequestHandler,
  limits: Partial<SearchProtocolLimits> = {},
): Promise<() => Promise<void>> {
  const l = { ...SEARCH_LIMITS, ...limits };
  const controller = new AbortController();
  let active = 0;

  const answer = async (request: unknown, peer: string): Promise<unknown> => {
    if (active >= l.maxConcurrent) return { ok: false, error: "busy: too many searches in progress, retry later" };
    active++;
    try {
      return await handler(request, peer, AbortSignal.any([controller.signal, AbortSignal.timeout(l.timeoutMs)]));
    } catch (err) {
      const code = (err as { code?: unknown } | undefined)?.code;
      return { ok: false, error: (err as Error | undefined)?.message ?? String(err), ...(typeof code === "string" ? { code } : {}) };
    } finally {
      active--;
    }
  };

  const onStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const peer = connection.remotePeer.toString();
    const reader = new StreamReader(stream, { peer, highWaterMark: l.maxRequestBytes + HEADER_BYTES });
    const inFlight = new Set<Promise<void>>();
    // Answers are written whole and one at a time: frames of concurrent answers never interleave.
    let writes: Promise<void> = Promise.resolve();
    const write = (frame: Uint8Array): Promise<void> =>
      (writes = writes.then(() => writeChunked(stream, frame, { chunkBytes: 64 * 1024, idleTimeoutMs: l.readTimeoutMs, signal: controller.signal, phase: "search answer", peer })));
    try {
      for (;;) {
        // The dialer closes an idle session first; this side only outlives a dialer that vanished.
        const next = await reader.waitForMore(2 * l.sessionIdleMs, controller.signal);
        if (next !== "data") break; // the dialer closed its side, or went quiet
        const { id, body, binary } = await readFrame(reader, l.maxRequestBytes, "search request", l.readTimeoutMs, controller.signal, peer);
        const task = (async () => {
          const reply = binary
            ? { ok: false, error: `request ${id} is a binary frame of ${(body as Uint8Array).length} bytes: requests on ${SEARCH_PROTOCOL} are JSON (binary frames are answers only)` }
            : await answer(body, peer);
          let frame = encodeFrame(id, reply);
          if (frame.length - HEADER_BYTES > l.maxResponseBytes) frame = encodeFrame(id, { ok: false, error: `answer of ${frame.length} bytes exceeds the ${l.maxResponseBytes}-byte limit` });
          await write(frame);
        })();
        inFlight.add(task);
        void task.then(
          () => inFlight.delete(task),
          (err: unknown) => {
            inFlight.delete(task);
            stream.abort(err instanceof Error ? err : new Error(String(err)));
          },
        );
        // At most maxConcurrent requests of one stream at a time: the next is read once one is answered.
        while (inFlight.size >= l.maxConcurrent) await Promise.race(inFlight);
      }
      await Promise.allSettled(inFlight);
      await writes;
      await closeQuietly(stream);
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    } finally {
      reader.detach();
    }
  };
  await libp2p.handle(SEARCH_PROTOCOL, onStream, { maxInboundStreams: l.maxConcurrent * 2 });
  return async () => {
    controller.abort();
    await libp2p.unhandle(SEARCH_PROTOCOL);
  };
}

// --------------------------------------------------------------------------------- dialer

interface Waiting {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** One session stream to one peer (see the module comment). */
class SearchSession {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly stream: Stream,
    private readonly reader: StreamReader,
    private readonly peer: string,
    private readonly limits: SearchProtocolLimits,
    private readonly onClose: (session: SearchSession) => void,
  ) {
    void this.readLoop();
    this.touch();
  }

  get isOpen(): boolean {
    return !this.closed && this.stream.status === "open";
  }

  /** Sends the JSON `body` and waits for its answer (parsed JSON, or a binary answer's bytes); rejects with the signal's reason when it aborts. */
  request(body: Buffer, signal: AbortSignal): Promise<unknown> {
    if (!this.isOpen) return Promise.reject(new StreamClosedError("search request", this.peer, new Error("session closed")));
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffff_ffff ? 1 : this.nextId + 1;
    const frame = encodeFrame(id, undefined, body);
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiting.delete(id);
        reject(signal.reason);
        this.touch();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.set(id, {
        resolve: (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        reject: (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      });
      this.touch();
      // Each frame goes out in one send, after the previous one drained: frames never interleave.
      this.writes = this.writes
        .then(async () => {
          if (!this.isOpen) throw new StreamClosedError("search request", this.peer, new Error("session closed"));
          if (!this.stream.send(frame)) await waitForDrain(this.stream, this.limits.readTimeoutMs, signal, "search request", this.peer);
        })
        .catch((err: unknown) => {
          const waiting = this.waiting.get(id);
          this.waiting.delete(id);
          waiting?.reject(err);
        });
    });
  }

  /** Closes the session; requests still waiting fail with `err`. */
  close(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.reader.detach();
    if (err !== undefined) this.stream.abort(err);
    else void closeQuietly(this.stream);
    const reason = new StreamClosedError("search answer", this.peer, err);
    for (const w of this.waiting.values()) w.reject(reason);
    this.waiting.clear();
    this.onClose(this);
  }

  /** Restarts the idle timer while nothing is waiting. */
  private touch(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.closed || this.waiting.size > 0) return;
    this.idleTimer = setTimeout(() => this.close(), this.limits.sessionIdleMs);
    // A browser's timers are numbers (the light client dials with this code too).
    (this.idleTimer as { unref?: () => void }).unref?.();
  }

  private async readLoop(): Promise<void> {
    const signal = new AbortController().signal;
    try {
      for (;;) {
        const next = await this.reader.waitForMore(this.limits.sessionIdleMs, signal);
        if (this.closed) return;
        if (next === "end") throw new TruncatedFrameError("search answer", HEADER_BYTES, 0, this.peer);
        if (next === "idle") continue; // the idle timer decides; a waiting request has its own deadline
        const { id, body } = await readFrame(this.reader, this.limits.maxResponseBytes, "search answer", this.limits.readTimeoutMs, signal, this.peer);
        const waiting = this.waiting.get(id);
        if (waiting === undefined) {
          // An answer to a request given up on (timed out, aborted) is dropped; one never asked is a violation.
          if (id === 0 || id >= this.nextId) throw new MalformedFrameError(`answer to request ${id}, which was never sent`, this.peer);
          continue;
        }
        this.waiting.delete(id);
        waiting.resolve(body);
        this.touch();
      }
    } catch (err) {
      if (!this.closed) this.close(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/** The sessions of each libp2p node, by remote peer id. */
const sessionsByNode = new WeakMap<object, Map<string, Promise<SearchSession>>>();

function peerOf(target: PeerId | Multiaddr | Multiaddr[]): string | undefined {
  const first = Array.isArray(target) ? target[0] : target;
  if (first === undefined) return undefined;
  if ("getComponents" in first) return first.getComponents().find((c) => c.name === "p2p")?.value;
  return first.toString();
}

async function openSession(
  libp2p: Pick<Libp2p, "dialProtocol">,
  target: PeerId | Multiaddr | Multiaddr[],
  peer: string,
  limits: SearchProtocolLimits,
  signal: AbortSignal,
  onClose: (session: SearchSession) => void,
): Promise<SearchSession> {
  const stream = await libp2p.dialProtocol(target, SEARCH_PROTOCOL, { signal });
  const reader = new StreamReader(stream, { peer, highWaterMark: limits.maxResponseBytes + HEADER_BYTES });
  return new SearchSession(stream, reader, peer, limits, onClose);
}

/**
 * The dialer side: sends `request` (JSON) to `target` on this node's session with it and returns
 * the answer: parsed JSON, or a `Uint8Array` when the listener answered with a binary frame.
 */
export async function searchRequest(
  libp2p: Pick<Libp2p, "dialProtocol">,
  target: PeerId | Multiaddr | Multiaddr[],
  request: unknown,
  options: { signal?: AbortSignal; limits?: Partial<SearchProtocolLimits>; what?: string } = {},
): Promise<unknown> {
  const l = { ...SEARCH_LIMITS, ...options.limits };
  const deadline = AbortSignal.timeout(l.timeoutMs);
  const signal = options.signal !== undefined ? AbortSignal.any([options.signal, deadline]) : deadline;
  const what = options.what ?? "search";
  const body = Buffer.from(JSON.stringify(request), "utf8");
  if (body.length > l.maxRequestBytes) throw new FrameTooLargeError(body.length, l.maxRequestBytes);
  const peer = peerOf(target) ?? String(target);

  let sessions = sessionsByNode.get(libp2p);
  if (sessions === undefined) sessionsByNode.set(libp2p, (sessions = new Map()));
  const table = sessions;
  const session = (fresh: boolean): Promise<SearchSession> => {
    const known = table.get(peer);
    if (known !== undefined && !fresh) return known;
    const opening = openSession(libp2p, target, peer, l, signal, () => {
      if (table.get(peer) === opening) table.delete(peer);
    });
    table.set(peer, opening);
    opening.catch(() => {
      if (table.get(peer) === opening) table.delete(peer);
    });
    return opening;
  };

  try {
    for (let attempt = 0; ; attempt++) {
      const s = await session(attempt > 0);
      try {
        return await s.request(body, signal);
      } catch (err) {
        // A session that was closed before it could answer (the connection died meanwhile): once more on a new one.
        if (attempt === 0 && err instanceof StreamClosedError && !signal.aborted) continue;
        throw err;
      }
    }
  } catch (err) {
    if (deadline.aborted && !(options.signal?.aborted ?? false)) throw new RequestTimeoutError(what, String(target), l.timeoutMs);
    if (err instanceof TruncatedFrameError) throw new StreamClosedError("search answer", String(target), err);
    throw err;
  }
}
