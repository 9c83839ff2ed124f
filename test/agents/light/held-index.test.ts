/**
 * The light client's search over held records (agents/light/held-index.ts) in Node: the decoded
 * rows and the exact scan against `canonicalDistance` and `compareHits` over the same record bytes,
 * for every metric. The graph (hnswlib-wasm) loads only in a browser: test/agents/cli/devnet.test.ts
 * checks it in headless Chromium.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HeldRows, scanHeld } from "../../../agents/light/held-index.js";
import { CONTROL_ID_MIN, canonicalDistance, compareHits, readVector, recordSize, vectorSize, type HitEntry, type VectorMetric } from "../../../agents/data/vectors.js";

/** A seeded generator (mulberry32), so a failure replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** `count` records of `metric` as a fragment holds them (id, then the vector, big-endian), with small values so distances tie often. */
function records(metric: VectorMetric, dim: number, ids: bigint[], rand: () => number): Buffer {
  const rs = recordSize(dim, metric);
  const out = Buffer.alloc(ids.length * rs);
  ids.forEach((id, r) => {
    out.writeBigUInt64BE(id, r * rs);
    if (metric === "hamming") {
      // Every byte random, the padding bits after `dim` too: they must not count.
      for (let b = 0; b < vectorSize(dim, metric); b++) out[r * rs + 8 + b] = Math.floor(rand() * 256);
    } else {
      for (let c = 0; c < dim; c++) out.writeInt16BE(Math.floor(rand() * 7) - 3 + (rand() < 0.05 ? 32_000 : 0), r * rs + 8 + 2 * c);
    }
  });
  return out;
}

/** The reference: every record read with readVector, ranked by canonicalDistance and compareHits. */
function reference(bytes: Buffer, metric: VectorMetric, dim: number, query: Int16Array | Uint8Array, k: number, fragment: number, first: number, skip: (id: bigint) => boolean): HitEntry[] {
  const rs = recordSize(dim, metric);
  const hits: HitEntry[] = [];
  for (let o = 0, p = first; o + rs <= bytes.length; o += rs, p++) {
    const id = bytes.readBigUInt64BE(o);
    if (skip(id)) continue;
    hits.push({ distance: canonicalDistance(metric, query, readVector(bytes, o + 8, dim, metric)), id, fragment, position: p });
  }
  return hits.sort(compareHits).slice(0, k);
}

describe("held records and the exact scan (agents/light/held-index.ts)", () => {
  for (const [metric, dim] of [["l2", 12], ["ip", 12], ["cosine", 5], ["hamming", 45]] as const) {
    test(`${metric}, dim ${dim}: the scan ranks as canonicalDistance and compareHits do, control and deleted records left out`, () => {
      const rand = prng(dim * 31 + metric.length);
      const deleted = new Set([5n, 77n]);
      for (let round = 0; round < 20; round++) {
        const count = 1 + Math.floor(rand() * 300);
        // Ids shuffled, so ties by distance must be broken by id, not by position.
        const ids = Array.from({ length: count }, (_, i) => BigInt(i * 3 + (round % 3)));
        for (let i = ids.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [ids[i], ids[j]] = [ids[j]!, ids[i]!];
        }
        ids[Math.floor(rand() * count)] = CONTROL_ID_MIN + 3n;
        const bytes = records(metric, dim, ids, rand);
        // Starting small, so the rows grow several times.
        const held = new HeldRows(dim, metric, 4);
        const first = Math.floor(rand() * 100);
        held.addRecords(bytes, 7, first, deleted);
        const skip = (id: bigint): boolean => id >= CONTROL_ID_MIN || deleted.has(id);
        assert.equal(held.count, ids.filter((id) => !skip(id)).length);
        const q = metric === "hamming" ? readVector(records(metric, dim, [0n], rand), 8, dim, metric) : Int16Array.from({ length: dim }, () => Math.floor(rand() * 7) - 3);
        for (const k of [1, 10, count + 5]) {
          const got = scanHeld(held, q, k);
          const want = reference(bytes, metric, dim, q, k, 7, first, skip);
          assert.deepEqual(got, want, `round ${round}, ${count} records, k ${k}`);
        }
      }
    });
  }

  test("rows from several pages keep each record's fragment and position", () => {
    const rand = prng(3);
    const dim = 4;
    const held = new HeldRows(dim, "l2", 1);
    const pages = [
      { fragment: 2, first: 0, bytes: records("l2", dim, [10n, 11n, 12n], rand) },
      { fragment: 2, first: 3, bytes: records("l2", dim, [13n, 14n], rand) },
      { fragment: 9, first: 0, bytes: records("l2", dim, [1n], rand) },
    ];
    for (const p of pages) held.addRecords(p.bytes, p.fragment, p.first, new Set());
    const all = scanHeld(held, new Int16Array(dim), 10);
    const where = new Map(all.map((h) => [h.id, [h.fragment, h.position]]));
    assert.deepEqual(
      [...where.entries()].sort((a, b) => Number(a[0] - b[0])),
      [[1n, [9, 0]], [10n, [2, 0]], [11n, [2, 1]], [12n, [2, 2]], [13n, [2, 3]], [14n, [2, 4]]],
    );
    // A trailing partial record is not a record.
    const partial = new HeldRows(dim, "l2");
    partial.addRecords(records("l2", dim, [1n, 2n], rand).subarray(0, recordSize(dim) + 3), 0, 0, new Set());
    assert.equal(partial.count, 1);
  });
});
