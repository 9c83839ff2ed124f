/**
 * Worker-thread side of `IndexWorker` (worker-host.ts): owns the vector indexes it is asked to
 * open and runs their inserts and searches here, off the agent's main thread. One message in, one
 * reply out, matched by `id`; the reply to a call that may change the index carries its size and
 * fragments after the call, so the host's mirror of them stays current (a search changes neither,
 * and the list grows with the Magu: it is not copied with every search).
 */
import { parentPort } from "node:worker_threads";
import { openVectorIndex, type VectorIndex } from "./vector-index.js";
import { CHANGING_OPS, errorShape, type SearchGroupResult, type WorkerReply, type WorkerRequest } from "./worker-host.js";

const port = parentPort;
if (port === null) throw new Error("index-worker.ts runs only as a worker thread (see worker-host.ts)");

const indexes = new Map<number, VectorIndex>();

function indexOf(handle: number): VectorIndex {
  const vi = indexes.get(handle);
  if (vi === undefined) throw new Error(`no open index with handle ${handle}`);
  return vi;
}

async function run(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case "open": {
      const vi = await openVectorIndex(req.options);
      indexes.set(req.handle, vi);
      return { M: vi.M, efConstruction: vi.efConstruction, efSearch: vi.efSearch };
    }
    case "add":
      return indexOf(req.handle).addFragment(req.fragment, req.bytes);
    case "remove":
      return indexOf(req.handle).removeFragment(req.fragment);
    case "search": {
      const vi = indexOf(req.handle);
      return req.groups.map((g): SearchGroupResult => {
        const started = performance.now();
        try {
          const hits = g.queries.map((query) => vi.search(query, g.k, g.options));
          return { hits, ms: performance.now() - started };
        } catch (err) {
          return { error: errorShape(err) };
        }
      });
    }
    case "stats":
      return indexOf(req.handle).stats();
    case "save":
      return indexOf(req.handle).save();
    case "crash":
      process.exit(70);
    // eslint-disable-next-line no-fallthrough -- process.exit does not return
    case "close": {
      const vi = indexes.get(req.handle);
      indexes.delete(req.handle);
      return vi?.close();
    }
  }
}

port.on("message", (req: WorkerRequest) => {
  void run(req).then(
    (value) => {
      const vi = indexes.get(req.handle);
      const state = vi !== undefined && CHANGING_OPS.has(req.op) ? { size: vi.size, fragments: vi.fragments() } : undefined;
      port.postMessage({ id: req.id, ok: true, value, state } satisfies WorkerReply);
    },
    (err: unknown) => {
      port.postMessage({ id: req.id, ok: false, error: errorShape(err) } satisfies WorkerReply);
    },
  );
});
