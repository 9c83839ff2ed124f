/**
 * Vector index (agents/index): build time, and recall@10 and query time against the exact answer
 * (brute force over the same int16 records) for several ef, on seeded Gaussian-mixture data
 * (test/agents/index/fixtures.ts: 64 clusters, centres N(0, 0.3²), points ± N(0, 0.3²); queries
 * are fresh points of the same mixture). Builds go through the public API: fragments packed like a
 * client's upload, addFragment for each.
 *
 * recall@10 = |HNSW top-10 ∩ exact top-10| / 10, averaged over the queries. Query times are wall
 * milliseconds on a shared machine (they move with the neighbours' load), including the exact
 * re-ranking. Then the worker thread's cost: the saved index opened in this thread and in an
 * IndexWorker (where a node keeps it), searched at ef 64 one query per message, 16 per message, and
 * by 8 callers of one query at once (whose searches share messages);
 * process CPU per query (the worker's included), as ratios to the same searches in this thread.
 *
 * Usage: tsx bench/vector-index.ts [--sets 20000x64,40000x128] [--metrics l2,ip] [--ef 16,32,48,64,96,128]
 *   [--queries 200] [--M 16] [--efc 100] [--clusters 64] [--spread 0.3] [--noise 0.3] [--out bench/results/vector-index.json]
 */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { FRAGMENT_SIZE } from "../agents/data/constants.js";
import { DEFAULT_EF_CONSTRUCTION, DEFAULT_M, IndexWorker, openVectorIndex, type MetricName } from "../agents/index/index.js";
import { gaussianMixture, packRows, quantizeRows } from "../test/agents/index/fixtures.js";

const { values: args } = parseArgs({
  options: {
    sets: { type: "string", default: "20000x64,40000x128" },
    metrics: { type: "string", default: "l2,ip" },
    ef: { type: "string", default: "16,32,48,64,96,128" },
    queries: { type: "string", default: "200" },
    M: { type: "string", default: String(DEFAULT_M) },
    efc: { type: "string", default: String(DEFAULT_EF_CONSTRUCTION) },
    clusters: { type: "string", default: "64" },
    spread: { type: "string", default: "0.3" },
    noise: { type: "string", default: "0.3" },
    out: { type: "string", default: "bench/results/vector-index.json" },
  },
});

const sets = args.sets.split(",").map((s) => s.split("x").map(Number) as [number, number]);
const metrics = args.metrics.split(",") as MetricName[];
const efs = args.ef.split(",").map(Number);
const queryCount = Number(args.queries);
const M = Number(args.M);
const efConstruction = Number(args.efc);
const K = 10;
const mixture = { clusters: Number(args.clusters), spread: Number(args.spread), noise: Number(args.noise) };

interface Row {
  count: number;
  dim: number;
  metric: MetricName;
  M: number;
  efConstruction: number;
  buildSeconds: number;
  unreachable: number;
  exactMs: number;
  results: { ef: number; recallAt10: number; minRecall: number; queryMs: number }[];
  /** Process CPU per query of the same searches in this thread and through an IndexWorker (the node agent's setting). */
  worker: { inThreadUs: number; oneUs: number; batchUs: number; concurrentUs: number };
}

const WORKER_EF = 64;
const WORKER_BATCH = 16;
const WORKER_ROUNDS = 10;
const WORKER_CALLERS = 8;

/**
 * The cost of the worker thread a node keeps its indexes in: the index saved in `dir`, opened in
 * this thread and in an IndexWorker, searched at ef 64 with one query per message and with
 * WORKER_BATCH per message (`searchMany`, what a member does with a request's queries). Process
 * CPU, so the worker's time counts; the least of 3 runs after an untimed one.
 */
async function workerCost(dir: string, dim: number, metric: MetricName, queries: Int16Array[]): Promise<Row["worker"]> {
  const n = queries.length * WORKER_ROUNDS;
  // The least of 3 timed runs (after an untimed one): the machine is shared, and other work only adds.
  const cpuPerQuery = async (run: () => Promise<void> | void): Promise<number> => {
    await run();
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const c0 = process.cpuUsage();
      await run();
      const c = process.cpuUsage(c0);
      best = Math.min(best, (c.user + c.system) / n);
    }
    return best;
  };
  const local = await openVectorIndex({ dir, dim, metric });
  const inThreadUs = await cpuPerQuery(() => {
    for (let r = 0; r < WORKER_ROUNDS; r++) for (const q of queries) local.search(q, K, { ef: WORKER_EF });
  });
  await local.close();
  const host = new IndexWorker();
  try {
    const remote = await host.open({ dir, dim, metric });
    const oneUs = await cpuPerQuery(async () => {
      for (let r = 0; r < WORKER_ROUNDS; r++) for (const q of queries) await remote.search(q, K, { ef: WORKER_EF });
    });
    const batchUs = await cpuPerQuery(async () => {
      for (let r = 0; r < WORKER_ROUNDS; r++) for (let i = 0; i < queries.length; i += WORKER_BATCH) await remote.searchMany(queries.slice(i, i + WORKER_BATCH), K, { ef: WORKER_EF });
    });
    // WORKER_CALLERS callers at once, one query each (a member answering several peers' single
    // searches): the searches asked while a message is with the worker go together in the next.
    const concurrentUs = await cpuPerQuery(async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: WORKER_CALLERS }, async () => {
          for (let i = next++; i < n; i = next++) await remote.search(queries[i % queries.length]!, K, { ef: WORKER_EF });
        }),
      );
    });
    await remote.close();
    return { inThreadUs, oneUs, batchUs, concurrentUs };
  } finally {
    await host.close();
  }
}

const rows: Row[] = [];
for (const [count, dim] of sets) {
  const data = gaussianMixture({ count, dim, seed: 42, ...mixture });
  const queries = quantizeRows(gaussianMixture({ count: queryCount, dim, seed: 42, ...mixture }, 2), dim);
  const fragments = packRows(data, dim, FRAGMENT_SIZE);
  for (const metric of metrics) {
    const dir = await mkdtemp(join(tmpdir(), "muri-bench-index-"));
    try {
      const index = await openVectorIndex({ dir, dim, metric, M, efConstruction, initialCapacity: count });
      let t = performance.now();
      for (let f = 0; f < fragments.length; f++) await index.addFragment(f, fragments[f]!);
      const buildSeconds = (performance.now() - t) / 1000;
      const { unreachable } = index.stats();
      t = performance.now();
      const truth = queries.map((q) => index.search(q, K, { exact: true }).map((h) => h.id));
      const exactMs = (performance.now() - t) / queries.length;
      const results: Row["results"] = [];
      for (const ef of efs) {
        let sum = 0;
        let min = 1;
        t = performance.now();
        const answers = queries.map((q) => index.search(q, K, { ef }).map((h) => h.id));
        const queryMs = (performance.now() - t) / queries.length;
        answers.forEach((ids, i) => {
          const want = new Set(truth[i]);
          const r = ids.filter((id) => want.has(id)).length / K;
          sum += r;
          min = Math.min(min, r);
        });
        results.push({ ef, recallAt10: sum / queries.length, minRecall: min, queryMs });
      }
      await index.close();
      const worker = await workerCost(dir, dim, metric, queries);
      rows.push({ count, dim, metric, M, efConstruction, buildSeconds, unreachable, exactMs, results, worker });
      console.log(`${count}x${dim} ${metric}: build ${buildSeconds.toFixed(1)} s (${Math.round(count / buildSeconds)} records/s), ${unreachable} unreachable, exact ${exactMs.toFixed(1)} ms/query`);
      for (const r of results) console.log(`  ef ${String(r.ef).padStart(4)}  recall@10 ${r.recallAt10.toFixed(4)}  min ${r.minRecall.toFixed(1)}  ${r.queryMs.toFixed(2)} ms/query`);
      console.log(
        `  worker thread at ef ${WORKER_EF}, CPU us/query: in this thread ${worker.inThreadUs.toFixed(0)}, one query a message ${worker.oneUs.toFixed(0)} (${(worker.oneUs / worker.inThreadUs).toFixed(2)}x), ` +
          `${WORKER_BATCH} a message ${worker.batchUs.toFixed(0)} (${(worker.batchUs / worker.inThreadUs).toFixed(2)}x), ` +
          `${WORKER_CALLERS} callers of one query at once ${worker.concurrentUs.toFixed(0)} (${(worker.concurrentUs / worker.inThreadUs).toFixed(2)}x)`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

await mkdir(dirname(args.out), { recursive: true });
await writeFile(
  args.out,
  JSON.stringify({ mixture, date: new Date().toISOString(), cpus: cpus().length, cpu: cpus()[0]?.model, loadavg: loadavg(), node: process.version, queries: queryCount, k: K, rows }, null, 2) + "\n",
);
console.log(`wrote ${args.out}`);
