/**
 * The client's HTTP API (`muri serve`, issue 18): a local daemon that holds the client's keys and
 * record and lets any language store and read files over HTTP. Described by the OpenAPI 3.1
 * document it serves at `/v1/api` ({@link openApiDocument}).
 *
 * - `PUT /v1/blobs` stores the body as `muri put` stores a file (a new Magu with the CLI's defaults,
 *   or `?magu=ID` to append); answers what `muri put --json` prints, 201. With a Content-Length the
 *   body is encoded as it arrives (client.ts `PutStream`: memory bounded by the client's staging
 *   budget) while its new Magu is created and formed; a body cut short stores nothing, and its
 *   Magu, once formed, is kept as a spare that the next put of the same shape fills
 *   (client-record.ts `SpareMagu`); `?form=complete` creates the Magu only once the whole body is
 *   in. A chunked body (no length, so no Magu size) is spooled to a file first.
 * - Bounded: a body over `maxBodyBytes` is a 413 (from its Content-Length before a byte is read),
 *   and a body written to disk (spooled, or a directory's tar unpacked) a 507 once it would leave
 *   less than `diskReserveBytes` free; the connection closes after such an answer. A streamed
 *   put's shards beyond the staging budget go to the client's staging store under the same reserve
 *   (`muri serve` gives it to the client: ClientInit.stagingDiskReserveBytes), also a 507.
 * - `GET /v1/blobs/{cid}` streams the file back with Content-Length; `Range: bytes=...` (one range)
 *   answers 206; `HEAD` answers the length from the manifest alone (no shard fetched). A range of
 *   a file not fetched yet fetches only the fragments holding it (`decodeRange`); a whole file is
 *   streamed as it is decoded and written to the client directory's HTTP cache at the same time,
 *   from which later reads, ranges too, are served. The cache is bounded (`cacheBytes`,
 *   read-cache.ts): least recently read files go first, and a file larger than it is streamed
 *   without a copy.
 * - `GET /v1/blobs/{cid}/status`: the Magu, its members (reachable or not) and every stripe's
 *   shards on reachable members against the k it needs.
 * - Vector Magus under `/v1/magus` (http-vectors.ts): create, add, search, delete, on-chain tasks.
 * - Long work made visible: `Prefer: respond-async` on a put, an add, a delete or a creation answers
 *   202 with `Location: /v1/operations/{id}` once the body is received (a refusal before that, e.g.
 *   413 for a Magu too small, is answered as a problem); `GET /v1/operations/{id}`
 *   reports its state, progress and result or problem (operations.ts; the last
 *   {@link DEFAULT_MAX_OPERATIONS} are kept).
 * - Errors are `application/problem+json` (RFC 9457, http-common.ts): `type`, `title`, `status`,
 *   `detail`, and `field` when a parameter is at fault. No stack trace, nothing half-written (a
 *   cancelled upload stores nothing; a spooled one's file is removed).
 * - Safe by default: the CLI listens on 127.0.0.1 only; with a token (required to listen anywhere
 *   else) every request needs `Authorization: Bearer TOKEN`, compared in constant time, except
 *   reads when `publicReads` is set. CORS headers only for the configured origin.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CID } from "multiformats/cid";
import { CLIENT_DEFAULTS, type PutOptions, type PutResult, type PutSource, type StorageClient } from "./client.js";
import { asProblem, boundedBody, DEFAULT_MAX_BODY_BYTES, intParam, Problem, problemBody, sendJson, sendProblem } from "./http-common.js";
import { vectorRoutes, type Respond } from "./http-vectors.js";
import { accepted, preferParam, vectorPaths, vectorSchemas } from "./http-openapi.js";
import type { MaguChain } from "./magu-create.js";
import { Operations } from "./operations.js";
import { ReadCache, type CachedFile } from "./read-cache.js";
import { listingJson, subtree } from "./folder.js";
import { extractTar, TarError } from "./http-tar.js";
import type { TransferProgress } from "./progress.js";
import type { VectorClient } from "./vector-client.js";

export { boundedBody, DEFAULT_DISK_RESERVE_BYTES, DEFAULT_MAX_BODY_BYTES, Problem } from "./http-common.js";

/** Where and how the API listens. */
export interface HttpApiOptions {
  host: string;
  port: number;
  /** Required on every request when set (always set when `host` is not a loopback address). */
  token?: string;
  /** Serve GET/HEAD of blobs without the token. */
  publicReads?: boolean;
  /** The one origin browsers may call from (CORS); none when unset. */
  corsOrigin?: string;
  /** The client directory: uploads and the read cache live under `<dir>/http`. */
  dir: string;
  /** Operations kept for GET /v1/operations/{id} (default {@link DEFAULT_MAX_OPERATIONS}). */
  maxOperations?: number;
  /** Largest body a put or a directory put takes (default {@link DEFAULT_MAX_BODY_BYTES}): 413 beyond. */
  maxBodyBytes?: number;
  /**
   * Free space a body written to disk (a chunked put spooled, a directory unpacked) leaves on the
   * client directory's file system at least (default {@link DEFAULT_DISK_RESERVE_BYTES}): 507 and
   * nothing kept when it would take more.
   */
  diskReserveBytes?: number;
  /** Bytes the read cache keeps at most (default {@link DEFAULT_CACHE_BYTES}; 0 keeps nothing). */
  cacheBytes?: number;
}

/** The read cache's default bound: files up to it are kept for later reads, larger ones only streamed. */
export const DEFAULT_CACHE_BYTES = 512 * 1024 * 1024;

/** What the vector routes use besides the storage client. */
export interface HttpApiComponents {
  /** The vector client of the same key (the /v1/magus routes answer 503 without it). */
  vectors?: VectorClient;
  /** The signer's chain with its transaction helpers (POST /v1/magus). */
  magus?: MaguChain;
}

/** Operations kept by default: a new one drops the oldest finished one. */
export const DEFAULT_MAX_OPERATIONS = 256;
/** Whether the request asks for an operation instead of waiting (RFC 7240 `Prefer: respond-async`). */
export function prefersAsync(header: string | string[] | undefined): boolean {
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  return values.some((v) => v.split(",").some((p) => p.split(";")[0]!.trim().toLowerCase() === "respond-async"));
}

export interface HttpApi {
  readonly url: string;
  close(): Promise<void>;
}

/** A `cid` path segment, or a 400 naming it. */
function parseCid(value: string): CID {
  try {
    return CID.parse(decodeURIComponent(value));
  } catch {
    throw new Problem(400, "ERR_BAD_CID", `"${value}" is not a CID: pass the manifest CID PUT /v1/blobs answered (manifestCid)`, "cid");
  }
}

/** The one byte range of a `Range` header within `size` bytes; undefined for none; 416 when unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === "" && m[2] === "")) throw new Problem(416, "ERR_BAD_RANGE", `Range "${header}" is not one byte range (bytes=START-END, bytes=START- or bytes=-SUFFIX)`, "Range");
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) throw new Problem(416, "ERR_BAD_RANGE", `Range "${header}" is outside the file's ${size} bytes`, "Range");
  return { start, end };
}

/** The request's Content-Length; undefined when it has none (a chunked body). */
function contentLength(req: IncomingMessage): number | undefined {
  const value = req.headers["content-length"];
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,15}$/.test(value)) throw new Problem(400, "ERR_BAD_PARAMETER", `Content-Length "${value}" is not a byte count`, "Content-Length");
  return Number(value);
}

/** Resolves once the whole body of `req` was read; rejects when the client went away before. */
function bodyReceived(req: IncomingMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (req.complete) return resolve();
    req.once("end", () => resolve());
    req.once("error", reject);
    req.once("close", () => (req.complete ? resolve() : reject(new Problem(400, "ERR_BODY_CUT", "the body stopped before its Content-Length: nothing was stored; send it again", "body"))));
  });
}

/** True for addresses only this machine reaches. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The headers of every blob read. */
function blobHeaders(maguId: bigint): Record<string, string> {
  return { "accept-ranges": "bytes", "content-type": "application/octet-stream", "x-muri-magu": maguId.toString() };
}

/**
 * `body` as the response with `status` and `headers`, its first piece read before the status line:
 * a fetch that fails at once is still a problem, not a cut 200 or 206.
 */
async function streamOut(res: ServerResponse, body: AsyncIterable<Buffer>, status: number, headers: Record<string, string | number>): Promise<void> {
  const it = body[Symbol.asyncIterator]();
  const first = await it.next();
  res.writeHead(status, headers);
  async function* all(): AsyncGenerator<Buffer> {
    if (first.done !== true) yield first.value;
    for (let next = await it.next(); next.done !== true; next = await it.next()) yield next.value;
  }
  await pipeline(Readable.from(all()), res);
}

/** The local file `path` of `size` bytes as the answer: whole (200) or the request's one Range (206). */
async function sendFile(req: IncomingMessage, res: ServerResponse, path: string, size: number, maguId: bigint): Promise<void> {
  const range = parseRange(req.headers.range, size);
  if (range === undefined) {
    res.writeHead(200, { ...blobHeaders(maguId), "content-length": size });
    await pipeline(createReadStream(path), res);
    return;
  }
  res.writeHead(206, { ...blobHeaders(maguId), "content-length": range.end - range.start + 1, "content-range": `bytes ${range.start}-${range.end}/${size}` });
  await pipeline(createReadStream(path, { start: range.start, end: range.end }), res);
}

function sameToken(given: string, token: string): boolean {
  // Digests first: equal lengths for timingSafeEqual, and no length leak.
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}

/** The JSON `muri put --json` prints, from a put's result. */
function putJson(result: PutResult): Record<string, unknown> {
  return {
    maguId: result.maguId,
    manifestCid: result.manifestCid.toString(),
    fileSize: result.fileSize,
    shards: result.shards,
    offset: result.offset,
    fragmentCount: result.fragmentCount,
    members: result.members,
  };
}

/** Starts the API over a started `client`. */
export async function startHttpApi(client: StorageClient, options: HttpApiOptions, components: HttpApiComponents = {}): Promise<HttpApi> {
  if (!isLoopback(options.host) && options.token === undefined) {
    throw new Problem(400, "ERR_TOKEN_REQUIRED", `listening on ${options.host} (not a loopback address) needs a token: writes spend this client's money`);
  }
  const uploads = join(options.dir, "http", "uploads");
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  /** What a body written to the uploads directory may take (413 past the size, 507 past the disk's reserve). */
  const spoolLimits = { maxBytes: maxBodyBytes, diskDir: uploads, reserveBytes: options.diskReserveBytes };
  const cacheDir = join(options.dir, "http", "cache");
  // Uploads are plaintext until stored, the cache holds decrypted files: this user's eyes only.
  await mkdir(uploads, { recursive: true, mode: 0o700 });
  await chmod(uploads, 0o700);
  await rm(cacheDir, { recursive: true, force: true });
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  /** Files fetched whole (by manifest CID), each fetched once even under concurrent reads. */
  const cache = new ReadCache(cacheDir, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
  let uploadSeq = 0;
  const uploadPath = (): string => join(uploads, `${process.pid}-${++uploadSeq}`);
  const operations = new Operations(options.maxOperations ?? DEFAULT_MAX_OPERATIONS, (err, instance) => problemBody(asProblem(err), instance));
  const accept: Respond = async (_req, res, kind, _status, work, progress) => {
    const { view } = operations.start(kind, work, progress);
    sendJson(res, 202, view, { location: `/v1/operations/${view.id}`, "preference-applied": "respond-async" });
  };
  /** `work`'s result with `status`, or under `Prefer: respond-async` 202 and its operation. */
  const respond: Respond = async (req, res, kind, status, work, progress) => {
    if (prefersAsync(req.headers.prefer)) return accept(req, res, kind, status, work, progress);
    sendJson(res, status, await work(() => undefined));
  };
  const vectors = components.vectors;
  const vectorRoute = vectors === undefined ? undefined : vectorRoutes({ vectors, magus: components.magus, uploadPath, spoolLimits, respond, accept });

  const maguOf = async (url: URL, cid: CID): Promise<bigint> => intParam(url, "magu", 1n, 2n ** 256n - 1n) ?? (await client.locate(cid));

  /** The whole file `cid` sent from the cache, fetched into it first when it is not there (once for concurrent reads). */
  const sendCached = async (req: IncomingMessage, res: ServerResponse, maguId: bigint, cid: CID): Promise<void> => {
    const key = cid.toString();
    const send = async ({ path, size }: CachedFile): Promise<true> => {
      await sendFile(req, res, path, size, maguId);
      return true;
    };
    // Removed since it was looked up (least recently read, over the budget): fetched again.
    for (;;) {
      if (!cache.has(key)) void cache.fill(key, async (path) => (await client.get({ maguId, manifestCid: cid }, path)).fileSize);
      if ((await cache.read(key, send)) === true) return;
    }
  };

  /** A put's query: `?magu=ID`, or a new Magu's k, m, members and periods (the CLI's defaults). */
  const putQuery = (url: URL): { into: bigint | undefined; put: PutOptions } => {
    const into = intParam(url, "magu", 1n, 2n ** 256n - 1n);
    const fixed = ["k", "m", "members", "periods"].filter((p) => url.searchParams.has(p));
    if (into !== undefined && fixed.length > 0) throw new Problem(400, "ERR_BAD_PARAMETER", `query parameter ${fixed[0]}: Magu ${into} fixes it; leave it out when putting into an existing Magu`, fixed[0]);
    const k = Number(intParam(url, "k", 1n, 128n) ?? BigInt(CLIENT_DEFAULTS.k));
    const m = Number(intParam(url, "m", 0n, 128n) ?? BigInt(CLIENT_DEFAULTS.m));
    const members = Number(intParam(url, "members", 1n, 256n) ?? BigInt(k + m));
    if (members < k + m) throw new Problem(400, "ERR_BAD_PARAMETER", `query parameter members: a stripe of k+m = ${k + m} shards needs at least ${k + m} members, got ${members}`, "members");
    const periods = intParam(url, "periods", 1n, (1n << 64n) - 1n);
    return { into, put: { k, m, members, ...(periods === undefined ? {} : { durationPeriods: periods }) } };
  };

  const putBlob = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const { into, put } = putQuery(url);
    const form = url.searchParams.get("form");
    if (form !== null && form !== "early" && form !== "complete") throw new Problem(400, "ERR_BAD_PARAMETER", `query parameter form: "${form}" is not early or complete`, "form");
    if (form === "early" && into !== undefined) throw new Problem(400, "ERR_BAD_PARAMETER", `query parameter form: Magu ${into} exists already; leave it out when putting into an existing Magu`, "form");
    const length = contentLength(req);
    if (length === 0) throw new Problem(400, "ERR_EMPTY_BODY", "the body is empty: send the file's bytes as the request body", "body");
    if (length !== undefined && length > maxBodyBytes) {
      throw new Problem(413, "ERR_BODY_TOO_LARGE", `Content-Length ${length} is over ${maxBodyBytes} bytes, the most this API takes (muri serve --max-body)`, "body");
    }
    // With a Content-Length the body is encoded as it arrives (bounded memory, nothing on disk but
    // the staging overflow); without one (chunked) it is spooled first: the Magu's size follows
    // from the file's, which only the whole body tells.
    const spooled = length === undefined ? await spool(req) : undefined;
    const source: PutSource = spooled ?? { name: `HTTP upload ${++uploadSeq} (${length} bytes)`, size: length!, bytes: req, formEarly: form !== "complete" };
    const received = spooled !== undefined ? Promise.resolve() : bodyReceived(req);
    received.catch(() => undefined); // the put fails too, and says so
    let failure: unknown;
    const work = async (progress: (p: Record<string, unknown>) => void): Promise<Record<string, unknown>> => {
      try {
        // The client's own progress events (progress.ts), as `muri put`'s progress line reads them.
        const onProgress = (p: Readonly<TransferProgress>): void => progress({ ...p });
        const result = into === undefined ? await client.put(source, { ...put, onProgress }) : await client.putInto(into, source, { onProgress });
        return putJson(result);
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        if (spooled !== undefined) await rm(spooled, { force: true });
      }
    };
    if (!prefersAsync(req.headers.prefer)) return sendJson(res, 201, await work(() => undefined));
    // 202 once the whole body is in; a refusal before that (a full Magu, one not ours) is answered as a problem.
    const { view, finished } = operations.start("put", work, { phase: "receiving", bytesTotal: length ?? (await stat(spooled!)).size });
    await Promise.race([received, finished]);
    if (view.state === "failed" && failure !== undefined) throw failure;
    sendJson(res, 202, view, { location: `/v1/operations/${view.id}`, "preference-applied": "respond-async" });
  };

  /**
   * A tar body (http-tar.ts) unpacked into a fresh directory of the uploads directory, then stored
   * as `muri put DIR` stores a directory; answers what `muri put DIR --json` prints, 201.
   */
  const putDirectory = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const { into, put } = putQuery(url);
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/x-tar") throw new Problem(415, "ERR_CONTENT_TYPE", `Content-Type "${type || "(none)"}": send the directory as a tar archive (application/x-tar, e.g. tar -c -C DIR .)`, "Content-Type");
    const root = `${uploadPath()}.dir`;
    await mkdir(root, { mode: 0o700 });
    try {
      let unpacked;
      try {
        unpacked = await extractTar(boundedBody(req, spoolLimits), root);
      } catch (err) {
        if (err instanceof TarError) throw new Problem(400, err.code, `the body is not a directory this API stores: ${err.message}`, "body");
        throw err;
      }
      const work = async (progress: (p: Record<string, unknown>) => void): Promise<Record<string, unknown>> => {
        try {
          const onProgress = (p: Readonly<TransferProgress>): void => progress({ ...p });
          const result = await client.putDirectory(root, { ...put, onProgress }, into);
          const d = result.directory;
          return { directory: { files: d.files, directories: d.directories, symlinks: d.symlinks, bytes: d.bytes, packSize: d.packSize }, ...putJson(result) };
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      };
      await respond(req, res, "put", 201, work, { phase: "queued", files: unpacked.files, bytesReceived: unpacked.bytes });
    } catch (err) {
      await rm(root, { recursive: true, force: true });
      throw err;
    }
  };

  /** One file of a stored directory (`?path=`), checked against its CID before a byte is sent. */
  const getEntry = async (req: IncomingMessage, res: ServerResponse, maguId: bigint, cid: CID, path: string): Promise<void> => {
    const ref = { maguId, manifestCid: cid };
    const sub = subtree(await client.list(ref), path);
    if (sub === undefined) throw new Problem(404, "ERR_PATH_NOT_FOUND", `directory ${cid} has no entry "${path}": GET /v1/blobs/${cid}/ls lists them`, "path");
    if (sub.entry.kind !== "file") {
      throw new Problem(409, "ERR_NOT_A_FILE", `"${path}" is a ${sub.entry.kind === "dir" ? "directory" : `symlink to ${(sub.entry as { target: string }).target}`}: ask for a file (GET /v1/blobs/${cid}/ls lists them)`, "path");
    }
    const size = sub.entry.size;
    await sendThroughFile(req, res, maguId, async (file) => {
      await client.get(ref, file, { path });
      return size;
    });
  };

  /** A file decoded by `get` into a file of the uploads directory of its own, sent, then removed. */
  const sendThroughFile = async (req: IncomingMessage, res: ServerResponse, maguId: bigint, get: (file: string) => Promise<number>): Promise<void> => {
    const file = `${uploadPath()}.get`;
    try {
      await sendFile(req, res, file, await get(file), maguId);
    } finally {
      await rm(file, { force: true });
    }
  };

  /** The body into a file of the uploads directory (removed when it fails), or a 400 when it is empty. */
  const spool = async (req: IncomingMessage): Promise<string> => {
    const base = uploadPath();
    const tmp = `${base}.part`;
    const file = `${base}.body`;
    try {
      await pipeline(boundedBody(req, spoolLimits), createWriteStream(tmp, { mode: 0o600 }));
      if ((await stat(tmp)).size === 0) throw new Problem(400, "ERR_EMPTY_BODY", "the body is empty: send the file's bytes as the request body", "body");
      await rename(tmp, file);
      return file;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  };

  const getBlob = async (req: IncomingMessage, res: ServerResponse, url: URL, cid: CID, head: boolean): Promise<void> => {
    const maguId = await maguOf(url, cid);
    if (head) {
      const { fileSize } = await client.stat({ maguId, manifestCid: cid });
      res.writeHead(200, { "content-length": fileSize, "accept-ranges": "bytes", "content-type": "application/octet-stream", "x-muri-magu": maguId.toString() });
      res.end();
      return;
    }
    const entry = url.searchParams.get("path");
    if (entry !== null) return getEntry(req, res, maguId, cid, entry);
    // Not fetched yet: a range reads only the fragments holding it, the whole file is streamed as
    // it is decoded and kept in the cache for the next reads (a file stored as it is; a compressed
    // file or a directory pack is fetched whole below).
    const key = cid.toString();
    if (!cache.has(key)) {
      const reader = await client.openRanges({ maguId, manifestCid: cid });
      if (reader.directory) {
        throw new Problem(409, "ERR_IS_DIRECTORY", `${cid} is a directory: list it at /v1/blobs/${cid}/ls and read a file of it with ?path=PATH`, "cid");
      }
      if (reader.raw) {
        const r = parseRange(req.headers.range, reader.fileSize);
        if (r !== undefined) return streamOut(res, reader.read(r.start, r.end - r.start + 1), 206, { ...blobHeaders(maguId), "content-length": r.end - r.start + 1, "content-range": `bytes ${r.start}-${r.end}/${reader.fileSize}` });
        // Larger than the cache: streamed as it is decoded, no copy kept.
        if (!cache.admits(reader.fileSize)) return streamOut(res, reader.all(), 200, { ...blobHeaders(maguId), "content-length": reader.fileSize });
        if (!cache.has(key)) return streamAndCache(res, key, reader.all(), reader.fileSize, maguId);
      } else if (!cache.admits(reader.fileSize)) {
        // A compressed file larger than the cache: decoded into a file of its own, sent, removed.
        return sendThroughFile(req, res, maguId, async (file) => (await client.get({ maguId, manifestCid: cid }, file)).fileSize);
      }
    }
    await sendCached(req, res, maguId, cid);
  };

  /**
   * A whole file streamed to the response as it is decoded and written to the cache beside it; the
   * cache entry is there once the file is complete (a later read waits for it rather than fetch twice).
   */
  const streamAndCache = async (res: ServerResponse, key: string, body: AsyncIterable<Buffer>, size: number, maguId: bigint): Promise<void> => {
    await cache.fill(key, async (path) => {
      const tmp = `${path}.${++uploadSeq}.part`;
      const out = createWriteStream(tmp, { mode: 0o600 });
      async function* teed(): AsyncGenerator<Buffer> {
        for await (const piece of body) {
          if (!out.write(piece)) await once(out, "drain");
          yield piece;
        }
        await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
        await rename(tmp, path);
      }
      try {
        await streamOut(res, teed(), 200, { ...blobHeaders(maguId), "content-length": size });
        return size;
      } catch (err) {
        out.destroy();
        await rm(tmp, { force: true });
        throw err;
      }
    });
  };

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "") || "/";
    if (path === "/v1/api" && method === "GET") return sendJson(res, 200, openApiDocument());
    if (path === "/v1/blobs") {
      if (method !== "PUT" && method !== "POST") throw new Problem(405, "ERR_METHOD", `${method} ${path}: use PUT (or POST) to store a body`);
      return putBlob(req, res, url);
    }
    if (path === "/v1/directories") {
      if (method !== "PUT" && method !== "POST") throw new Problem(405, "ERR_METHOD", `${method} ${path}: use PUT (or POST) to store a tar body`);
      return putDirectory(req, res, url);
    }
    const blob = /^\/v1\/blobs\/([^/]+)(\/status|\/ls)?$/.exec(path);
    if (blob !== null) {
      const cid = parseCid(blob[1]!);
      if (blob[2] !== undefined) {
        if (method !== "GET") throw new Problem(405, "ERR_METHOD", `${method} ${path}: use GET`);
        const ref = { maguId: await maguOf(url, cid), manifestCid: cid };
        if (blob[2] === "/ls") return sendJson(res, 200, { maguId: ref.maguId, manifestCid: cid.toString(), entries: listingJson(await client.list(ref)) });
        return sendJson(res, 200, await client.status(ref));
      }
      if (method !== "GET" && method !== "HEAD") throw new Problem(405, "ERR_METHOD", `${method} ${path}: use GET or HEAD`);
      return getBlob(req, res, url, cid, method === "HEAD");
    }
    const op = /^\/v1\/operations\/([^/]+)$/.exec(path);
    if (op !== null) {
      if (method !== "GET") throw new Problem(405, "ERR_METHOD", `${method} ${path}: use GET`);
      const view = operations.get(op[1]!);
      if (view === undefined) throw new Problem(404, "ERR_OPERATION_UNKNOWN", `no operation ${op[1]}: this API keeps the last ${operations.limit} (and none from before it restarted)`, "id");
      return sendJson(res, 200, view);
    }
    if (path === "/v1/magus" || path.startsWith("/v1/magus/")) {
      if (vectorRoute === undefined) throw new Problem(503, "ERR_NOT_AVAILABLE", "this API was started without a vector client: vector Magus are not served");
      if (await vectorRoute(req, res, url, path, method)) return;
    }
    throw new Problem(404, "ERR_NO_ROUTE", `no ${method} ${path}: the API is described at /v1/api`);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (options.corsOrigin !== undefined) {
      res.setHeader("access-control-allow-origin", options.corsOrigin);
      res.setHeader("access-control-allow-headers", "authorization, content-type, range, prefer");
      res.setHeader("access-control-expose-headers", "content-length, content-range, x-muri-magu, location, preference-applied");
      res.setHeader("vary", "origin");
      if (req.method === "OPTIONS") {
        res.writeHead(204, { "access-control-allow-methods": "GET, HEAD, PUT, POST, OPTIONS" });
        res.end();
        return;
      }
    }
    const read = (req.method === "GET" || req.method === "HEAD") && url.pathname.startsWith("/v1/blobs/");
    const open = url.pathname === "/v1/api" || (read && options.publicReads === true);
    if (options.token !== undefined && !open) {
      const auth = req.headers.authorization ?? "";
      const given = auth.startsWith("Bearer ") ? auth.slice(7) : "";
      if (!sameToken(given, options.token)) {
        res.setHeader("www-authenticate", 'Bearer realm="muri"');
        sendProblem(res, new Problem(401, "ERR_UNAUTHORIZED", "this API needs its token: send Authorization: Bearer TOKEN (muri serve printed where it is kept)"), url.pathname);
        req.resume();
        return;
      }
    }
    route(req, res, url).catch((err: unknown) => {
      const problem = asProblem(err);
      // A body refused for its size is not read to its end: the connection closes after the answer.
      if (!req.complete && (problem.status === 413 || problem.status === 507) && !res.headersSent) res.setHeader("connection", "close");
      req.resume();
      sendProblem(res, problem, url.pathname);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(cacheDir, { recursive: true, force: true });
    },
  };
}

const problem = { $ref: "#/components/responses/Problem" };
const cidParam = { name: "cid", in: "path", required: true, description: "the file's manifest CID (PUT /v1/blobs answers it)", schema: { type: "string" } };
const putParams = [
  { name: "magu", in: "query", required: false, description: "append to this blob Magu (yours)", schema: { type: "string" } },
  { name: "k", in: "query", required: false, description: `data shards per stripe (default ${CLIENT_DEFAULTS.k})`, schema: { type: "integer", minimum: 1, maximum: 128 } },
  { name: "m", in: "query", required: false, description: `parity shards per stripe (default ${CLIENT_DEFAULTS.m})`, schema: { type: "integer", minimum: 0, maximum: 128 } },
  { name: "members", in: "query", required: false, description: "nodes in the Magu (default k+m)", schema: { type: "integer" } },
  { name: "periods", in: "query", required: false, description: `storage duration in periods (default ${CLIENT_DEFAULTS.durationPeriods})`, schema: { type: "integer" } },
  preferParam,
];
const maguParam = { name: "magu", in: "query", required: false, description: "the Magu holding the file (default: the one this client's record lists the CID in)", schema: { type: "string", pattern: "^[0-9]+$" } };

/** The OpenAPI 3.1 document of this API, served at /v1/api. */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: { title: "MuriData client API", version: "1", description: "A local daemon (muri serve) that holds a client's keys and record: store files in blob Magus and read them back, create vector Magus, add, search and delete vectors. Long requests answer 202 and an operation under Prefer: respond-async. Errors are application/problem+json (RFC 9457)." },
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "required when muri serve has a token (always when it listens beyond loopback)" } },
      responses: {
        Problem: {
          description: "an RFC 9457 problem",
          content: { "application/problem+json": { schema: { type: "object", required: ["type", "title", "status", "detail", "code"], properties: { type: { type: "string" }, title: { type: "string" }, status: { type: "integer" }, detail: { type: "string" }, code: { type: "string" }, instance: { type: "string" }, field: { type: "string", description: "the parameter at fault" } } } } },
        },
      },
      schemas: {
        PutResult: {
          type: "object",
          required: ["maguId", "manifestCid", "fileSize", "shards", "offset", "fragmentCount", "members"],
          properties: { maguId: { type: "string" }, manifestCid: { type: "string" }, fileSize: { type: "integer" }, shards: { type: "integer" }, offset: { type: "integer" }, fragmentCount: { type: "integer" }, members: { type: "array", items: { type: "string" } } },
        },
        ...vectorSchemas(),
        DirectoryPutResult: {
          type: "object",
          required: ["directory", "maguId", "manifestCid", "fileSize", "shards", "offset", "fragmentCount", "members"],
          properties: {
            directory: { type: "object", required: ["files", "directories", "symlinks", "bytes", "packSize"], properties: { files: { type: "integer" }, directories: { type: "integer" }, symlinks: { type: "integer" }, bytes: { type: "integer", description: "the files' bytes" }, packSize: { type: "integer", description: "the pack stored" } } },
            maguId: { type: "string" },
            manifestCid: { type: "string" },
            fileSize: { type: "integer" },
            shards: { type: "integer" },
            offset: { type: "integer" },
            fragmentCount: { type: "integer" },
            members: { type: "array", items: { type: "string" } },
          },
        },
        Listing: {
          type: "object",
          required: ["maguId", "manifestCid", "entries"],
          properties: {
            maguId: { type: "string" },
            manifestCid: { type: "string" },
            entries: {
              type: "array",
              items: {
                type: "object",
                required: ["path", "kind"],
                properties: {
                  path: { type: "string", description: "from the directory's root, POSIX" },
                  kind: { type: "string", enum: ["file", "dir", "symlink"] },
                  size: { type: "integer", description: "a file's size" },
                  mode: { type: "string", description: "permission bits, octal (files and directories)" },
                  mtime: { type: "string", description: "ISO time (files and directories)" },
                  compression: { type: "string", description: "a file stored compressed" },
                  target: { type: "string", description: "a symlink's target" },
                },
              },
            },
          },
        },
        BlobStatus: {
          type: "object",
          properties: {
            maguId: { type: "string" },
            manifestCid: { type: "string" },
            fileSize: { type: "integer" },
            k: { type: "integer" },
            m: { type: "integer" },
            members: { type: "array", items: { type: "object", properties: { slot: { type: "integer" }, address: { type: "string" }, reachable: { type: "boolean" } } } },
            stripes: { type: "array", items: { type: "object", properties: { stripe: { type: "integer" }, available: { type: "integer" }, readable: { type: "boolean" } } } },
          },
        },
      },
    },
    security: [{ bearer: [] }, {}],
    paths: {
      ...vectorPaths(),
      "/v1/api": { get: { summary: "this document", security: [], responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": {} } } } } },
      "/v1/blobs": {
        put: {
          summary: "store the body as a file: a new blob Magu (muri put's defaults) or ?magu=ID to append. With a Content-Length the body is encoded as it arrives and a new Magu is formed meanwhile (a cut body leaves it as a spare that the next put of the same size and options fills; form=complete waits for the whole body instead); a chunked body is spooled first",
          parameters: [
            ...putParams,
            {
              name: "form",
              in: "query",
              required: false,
              description: "when a new Magu is created for a body with a Content-Length: early (default), as the body starts, so the formation and the pushes overlap the upload; a body cut once the Magu is formed leaves it paid and empty, kept as a spare that the next put of the same size and options fills (the problem, ERR_ENCODE_FAILED, names it; ?magu=ID also puts into it). complete: once the whole body is in, so a cut body creates nothing, and the formation's blocks are waited for after the upload",
              schema: { type: "string", enum: ["early", "complete"], default: "early" },
            },
          ],
          requestBody: { required: true, content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
          responses: { "201": { description: "stored", content: { "application/json": { schema: { $ref: "#/components/schemas/PutResult" } } } }, "202": accepted, "400": problem, "401": problem, "403": problem, "404": problem, "409": problem, "413": problem, "503": problem, "507": problem },
        },
      },
      "/v1/directories": {
        put: {
          summary: "store a directory sent as a tar archive (tar -c -C DIR .), as muri put DIR does: one pack in a new blob Magu or ?magu=ID. Files, directories and symlinks inside the tree; names are checked, nothing is written outside",
          parameters: putParams,
          requestBody: { required: true, content: { "application/x-tar": { schema: { type: "string", format: "binary" } } } },
          responses: { "201": { description: "stored", content: { "application/json": { schema: { $ref: "#/components/schemas/DirectoryPutResult" } } } }, "202": accepted, "400": problem, "401": problem, "403": problem, "404": problem, "409": problem, "413": problem, "415": problem, "503": problem, "507": problem },
        },
      },
      "/v1/blobs/{cid}/ls": {
        get: {
          summary: "the entries of a stored directory (as muri ls --json), fetching only its trailer and directory nodes",
          parameters: [cidParam, maguParam],
          responses: { "200": { description: "the entries", content: { "application/json": { schema: { $ref: "#/components/schemas/Listing" } } } }, "400": problem, "401": problem, "403": problem, "404": problem, "409": problem },
        },
      },
      "/v1/blobs/{cid}": {
        get: {
          summary: "the file, byte for byte; one Range answers 206. A directory: one of its files with ?path= (a directory itself answers 409)",
          parameters: [
            cidParam,
            maguParam,
            { name: "path", in: "query", required: false, description: "a file of a stored directory (its path from the root, as /ls lists it)", schema: { type: "string" } },
            { name: "Range", in: "header", required: false, schema: { type: "string", example: "bytes=0-1023" } },
          ],
          responses: { "200": { description: "the file", content: { "application/octet-stream": {} } }, "206": { description: "the range" }, "400": problem, "401": problem, "403": problem, "404": problem, "409": problem, "416": problem },
        },
        head: { summary: "the file's length (from its manifest; nothing else fetched)", parameters: [cidParam, maguParam], responses: { "200": { description: "Content-Length is the file's size" }, "404": { description: "unknown" } } },
      },
      "/v1/blobs/{cid}/status": {
        get: {
          summary: "the Magu holding the file, its members and every stripe's health",
          parameters: [cidParam, maguParam],
          responses: { "200": { description: "status", content: { "application/json": { schema: { $ref: "#/components/schemas/BlobStatus" } } } }, "400": problem, "403": problem, "404": problem },
        },
      },
    },
  };
}
