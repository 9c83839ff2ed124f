/**
 * A Hamming index (metric "hamming": hnswlib's l2 space over the bits as 0/1 floats, re-ranked by
 * popcount) against brute force over the packed bits: 3,000 clustered 256-bit vectors (plus a
 * 300-bit index for a partial last byte). Exact search and HNSW at ef = every record give the
 * brute-force top-k with its distances; the default effort's recall@10 is printed and asserted;
 * the metric persists as code 4; an int16 query is refused. Seeded data only.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { compareHits, hammingDistance, packRecords, recordSize } from "../../../agents/data/vectors.js";
import { DEFAULT_EF_SEARCH } from "../../../agents/index/constants.js";
import { IndexMismatchError, IndexOptionError, openVectorIndex, type VectorIndex } from "../../../agents/index/index.js";
import { bitMixture } from "./fixtures.js";

const K = 10;

/** The top-k of packed rows by (popcount distance, id), ids = row numbers. */
function bruteForce(rows: Uint8Array, width: number, q: Uint8Array, k: number): { id: bigint; distance: bigint }[] {
  const all = [];
  for (let r = 0; r < rows.length / width; r++) all.push({ id: BigInt(r), distance: BigInt(hammingDistance(q, rows.subarray(r * width, (r + 1) * width))) });
  return all.sort(compareHits).slice(0, k);
}

async function buildIndex(dir: string, dim: number, rows: Uint8Array): Promise<VectorIndex> {
  const width = Math.ceil(dim / 8);
  const index = await openVectorIndex({ dir, dim, metric: "hamming" });
  const records = Array.from({ length: rows.length / width }, (_, r) => ({ id: BigInt(r), values: rows.subarray(r * width, (r + 1) * width) }));
  const fragments = [...packRecords(records, dim, 200 * recordSize(dim, "hamming"), "hamming")];
  for (const [f, bytes] of fragments.entries()) assert.equal(await index.addFragment(f, bytes), Math.min(200, records.length - 200 * f));
  return index;
}

describe("vector index: hamming", () => {
  const DIM = 256;
  const WIDTH = DIM / 8;
  const COUNT = 3000;
  const QUERIES = 40;
  // Queries from the data's own mixture (held out), and uniform random bits far from every cluster.
  const mixture = bitMixture({ count: COUNT + QUERIES, dim: DIM, seed: 21, clusters: 40, flip: 0.12 });
  const rows = mixture.subarray(0, COUNT * WIDTH);
  const queries = mixture.subarray(COUNT * WIDTH);
  const random = bitMixture({ count: QUERIES, dim: DIM, seed: 22, clusters: QUERIES, flip: 0 });
  const near = Array.from({ length: QUERIES }, (_, i) => {
    const q = Uint8Array.from(rows.subarray(i * 71 * WIDTH, (i * 71 + 1) * WIDTH));
    q[i % WIDTH]! ^= 0x24; // a stored vector, two bits changed
    return q;
  });
  let dir: string;
  let index: VectorIndex;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-index-hamming-"));
    index = await buildIndex(dir, DIM, rows);
    assert.equal(index.stats().size, COUNT);
  });
  after(async () => {
    await index?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("exact and HNSW at ef = every record answer the brute-force popcount top-k, distances included", () => {
    const sets = [queries, random].flatMap((set) => Array.from({ length: QUERIES }, (_, i) => set.subarray(i * WIDTH, (i + 1) * WIDTH)));
    for (const q of [...sets, ...near]) {
      const truth = bruteForce(rows, WIDTH, q, K);
      const strip = (hits: { id: bigint; distance: bigint }[]) => hits.map((h) => ({ id: h.id, distance: h.distance }));
      assert.deepEqual(strip(index.search(q, K, { exact: true })), truth, "exact");
      assert.deepEqual(strip(index.search(q, K, { ef: COUNT })), truth, "HNSW, ef = every record");
    }
    const q = near[0]!;
    assert.equal(index.search(q, 1, { exact: true })[0]!.distance, 2n, "a stored vector two bits away");
  });

  it(`recall@10 at the default ef (${DEFAULT_EF_SEARCH}) is stated: at least 0.98 near the data, 0.85 far from it`, () => {
    const recall = (set: Uint8Array): number => {
      let found = 0;
      for (let i = 0; i < QUERIES; i++) {
        const q = set.subarray(i * WIDTH, (i + 1) * WIDTH);
        // Ties at the k-th distance make ids interchangeable: count hits within the true k-th distance.
        const kth = bruteForce(rows, WIDTH, q, K)[K - 1]!.distance;
        found += index.search(q, K).filter((h) => h.distance <= kth).length;
      }
      return found / (QUERIES * K);
    };
    const near = recall(queries);
    const far = recall(random);
    console.log(`hamming ${COUNT} x ${DIM} bits, 40 clusters: recall@10 at ef ${DEFAULT_EF_SEARCH} = ${near.toFixed(4)} (held-out queries), ${far.toFixed(4)} (uniform random queries)`);
    assert.ok(near >= 0.98, `recall@10 near the data ${near}`);
    assert.ok(far >= 0.85, `recall@10 far from the data ${far}`);
  });

  it("refuses an int16 query or a query of another width", () => {
    assert.throws(() => index.search(new Int16Array(DIM), K), (e: unknown) => e instanceof IndexOptionError && /must be a Uint8Array of 32 bytes \(256 packed bits\)/.test(e.message));
    assert.throws(() => index.search(new Uint8Array(31), K), IndexOptionError);
  });

  it("stores the metric as code 4: reopening as l2 is refused, as hamming answers as before", async () => {
    await index.close();
    await assert.rejects(openVectorIndex({ dir, dim: DIM, metric: "l2" }), (e: unknown) => e instanceof IndexMismatchError && e.context.field === "metric" && /holds metric hamming/.test(e.message));
    index = await openVectorIndex({ dir, dim: DIM, metric: "hamming" });
    assert.equal(index.stats().size, COUNT);
    const q = queries.subarray(0, WIDTH);
    assert.deepEqual(index.search(q, K, { ef: COUNT }), index.search(q, K, { exact: true }));
  });
});

describe("vector index: hamming, a partial last byte", () => {
  it("300-bit vectors: exact and ef = all equal brute force", async () => {
    const dim = 300;
    const width = 38;
    const rows = bitMixture({ count: 500, dim, seed: 5, clusters: 10 });
    const dir = await mkdtemp(join(tmpdir(), "muri-index-hamming-300-"));
    const index = await buildIndex(dir, dim, rows);
    try {
      const queries = bitMixture({ count: 10, dim, seed: 6, clusters: 10 });
      for (let i = 0; i < 10; i++) {
        const q = queries.subarray(i * width, (i + 1) * width);
        const truth = bruteForce(rows, width, q, K);
        assert.deepEqual(index.search(q, K, { exact: true }).map((h) => [h.id, h.distance]), truth.map((h) => [h.id, h.distance]));
        assert.deepEqual(index.search(q, K, { ef: 500 }).map((h) => [h.id, h.distance]), truth.map((h) => [h.id, h.distance]));
      }
    } finally {
      await index.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
