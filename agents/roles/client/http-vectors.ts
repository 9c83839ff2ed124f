/**
 * Vector Magus over the HTTP API (`muri serve`, issue 18), mirroring `muri magu create`,
 * `muri vectors add|delete` and `muri search` (VectorClient's public methods, magu-create.ts):
 *
 * - `POST /v1/magus` creates and forms a Magu of either kind from a JSON body with the CLI's
 *   options and defaults (`{"kind": "vector", "dim": 128}`; camelCase: `dataShards`, `parityShards`;
 *   `public`); answers what `muri magu create --json` prints, 201.
 * - `POST /v1/magus/{id}/vectors` adds vectors: `application/json` `{"vectors": [{"id"?, "vector",
 *   "payload"?}]}` (ids on every row or on none: rows continue the Magu's numbering), or a file's
 *   bytes as `application/x-npy` (.npy) or `application/x-fvecs` (.fvecs). Every row is checked
 *   (its dimension against the Magu's, each component finite, 0/1 for Hamming, ids, payloads)
 *   before anything is committed; a refusal names the row (`vectors[3].vector`). `?fragmentSize=B`
 *   as `--fragment-size`.
 * - `POST /v1/magus/{id}/vectors/delete` `{"ids": [...]}` deletes by id (tombstones).
 * - `POST /v1/magus/{id}/search` `{"vector": [...]}` or a batch `{"vectors": [[...], ...]}`, with
 *   `k` (default 10), `ef` or `exact`, `verify` (default true): the hits in rank order, each with its
 *   distance in the units of the floats and its payload (what `muri search --json` prints; a batch
 *   answers `{"queries": [...]}`, one such answer per query).
 * - `POST /v1/magus/{id}/tasks` `{"vector", "k", "fee"}` submits an on-chain search task and answers
 *   202 with its operation (`GET /v1/operations/{id}`: running until the task is finalized, then its
 *   answer as `muri search --onchain --json` prints it).
 *
 * Adds, deletes and creations answer 202 with an operation when asked (`Prefer: respond-async`).
 */
import { createWriteStream } from "node:fs";
import { rm, stat, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { parseMuriAmount } from "../../chain/index.js";
import { MAX_PAYLOAD_BYTES, MAX_VECTOR_ID, type VectorMetric } from "../../data/vectors.js";
import { boundedBody, Problem, intParam, jsonBoolean, jsonInteger, jsonObject, readJson, sendJson, type BodyLimits } from "./http-common.js";
import { createMagu, maguParams, type MaguChain, type MaguOption, type MaguOptions } from "./magu-create.js";
import type { ProgressSink } from "./operations.js";
import type { VectorClient, VectorHit } from "./vector-client.js";

/** The largest JSON body a vector route reads (rows beyond it: several requests, or .npy/.fvecs). */
export const MAX_JSON_BODY_BYTES = 64 * 1024 * 1024;
/** Queries of one batch search, and how many run at once. */
export const MAX_BATCH_QUERIES = 1024;
const BATCH_CONCURRENCY = 4;
/** The default fee of an on-chain task, as `muri search --onchain`. */
const DEFAULT_TASK_FEE = "1";
const U256 = 2n ** 256n - 1n;

/** Body Content-Types of an add that carry a vector file, and the extension the file reader knows them by. */
export const VECTOR_FILE_TYPES: Readonly<Record<string, string>> = { "application/x-npy": ".npy", "application/x-fvecs": ".fvecs" };

/** Answers `work`'s result with `status`, or 202 and an operation under `Prefer: respond-async`. */
export type Respond = (req: IncomingMessage, res: ServerResponse, kind: string, status: number, work: (progress: ProgressSink) => Promise<unknown>, progress?: Record<string, unknown>) => Promise<void>;

export interface VectorRouteDeps {
  vectors: VectorClient;
  /** The signer's chain with its transaction helpers: POST /v1/magus needs it. */
  magus?: MaguChain;
  /** A fresh temporary path (without extension) in the API's upload directory. */
  uploadPath(): string;
  /** What a vector file body spooled there may take (`boundedBody`). */
  spoolLimits: BodyLimits;
  respond: Respond;
  /** Starts `work` as an operation and answers 202 whatever the Prefer header says. */
  accept: Respond;
}

/** A JSON body's vector rows, checked against the Magu: the .jsonl text the vector client reads, and the payloads. */
export interface VectorRows {
  jsonl: string;
  count: number;
  payloads: Array<Uint8Array | null> | undefined;
}

function dimensionProblem(field: string, got: number, maguId: bigint, dim: number, metric: VectorMetric): Problem {
  const unit = metric === "hamming" ? "bits (0 or 1)" : "numbers";
  return new Problem(400, "ERR_DIMENSION", `${field} has ${got} components: Magu ${maguId} has dimension ${dim}; give ${dim} ${unit}`, field);
}

/** `value` as one vector of the Magu (dim finite numbers; 0/1 for Hamming), or a 400 naming `field`. */
export function checkVector(value: unknown, field: string, maguId: bigint, dim: number, metric: VectorMetric): number[] {
  if (!Array.isArray(value)) throw new Problem(400, "ERR_BAD_VECTOR", `${field}: expected an array of ${dim} numbers, got ${value === null ? "null" : typeof value}`, field);
  if (value.length !== dim) throw dimensionProblem(field, value.length, maguId, dim, metric);
  value.forEach((x, j) => {
    const ok = typeof x === "number" && Number.isFinite(x) && (metric !== "hamming" || x === 0 || x === 1);
    if (!ok) {
      const want = metric === "hamming" ? "0 or 1 (Magu " + maguId + " uses the Hamming metric)" : "a finite number";
      throw new Problem(400, "ERR_BAD_VECTOR", `${field}[${j}] is ${JSON.stringify(x)}, not ${want}`, `${field}[${j}]`);
    }
  });
  return value as number[];
}

/** A vector id: a JSON number up to 2^53 or a decimal string, at most MAX_VECTOR_ID. */
function checkId(value: unknown, field: string): bigint {
  const ok = (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) || (typeof value === "string" && /^(0|[1-9][0-9]{0,19})$/.test(value));
  const id = ok ? BigInt(value as number | string) : undefined;
  if (id === undefined || id > MAX_VECTOR_ID) {
    throw new Problem(400, "ERR_BAD_ID", `${field}: ${JSON.stringify(value)} is not a vector id (an integer in [0, ${MAX_VECTOR_ID}]; beyond 2^53 a decimal string)`, field);
  }
  return id;
}

/** Checks `{"vectors": [{id?, vector, payload?}, ...]}` against vector Magu `maguId` of `dim` and `metric`. */
export function parseVectorRows(body: unknown, maguId: bigint, dim: number, metric: VectorMetric): VectorRows {
  const rows = jsonObject(body, "body").vectors;
  if (!Array.isArray(rows) || rows.length === 0) throw new Problem(400, "ERR_BAD_PARAMETER", `vectors: give a non-empty array of {"vector": [...], "id"?: N, "payload"?: {...}}`, "vectors");
  const withIds = rows.map((r) => r !== null && typeof r === "object" && (r as Record<string, unknown>).id !== undefined);
  const lines: string[] = [];
  const payloads: Array<Uint8Array | null> = [];
  rows.forEach((raw, i) => {
    const row = jsonObject(raw, `vectors[${i}]`);
    const vector = checkVector(row.vector, `vectors[${i}].vector`, maguId, dim, metric);
    if (withIds[i] !== withIds[0]) {
      throw new Problem(400, "ERR_BAD_ID", `vectors[${i}] ${withIds[i] ? "has" : "lacks"} an id but vectors[0] ${withIds[0] ? "has one" : "does not"}: give an id on every row or on none (rows then continue the Magu's numbering)`, `vectors[${i}].id`);
    }
    const payload = row.payload;
    if (payload === undefined || payload === null) payloads.push(null);
    else {
      const text = Buffer.from(JSON.stringify(jsonObject(payload, `vectors[${i}].payload`)), "utf8");
      if (text.length > MAX_PAYLOAD_BYTES) throw new Problem(400, "ERR_BAD_PAYLOAD", `vectors[${i}].payload is ${text.length} bytes as JSON, more than ${MAX_PAYLOAD_BYTES}: keep payloads small (ids, titles, links)`, `vectors[${i}].payload`);
      payloads.push(text);
    }
    lines.push(withIds[0] ? JSON.stringify({ id: checkId(row.id, `vectors[${i}].id`).toString(), vector }) : JSON.stringify(vector));
  });
  return { jsonl: lines.join("\n") + "\n", count: rows.length, payloads: payloads.some((p) => p !== null) ? payloads : undefined };
}

/** A search request: one query or a batch, k, ef or exact, verify. */
export interface SearchRequest {
  queries: number[][];
  batch: boolean;
  k: number;
  ef?: number;
  exact: boolean;
  verify: boolean;
}

/** Checks a search body (`{"vector"}` or `{"vectors"}`, k, ef, exact, verify) against the Magu. */
export function parseSearchBody(body: unknown, maguId: bigint, dim: number, metric: VectorMetric): SearchRequest {
  const b = jsonObject(body, "body");
  if ((b.vector === undefined) === (b.vectors === undefined)) throw new Problem(400, "ERR_BAD_PARAMETER", 'give exactly one of "vector" (one query) and "vectors" (a batch of queries)', "vector");
  const batch = b.vectors !== undefined;
  let queries: number[][];
  if (batch) {
    if (!Array.isArray(b.vectors) || b.vectors.length === 0 || b.vectors.length > MAX_BATCH_QUERIES) {
      throw new Problem(400, "ERR_BAD_PARAMETER", `vectors: give an array of 1 to ${MAX_BATCH_QUERIES} queries, each an array of ${dim} numbers`, "vectors");
    }
    queries = b.vectors.map((q, i) => checkVector(q, `vectors[${i}]`, maguId, dim, metric));
  } else {
    queries = [checkVector(b.vector, "vector", maguId, dim, metric)];
  }
  const k = Number(jsonInteger(b, "k", 1n, 1000n) ?? 10n);
  const ef = jsonInteger(b, "ef", 1n, 100000n);
  const exact = jsonBoolean(b, "exact") ?? false;
  if (exact && ef !== undefined) throw new Problem(400, "ERR_BAD_PARAMETER", "ef: exact and ef exclude each other (exact is brute force)", "ef");
  return { queries, batch, k, ...(ef === undefined ? {} : { ef: Number(ef) }), exact, verify: jsonBoolean(b, "verify") ?? true };
}

/** A canonical distance in the units of the floats: canonical / 2^(2e); a Hamming distance (bits) as it is. */
function floatDistance(canonical: bigint, scaleExp: number | null, hamming: boolean): number {
  return hamming ? Number(canonical) : Number(canonical) / 2 ** (2 * (scaleExp ?? 14));
}

/** A hit as `muri search --json` prints it. */
function hitJson(h: VectorHit, scaleExp: number | null, hamming: boolean): Record<string, unknown> {
  return {
    id: h.id.toString(),
    distance: floatDistance(h.distance, scaleExp, hamming),
    canonical: h.distance.toString(),
    fragment: h.fragment,
    position: h.position,
    ...(h.payload !== undefined ? { payload: h.payload } : {}),
  };
}

/** An amount of MURI (decimal, at most 18 decimals), or a 400 naming `field`. */
function muriField(value: unknown, field: string, allowZero: boolean): bigint {
  const text = typeof value === "number" ? String(value) : value;
  const amount = typeof text === "string" ? parseMuriAmount(text) : undefined;
  if (amount === undefined) {
    throw new Problem(400, "ERR_BAD_PARAMETER", `${field}: ${JSON.stringify(value)} is not an amount of MURI: give a decimal string such as "1000" or "0.5" (at most 18 decimals)`, field);
  }
  if (amount === 0n && !allowZero) throw new Problem(400, "ERR_BAD_PARAMETER", `${field}: the amount must be greater than 0`, field);
  return amount;
}

/** The JSON keys of POST /v1/magus by the creation's option names. */
const MAGU_KEYS: Record<MaguOption, string> = {
  kind: "kind",
  fragments: "fragments",
  size: "size",
  periods: "periods",
  price: "price",
  members: "members",
  "data-shards": "dataShards",
  "parity-shards": "parityShards",
  replication: "replication",
  dim: "dim",
  metric: "metric",
};

/** A POST /v1/magus body as the shared creation reads options; a refusal is a 400 naming the key. */
export function jsonMaguOptions(body: Record<string, unknown>): MaguOptions {
  const known = new Set([...Object.values(MAGU_KEYS), "public"]);
  for (const key of Object.keys(body)) {
    if (!known.has(key)) throw new Problem(400, "ERR_BAD_PARAMETER", `${key}: not an option of a Magu; the options are ${[...known].join(", ")}`, key);
  }
  const key = (o: MaguOption): string => MAGU_KEYS[o];
  const fail = (o: MaguOption | undefined, message: string): never => {
    throw new Problem(400, "ERR_BAD_PARAMETER", message, o === undefined ? undefined : key(o));
  };
  const string = (o: MaguOption): string | undefined => {
    const v = body[key(o)];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string" && typeof v !== "number") fail(o, `${key(o)}: ${JSON.stringify(v)} is neither a string nor a number`);
    return String(v);
  };
  return {
    label: key,
    has: (o) => body[key(o)] !== undefined && body[key(o)] !== null,
    string,
    required: (o, hint) => string(o) ?? fail(o, `${key(o)} is required: ${hint}`),
    integer: (o, range) => jsonInteger(body, key(o), range.min ?? 0n, range.max),
    muri: (o) => (body[key(o)] === undefined || body[key(o)] === null ? undefined : muriField(body[key(o)], key(o), false)),
    bytes: (o) => jsonInteger(body, key(o), 1n, 2n ** 64n - 1n),
    fail,
  };
}

/** The vector routes under /v1/magus; resolves false for a path that is not one of them. */
export function vectorRoutes(deps: VectorRouteDeps): (req: IncomingMessage, res: ServerResponse, url: URL, path: string, method: string) => Promise<boolean> {
  const { vectors } = deps;
  const post = (method: string, path: string): void => {
    if (method !== "POST") throw new Problem(405, "ERR_METHOD", `${method} ${path}: use POST`);
  };

  const create = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = jsonObject(await readJson(req, 64 * 1024), "body");
    const pub = jsonBoolean(body, "public") ?? false;
    const { dataBytes: _unused, ...params } = maguParams(jsonMaguOptions(body));
    const chain = deps.magus;
    if (chain === undefined) throw new Problem(503, "ERR_NOT_AVAILABLE", "this API was started without a signing key: it cannot create Magus");
    await deps.respond(req, res, "create", 201, async (progress) => {
      progress({ phase: "requesting and forming the Magu" });
      return createMagu(chain, params, pub);
    });
  };

  const add = async (req: IncomingMessage, res: ServerResponse, url: URL, maguId: bigint): Promise<void> => {
    const size = intParam(url, "fragmentSize", 1024n, 1048576n);
    const fragmentSize = size === undefined ? undefined : Number(size);
    const { dim, metric } = await vectors.vectorParams(maguId);
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    const base = deps.uploadPath();
    let file: string;
    let payloads: Array<Uint8Array | null> | undefined;
    let count: number | undefined;
    if (type === "application/json") {
      const rows = parseVectorRows(await readJson(req, MAX_JSON_BODY_BYTES), maguId, dim, metric);
      file = `${base}.jsonl`;
      await writeFile(file, rows.jsonl, { mode: 0o600 });
      payloads = rows.payloads;
      count = rows.count;
    } else if (VECTOR_FILE_TYPES[type] !== undefined) {
      file = `${base}${VECTOR_FILE_TYPES[type]}`;
      try {
        await pipeline(boundedBody(req, deps.spoolLimits), createWriteStream(file, { mode: 0o600 }));
      } catch (err) {
        // Cut short or refused: nothing of it stays in the uploads directory.
        await rm(file, { force: true });
        throw err;
      }
    } else {
      throw new Problem(415, "ERR_CONTENT_TYPE", `Content-Type "${type || "(none)"}": send application/json rows, or a vector file as ${Object.keys(VECTOR_FILE_TYPES).join(" or ")}`, "Content-Type");
    }
    const bytes = (await stat(file)).size;
    const work = async (progress: ProgressSink): Promise<unknown> => {
      try {
        progress({ phase: "checking, committing and pushing the vectors", bytesReceived: bytes, ...(count === undefined ? {} : { vectors: count }) });
        const r = await vectors.add(maguId, file, { payloads, fragmentSize, onProgress: (p) => progress({ ...p }) }).catch((err: unknown) => {
          // A file's error names the temporary file: name the request body instead.
          if ((err as { code?: unknown }).code === "ERR_VECTOR_FILE") throw new Problem(400, "ERR_VECTOR_FILE", (err as Error).message.replace(file, "the body"), "body");
          throw err;
        });
        progress({ phase: "done", vectors: r.vectors });
        return { maguId: r.maguId, vectors: r.vectors, firstRow: r.firstRow, fragments: r.fragments, fragmentCount: r.fragmentCount, manifestCid: r.manifestCid.toString(), scaleExp: r.scaleExp, missing: r.missing };
      } finally {
        await rm(file, { force: true });
      }
    };
    await deps.respond(req, res, "add", 201, work, { phase: "queued", bytesReceived: bytes }).catch(async (err: unknown) => {
      await rm(file, { force: true });
      throw err;
    });
  };

  const remove = async (req: IncomingMessage, res: ServerResponse, maguId: bigint): Promise<void> => {
    const raw = jsonObject(await readJson(req, MAX_JSON_BODY_BYTES), "body").ids;
    if (!Array.isArray(raw) || raw.length === 0) throw new Problem(400, "ERR_BAD_PARAMETER", "ids: give a non-empty array of vector ids", "ids");
    const ids = raw.map((v, i) => checkId(v, `ids[${i}]`));
    await deps.respond(req, res, "delete", 200, async () => {
      const r = await vectors.delete(maguId, ids);
      return { maguId: r.maguId, deleted: r.deleted, alreadyDeleted: r.alreadyDeleted, fragments: r.fragments, fragmentCount: r.fragmentCount, manifestCid: r.manifestCid.toString() };
    });
  };

  const search = async (req: IncomingMessage, res: ServerResponse, maguId: bigint): Promise<void> => {
    const body = await readJson(req, MAX_JSON_BODY_BYTES);
    const { dim, metric } = await vectors.vectorParams(maguId);
    const q = parseSearchBody(body, maguId, dim, metric);
    const hamming = metric === "hamming";
    const one = async (query: number[]): Promise<Record<string, unknown>> => {
      const r = await vectors.search(maguId, query, q.k, { ef: q.ef, exact: q.exact, verify: q.verify });
      return {
        maguId,
        k: q.k,
        scaleExp: r.scaleExp,
        results: r.hits.map((h) => hitJson(h, r.scaleExp, hamming)),
        verified: r.verified,
        rejected: r.rejected,
        unproven: r.unproven,
        asked: r.asked,
        failed: r.failed,
        complete: r.uncovered.length === 0,
        uncovered: r.uncovered,
        ms: Math.round(r.ms * 10) / 10,
      };
    };
    if (!q.batch) return sendJson(res, 200, await one(q.queries[0]!));
    const answers: Array<Record<string, unknown>> = new Array(q.queries.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(BATCH_CONCURRENCY, q.queries.length) }, async () => {
        for (let i = next++; i < q.queries.length; i = next++) answers[i] = await one(q.queries[i]!);
      }),
    );
    sendJson(res, 200, { maguId, k: q.k, queries: answers });
  };

  const task = async (req: IncomingMessage, res: ServerResponse, maguId: bigint): Promise<void> => {
    const b = jsonObject(await readJson(req, MAX_JSON_BODY_BYTES), "body");
    const { dim, metric } = await vectors.vectorParams(maguId);
    const query = checkVector(b.vector, "vector", maguId, dim, metric);
    const k = Number(jsonInteger(b, "k", 1n, 1000n) ?? 10n);
    const fee = muriField(b.fee ?? DEFAULT_TASK_FEE, "fee", true);
    const hamming = metric === "hamming";
    await deps.accept(req, res, "task", 200, async (progress) => {
      progress({ phase: "submitting the task and waiting for its finalized answer" });
      const a = await vectors.searchOnChain(maguId, query, k, fee);
      return {
        maguId,
        k,
        onchain: true,
        task: a.task,
        scaleExp: a.scaleExp,
        results: a.result.map((h) => ({ id: h.id.toString(), distance: floatDistance(h.distance, a.scaleExp, hamming), canonical: h.distance.toString(), fragment: h.fragment, position: h.position })),
        submitBlock: a.submitBlock,
        finalizedBlock: a.block,
        credits: a.credits,
        payPerCredit: a.payPerCredit,
        refund: a.refund,
        ms: Math.round(a.ms),
      };
    });
  };

  return async (req, res, url, path, method) => {
    if (path === "/v1/magus") {
      post(method, path);
      await create(req, res);
      return true;
    }
    const m = /^\/v1\/magus\/([^/]+)\/(vectors|vectors\/delete|search|tasks)$/.exec(path);
    if (m === null) return false;
    if (!/^[0-9]{1,78}$/.test(m[1]!) || BigInt(m[1]!) < 1n || BigInt(m[1]!) > U256) {
      throw new Problem(400, "ERR_BAD_PARAMETER", `"${m[1]}" is not a Magu id (a positive integer: POST /v1/magus answered it)`, "id");
    }
    const maguId = BigInt(m[1]!);
    post(method, path);
    if (m[2] === "vectors") await add(req, res, url, maguId);
    else if (m[2] === "vectors/delete") await remove(req, res, maguId);
    else if (m[2] === "search") await search(req, res, maguId);
    else await task(req, res, maguId);
    return true;
  };
}
