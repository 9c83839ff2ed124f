/**
 * `/muri/search/1.0.0`: one JSON request and one JSON answer per stream, for searches and small
 * lookups that are not fragment transfers (the roles layer defines the messages, see
 * roles/search-service.ts). Frames are `length u32 (big-endian) | UTF-8 JSON`; the dialer sends one
 * request frame and closes its writable end, the listener answers one frame and closes.
 *
 * Limits: requests up to `maxRequestBytes` (default 256 KiB), answers up to `maxResponseBytes`
 * (default 8 MiB); a frame over the limit, a frame that is not JSON, or bytes after the frame are a
 * protocol violation (the stream is reset); every wait is bounded by `readTimeoutMs` and the
 * whole exchange by `timeoutMs`.
 */
import type { Connection, Libp2p, Stream } from "@libp2p/interface";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { PeerId } from "@libp2p/interface";
import { CLOSE_TIMEOUT_MS } from "./constants.js";
import { FrameTooLargeError, MalformedFrameError, RequestTimeoutError, StreamClosedError, TruncatedFrameError } from "./errors.js";
import { StreamReader, writeChunked } from "./stream-io.js";

/** Protocol id. */
export const SEARCH_PROTOCOL = "/muri/search/1.0.0";

/** Limits and timeouts of the search protocol. */
export interface SearchProtocolLimits {
  maxRequestBytes: number;
  maxResponseBytes: number;
  /** Longest wait for the next bytes. */
  readTimeoutMs: number;
  /** Longest a whole exchange may take (dialer) or a handler may run (listener). */
  timeoutMs: number;
  /** Requests handled at once; more are answered with an error. */
  maxConcurrent: number;
}

export const SEARCH_LIMITS: SearchProtocolLimits = {
  maxRequestBytes: 256 * 1024,
  maxResponseBytes: 8 * 1024 * 1024,
  readTimeoutMs: 10_000,
  timeoutMs: 30_000,
  maxConcurrent: 16,
};

/** Answers one request; a throw becomes `{ ok: false, error: message }` (with the error's `code` when it has one). */
export type SearchRequestHandler = (request: unknown, peer: string, signal: AbortSignal) => Promise<unknown>;

const LENGTH_BYTES = 4;

function encodeFrame(value: unknown): Uint8Array {
  const body = Buffer.from(JSON.stringify(value), "utf8");
  const out = Buffer.allocUnsafe(LENGTH_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, LENGTH_BYTES);
  return out;
}

async function readFrame(reader: StreamReader, max: number, phase: string, timeoutMs: number, signal: AbortSignal, peer: string): Promise<unknown> {
  const head = await reader.readExactly(LENGTH_BYTES, phase, timeoutMs, signal);
  const length = Buffer.from(head.buffer, head.byteOffset, LENGTH_BYTES).readUInt32BE(0);
  if (length > max) throw new FrameTooLargeError(length, max, peer);
  const body = await reader.readExactly(length, phase, timeoutMs, signal);
  if (reader.buffered > 0) throw new MalformedFrameError(`${reader.buffered} bytes after the ${phase}`, peer);
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
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

/** The listener side: registers `handler` on `libp2p`; returns the unregister function. */
export async function handleSearchProtocol(
  libp2p: Pick<Libp2p, "handle" | "unhandle">,
  handler: SearchRequestHandler,
  limits: Partial<SearchProtocolLimits> = {},
): Promise<() => Promise<void>> {
  const l = { ...SEARCH_LIMITS, ...limits };
  const controller = new AbortController();
  let active = 0;
  const onStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const peer = connection.remotePeer.toString();
    const reader = new StreamReader(stream, { peer, highWaterMark: l.maxRequestBytes + LENGTH_BYTES });
    const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(l.timeoutMs)]);
    try {
      const request = await readFrame(reader, l.maxRequestBytes, "search request", l.readTimeoutMs, signal, peer);
      let answer: unknown;
      if (active >= l.maxConcurrent) {
        answer = { ok: false, error: "busy: too many searches in progress, retry later" };
      } else {
        active++;
        try {
          answer = await handler(request, peer, signal);
        } catch (err) {
          const code = (err as { code?: unknown } | undefined)?.code;
          answer = { ok: false, error: (err as Error | undefined)?.message ?? String(err), ...(typeof code === "string" ? { code } : {}) };
        } finally {
          active--;
        }
      }
      let frame = encodeFrame(answer);
      if (frame.length - LENGTH_BYTES > l.maxResponseBytes) frame = encodeFrame({ ok: false, error: `answer of ${frame.length} bytes exceeds the ${l.maxResponseBytes}-byte limit` });
      await writeChunked(stream, frame, { chunkBytes: 64 * 1024, idleTimeoutMs: l.readTimeoutMs, signal, phase: "search answer", peer });
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

/** The dialer side: sends `request` to `target` and returns the parsed answer. */
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
  const frame = encodeFrame(request);
  if (frame.length - LENGTH_BYTES > l.maxRequestBytes) throw new FrameTooLargeError(frame.length - LENGTH_BYTES, l.maxRequestBytes);
  let stream: Stream | undefined;
  let reader: StreamReader | undefined;
  try {
    stream = await libp2p.dialProtocol(target, SEARCH_PROTOCOL, { signal });
    const peer = String((target as { toString(): string }).toString());
    reader = new StreamReader(stream, { peer, highWaterMark: l.maxResponseBytes + LENGTH_BYTES });
    stream.send(frame);
    await stream.close({ signal });
    return await readFrame(reader, l.maxResponseBytes, "search answer", l.readTimeoutMs, signal, peer);
  } catch (err) {
    stream?.abort(err instanceof Error ? err : new Error(String(err)));
    if (deadline.aborted && !(options.signal?.aborted ?? false)) throw new RequestTimeoutError(what, String(target), l.timeoutMs);
    if (err instanceof TruncatedFrameError) throw new StreamClosedError("search answer", String(target), err);
    throw err;
  } finally {
    reader?.detach();
  }
}
