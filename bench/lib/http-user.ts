/**
 * The program on the other side of `muri serve` in bench/http.ts: a process of its own, as a user's
 * program is, that talks to the daemon only through the SDK (`MuriClient`). The bench forks it
 * (`fork`, IPC channel) so that receiving 256 MiB over HTTP is not slowed by the garbage of the
 * in-process client the bench hosts for its baseline, and its CPU is counted apart.
 *
 * Messages in (one at a time, each answered before the next is read):
 *   { op: "put", path, size, query }        -> { seconds, manifestCid }   PUT /v1/blobs, the file streamed
 *   { op: "get", cid, out }                 -> { seconds }                GET /v1/blobs/{cid} drained to `out`
 *   { op: "search", id, queries, inFlight, k } -> { qps }                 POST /v1/magus/{id}/search
 * and { error } when the work failed. The daemon's URL is the first argument.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MuriClient } from "../../agents/sdk/client.js";
import { qps } from "./qps.js";

export type UserRequest =
  | { op: "put"; path: string; size: number; query: Parameters<MuriClient["putBlob"]>[1] }
  | { op: "get"; cid: string; out: string }
  | { op: "search"; id: string; queries: number[][]; inFlight: number; k: number };
export type UserAnswer = { seconds?: number; manifestCid?: string; qps?: number; error?: string };

const url = process.argv[2];
if (url === undefined || process.send === undefined) {
  console.error("bench/lib/http-user.ts is forked by bench/http.ts with the daemon's URL as its argument and an IPC channel");
  process.exit(2);
}
const api = new MuriClient({ url });

async function serve(req: UserRequest): Promise<UserAnswer> {
  const start = performance.now();
  const elapsed = (): number => (performance.now() - start) / 1000;
  switch (req.op) {
    case "put": {
      const put = await api.putBlob(createReadStream(req.path), req.query, { size: req.size });
      return { seconds: elapsed(), manifestCid: put.manifestCid };
    }
    case "get": {
      const read = await api.getBlob(req.cid);
      await pipeline(Readable.fromWeb(read.stream as never), createWriteStream(req.out));
      return { seconds: elapsed() };
    }
    case "search":
      return { qps: await qps(req.queries, req.inFlight, (vector) => api.search(req.id, { vector, k: req.k })) };
  }
}

let queue = Promise.resolve();
process.on("message", (req: UserRequest) => {
  queue = queue.then(async () => {
    const answer = await serve(req).catch((err: unknown) => ({ error: (err as Error).message }));
    process.send!(answer);
  });
});
process.on("disconnect", () => process.exit(0));
