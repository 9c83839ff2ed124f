/**
 * The client's HTTP API (`muri serve`, issue 18): a local daemon that holds the client's keys and
 * record and lets any language store and read files over HTTP. Described by the OpenAPI 3.1
 * document it serves at `/v1/api` ({@link openApiDocument}).
 *
 * - `PUT /v1/blobs` streams the body to a file in the client directory, then stores it as `muri put`
 *   does (a new Magu with the CLI's defaults, or `?magu=ID` to append); answers what
 *   `muri put --json` prints, 201.
 * - `GET /v1/blobs/{cid}` streams the file back with Content-Length; `Range: bytes=...` (one range)
 *   answers 206; `HEAD` answers the length from the manifest alone (no shard fetched). A range of
 *   a file not fetched yet fetches only the fragments holding it (`decodeRange`); a whole file is
 *   fetched once into the client directory's HTTP cache and served from there, later ranges too.
 * - `GET /v1/blobs/{cid}/status`: the Magu, its members (reachable or not) and every stripe's
 *   shards on reachable members against the k it needs.
 * - Vector Magus under `/v1/magus` (http-vectors.ts): create, add, search, delete, on-chain tasks.
 * - Long work made visible: `Prefer: respond-async` on a put, an add, a delete or a creation answers
 *   202 with `Location: /v1/operations/{id}` once the body is received; `GET /v1/operations/{id}`
 *   reports its state, progress and result or problem (operations.ts; the last
 *   {@link DEFAULT_MAX_OPERATIONS} are kept).
 * - Errors are `application/problem+json` (RFC 9457, http-common.ts): `type`, `title`, `status`,
 *   `detail`, and `field` when a parameter is at fault. No stack trace, nothing half-written (a
 *   cancelled upload's temporary file is removed).
 * - Safe by default: the CLI listens on 127.0.0.1 only; with a token (required to listen anywhere
 *   else) every request needs `Authorization: Bearer TOKEN`, compared in constant time, except
 *   reads when `publicReads` is set. CORS headers only for the configured origin.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { CID } from "multiformats/cid";
import { CLIENT_DEFAULTS, type PutOptions, type PutResult, type StorageClient } from "./client.js";
import { asProblem, intParam, Problem, problemBody, sendJson, sendProblem } from "./http-common.js";
import { vectorRoutes, type Respond } from "./http-vectors.js";
import { accepted, preferParam, vectorPaths, vectorSchemas } from "./http-openapi.js";
import type { MaguChain } from "./magu-create.js";
import { Operations } from "./operations.js";
import type { TransferProgress } from "./progress.js";
import type { VectorClient } from "./vector-client.js";

export { Problem } from "./http-common.js";

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
}

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

/** True for addresses only this machine reaches. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
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
  const cache = join(options.dir, "http", "cache");
  // Uploads are plaintext until stored, the cache holds decrypted files: this user's eyes only.
  await mkdir(uploads, { recursive: true, mode: 0o700 });
  await chmod(uploads, 0o700);
  await rm(cache, { recursive: true, force: true });
  await mkdir(cache, { recursive: true, mode: 0o700 });
  /** Files fetched into the cache (by manifest CID), each fetched once even under concurrent reads. */
  const cached = new Map<string, Promise<{ path: string; size: number }>>();
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
  const vectorRoute = vectors === undefined ? undefined : vectorRoutes({ vectors, magus: components.magus, uploadPath, respond, accept });

  const maguOf = async (url: URL, cid: CID): Promise<bigint> => intParam(url, "magu", 1n, 2n ** 256n - 1n) ?? (await client.locate(cid));

  const fetchCached = (maguId: bigint, cid: CID): Promise<{ path: string; size: number }> => {
    const key = cid.toString();
    let entry = cached.get(key);
    if (entry === undefined) {
      const path = join(cache, key);
      entry = client.get({ maguId, manifestCid: cid }, path).then((r) => ({ path, size: r.fileSize }));
      entry.catch(() => cached.delete(key));
      cached.set(key, entry);
    }
    return entry;
  };

  const putBlob = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const into = intParam(url, "magu", 1n, 2n ** 256n - 1n);
    const fixed = ["k", "m", "members", "periods"].filter((p) => url.searchParams.has(p));
    if (into !== undefined && fixed.length > 0) throw new Problem(400, "ERR_BAD_PARAMETER", `query parameter ${fixed[0]}: Magu ${into} fixes it; leave it out when putting into an existing Magu`, fixed[0]);
    const k = Number(intParam(url, "k", 1n, 128n) ?? BigInt(CLIENT_DEFAULTS.k));
    const m = Number(intParam(url, "m", 0n, 128n) ?? BigInt(CLIENT_DEFAULTS.m));
    const members = Number(intParam(url, "members", 1n, 256n) ?? BigInt(k + m));
    if (members < k + m) throw new Problem(400, "ERR_BAD_PARAMETER", `query parameter members: a stripe of k+m = ${k + m} shards needs at least ${k + m} members, got ${members}`, "members");
    const periods = intParam(url, "periods", 1n, (1n << 64n) - 1n);
    const put: PutOptions = { k, m, members, ...(periods === undefined ? {} : { durationPeriods: periods }) };
    const base = uploadPath();
    const tmp = `${base}.part`;
    const file = `${base}.body`;
    let size: number;
    try {
      await pipeline(req, createWriteStream(tmp, { mode: 0o600 }));
      size = (await stat(tmp)).size;
      if (size === 0) throw new Problem(400, "ERR_EMPTY_BODY", "the body is empty: send the file's bytes as the request body", "body");
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const work = async (progress: (p: Record<string, unknown>) => void): Promise<Record<string, unknown>> => {
      try {
        // The client's own progress events (progress.ts), as `muri put`'s progress line reads them.
        const onProgress = (p: Readonly<TransferProgress>): void => progress({ ...p });
        const result = into === undefined ? await client.put(file, { ...put, onProgress }) : await client.putInto(into, file, { onProgress });
        return putJson(result);
      } finally {
        await rm(file, { force: true });
      }
    };
    await respond(req, res, "put", 201, work, { phase: "queued", bytesReceived: size }).catch(async (err: unknown) => {
      await rm(file, { force: true });
      throw err;
    });
  };

  const getBlob = async (req: IncomingMessage, res: ServerResponse, url: URL, cid: CID, head: boolean): Promise<void> => {
    const maguId = await maguOf(url, cid);
    if (head) {
      const { fileSize } = await client.stat({ maguId, manifestCid: cid });
      res.writeHead(200, { "content-length": fileSize, "accept-ranges": "bytes", "content-type": "application/octet-stream", "x-muri-magu": maguId.toString() });
      res.end();
      return;
    }
    // A range of a file not fetched yet: only the fragments holding it (a file stored as it is;
    // a compressed file or a directory pack is fetched whole below).
    if (req.headers.range !== undefined && !cached.has(cid.toString())) {
      const ranges = await client.openRanges({ maguId, manifestCid: cid });
      if (ranges.raw) {
        const r = parseRange(req.headers.range, ranges.fileSize);
        if (r !== undefined) {
          const body = ranges.read(r.start, r.end - r.start + 1)[Symbol.asyncIterator]();
          // The first piece before the status line: a fetch that fails is still a problem, not a cut 206.
          const first = await body.next();
          res.writeHead(206, {
            "accept-ranges": "bytes",
            "content-type": "application/octet-stream",
            "x-muri-magu": maguId.toString(),
            "content-length": r.end - r.start + 1,
            "content-range": `bytes ${r.start}-${r.end}/${ranges.fileSize}`,
          });
          async function* all(): AsyncGenerator<Buffer> {
            if (first.done !== true) yield first.value;
            for (let next = await body.next(); next.done !== true; next = await body.next()) yield next.value;
          }
          await pipeline(Readable.from(all()), res);
          return;
        }
      }
    }
    const { path, size } = await fetchCached(maguId, cid);
    const range = parseRange(req.headers.range, size);
    const headers = { "accept-ranges": "bytes", "content-type": "application/octet-stream", "x-muri-magu": maguId.toString() };
    if (range === undefined) {
      res.writeHead(200, { ...headers, "content-length": size });
      await pipeline(createReadStream(path), res);
      return;
    }
    res.writeHead(206, { ...headers, "content-length": range.end - range.start + 1, "content-range": `bytes ${range.start}-${range.end}/${size}` });
    await pipeline(createReadStream(path, { start: range.start, end: range.end }), res);
  };

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/\/+$/, "") || "/";
    if (path === "/v1/api" && method === "GET") return sendJson(res, 200, openApiDocument());
    if (path === "/v1/blobs") {
      if (method !== "PUT" && method !== "POST") throw new Problem(405, "ERR_METHOD", `${method} ${path}: use PUT (or POST) to store a body`);
      return putBlob(req, res, url);
    }
    const blob = /^\/v1\/blobs\/([^/]+)(\/status)?$/.exec(path);
    if (blob !== null) {
      const cid = parseCid(blob[1]!);
      if (blob[2] !== undefined) {
        if (method !== "GET") throw new Problem(405, "ERR_METHOD", `${method} ${path}: use GET`);
        return sendJson(res, 200, await client.status({ maguId: await maguOf(url, cid), manifestCid: cid }));
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
      req.resume();
      sendProblem(res, asProblem(err), url.pathname);
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
      await rm(cache, { recursive: true, force: true });
    },
  };
}

const problem = { $ref: "#/components/responses/Problem" };
const cidParam = { name: "cid", in: "path", required: true, description: "the file's manifest CID (PUT /v1/blobs answers it)", schema: { type: "string" } };
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
          summary: "store the body as a file: a new blob Magu (muri put's defaults) or ?magu=ID to append",
          parameters: [
            { name: "magu", in: "query", required: false, description: "append to this blob Magu (yours)", schema: { type: "string" } },
            { name: "k", in: "query", required: false, description: `data shards per stripe (default ${CLIENT_DEFAULTS.k})`, schema: { type: "integer", minimum: 1, maximum: 128 } },
            { name: "m", in: "query", required: false, description: `parity shards per stripe (default ${CLIENT_DEFAULTS.m})`, schema: { type: "integer", minimum: 0, maximum: 128 } },
            { name: "members", in: "query", required: false, description: "nodes in the Magu (default k+m)", schema: { type: "integer" } },
            { name: "periods", in: "query", required: false, description: `storage duration in periods (default ${CLIENT_DEFAULTS.durationPeriods})`, schema: { type: "integer" } },
            preferParam,
          ],
          requestBody: { required: true, content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } },
          responses: { "201": { description: "stored", content: { "application/json": { schema: { $ref: "#/components/schemas/PutResult" } } } }, "202": accepted, "400": problem, "401": problem, "403": problem, "404": problem, "413": problem, "503": problem },
        },
      },
      "/v1/blobs/{cid}": {
        get: {
          summary: "the file, byte for byte; one Range answers 206",
          parameters: [cidParam, maguParam, { name: "Range", in: "header", required: false, schema: { type: "string", example: "bytes=0-1023" } }],
          responses: { "200": { description: "the file", content: { "application/octet-stream": {} } }, "206": { description: "the range" }, "400": problem, "401": problem, "403": problem, "404": problem, "416": problem },
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
