/**
 * A cosine index (metric "cosine": hnswlib's inner-product space over the client's unit vectors)
 * against float brute force: on input of widely varied norms, normalised and quantized as the
 * client does, the exact answer and HNSW at ef = every record rank as float64 cosine does (the
 * raw inner product would not); the metric persists as its own code. Seeded data only.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { canonicalDistance, COSINE_SCALE_EXP, normalizeVector, packVectors, quantize, scaleOfExp } from "../../../agents/data/vectors.js";
import { IndexMismatchError, openVectorIndex, type VectorIndex } from "../../../agents/index/index.js";
import { gaussian, prng } from "./fixtures.js";

const DIM = 16;
const COUNT = 600;
const QUERIES = 25;
const K = 10;

/** Float64 dot product of float32-read vectors. */
function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.fround(a[i]!) * Math.fround(b[i]!);
  return s;
}

/** Ids of the top-k rows of `rows` by `score` (larger first; ties by id). */
function topBy(rows: Float32Array[], score: (v: Float32Array) => number, k: number): bigint[] {
  return rows
    .map((v, id) => ({ id, s: score(v) }))
    .sort((x, y) => y.s - x.s || x.id - y.id)
    .slice(0, k)
    .map((x) => BigInt(x.id));
}

/** Vectors around 12 directions, each scaled by a norm spread over 1e-3..1e3. */
function variedNorms(count: number, seed: number): Float32Array[] {
  const rand = prng(seed);
  const g = gaussian(rand);
  const centres = Array.from({ length: 12 }, () => Array.from({ length: DIM }, () => g()));
  return Array.from({ length: count }, () => {
    const c = centres[Math.floor(rand() * centres.length)]!;
    const norm = 10 ** (6 * rand() - 3);
    return Float32Array.from(c, (x) => (x + g() * 0.6) * norm);
  });
}

describe("vector index: cosine", () => {
  let dir: string;
  let index: VectorIndex;
  const rows = variedNorms(COUNT, 7);
  const queries = variedNorms(QUERIES, 8);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-index-cosine-"));
    index = await openVectorIndex({ dir, dim: DIM, metric: "cosine" });
    const fragments = [...packVectors(rows.map((v, id) => ({ id: BigInt(id), vector: normalizeVector(v, id) })), DIM, 2048, scaleOfExp(COSINE_SCALE_EXP))];
    for (const [f, bytes] of fragments.entries()) await index.addFragment(f, bytes);
    assert.equal(index.stats().size, COUNT);
  });
  after(async () => {
    await index?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const quantizedQuery = (q: Float32Array): Int16Array => Int16Array.from(normalizeVector(q), (x) => Math.round(Math.fround(x) * 2 ** COSINE_SCALE_EXP));

  it("exact and HNSW at ef = every record answer the float cosine top-k; the raw inner product ranks otherwise", () => {
    let ipDiffers = 0;
    for (const q of queries) {
      const cosine = topBy(rows, (v) => dot(q, v) / Math.sqrt(dot(v, v)), K); // |q| is common to all rows
      const ip = topBy(rows, (v) => dot(q, v), K);
      if (ip.join() !== cosine.join()) ipDiffers++;
      const qq = quantizedQuery(q);
      const exact = index.search(qq, K, { exact: true });
      assert.deepEqual(exact.map((h) => h.id), cosine, "exact");
      const best = quantize(normalizeVector(rows[Number(exact[0]!.id)]!), DIM, 0, scaleOfExp(COSINE_SCALE_EXP));
      assert.equal(exact[0]!.distance, canonicalDistance("cosine", qq, best), "the canonical distance: the negated inner product");
      assert.deepEqual(index.search(qq, K, { ef: COUNT }).map((h) => h.id), cosine, "HNSW, ef = every record");
    }
    assert.equal(ipDiffers, QUERIES, "on these norms the raw inner product ranks every query differently");
  });

  it("stores the metric as its own code: reopening as ip is refused", async () => {
    await index.close();
    await assert.rejects(openVectorIndex({ dir, dim: DIM, metric: "ip" }), (e: unknown) => e instanceof IndexMismatchError && e.context.field === "metric" && /holds metric cosine/.test(e.message));
    index = await openVectorIndex({ dir, dim: DIM, metric: "cosine" });
    assert.equal(index.stats().size, COUNT);
    const q = quantizedQuery(queries[0]!);
    assert.deepEqual(index.search(q, K), index.search(q, K, { exact: true }), "the reopened graph answers as before");
  });
});
