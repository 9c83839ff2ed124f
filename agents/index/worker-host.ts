/**
 * Vector indexes in a worker thread: HNSW inserts and searches are CPU work of milliseconds to
 * seconds, and on the agent's main thread they would delay everything else it does - the prover's
 * proofs above all (issue 12: one peer's searches could starve it). `IndexWorker` starts one
 * worker (index-worker.ts) and opens indexes in it; each `WorkerVectorIndex` forwards calls to it
 * and mirrors the index's size and fragment list, so the synchronous reads stay synchronous.
 *
 * If the worker dies (an addon crash, out of memory), every call in flight and every later call on
 * its indexes fails with IndexWorkerError, `onExit` listeners run (the vector service forgets its
 * indexes and reopens them from disk), and the next `open` starts a new worker.
 */
import { Worker } from "node:worker_threads";
import { IndexError } from "./errors.js";
import type { VectorValues } from "../data/vectors.js";
import type { SearchHit, SearchOptions, VectorIndexOptions, VectorIndexStats } from "./vector-index.js";

/** What a request asks the worker to do. */
export type WorkerOp =
  | { op: "open"; options: VectorIndexOptions }
  | { op: "add"; fragment: number; bytes: Uint8Array }
  | { op: "remove"; fragment: number }
  /**
   * Groups of searches in one message (a message costs about what a search at ef 64 does): one
   * group per caller, answered by its hits and the worker's time on them, or its own error.
   */
  | { op: "search"; groups: readonly SearchGroup[] }
  | { op: "stats" }
  | { op: "save" }
  | { op: "close" }
  /** Ends the worker as a crash would (for tests of the recovery). */
  | { op: "crash" };

/** One caller's queries, all with the same k and options. */
export interface SearchGroup {
  queries: readonly VectorValues[];
  k: number;
  options: SearchOptions;
}

/** A group's answer: each query's hits and the worker's milliseconds on the group, or why it failed. */
export type SearchGroupResult = { hits: SearchHit[][]; ms: number } | { error: WorkerErrorShape };

/** An error as it crosses the thread boundary. */
export interface WorkerErrorShape {
  name: string;
  message: string;
  code?: string;
}

/** An error thrown in the worker, as a message can carry it. */
export function errorShape(err: unknown): WorkerErrorShape {
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  return { name: e.name, message: e.message, code: typeof code === "string" ? code : undefined };
}

/** A request to the worker: an op on the index `handle`. */
export type WorkerRequest = { id: number; handle: number } & WorkerOp;

/** Ops after which the index's size and fragment list may differ: their replies carry them. */
export const CHANGING_OPS: ReadonlySet<WorkerOp["op"]> = new Set(["open", "add", "remove"]);

/** The worker's answer to one request (`state` after an op in CHANGING_OPS). */
export type WorkerReply =
  | { id: number; ok: true; value: unknown; state?: { size: number; fragments: number[] } }
  | { id: number; ok: false; error: WorkerErrorShape };

/** The index worker exited: the indexes it held must be opened again. */
export class IndexWorkerError extends IndexError<{ reason: string }> {
  constructor(reason: string) {
    super("ERR_INDEX_WORKER", `the vector index worker is gone (${reason}); open the index again`, { reason });
  }
}

/** An error thrown in the worker, rebuilt with its name and code (IndexCorruptError stays recognisable). */
function rebuild(e: WorkerErrorShape): Error {
  const err = new Error(e.message);
  err.name = e.name;
  if (e.code !== undefined) Object.assign(err, { code: e.code });
  return err;
}

/** The worker's entry point and the loader it needs for TypeScript, whatever loaded this one. */
function workerOptions(): { url: URL; execArgv: string[] } {
  const url = new URL("./index-worker.ts", import.meta.url);
  // `node --import tsx` or `--import bin/ts-register.mjs` is inherited (the latter registers its
  // in-thread hooks again in the worker); `bin/muri.js` loads TypeScript with in-thread hooks that
  // a worker does not get, so the worker brings tsx itself (resolved from here, whatever the cwd).
  const hasLoader = process.execArgv.some((a) => a.includes("tsx") || a.includes("ts-register.mjs"));
  return { url, execArgv: hasLoader ? [...process.execArgv] : [...process.execArgv, "--import", import.meta.resolve("tsx")] };
}

/** One worker thread holding vector indexes. */
export class IndexWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private nextHandle = 1;
  private readonly pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private readonly exitListeners = new Set<(err: IndexWorkerError) => void>();
  private generation = 0;
  private closing = false;

  /** Runs `listener` when the worker dies (not on `close`). */
  onExit(listener: (err: IndexWorkerError) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  /** Opens (or creates) the index in `options.dir` in the worker. */
  async open(options: VectorIndexOptions): Promise<WorkerVectorIndex> {
    const handle = this.nextHandle++;
    const generation = this.ensure();
    const reply = await this.call(handle, { op: "open", options });
    const p = reply.value as { M: number; efConstruction: number; efSearch: number };
    const state = reply.state ?? { size: 0, fragments: [] };
    return new WorkerVectorIndex(this, handle, generation, options, p, state);
  }

  /** Ends the worker (after the indexes were closed; open ones are not saved). */
  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === undefined) return;
    this.closing = true;
    try {
      await worker.terminate();
    } finally {
      this.closing = false;
    }
  }

  /** Ends the worker as a crash would: in-flight calls fail and `onExit` listeners run (tests). */
  async crash(): Promise<void> {
    await this.call(0, { op: "crash" }).catch(() => undefined);
  }

  /** The worker generation a handle belongs to (a handle of a dead worker is void). */
  alive(generation: number): boolean {
    return this.worker !== undefined && generation === this.generation;
  }

  /** Sends `op` on index `handle`; resolves with the ok reply, rejects with the worker's error. */
  async call(handle: number, op: WorkerOp): Promise<WorkerReply & { ok: true }> {
    const worker = this.worker;
    if (worker === undefined) throw new IndexWorkerError("not started");
    const id = this.nextId++;
    const reply = await new Promise<WorkerReply>((resolve, reject) => {
      // Referenced while a call waits, so the process waits for the answer; idle, it may exit.
      if (this.pending.size === 0) worker.ref();
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...op, id, handle } satisfies WorkerRequest);
    });
    if (!reply.ok) throw rebuild(reply.error);
    return reply;
  }

  private ensure(): number {
    if (this.worker !== undefined) return this.generation;
    const { url, execArgv } = workerOptions();
    const worker = new Worker(url, { execArgv });
    const generation = ++this.generation;
    worker.on("message", (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      waiter?.resolve(reply);
    });
    const gone = (reason: string): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const err = new IndexWorkerError(reason);
      for (const w of this.pending.values()) w.reject(err);
      this.pending.clear();
      if (!this.closing) for (const l of this.exitListeners) l(err);
    };
    worker.on("error", (err) => gone(err.message));
    worker.on("exit", (code) => gone(`exited with code ${code}`));
    // An idle worker does not keep a process alive that has nothing else to do.
    worker.unref();
    this.worker = worker;
    return generation;
  }
}

/** Callers' search groups per message at most (a request carries up to 256 queries). */
const MAX_GROUPS_PER_MESSAGE = 64;

/** A vector index held by an IndexWorker: the VectorIndex calls, each a message to the worker. */
export class WorkerVectorIndex {
  readonly dir: string;
  readonly dim: number;
  readonly M: number;
  readonly efConstruction: number;
  readonly efSearch: number;
  private live: number;
  private held: Set<number>;
  private closed = false;
  /** Searches asked while a message of searches is with the worker: they go in the next one. */
  private queued: Array<SearchGroup & { resolve: (r: { hits: SearchHit[][]; ms: number }) => void; reject: (e: Error) => void }> = [];
  private searching = false;

  constructor(
    private readonly host: IndexWorker,
    private readonly handle: number,
    private readonly generation: number,
    options: VectorIndexOptions,
    params: { M: number; efConstruction: number; efSearch: number },
    state: { size: number; fragments: number[] },
  ) {
    this.dir = options.dir;
    this.dim = options.dim;
    this.M = params.M;
    this.efConstruction = params.efConstruction;
    this.efSearch = params.efSearch;
    this.live = state.size;
    this.held = new Set(state.fragments);
  }

  get size(): number {
    return this.live;
  }

  fragments(): number[] {
    return [...this.held].sort((a, b) => a - b);
  }

  hasFragment(fragment: number): boolean {
    return this.held.has(fragment);
  }

  async addFragment(fragment: number, bytes: Uint8Array): Promise<number> {
    // A copy goes over (the caller keeps its bytes, which may be the store's).
    return (await this.send({ op: "add", fragment, bytes })) as number;
  }

  async removeFragment(fragment: number): Promise<void> {
    await this.send({ op: "remove", fragment });
  }

  async search(query: VectorValues, k: number, options: SearchOptions = {}): Promise<SearchHit[]> {
    return (await this.searchMany([query], k, options)).hits[0]!;
  }

  /**
   * `search` for each query, with the worker's milliseconds on them (what the search cost, without
   * the wait for the worker). The first search goes to the worker at once; searches asked while
   * it is there wait and go together in the next message, so concurrent callers share messages
   * (each gets its own answer, or its own error).
   */
  searchMany(queries: readonly VectorValues[], k: number, options: SearchOptions = {}): Promise<{ hits: SearchHit[][]; ms: number }> {
    return new Promise((resolve, reject) => {
      this.queued.push({ queries, k, options, resolve, reject });
      if (!this.searching) this.sendSearches();
    });
  }

  private sendSearches(): void {
    const groups = this.queued.splice(0, MAX_GROUPS_PER_MESSAGE);
    this.searching = groups.length > 0;
    if (!this.searching) return;
    this.send({ op: "search", groups: groups.map(({ queries, k, options }) => ({ queries, k, options })) })
      .then(
        (value) => {
          const results = value as SearchGroupResult[];
          groups.forEach((g, i) => {
            const r = results[i]!;
            if ("error" in r) g.reject(rebuild(r.error));
            else g.resolve(r);
          });
        },
        (err: Error) => {
          for (const g of groups) g.reject(err);
        },
      )
      .finally(() => this.sendSearches());
  }

  async stats(): Promise<VectorIndexStats> {
    return (await this.send({ op: "stats" })) as VectorIndexStats;
  }

  async save(): Promise<void> {
    await this.send({ op: "save" });
  }

  /** Saves and closes the index in the worker (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.host.alive(this.generation)) return;
    await this.host.call(this.handle, { op: "close" });
  }

  private async send(request: WorkerOp): Promise<unknown> {
    if (!this.host.alive(this.generation)) throw new IndexWorkerError("this index was opened in a worker that has exited");
    const reply = await this.host.call(this.handle, request);
    if (reply.state !== undefined) {
      this.live = reply.state.size;
      this.held = new Set(reply.state.fragments);
    }
    return reply.value;
  }
}
