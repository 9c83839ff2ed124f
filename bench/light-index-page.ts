/**
 * The page side of bench/light-index.ts, bundled for the browser: `globalThis.benchHeld(params)`
 * generates one seeded Gaussian mixture, packs it into records as a Magu's fragments hold them, and
 * times in this page the three ways the light client could search what it holds:
 *   - `perRecord`: the first light client's loop (each record read into a new Int16Array, a bigint
 *     canonical distance, the best list re-sorted on each insert);
 *   - `scan`: `scanHeld` over the decoded rows (agents/light/held-index.ts);
 *   - `graph`: `HeldGraph` (hnswlib-wasm): its build, and per ef its query time and recall@10
 *     against the scan's exact answer.
 */
import { GRAPH_EF_CONSTRUCTION, GRAPH_M, HeldGraph, HeldRows, scanHeld } from "../agents/light/held-index.js";
import { canonicalDistance, compareHits, quantize, readVector, recordSize, type HitEntry } from "../agents/data/vectors.js";
import { gaussianMixture, packRows } from "../test/agents/index/fixtures.js";

export interface BenchParams {
  count: number;
  dim: number;
  metric: "l2" | "ip";
  queries: number;
  perRecordQueries: number;
  efs: number[];
  seed: number;
}

export interface BenchResult {
  count: number;
  dim: number;
  metric: string;
  decodeMs: number;
  perRecordMs: number;
  scanMs: number;
  scanP99Ms: number;
  graphBuildMs: number;
  graph: { ef: number; queryMs: number; p99Ms: number; recallAt10: number }[];
}

const K = 10;

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

function perRecord(pages: Uint8Array[], dim: number, metric: "l2" | "ip", q: Int16Array): HitEntry[] {
  const rs = recordSize(dim, metric);
  const best: HitEntry[] = [];
  for (const [f, bytes] of pages.entries()) {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let o = 0; o + rs <= bytes.length; o += rs) {
      const hit: HitEntry = { distance: canonicalDistance(metric, q, readVector(bytes, o + 8, dim, metric)), id: buf.readBigUInt64BE(o), fragment: f, position: o / rs };
      if (best.length < K || compareHits(hit, best[best.length - 1]!) < 0) {
        best.push(hit);
        best.sort(compareHits);
        if (best.length > K) best.pop();
      }
    }
  }
  return best;
}

async function benchHeld(p: BenchParams): Promise<BenchResult> {
  const data = gaussianMixture({ count: p.count, dim: p.dim, seed: p.seed });
  const fragments = packRows(data, p.dim, 1 << 20);
  const queries = gaussianMixture({ count: p.queries, dim: p.dim, seed: p.seed }, 2);
  const qs = Array.from({ length: p.queries }, (_, i) => quantize(queries.subarray(i * p.dim, (i + 1) * p.dim), p.dim, i));

  let t = performance.now();
  const held = new HeldRows(p.dim, p.metric);
  fragments.forEach((bytes, f) => held.addRecords(bytes, f, 0, new Set()));
  const decodeMs = performance.now() - t;

  t = performance.now();
  for (let i = 0; i < p.perRecordQueries; i++) perRecord(fragments, p.dim, p.metric, qs[i]!);
  const perRecordMs = (performance.now() - t) / p.perRecordQueries;

  const exact: HitEntry[][] = [];
  const scanTimes: number[] = [];
  const scanLoop = performance.now();
  for (const q of qs) {
    t = performance.now();
    exact.push(scanHeld(held, q, K));
    scanTimes.push(performance.now() - t);
  }
  const scanMs = (performance.now() - scanLoop) / qs.length;
  // The scan must give the first light client's answer.
  for (let i = 0; i < p.perRecordQueries; i++) {
    const want = perRecord(fragments, p.dim, p.metric, qs[i]!).map((h) => `${h.id}:${h.distance}`).join();
    if (exact[i]!.map((h) => `${h.id}:${h.distance}`).join() !== want) throw new Error(`query ${i}: the scan and the per-record loop disagree`);
  }

  const graph = await HeldGraph.build(held, { m: GRAPH_M, efConstruction: GRAPH_EF_CONSTRUCTION });
  const rows: BenchResult["graph"] = [];
  for (const ef of p.efs) {
    // The mean from the whole loop's time: a page's clock is coarse (0.1 ms without cross-origin
    // isolation), finer than one graph search only in sum.
    const times: number[] = [];
    let found = 0;
    const loop = performance.now();
    qs.forEach((q, i) => {
      t = performance.now();
      const hits = graph.search(q, K, ef);
      times.push(performance.now() - t);
      const want = new Set(exact[i]!.map((h) => h.id));
      found += hits.filter((h) => want.has(h.id)).length;
    });
    rows.push({ ef, queryMs: (performance.now() - loop) / qs.length, p99Ms: percentile(times, 0.99), recallAt10: found / (K * qs.length) });
  }
  return {
    count: held.count,
    dim: p.dim,
    metric: p.metric,
    decodeMs,
    perRecordMs,
    scanMs,
    scanP99Ms: percentile(scanTimes, 0.99),
    graphBuildMs: graph.buildMs,
    graph: rows,
  };
}

(globalThis as { benchHeld?: typeof benchHeld }).benchHeld = benchHeld;
