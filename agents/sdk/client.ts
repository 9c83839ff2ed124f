/**
 * MuriClient: a typed client of the HTTP API `muri serve` runs (issue 18), over `fetch` alone, so it
 * runs in Node and in a browser. It imports nothing of the agents: its types are generated from the
 * OpenAPI document the daemon serves (api-types.ts, by scripts/gen-sdk-types.ts), and every method's
 * answer is the type the document gives its route and status.
 *
 * Uploads stream (a `ReadableStream` or any async iterable of bytes is sent as it is read), and so
 * do downloads (`getBlob(...).stream`); a `Range` reads part of a file. Every answer that is not a
 * success is thrown as a {@link MuriApiError} carrying the RFC 9457 problem's fields.
 */
import type { Body, Paths, ProblemBody } from "./api-types.js";

export type * from "./api-types.js";

/** The answer of `method` on `path` with HTTP `status`, as the OpenAPI document declares it. */
export type Answer<P extends keyof Paths, M extends keyof Paths[P], S extends number> = Paths[P][M] extends { responses: infer R } ? (S extends keyof R ? R[S] : never) : never;
/** The query parameters of `method` on `path`. */
export type Query<P extends keyof Paths, M extends keyof Paths[P]> = Paths[P][M] extends { query: infer Q } ? Q : never;
/** The JSON request body of `method` on `path`. */
export type JsonBody<P extends keyof Paths, M extends keyof Paths[P]> = Paths[P][M] extends { requestBody: { "application/json": infer B } } ? B : never;

type FetchBody = NonNullable<RequestInit["body"]>;
type Operation = Answer<"/v1/operations/{id}", "get", 200>;

/** An answer that is not a success: the problem's fields (RFC 9457), and the HTTP status. */
export class MuriApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  /** The parameter at fault, when one is. */
  readonly field?: string;
  readonly instance?: string;

  constructor(problem: ProblemBody) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.name = "MuriApiError";
    this.status = problem.status;
    this.code = problem.code;
    this.type = problem.type;
    this.title = problem.title;
    this.detail = problem.detail;
    if (problem.field !== undefined) this.field = problem.field;
    if (problem.instance !== undefined) this.instance = problem.instance;
  }
}

export interface MuriClientOptions {
  /** Where `muri serve` listens, e.g. http://127.0.0.1:8788. */
  url: string;
  /** Its bearer token (`CLIENT_DIR/api-token`), when it asks for one. */
  token?: string;
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
}

/** A file (or part of one) being read: its bytes as a stream, or all at once. */
export interface BlobRead {
  /** 200 (the whole file) or 206 (a range). */
  status: number;
  /** Bytes in this answer. */
  length: number;
  /** The whole file's size. */
  size: number;
  /** The Magu holding it. */
  maguId: string;
  stream: ReadableStream<Uint8Array>;
  bytes(): Promise<Uint8Array>;
}

/** A body to upload: bytes, a Blob, a stream, or any async iterable of byte chunks (a Node file stream). */
export type Upload = Body | AsyncIterable<Uint8Array>;

/** Options of a long request: `async` answers the operation at once instead of waiting. */
export interface LongRequest {
  async?: boolean;
}

/** Options of a put: {@link LongRequest}, and the body's length in bytes when it is a stream. */
export interface PutRequest extends LongRequest {
  size?: number;
}

export class MuriClient {
  private readonly base: string;
  private readonly fetcher: typeof fetch;

  constructor(private readonly options: MuriClientOptions) {
    this.base = options.url.replace(/\/+$/, "");
    this.fetcher = options.fetch ?? ((...args) => fetch(...args));
  }

  /** The OpenAPI document the daemon serves. */
  async api(): Promise<Record<string, unknown>> {
    return (await this.json("GET", "/v1/api")) as Record<string, unknown>;
  }

  /**
   * Stores `body` as a file: a new blob Magu (the CLI's defaults, or `query`), or `query.magu` to
   * append. `size`, the body's length in bytes, is sent as Content-Length (Node; a browser sets it
   * itself for bytes and Blobs): the daemon then encodes the body as it arrives, while a stream of
   * unknown length is spooled to its disk first.
   */
  putBlob(body: Upload, query?: Query<"/v1/blobs", "put">, options?: PutRequest & { async?: false }): Promise<Answer<"/v1/blobs", "put", 201>>;
  putBlob(body: Upload, query: Query<"/v1/blobs", "put"> | undefined, options: PutRequest & { async: true }): Promise<Answer<"/v1/blobs", "put", 202>>;
  async putBlob(body: Upload, query: Query<"/v1/blobs", "put"> = {}, options: PutRequest = {}): Promise<unknown> {
    const headers = options.size === undefined ? undefined : { "content-length": String(options.size) };
    return this.json("PUT", `/v1/blobs${search(query)}`, { body: upload(body), type: "application/octet-stream", async: options.async, headers });
  }

  /**
   * Stores a directory sent as a tar archive (`tar -c -C DIR .`; bytes, a Blob or a stream): a new
   * blob Magu (the CLI's defaults, or `query`), or `query.magu` to append.
   */
  putDirectory(tar: Upload, query?: Query<"/v1/directories", "put">, options?: LongRequest & { async?: false }): Promise<Answer<"/v1/directories", "put", 201>>;
  putDirectory(tar: Upload, query: Query<"/v1/directories", "put"> | undefined, options: LongRequest & { async: true }): Promise<Answer<"/v1/directories", "put", 202>>;
  async putDirectory(tar: Upload, query: Query<"/v1/directories", "put"> = {}, options: LongRequest = {}): Promise<unknown> {
    return this.json("PUT", `/v1/directories${search(query)}`, { body: upload(tar), type: "application/x-tar", async: options.async });
  }

  /** The entries of a stored directory (paths, kinds, sizes, modes). */
  async listDirectory(cid: string, magu?: string): Promise<Answer<"/v1/blobs/{cid}/ls", "get", 200>> {
    return (await this.json("GET", `/v1/blobs/${encodeURIComponent(cid)}/ls${search({ magu })}`)) as Answer<"/v1/blobs/{cid}/ls", "get", 200>;
  }

  /**
   * Reads a file, or with `range` part of it (`{ start, end }` inclusive, or an HTTP Range value
   * such as "bytes=-100"); with `path`, that file of a stored directory.
   */
  async getBlob(cid: string, options: { range?: { start: number; end?: number } | string; magu?: string; path?: string } = {}): Promise<BlobRead> {
    const range = options.range === undefined ? undefined : typeof options.range === "string" ? options.range : `bytes=${options.range.start}-${options.range.end ?? ""}`;
    const res = await this.send("GET", `/v1/blobs/${encodeURIComponent(cid)}${search({ magu: options.magu, path: options.path })}`, { headers: range === undefined ? {} : { range } });
    const length = Number(res.headers.get("content-length"));
    const total = /\/([0-9]+)$/.exec(res.headers.get("content-range") ?? "");
    const stream = res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    return {
      status: res.status,
      length,
      size: total !== null ? Number(total[1]) : length,
      maguId: res.headers.get("x-muri-magu") ?? "",
      stream,
      bytes: async () => new Uint8Array(await new Response(stream).arrayBuffer()),
    };
  }

  /** A file's size, from its manifest alone. */
  async blobSize(cid: string, magu?: string): Promise<number> {
    const res = await this.send("HEAD", `/v1/blobs/${encodeURIComponent(cid)}${search({ magu })}`);
    return Number(res.headers.get("content-length"));
  }

  /** The Magu holding a file, its members and every stripe's health. */
  async blobStatus(cid: string, magu?: string): Promise<Answer<"/v1/blobs/{cid}/status", "get", 200>> {
    return (await this.json("GET", `/v1/blobs/${encodeURIComponent(cid)}/status${search({ magu })}`)) as Answer<"/v1/blobs/{cid}/status", "get", 200>;
  }

  /** Creates and forms a Magu (`muri magu create`): a vector Magu needs `dim`. */
  createMagu(body: JsonBody<"/v1/magus", "post">): Promise<Answer<"/v1/magus", "post", 201>>;
  createMagu(body: JsonBody<"/v1/magus", "post">, options: { async: true }): Promise<Answer<"/v1/magus", "post", 202>>;
  async createMagu(body: JsonBody<"/v1/magus", "post">, options: LongRequest = {}): Promise<unknown> {
    return this.json("POST", "/v1/magus", { body: JSON.stringify(body), type: "application/json", async: options.async });
  }

  /** Adds vectors: JSON rows (`{ vectors: [{ id?, vector, payload? }] }`), or a .npy / .fvecs file's bytes (`{ npy }`, `{ fvecs }`). */
  addVectors(maguId: bigint | number | string, rows: JsonBody<"/v1/magus/{id}/vectors", "post"> | { npy: Upload } | { fvecs: Upload }, query?: Query<"/v1/magus/{id}/vectors", "post">): Promise<Answer<"/v1/magus/{id}/vectors", "post", 201>>;
  addVectors(
    maguId: bigint | number | string,
    rows: JsonBody<"/v1/magus/{id}/vectors", "post"> | { npy: Upload } | { fvecs: Upload },
    query: Query<"/v1/magus/{id}/vectors", "post"> | undefined,
    options: { async: true },
  ): Promise<Answer<"/v1/magus/{id}/vectors", "post", 202>>;
  async addVectors(
    maguId: bigint | number | string,
    rows: JsonBody<"/v1/magus/{id}/vectors", "post"> | { npy: Upload } | { fvecs: Upload },
    query: Query<"/v1/magus/{id}/vectors", "post"> = {},
    options: LongRequest = {},
  ): Promise<unknown> {
    const path = `/v1/magus/${maguId}/vectors${search(query)}`;
    if ("npy" in rows) return this.json("POST", path, { body: upload(rows.npy), type: "application/x-npy", async: options.async });
    if ("fvecs" in rows) return this.json("POST", path, { body: upload(rows.fvecs), type: "application/x-fvecs", async: options.async });
    return this.json("POST", path, { body: JSON.stringify(rows), type: "application/json", async: options.async });
  }

  /** Deletes vectors by id (tombstones). */
  async deleteVectors(maguId: bigint | number | string, ids: ReadonlyArray<number | string>): Promise<Answer<"/v1/magus/{id}/vectors/delete", "post", 200>> {
    return (await this.json("POST", `/v1/magus/${maguId}/vectors/delete`, { body: JSON.stringify({ ids }), type: "application/json" })) as Answer<"/v1/magus/{id}/vectors/delete", "post", 200>;
  }

  /** Top-k search of one query: the hits in rank order, each proven (unless `verify: false`) and with its payload. */
  async search(maguId: bigint | number | string, query: Omit<JsonBody<"/v1/magus/{id}/search", "post">, "vectors"> & { vector: number[] }): Promise<Extract<Answer<"/v1/magus/{id}/search", "post", 200>, { results: unknown }>> {
    return (await this.json("POST", `/v1/magus/${maguId}/search`, { body: JSON.stringify(query), type: "application/json" })) as Extract<Answer<"/v1/magus/{id}/search", "post", 200>, { results: unknown }>;
  }

  /** Top-k search of a batch of queries: one answer per query, in order. */
  async searchBatch(maguId: bigint | number | string, query: Omit<JsonBody<"/v1/magus/{id}/search", "post">, "vector"> & { vectors: number[][] }): Promise<Extract<Answer<"/v1/magus/{id}/search", "post", 200>, { queries: unknown }>> {
    return (await this.json("POST", `/v1/magus/${maguId}/search`, { body: JSON.stringify(query), type: "application/json" })) as Extract<Answer<"/v1/magus/{id}/search", "post", 200>, { queries: unknown }>;
  }

  /** Submits an on-chain search task: its operation, done once the task is finalized. */
  async submitTask(maguId: bigint | number | string, task: JsonBody<"/v1/magus/{id}/tasks", "post">): Promise<Answer<"/v1/magus/{id}/tasks", "post", 202>> {
    return (await this.json("POST", `/v1/magus/${maguId}/tasks`, { body: JSON.stringify(task), type: "application/json" })) as Answer<"/v1/magus/{id}/tasks", "post", 202>;
  }

  /** An operation's state, progress and result (or problem). */
  async operation(id: string): Promise<Operation> {
    return (await this.json("GET", `/v1/operations/${encodeURIComponent(id)}`)) as Operation;
  }

  /**
   * Polls an operation until it ends: its result when done; a failed one throws its problem as a
   * MuriApiError. `onProgress` hears each progress polled while it runs.
   */
  async waitFor(id: string, options: { intervalMs?: number; timeoutMs?: number; onProgress?: (progress: Operation["progress"]) => void; signal?: AbortSignal } = {}): Promise<unknown> {
    const deadline = Date.now() + (options.timeoutMs ?? 10 * 60_000);
    for (;;) {
      options.signal?.throwIfAborted();
      const op = await this.operation(id);
      if (op.state === "done") return op.result;
      if (op.state === "failed") throw new MuriApiError(op.problem as ProblemBody);
      options.onProgress?.(op.progress);
      if (Date.now() > deadline) throw new Error(`operation ${id} still runs after ${options.timeoutMs ?? 600_000} ms (it goes on: poll it again)`);
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 250));
    }
  }

  private async send(method: string, path: string, init: { body?: FetchBody; type?: string; async?: boolean; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
    if (init.type !== undefined) headers["content-type"] = init.type;
    if (init.async === true) headers.prefer = "respond-async";
    const streamed = typeof ReadableStream !== "undefined" && init.body instanceof ReadableStream;
    const res = await this.fetcher(`${this.base}${path}`, { method, headers, ...(init.body === undefined ? {} : { body: init.body }), ...(streamed ? { duplex: "half" } : {}) } as RequestInit);
    if (res.ok) return res;
    const text = await res.text();
    let problem: ProblemBody;
    try {
      problem = JSON.parse(text) as ProblemBody;
      if (typeof problem.code !== "string") throw new Error("not a problem");
    } catch {
      problem = { type: "about:blank", title: res.statusText, status: res.status, detail: text.slice(0, 500) || res.statusText, code: `HTTP_${res.status}` };
    }
    throw new MuriApiError(problem);
  }

  private async json(method: string, path: string, init: { body?: FetchBody; type?: string; async?: boolean; headers?: Record<string, string> } = {}): Promise<unknown> {
    return (await this.send(method, path, init)).json();
  }
}

/** `?a=1&b=2` of the defined values, or "". */
function search(query: Record<string, string | number | bigint | boolean | undefined>): string {
  const entries = Object.entries(query).filter((e): e is [string, string | number | bigint | boolean] => e[1] !== undefined);
  return entries.length === 0 ? "" : `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, String(v)])).toString()}`;
}

/** An upload as a fetch body: an async iterable (a Node stream) becomes a ReadableStream, read as it is sent. */
function upload(body: Upload): FetchBody {
  if (typeof body === "string" || body instanceof Uint8Array || body instanceof ArrayBuffer || (typeof Blob !== "undefined" && body instanceof Blob)) return body as FetchBody;
  if (typeof ReadableStream !== "undefined" && body instanceof ReadableStream) return body;
  const it = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await it.next();
      if (next.done === true) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await it.return?.();
    },
  });
}
