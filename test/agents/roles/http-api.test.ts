import assert from "node:assert/strict";
import { mkdtemp, rm, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { boundedBody, isLoopback, openApiDocument, parseRange, prefersAsync, Problem } from "../../../agents/roles/client/http-api.js";
import { jsonMaguOptions, parseSearchBody, parseVectorRows } from "../../../agents/roles/client/http-vectors.js";
import { DEFAULT_VECTOR_FRAGMENTS, maguParams } from "../../../agents/roles/client/magu-create.js";
import { CLIENT_DEFAULTS, ShardStage, StorageClientError } from "../../../agents/roles/client/client.js";
import { asProblem } from "../../../agents/roles/client/http-common.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { openFragmentStore } from "../../../agents/store/fragment-store.js";
import { Operations, OperationsFullError } from "../../../agents/roles/client/operations.js";
import { MAX_PAYLOAD_BYTES } from "../../../agents/data/vectors.js";
import { parseListen, sizeOptionValue } from "../../../agents/cli/commands/serve.js";
import { UsageError } from "../../../agents/cli/errors.js";

/** Asserts `fn` throws a Problem of `status`, `code` and `field`, its detail matching `detail`. */
function refuses(fn: () => unknown, status: number, code: string, field: string | undefined, detail?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Problem, String(err));
    assert.deepEqual([err.status, err.code, err.field], [status, code, field], err.detail);
    if (detail !== undefined) assert.match(err.detail, detail);
    return true;
  });
}

describe("http api: ranges, listen addresses, the OpenAPI document", () => {
  it("parses one byte range within the file, and refuses the rest with 416", () => {
    assert.equal(parseRange(undefined, 10), undefined);
    assert.deepEqual(parseRange("bytes=0-0", 10), { start: 0, end: 0 });
    assert.deepEqual(parseRange("bytes=2-", 10), { start: 2, end: 9 });
    assert.deepEqual(parseRange("bytes=5-100", 10), { start: 5, end: 9 }, "an end past the file is cut to it");
    assert.deepEqual(parseRange("bytes=-3", 10), { start: 7, end: 9 });
    assert.deepEqual(parseRange("bytes=-30", 10), { start: 0, end: 9 }, "a suffix longer than the file is the whole file");
    for (const bad of ["bytes=10-", "bytes=5-4", "bytes=-", "items=0-1", "bytes=0-1,3-4", "bytes=a-b"]) {
      assert.throws(() => parseRange(bad, 10), (err: unknown) => err instanceof Problem && err.status === 416 && err.field === "Range", bad);
    }
  });

  it("tells loopback hosts from others, and parses --listen", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1"]) assert.ok(isLoopback(h), h);
    for (const h of ["0.0.0.0", "192.168.1.2", "::", "example.org"]) assert.ok(!isLoopback(h), h);
    assert.deepEqual(parseListen("8788"), { host: "127.0.0.1", port: 8788 });
    assert.deepEqual(parseListen("0.0.0.0:0"), { host: "0.0.0.0", port: 0 });
    assert.deepEqual(parseListen("[::1]:9000"), { host: "::1", port: 9000 });
    for (const bad of ["", "host:", "127.0.0.1:70000", "a b:1"]) assert.throws(() => parseListen(bad), UsageError, bad);
  });

  it("reads its size options: --cache 0 keeps nothing (as its help says), the others must be sizes above 0", () => {
    assert.equal(sizeOptionValue(undefined, "cache", 7, { zero: true }), 7, "left out: the default");
    for (const zero of ["0", "0MiB", " 0 gib", "0.0", "00"]) assert.equal(sizeOptionValue(zero, "cache", 7, { zero: true }), 0, zero);
    assert.equal(sizeOptionValue("1MiB", "cache", 7, { zero: true }), 2 ** 20);
    assert.equal(sizeOptionValue("1.5KiB", "max-body", 7), 1536);
    assert.throws(() => sizeOptionValue("0", "max-body", 7), (err: Error) => err instanceof UsageError && err.message === "--max-body: the size must be greater than 0 bytes");
    assert.throws(() => sizeOptionValue("0 parsecs", "cache", 7, { zero: true }), (err: Error) => err instanceof UsageError && /--cache: "0 parsecs" is not a size/.test(err.message));
    assert.throws(() => sizeOptionValue("9PiB", "cache", 7, { zero: true }), UsageError);
  });

  it("describes every route it serves, each error response as a problem", () => {
    const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    assert.equal(doc.openapi, "3.1.0");
    assert.deepEqual(Object.keys(doc.paths["/v1/blobs/{cid}"]!).sort(), ["get", "head"]);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) >= 400 && method !== "head") assert.deepEqual(response, { $ref: "#/components/responses/Problem" }, `${method} ${path} ${status}`);
        }
      }
    }
    assert.doesNotThrow(() => JSON.stringify(doc));
  });

  it("checks JSON vector rows against the Magu: the row and the expected dimension named in a refusal", () => {
    const rows = parseVectorRows({ vectors: [{ vector: [1, 2, 3] }, { vector: [0.5, -1, 2], payload: { title: "b" } }] }, 7n, 3, "l2");
    assert.equal(rows.count, 2);
    assert.equal(rows.jsonl, "[1,2,3]\n[0.5,-1,2]\n", "rows without ids: arrays, numbered by the Magu");
    assert.deepEqual(rows.payloads?.map((p) => (p === null ? null : Buffer.from(p).toString())), [null, '{"title":"b"}']);
    const ided = parseVectorRows({ vectors: [{ id: 5, vector: [1, 0] }, { id: "18446744073709551000", vector: [0, 1] }] }, 7n, 2, "hamming");
    assert.equal(ided.jsonl, '{"id":"5","vector":[1,0]}\n{"id":"18446744073709551000","vector":[0,1]}\n');
    assert.equal(ided.payloads, undefined);

    refuses(() => parseVectorRows({ vectors: [{ vector: [1, 2, 3] }, { vector: [1, 2, 3] }, { vector: [1, 2] }] }, 7n, 3, "l2"), 400, "ERR_DIMENSION", "vectors[2].vector", /vectors\[2\]\.vector has 2 components: Magu 7 has dimension 3/);
    refuses(() => parseVectorRows({ vectors: [{ vector: [1, null, 3] }] }, 7n, 3, "l2"), 400, "ERR_BAD_VECTOR", "vectors[0].vector[1]", /not a finite number/);
    refuses(() => parseVectorRows({ vectors: [{ vector: [1, 2] }] }, 7n, 2, "hamming"), 400, "ERR_BAD_VECTOR", "vectors[0].vector[1]", /0 or 1/);
    refuses(() => parseVectorRows({ vectors: [{ id: 1, vector: [1] }, { vector: [2] }] }, 7n, 1, "l2"), 400, "ERR_BAD_ID", "vectors[1].id", /on every row or on none/);
    refuses(() => parseVectorRows({ vectors: [{ id: -1, vector: [1] }] }, 7n, 1, "l2"), 400, "ERR_BAD_ID", "vectors[0].id");
    refuses(() => parseVectorRows({ vectors: [{ id: "18446744073709551615", vector: [1] }] }, 7n, 1, "l2"), 400, "ERR_BAD_ID", "vectors[0].id", /reserved|\[0, /);
    refuses(() => parseVectorRows({ vectors: [{ vector: [1], payload: { t: "x".repeat(MAX_PAYLOAD_BYTES) } }] }, 7n, 1, "l2"), 400, "ERR_BAD_PAYLOAD", "vectors[0].payload");
    refuses(() => parseVectorRows({ vectors: [{ vector: [1], payload: [1] }] }, 7n, 1, "l2"), 400, "ERR_BAD_PARAMETER", "vectors[0].payload");
    refuses(() => parseVectorRows({ vectors: [] }, 7n, 1, "l2"), 400, "ERR_BAD_PARAMETER", "vectors");
    refuses(() => parseVectorRows([[1]], 7n, 1, "l2"), 400, "ERR_BAD_PARAMETER", "body");
  });

  it("checks a search: one query or a batch, k, ef or exact, verify", () => {
    assert.deepEqual(parseSearchBody({ vector: [1, 2] }, 3n, 2, "l2"), { queries: [[1, 2]], batch: false, k: 10, exact: false, verify: true });
    assert.deepEqual(parseSearchBody({ vectors: [[1, 2], [3, 4]], k: 3, ef: 50, verify: false }, 3n, 2, "ip"), { queries: [[1, 2], [3, 4]], batch: true, k: 3, ef: 50, exact: false, verify: false });
    refuses(() => parseSearchBody({ vectors: [[1, 2], [3]] }, 3n, 2, "l2"), 400, "ERR_DIMENSION", "vectors[1]", /Magu 3 has dimension 2/);
    refuses(() => parseSearchBody({ vector: [1, 2], vectors: [[1, 2]] }, 3n, 2, "l2"), 400, "ERR_BAD_PARAMETER", "vector");
    refuses(() => parseSearchBody({}, 3n, 2, "l2"), 400, "ERR_BAD_PARAMETER", "vector");
    refuses(() => parseSearchBody({ vector: [1, 2], k: 0 }, 3n, 2, "l2"), 400, "ERR_BAD_PARAMETER", "k");
    refuses(() => parseSearchBody({ vector: [1, 2], k: 2.5 }, 3n, 2, "l2"), 400, "ERR_BAD_PARAMETER", "k");
    refuses(() => parseSearchBody({ vector: [1, 2], exact: true, ef: 10 }, 3n, 2, "l2"), 400, "ERR_BAD_PARAMETER", "ef");
    refuses(() => parseSearchBody({ vector: [1, 2], exact: "yes" }, 3n, 2, "l2"), 400, "ERR_BAD_PARAMETER", "exact");
  });

  it("creates a Magu from a JSON body with muri magu create's defaults and checks", () => {
    const v = maguParams(jsonMaguOptions({ kind: "vector", dim: 8 }));
    assert.deepEqual(
      { kind: v.kind, dimension: v.dimension, metric: v.metric, replication: v.replication, members: v.members, maxFragments: v.maxFragments, durationPeriods: v.durationPeriods, price: v.pricePerFragmentPeriod },
      { kind: 1, dimension: 8, metric: 1, replication: 1, members: 1, maxFragments: Number(DEFAULT_VECTOR_FRAGMENTS), durationPeriods: CLIENT_DEFAULTS.durationPeriods, price: CLIENT_DEFAULTS.pricePerFragmentPeriod },
    );
    assert.deepEqual(v.defaulted, ["fragments", "periods", "price"]);
    const b = maguParams(jsonMaguOptions({ kind: "blob", dataShards: 2, parityShards: 1, size: 5_000_000, price: "0.5", public: true }));
    assert.deepEqual([b.kind, b.dataShards, b.parityShards, b.members, b.pricePerFragmentPeriod], [0, 2, 1, 3, 5n * 10n ** 17n]);
    assert.equal(b.maxFragments % 3, 0);
    assert.deepEqual(b.defaulted, ["periods"]);
    refuses(() => maguParams(jsonMaguOptions({ kind: "vector" })), 400, "ERR_BAD_PARAMETER", "dim", /dim is required/);
    refuses(() => maguParams(jsonMaguOptions({ kind: "blob", dim: 8 })), 400, "ERR_BAD_PARAMETER", "dim", /applies to vector Magus only/);
    refuses(() => maguParams(jsonMaguOptions({ kind: "vector", dim: 8, metric: "cos" })), 400, "ERR_BAD_PARAMETER", "metric", /not a metric: use l2, ip, cosine, hamming/);
    refuses(() => maguParams(jsonMaguOptions({ kind: "vector", dim: 8, replication: 3, members: 2 })), 400, "ERR_BAD_PARAMETER", "replication");
    refuses(() => maguParams(jsonMaguOptions({ kind: "vector", dim: 8, price: "0" })), 400, "ERR_BAD_PARAMETER", "price");
    refuses(() => maguParams(jsonMaguOptions({ kind: "vector", dim: 8, fragments: 4, size: 10 })), 400, "ERR_BAD_PARAMETER", "size");
    refuses(() => maguParams(jsonMaguOptions({ kind: "tree" })), 400, "ERR_BAD_PARAMETER", "kind");
    refuses(() => jsonMaguOptions({ kind: "vector", dimension: 8 }), 400, "ERR_BAD_PARAMETER", "dimension", /not an option/);
  });

  it("reads Prefer: respond-async among other preferences", () => {
    assert.ok(prefersAsync("respond-async"));
    assert.ok(prefersAsync("return=minimal, respond-async; wait=10"));
    assert.ok(!prefersAsync(undefined));
    assert.ok(!prefersAsync("return=representation"));
  });

  it("keeps at most its limit of operations: the oldest finished one makes room, running ones are never dropped", async () => {
    const ops = new Operations(2, (err) => ({ detail: (err as Error).message }));
    let release!: (v: string) => void;
    const slow = ops.start("add", (progress) => {
      progress({ phase: "pushing", pushed: 1 });
      return new Promise<string>((r) => (release = r));
    });
    const failing = ops.start("put", async () => {
      throw new Error("no members");
    });
    await failing.finished;
    assert.deepEqual([ops.get(failing.view.id)?.state, ops.get(failing.view.id)?.problem], ["failed", { detail: "no members" }]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(ops.get(slow.view.id)?.progress, { pushed: 1, phase: "pushing" });
    const third = ops.start("delete", async () => 3);
    assert.equal(ops.get(failing.view.id), undefined, "the finished one made room");
    assert.equal(ops.get(slow.view.id)?.state, "running");
    await third.finished;
    assert.deepEqual([ops.get(third.view.id)?.state, ops.get(third.view.id)?.result], ["done", 3]);
    ops.start("create", async () => 4);
    assert.equal(ops.get(third.view.id), undefined);
    assert.throws(() => ops.start("task", async () => 5), OperationsFullError, "two running: no room");
    release("ok");
    await slow.finished;
    assert.deepEqual([ops.get(slow.view.id)?.state, ops.get(slow.view.id)?.result], ["done", "ok"]);
    assert.notEqual(slow.view.id, third.view.id);
    assert.match(slow.view.id, /^[0-9a-f]{24}$/);
  });

  it("bounds a body: 413 past the largest size, 507 once the disk's reserve would be touched, checked on the first chunk and every 8 MiB", async () => {
    const chunks = async function* (n: number, size: number): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < n; i++) yield new Uint8Array(size).fill(i);
    };
    const drain = async (body: AsyncIterable<Uint8Array>): Promise<number[]> => {
      const seen: number[] = [];
      for await (const c of body) seen.push(c.length);
      return seen;
    };
    const stopsWith = async (body: AsyncIterable<Uint8Array>, status: number, code: string, passed: number): Promise<void> => {
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const c of body) seen.push(c.length);
        })(),
        (err: unknown) => err instanceof Problem && err.status === status && err.code === code && err.field === "body",
      );
      assert.equal(seen.length, passed, "chunks passed on before the refusal");
    };
    // Exactly the limit passes; one byte more is refused after the chunks within it.
    assert.deepEqual(await drain(boundedBody(chunks(4, 256), { maxBytes: 1024 })), [256, 256, 256, 256]);
    await stopsWith(boundedBody(chunks(5, 256), { maxBytes: 1024 }), 413, "ERR_BODY_TOO_LARGE", 4);
    const dir = await mkdtemp(join(tmpdir(), "muri-bounded-"));
    try {
      const fs = await statfs(dir);
      const free = fs.bavail * fs.bsize;
      assert.deepEqual(await drain(boundedBody(chunks(3, 1024), { maxBytes: 1 << 20, diskDir: dir, reserveBytes: 0 })), [1024, 1024, 1024]);
      // A reserve above what is free: the first chunk is refused.
      await stopsWith(boundedBody(chunks(3, 1024), { maxBytes: 1 << 20, diskDir: dir, reserveBytes: free + 2 ** 40 }), 507, "ERR_DISK_FULL", 0);
      // The disk is read again only after 8 MiB: a reserve reached later stops the body there.
      let reads = 0;
      const limits = {
        maxBytes: 1 << 30,
        diskDir: dir,
        get reserveBytes(): number {
          reads++;
          return reads === 1 ? 0 : free + 2 ** 40;
        },
      };
      await stopsWith(boundedBody(chunks(20, 1024 * 1024), limits), 507, "ERR_DISK_FULL", 8);
      assert.equal(reads, 2, "the free space was read on the first chunk and after 8 MiB");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a streamed put's shards staged on disk keep the reserve: the shard that would pass it is a 507 and is not written; memory staging is not bounded by it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "muri-stage-"));
    const store = await openFragmentStore({ dir: join(dir, "staging"), quotaBytes: 2 ** 30 });
    try {
      const fs = await statfs(dir);
      const free = fs.bavail * fs.bsize;
      const shards = [0, 1, 2].map((i) => Buffer.alloc(4096, i + 1));
      const cids = shards.map((b) => fragmentCid(b));
      // A reserve above what is free: the first shard beyond the memory budget is refused, unwritten.
      const full = new ShardStage(store, { limit: 4096, used: 0 }, { dir, bytes: free + 2 ** 40 });
      await full.put(cids[0]!, shards[0]!); // within the memory budget: no disk involved
      await assert.rejects(full.put(cids[1]!, shards[1]!), (err: unknown) => {
        assert.ok(err instanceof StorageClientError, String(err));
        assert.equal(err.code, "ERR_DISK_FULL");
        assert.match(err.message, new RegExp(`bytes free under ${dir}, the next shard needs 4096, and ${free + 2 ** 40} must stay free \\(muri serve --disk-reserve\\)`));
        assert.deepEqual(err.context.reserveBytes, free + 2 ** 40);
        const problem = asProblem(err);
        assert.deepEqual([problem.status, problem.code], [507, "ERR_DISK_FULL"]);
        return true;
      });
      assert.equal(await store.has(cids[1]!), false, "the refused shard was not written");
      assert.deepEqual(await full.get(cids[0]!), shards[0]);
      await full.clear();
      // No reserve to keep (0): shards beyond the budget go to the store, and clear() removes them.
      const roomy = new ShardStage(store, { limit: 0, used: 0 }, { dir, bytes: 0 });
      for (let i = 0; i < 3; i++) await roomy.put(cids[i]!, shards[i]!);
      for (let i = 0; i < 3; i++) assert.deepEqual(Buffer.from(await roomy.get(cids[i]!)), shards[i]);
      await roomy.clear();
      for (const cid of cids) assert.equal(await store.has(cid), false, "cleared");
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
