/**
 * Long work of the HTTP API made visible (`Prefer: respond-async`, `GET /v1/operations/{id}`): each
 * operation has an unguessable id, a state (`running`, then `done` with its result or `failed` with
 * its problem), and progress its work reports as it goes (phase, bytes received, ...).
 *
 * At most `limit` operations are kept: a new one drops the oldest finished one; when all of them
 * still run, a new one is refused (the caller answers 503) rather than forgetting running work.
 */
import { randomBytes } from "node:crypto";

export type OperationState = "running" | "done" | "failed";

/** What an operation reports about itself (GET /v1/operations/{id}). */
export interface OperationView {
  id: string;
  /** What it does: `put`, `add`, `delete`, `create`, `task`. */
  kind: string;
  state: OperationState;
  /** ISO times it started and last changed. */
  created: string;
  updated: string;
  progress: Record<string, unknown>;
  result?: unknown;
  /** The RFC 9457 problem it failed with. */
  problem?: unknown;
}

/** Reports progress: merged into what the operation shows. */
export type ProgressSink = (progress: Record<string, unknown>) => void;

export class OperationsFullError extends Error {
  readonly code = "ERR_TOO_MANY_OPERATIONS";
  constructor(limit: number) {
    super(`${limit} operations are still running: wait for one to finish (GET /v1/operations/{id}) and try again`);
    this.name = "OperationsFullError";
  }
}

/** The operations of one API, at most `limit` kept. */
export class Operations {
  private readonly kept = new Map<string, OperationView>();

  constructor(
    readonly limit: number,
    /** The problem body of a failed operation's error. */
    private readonly toProblem: (err: unknown, instance: string) => unknown,
  ) {}

  /**
   * Starts `work` as a new operation and returns its view at once; `work` reports progress through
   * its sink, and its result (or error) ends the operation. Throws OperationsFullError when full.
   */
  start(kind: string, work: (progress: ProgressSink) => Promise<unknown>, progress: Record<string, unknown> = {}): { view: OperationView; finished: Promise<void> } {
    this.makeRoom();
    const id = randomBytes(12).toString("hex");
    const now = new Date().toISOString();
    const view: OperationView = { id, kind, state: "running", created: now, updated: now, progress: { phase: "queued", ...progress } };
    this.kept.set(id, view);
    const sink: ProgressSink = (p) => {
      if (view.state !== "running") return;
      Object.assign(view.progress, p);
      view.updated = new Date().toISOString();
    };
    const finished = Promise.resolve()
      .then(() => work(sink))
      .then(
        (result) => {
          view.state = "done";
          view.result = result;
        },
        (err: unknown) => {
          view.state = "failed";
          view.problem = this.toProblem(err, `/v1/operations/${id}`);
        },
      )
      .finally(() => {
        view.updated = new Date().toISOString();
      });
    return { view, finished };
  }

  get(id: string): OperationView | undefined {
    return this.kept.get(id);
  }

  get size(): number {
    return this.kept.size;
  }

  private makeRoom(): void {
    if (this.kept.size < this.limit) return;
    // Maps iterate in insertion order: the first finished one is the oldest.
    for (const [id, op] of this.kept) {
      if (op.state !== "running") {
        this.kept.delete(id);
        return;
      }
    }
    throw new OperationsFullError(this.limit);
  }
}
