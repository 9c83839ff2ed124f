/**
 * Vector search (issue 5): a vector Magu on a 5-node network against one in-process HNSW index over
 * the same data, same run, same machine.
 *
 * Data: a seeded Gaussian mixture (test/agents/index/fixtures.ts: 64 clusters, centres N(0, 0.3²),
 * points ± N(0, 0.3²)), `--count` vectors of `--dim`, and `--queries` fresh points of the same
 * mixture. Ground truth: brute-force top-10 by the canonical distance (data/vectors.ts
 * `canonicalDistance` over the quantized rows), ids = row numbers (what the client assigns).
 *
 *   - single node (baseline): agents/index `openVectorIndex` with every record in one index (same
 *     M and efConstruction as the nodes, fragments packed as the client packs them). It is built
 *     and saved by a child process (this file with `--build-baseline DIR`) while this process
 *     computes the ground truth, starts the network and creates the Magu; the first add waits for
 *     it (it must not slow the pushes). Then it is opened and searched in this process. hnswlib's
 *     search is synchronous, so "8 in flight" is the sequential rate on one core; its CPU ms per
 *     query are given beside it.
 *   - distributed: `hardhat node` with 1-second blocks and automine off, 5 node processes and one
 *     validator (test/agents/roles/e2e-helpers.ts, as e2e-vector), a vector Magu with r = 2 made
 *     with `muri magu create`, `VectorClient.add` of the vectors as one .npy file (or, with
 *     `--batch N`, appended batches of N rounded down to whole fragments, each indexed before the
 *     next) (timed: the add calls, i.e. deliveries and commits; and until every member has
 *     indexed every fragment it holds, checked by asking each node directly after each add), then `VectorClient.search` (greedy cover of the
 *     fragments by members, fan-out, merge; each hit's proof checked, the default) at each `--ef`:
 *     recall@10, p50/p99 of sequential queries (and again with `verify: false`), QPS with `--concurrency` queries in flight, CPU ms per query over client + nodes +
 *     validator + chain (from /proc), less what the idle network burns (measured for 5 s before);
 *     and QPS of `VectorClient.searchBatch` (verified) with `--batch-queries` queries per call and
 *     `--batches-in-flight` calls at once, over the queries 4 times, with its recall and CPU.
 *   - where the time goes: round trips of single requests from a separate libp2p peer to one
 *     member (a search at the same ef, and a k=1 ef=1 search: libp2p stream + JSON + dispatch).
 *   - on-chain: `--tasks` `searchOnChain` tasks submitted together: blocks and chain seconds
 *     (block timestamps) from submit to finalize, and whether each result equals the brute force.
 *
 * Ratios: distributed QPS / single-node QPS at the same recall, the single-node side being its
 * fastest ef whose recall@10 is at least the distributed one (swept over `--baseline-ef`).
 * Prints a table and writes bench/results/search.json.
 *
 *   tsx bench/search.ts [--count 100000] [--dim 128] [--queries 256] [--ef 16,32,64,128,256]
 *     [--baseline-ef 8,12,16,24,32,48,64,96,128,192,256,384,512] [--concurrency 8] [--batch-queries 16] [--batches-in-flight 2]
 *     [--batch N] [--tasks 4] [--seed 42]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { PeerId } from "@libp2p/interface";
import type { Hex } from "viem";
import { writeNpy } from "../agents/data/vector-files.js";
import { canonicalDistance, compareHits, type HitEntry } from "../agents/data/vectors.js";
import { challengeManagerAbi, maguRegistryAbi } from "../agents/chain/index.js";
import { fragmentsOfSlot, holdersVector } from "../agents/data/placement.js";
import { DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M, openVectorIndex, type VectorIndex } from "../agents/index/index.js";
import { createP2PNode, searchRequest, type P2PNode } from "../agents/p2p/index.js";
import { createVectorClient, VECTOR_CLIENT_DEFAULTS, type VectorClient } from "../agents/roles/client/vector-client.js";
import { encodeQuery } from "../agents/roles/shared/vector-service.js";
import { decodeSearchAnswer } from "../agents/roles/shared/search-wire.js";
import { cleanup } from "../test/agents/chain/harness.js";
import { muri } from "../test/agents/cli/run-muri.js";
import { gaussianMixture, packRows, quantizeRows } from "../test/agents/index/fixtures.js";
import { killAllNodes, startNetwork, waitFor, type Network, type ValidatorProcess } from "../test/agents/roles/e2e-helpers.js";

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LOG_DIR = join(tmpdir(), "muri-bench-search-logs");
const RESULTS = fileURLToPath(new URL("./results/search.json", import.meta.url));
const GAS = fileURLToPath(new URL("../snapshots/gas.json", import.meta.url));
const K = 10;
const NODES = 5;
const REPLICATION = 2;
const CLIENT = NODES + 1;
const VALIDATOR = NODES + 2;
const GOAL_RECALL = 0.95;
const GOAL_RATIO = 0.5;
/** How long the members may take to index everything after `add` returns. */
const INDEX_TIMEOUT_MS = 900_000;

const { values: args } = parseArgs({
  options: {
    count: { type: "string", default: "100000" },
    dim: { type: "string", default: "128" },
    queries: { type: "string", default: "256" },
    ef: { type: "string", default: "16,32,64,128,256" },
    "baseline-ef": { type: "string", default: "8,12,16,24,32,48,64,96,128,192,256,384,512" },
    concurrency: { type: "string", default: "8" },
    /** Queries per VectorClient.searchBatch call, and batches in flight, for the batched QPS. */
    "batch-queries": { type: "string", default: "16" },
    "batches-in-flight": { type: "string", default: "2" },
    /** Vectors per add (default: all of them in one add). */
    batch: { type: "string" },
    tasks: { type: "string", default: "4" },
    seed: { type: "string", default: "42" },
    /** Child mode: build the single-node index into this directory, save it, print its build figures. */
    "build-baseline": { type: "string" },
  },
});

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}
const intList = (name: string, value: string): number[] => value.split(",").map((v) => positiveInt(name, v.trim()));

const count = positiveInt("count", args.count);
const dim = positiveInt("dim", args.dim);
const queryCount = positiveInt("queries", args.queries);
const efs = intList("ef", args.ef);
const baselineEfs = intList("baseline-ef", args["baseline-ef"]);
const concurrency = positiveInt("concurrency", args.concurrency);
const batchQueries = positiveInt("batch-queries", args["batch-queries"]);
const batchesInFlight = positiveInt("batches-in-flight", args["batches-in-flight"]);
/** The queries are searched this many times over for the batched QPS (a pass alone is a few batches). */
const BATCH_PASSES = 4;
const batchSize = args.batch === undefined ? count : positiveInt("batch", args.batch);
const taskCount = positiveInt("tasks", args.tasks);
const seed = positiveInt("seed", args.seed);
if (taskCount > queryCount) throw new Error(`--tasks (${taskCount}) must not exceed --queries (${queryCount})`);

const t0 = performance.now();
const loads: Array<{ phase: string; at: number; load1: number }> = [];
function note(msg: string): void {
  const at = (performance.now() - t0) / 1000;
  const load1 = loadavg()[0]!;
  loads.push({ phase: msg, at: Number(at.toFixed(1)), load1: Number(load1.toFixed(2)) });
  console.error(`# [${at.toFixed(0)} s, load ${load1.toFixed(1)}] ${msg}`);
}

// ------------------------------------------------------------------------------------ helpers

/** Nearest-rank percentile of `xs` (0 < p <= 100). */
function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** CPU seconds (user + system) a process has used so far, from /proc (0 once it is gone). */
function cpuOf(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ = 100
  } catch {
    return 0;
  }
}

/** CPU seconds per group of processes between this call and the returned function's call. */
function cpuMeter(groups: Record<string, number[]>): () => Record<string, number> {
  const before = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.map(cpuOf)]));
  return () => Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.reduce((sum, pid, i) => sum + cpuOf(pid) - before[name]![i]!, 0)]));
}

/** Resident and peak resident memory of a process, MiB (/proc/PID/status VmRSS, VmHWM). */
function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMiB: kib("VmRSS") / 1024, peakMiB: kib("VmHWM") / 1024 };
}

/** The `hardhat node` process listening on `port` (found by its command line), if any. */
function chainPid(port: number): number | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (cmd.some((a) => a.endsWith("hardhat") || a.includes("hardhat/dist")) && cmd.includes("node") && cmd.includes(String(port))) return Number(entry);
    } catch {
      // gone
    }
  }
  return undefined;
}

/**
 * Brute-force top-k of `q` over `flat` (rows of `dim` int16, ids = row numbers) by (canonical
 * distance, id). The scan computes Σ (q_i − v_i)² as a JS number, exact (every partial sum is
 * below 2^53), so its order is the canonical order; the winners' distances are then taken from
 * data/vectors.ts `canonicalDistance` and must agree with the scan.
 */
function bruteTop(q: Int16Array, flat: Int16Array, rows: readonly Int16Array[]): HitEntry[] {
  const n = rows.length;
  const bestD = new Float64Array(K).fill(Infinity);
  const bestR = new Int32Array(K).fill(-1);
  for (let r = 0, o = 0; r < n; r++, o += dim) {
    let sum = 0;
    for (let c = 0; c < dim; c++) {
      const d = q[c]! - flat[o + c]!;
      sum += d * d;
    }
    // rows come in id order, so among equal distances the earlier row wins
    if (sum >= bestD[K - 1]!) continue;
    let i = K - 1;
    while (i > 0 && sum < bestD[i - 1]!) {
      bestD[i] = bestD[i - 1]!;
      bestR[i] = bestR[i - 1]!;
      i--;
    }
    bestD[i] = sum;
    bestR[i] = r;
  }
  const top: HitEntry[] = [];
  for (let i = 0; i < Math.min(K, n); i++) {
    const r = bestR[i]!;
    const distance = canonicalDistance("l2", q, rows[r]!);
    if (distance !== BigInt(bestD[i]!)) throw new Error(`ground truth: row ${r} scanned at ${bestD[i]}, canonicalDistance says ${distance}`);
    top.push({ id: BigInt(r), distance, fragment: 0, position: 0 });
  }
  top.sort(compareHits);
  return top;
}

/** recall@10 of one answer against the truth. */
function recallOf(got: readonly { id: bigint }[], want: readonly HitEntry[]): number {
  const ids = new Set(want.map((h) => h.id));
  return got.filter((h) => ids.has(h.id)).length / want.length;
}

/** Runs `fn(i)` for i in [0, n) with `inFlight` calls at a time; returns the wall ms. */
async function inParallel(n: number, inFlight: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  return performance.now() - started;
}

interface Measured {
  ef: number;
  recallAt10: number;
  minRecall: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  qps: number;
  /** CPU ms per query during the QPS run, all processes involved. */
  cpuMsPerQuery: number;
  cpuByProcess?: Record<string, number>;
}

// --------------------------------------------------------------------------------------- main

/** Why members failed searches (the client's warnings, by their first words), so an incomplete count has its reasons. */
const failures = new Map<string, number>();
const failureTally = {
  debug() {},
  info() {},
  error() {},
  warn(msg: string, ctx?: Record<string, unknown>) {
    const detail = String(ctx?.error ?? ctx?.reason ?? "").replace(/[0-9]+/g, "N").slice(0, 80);
    const key = `${msg}: ${detail}`;
    failures.set(key, (failures.get(key) ?? 0) + 1);
  },
};

let net: Network | undefined;
let validator: ValidatorProcess | undefined;
let client: VectorClient | undefined;
let probe: P2PNode | undefined;
let baselineDir: string | undefined;

async function main(): Promise<void> {
  // The single-node index is built in a child process from the same seeded data, while this
  // process computes the ground truth, starts the network and adds the vectors (same load for both).
  baselineDir = await mkdtemp(join(tmpdir(), "muri-bench-search-index-"));
  const build = buildBaselineChild(baselineDir);
  note(`data: ${count} x ${dim} Gaussian mixture (seed ${seed}), ${queryCount} queries; single-node index building in a child process`);
  const data = gaussianMixture({ count, dim, seed });
  const queries = gaussianMixture({ count: queryCount, dim, seed }, 2);
  const rows = quantizeRows(data, dim);
  const flat = new Int16Array(count * dim);
  rows.forEach((r, i) => flat.set(r, i * dim));
  const qRows = quantizeRows(queries, dim);
  const query = (i: number): Float32Array => queries.subarray(i * dim, (i + 1) * dim);
  let t = performance.now();
  const truth = qRows.map((q) => bruteTop(q, flat, rows));
  const truthMsPerQuery = (performance.now() - t) / queryCount;
  note(`ground truth (brute force, canonicalDistance): ${truthMsPerQuery.toFixed(1)} ms/query`);

  // ---------------------------------------------------------------------------- the network
  t = performance.now();
  // The measuring client is the only searcher: members let it use a whole second of search time per
  // second (--search-peer-ms 1000); at the default quarter second a client past ~60 searches/s is
  // answered "busy", the budget protecting members from one peer as designed.
  net = await startNetwork({ prefix: "muri-bench-search-", nodes: NODES, fund: [CLIENT, VALIDATOR], blockMs: 1000, automine: false, nodeArgs: () => ["--search-peer-ms", "1000"] });
  validator = await net.startValidator(VALIDATOR, ["--audit-ms", "0"]);
  const networkSeconds = (performance.now() - t) / 1000;
  note(`network up: hardhat node, ${NODES} nodes, 1 validator in ${networkSeconds.toFixed(1)} s`);
  const chainArgs = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[CLIENT]!];
  // One add, or batches of whole fragments: either way the Magu's fragments are the single-node index's.
  const perFragment = Math.floor(VECTOR_CLIENT_DEFAULTS.fragmentSize / (8 + 2 * dim));
  const batch = batchSize >= count ? count : Math.max(perFragment, Math.floor(batchSize / perFragment) * perFragment);
  const maxFragments = Math.ceil(count / perFragment) + 8;
  t = performance.now();
  const created = await muri(
    ["magu", "create", "--kind", "vector", "--dim", String(dim), "--metric", "l2", "--replication", String(REPLICATION), "--members", String(NODES),
      // Public: the probe below asks members directly, without a grant (Magus are private by default).
      "--fragments", String(maxFragments), "--periods", "10000", "--price", "0.000001", "--public", "--json", ...chainArgs],
    {},
    180_000,
  );
  if (created.code !== 0) throw new Error(`muri magu create failed (${created.code}):\n${created.stderr}`);
  const maguId = BigInt((JSON.parse(created.stdout) as { id: string }).id);
  const createSeconds = (performance.now() - t) / 1000;
  note(`Magu ${maguId} (vector, r=${REPLICATION}, ${NODES} members) created and formed in ${createSeconds.toFixed(1)} s`);
  const formedBlock = await net.head();

  client = createVectorClient({ dir: join(net.dir, "client"), deployment: net.deployment, rpcUrl: net.chain.rpcUrl, privateKey: net.chain.keys[CLIENT]! as Hex }, { logger: failureTally });
  await client.start();
  const chain = chainPid(net.chain.port);
  const pids: Record<string, number[]> = {
    client: [process.pid],
    nodes: net.nodes.map((n) => n.pid),
    validator: [validator.pid],
    ...(chain !== undefined ? { chain: [chain] } : {}),
  };
  // A separate libp2p peer asks each member directly what it has indexed.
  probe = await createP2PNode({
    listen: [],
    source: { has: () => false, get: () => Promise.reject(new Error("the probe serves nothing")) },
    sink: { put: () => Promise.reject(new Error("the probe takes no pushes")) },
    acceptPush: () => false,
    dht: { clientMode: true },
  });
  await probe.start();
  const peers = new Map<string, PeerId>();
  for (const n of net.nodes) peers.set(n.address.toLowerCase(), (await probe.addPeers(n.multiaddrs))[0]!);
  const ask = async (address: string, request: Record<string, unknown>): Promise<{ hits: unknown[]; fragments: number[] }> => {
    const answer = await searchRequest(probe!.libp2p, peers.get(address.toLowerCase())!, { magu: maguId.toString(), ...request }, { limits: { timeoutMs: 60_000 } });
    if (!(answer instanceof Uint8Array)) throw new Error(`node ${address}: ${(answer as { error?: string } | undefined)?.error ?? "malformed answer"}`);
    const { hits, fragments } = decodeSearchAnswer(answer, 1, request.k as number);
    return { hits: hits[0]!, fragments };
  };
  type Member = { node: Network["nodes"][number]; slot: number; held: number[] };
  /** The Magu's members now (a member evicted for missed proofs leaves its slot vacant: reported, skipped). */
  const currentMembers = async (): Promise<{ members: Member[]; vacant: number[]; fragmentCount: number }> => {
    const info = await net!.read.maguRegistry.read.maguInfo([maguId]);
    const members: Member[] = [];
    const vacant: number[] = [];
    for (const [slot, address] of info.members.entries()) {
      if (/^0x0{40}$/i.test(address)) {
        vacant.push(slot);
        continue;
      }
      const node = net!.nodes.find((n) => n.address.toLowerCase() === address.toLowerCase());
      if (node === undefined) throw new Error(`Magu ${maguId}: member ${address} in slot ${slot} is none of the bench's node processes`);
      members.push({ node, slot, held: fragmentsOfSlot(maguId, info.fragmentCount, NODES, slot, { replication: REPLICATION }) });
    }
    return { members, vacant, fragmentCount: info.fragmentCount };
  };
  const exactProbe = { op: "search", query: encodeQuery(qRows[0]!), k: K, exact: true };
  /** Waits until every member has indexed every fragment it holds. */
  const waitIndexed = async (): Promise<Member[]> => {
    let lastReport = performance.now();
    return waitFor(
      "every member to index the fragments it holds",
      INDEX_TIMEOUT_MS,
      async () => {
        const { members } = await currentMembers();
        const indexed = await Promise.all(members.map(async (m) => (await ask(m.node.address, exactProbe).catch(() => ({ fragments: [] as number[] }))).fragments.length));
        if (members.every((m, i) => indexed[i] === m.held.length)) return members;
        if (performance.now() - lastReport > 30_000) {
          lastReport = performance.now();
          note(`indexing: ${members.map((m, i) => `${indexed[i]}/${m.held.length}`).join(", ")} fragments per member`);
        }
        return undefined;
      },
      1_000,
    );
  };

  // The single-node build has the machine to itself from here on (it must not slow the pushes).
  const baselineBuild = await build;
  note(`single-node index: ${baselineBuild.fragments} fragments built in ${baselineBuild.wallSeconds.toFixed(1)} s (${baselineBuild.cpuSeconds.toFixed(1)} CPU s) in the child`);

  // One add of everything by default: the client delivers each commit group's fragments and
  // collects the members' acknowledgements before it commits them, so a long add no longer gets
  // members challenged on fragments they have not received (it evicted them once). `--batch`
  // appends in batches instead, each indexed before the next (the per-batch cost as the Magu grows).
  const batches: Array<{ vectors: number; fragments: number; addSeconds: number; indexedSeconds: number }> = [];
  const cpu = cpuMeter(pids);
  const addStarted = performance.now();
  for (let from = 0; from < count; from += batch) {
    const n = Math.min(batch, count - from);
    const path = join(net.dir, `vectors-${from}.npy`);
    await writeNpy(path, data.subarray(from * dim, (from + n) * dim), dim);
    t = performance.now();
    const added = await client.add(maguId, path);
    if (added.firstRow !== from) throw new Error(`batch at row ${from}: the client numbered it from ${added.firstRow}`);
    // The ground truth and the probe's queries are quantized at 2^14: the mixture (|x| in [1, 2)) gets it.
    if (added.scaleExp !== 14) throw new Error(`the Magu's quantization scale is 2^${added.scaleExp}, the ground truth assumes 2^14`);
    const addSeconds = (performance.now() - t) / 1000;
    await waitIndexed();
    batches.push({ vectors: added.vectors, fragments: added.fragments, addSeconds, indexedSeconds: (performance.now() - t) / 1000 });
    if (batches.length % 5 === 0 || from + n >= count) {
      note(`added ${from + n} vectors in ${batches.length} batches (last: ${added.fragments} fragments, add ${addSeconds.toFixed(1)} s, indexed after ${batches.at(-1)!.indexedSeconds.toFixed(1)} s)`);
    }
  }
  const addSeconds = batches.reduce((a, b) => a + b.addSeconds, 0);
  const indexedSeconds = (performance.now() - addStarted) / 1000;
  const addCpu = cpu();
  const { members, vacant, fragmentCount } = await currentMembers();
  if (vacant.length > 0) note(`WARNING: Magu ${maguId} has vacant slot(s) ${vacant.join(",")} (a member was evicted); measuring with ${members.length} members`);
  note(
    `add: ${count} vectors, ${fragmentCount} fragments, ${batches.length} batches: add calls ${addSeconds.toFixed(1)} s in total, everything indexed ${indexedSeconds.toFixed(1)} s after the first add ` +
      `(held per member: ${members.map((m) => m.held.length).join(", ")})`,
  );
  const info = { fragmentCount };
  // Memory per node once everything is indexed (the agent, its index worker and its store's caches).
  const nodeMemory = net.nodes.map((n) => memoryOf(n.pid));
  note(`memory per node after indexing, MiB (resident / peak): ${nodeMemory.map((m) => `${m.rssMiB.toFixed(0)} / ${m.peakMiB.toFixed(0)}`).join(", ")}; the single-node build's peak, with its copy of the data: ${baselineBuild.peakRssMiB.toFixed(0)}`);
  // The first HNSW search after a change walks the whole graph once: do it on every member now.
  t = performance.now();
  await Promise.all(members.map((m) => ask(m.node.address, { op: "search", query: encodeQuery(qRows[0]!), k: K })));
  const nodeSweepSeconds = (performance.now() - t) / 1000;
  // Warm-up (JIT, connections, the client's Magu view), not measured.
  for (let i = 0; i < 20; i++) {
    const r = await client.search(maguId, query(i % queryCount), K);
    if (r.uncovered.length > 0 || r.failed > 0) throw new Error(`warm-up search: ${r.uncovered.length} fragments uncovered, ${r.failed} members failed`);
  }
  note(`nodes' reachability walks ${nodeSweepSeconds.toFixed(1)} s; warm-up done`);

  // ------------------------------------------------------------ single-node index, loaded
  t = performance.now();
  const index: VectorIndex = await openVectorIndex({ dir: baselineDir, dim, metric: "l2", M: DEFAULT_M, efConstruction: DEFAULT_EF_CONSTRUCTION });
  const { unreachable, size } = index.stats(); // loads, then the reachability walk, once, outside the measurements
  if (size !== count) throw new Error(`the single-node index holds ${size} records, expected ${count}`);
  const baselineLoadSeconds = (performance.now() - t) / 1000;
  note(`single-node index opened and walked in ${baselineLoadSeconds.toFixed(1)} s, ${unreachable} unreachable`);

  // Background CPU of the idle network (mining, event polling), subtracted from the search figures.
  const idleMeter = cpuMeter(pids);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const idleCpuPerSecond = Object.fromEntries(Object.entries(idleMeter()).map(([k, v]) => [k, v / 5]));
  const idleTotal = Object.values(idleCpuPerSecond).reduce((a, b) => a + b, 0);
  note(`idle network CPU: ${JSON.stringify(Object.fromEntries(Object.entries(idleCpuPerSecond).map(([k, v]) => [k, Number(v.toFixed(3))])))} CPU s per s`);

  // ---------------------------------------------------------------- distributed searches
  // Every distributed figure is of verified searches (the client's default: each hit's Merkle proof
  // checked against the root on chain); the latency is measured again without verification.
  const distributed: Array<
    Measured & {
      asked: number;
      incomplete: number;
      cpuMsPerQueryNet: number;
      unverifiedP50Ms: number;
      unverifiedP99Ms: number;
      batched: { queriesPerBatch: number; inFlight: number; recallAt10: number; qps: number; cpuMsPerQueryNet: number; cpuByProcess: Record<string, number> };
    }
  > = [];
  for (const ef of efs) {
    const options = ef === DEFAULT_EF_SEARCH ? {} : { ef }; // the nodes' default effort is sent as "unset"
    const lat: number[] = [];
    let recall = 0;
    let minRecall = 1;
    let asked = 0;
    let incomplete = 0;
    for (let i = 0; i < queryCount; i++) {
      const started = performance.now();
      const r = await client.search(maguId, query(i), K, options);
      lat.push(performance.now() - started);
      const rc = recallOf(r.hits, truth[i]!);
      recall += rc;
      minRecall = Math.min(minRecall, rc);
      asked += r.asked;
      if (r.uncovered.length > 0 || r.failed > 0 || !r.verified || r.rejected.length > 0) incomplete++;
    }
    const unverified: number[] = [];
    for (let i = 0; i < queryCount; i++) {
      const started = performance.now();
      const r = await client.search(maguId, query(i), K, { ...options, verify: false });
      unverified.push(performance.now() - started);
      if (r.uncovered.length > 0 || r.failed > 0) incomplete++;
    }
    const meter = cpuMeter(pids);
    const wall = await inParallel(queryCount, concurrency, async (i) => {
      const r = await client!.search(maguId, query(i), K, options);
      if (r.uncovered.length > 0 || r.failed > 0) incomplete++;
    });
    const used = meter();
    const cpuTotal = Object.values(used).reduce((a, b) => a + b, 0);
    // Batches: one request per member carries batchQueries queries, proofs asked once for them all.
    const batchMeter = cpuMeter(pids);
    const starts = Array.from({ length: Math.ceil(queryCount / batchQueries) * BATCH_PASSES }, (_, b) => (b * batchQueries) % (Math.ceil(queryCount / batchQueries) * batchQueries));
    let batchRecall = 0;
    let batchSearched = 0;
    const batchWall = await inParallel(starts.length, batchesInFlight, async (b) => {
      const from = starts[b]!;
      const ids = Array.from({ length: Math.min(batchQueries, queryCount - from) }, (_, j) => from + j);
      const rs = await client!.searchBatch(maguId, ids.map(query), K, options);
      rs.forEach((r, j) => {
        batchRecall += recallOf(r.hits, truth[ids[j]!]!);
        if (r.uncovered.length > 0 || r.failed > 0 || r.rejected.length > 0) incomplete++;
      });
      batchSearched += ids.length;
    });
    const batchUsed = batchMeter();
    const batchCpu = Object.values(batchUsed).reduce((a, b) => a + b, 0);
    const batched = {
      queriesPerBatch: batchQueries,
      inFlight: batchesInFlight,
      recallAt10: batchRecall / batchSearched,
      qps: batchSearched / (batchWall / 1000),
      cpuMsPerQueryNet: ((batchCpu - idleTotal * (batchWall / 1000)) * 1000) / batchSearched,
      cpuByProcess: Object.fromEntries(Object.entries(batchUsed).map(([k, v]) => [k, Number(((v * 1000) / batchSearched).toFixed(2))])),
    };
    const row = {
      ef,
      recallAt10: recall / queryCount,
      minRecall,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      unverifiedP50Ms: percentile(unverified, 50),
      unverifiedP99Ms: percentile(unverified, 99),
      meanMs: lat.reduce((a, b) => a + b, 0) / lat.length,
      qps: queryCount / (wall / 1000),
      cpuMsPerQuery: (cpuTotal * 1000) / queryCount,
      cpuMsPerQueryNet: ((cpuTotal - idleTotal * (wall / 1000)) * 1000) / queryCount,
      cpuByProcess: Object.fromEntries(Object.entries(used).map(([k, v]) => [k, Number(((v * 1000) / queryCount).toFixed(2))])),
      asked: asked / queryCount,
      incomplete,
      batched,
    };
    distributed.push(row);
    if (failures.size > 0) note(`member failures so far: ${JSON.stringify(Object.fromEntries(failures))}`);
    note(
      `distributed ef ${ef}${ef === DEFAULT_EF_SEARCH ? " (default)" : ""}: recall@10 ${row.recallAt10.toFixed(4)}, p50 ${row.p50Ms.toFixed(1)} ms, p99 ${row.p99Ms.toFixed(1)} ms (unverified ${row.unverifiedP50Ms.toFixed(1)} / ${row.unverifiedP99Ms.toFixed(1)}), ` +
        `${row.qps.toFixed(1)} QPS at ${concurrency} in flight, ${row.cpuMsPerQuery.toFixed(1)} CPU ms/query (${row.cpuMsPerQueryNet.toFixed(1)} above idle) ${JSON.stringify(row.cpuByProcess)}, ${row.asked.toFixed(2)} members asked, ` +
        `batches of ${batchQueries} (${batchesInFlight} in flight): ${batched.qps.toFixed(1)} QPS, recall ${batched.recallAt10.toFixed(4)}, ${batched.cpuMsPerQueryNet.toFixed(2)} CPU ms/query above idle ${JSON.stringify(batched.cpuByProcess)}; ${incomplete} incomplete`,
    );
  }

  // ------------------------------------------------- where the time goes: single round trips
  // The member the client's plan asks first (it holds the most fragments) and one request at a time.
  const busiest = [...members].sort((a, b) => b.held.length - a.held.length)[0]!;
  const rtt = async (request: (i: number) => Record<string, unknown>, n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const started = performance.now();
      await ask(busiest.node.address, request(i));
      out.push(performance.now() - started);
    }
    return out;
  };
  const rttN = Math.min(queryCount, 100);
  const trivial = await rtt((i) => ({ op: "search", query: encodeQuery(qRows[i]!), k: 1, ef: 1 }), rttN);
  const roundTrips: Array<{ ef: number | "k=1,ef=1"; p50Ms: number; p99Ms: number }> = [{ ef: "k=1,ef=1", p50Ms: percentile(trivial, 50), p99Ms: percentile(trivial, 99) }];
  for (const ef of efs) {
    const x = await rtt((i) => ({ op: "search", query: encodeQuery(qRows[i]!), k: K, ef }), rttN);
    roundTrips.push({ ef, p50Ms: percentile(x, 50), p99Ms: percentile(x, 99) });
  }
  // The client computes every fragment's holders (placement: r of `members` keccak scores per
  // fragment) once per Magu view and keeps them; one such computation alone, timed here (the JSON
  // keeps its old name, clientPlacementMsPerSearch, from when every search paid it).
  t = performance.now();
  const planReps = 20;
  for (let rep = 0; rep < planReps; rep++) for (let f = 0; f < info.fragmentCount; f++) holdersVector(maguId, f, NODES, REPLICATION);
  const clientPlacementMs = (performance.now() - t) / planReps;
  note(`client placement of every fragment, once per Magu view (${info.fragmentCount} fragments x ${NODES} scores): ${clientPlacementMs.toFixed(1)} ms`);
  note(`round trips to one member (${busiest.held.length} fragments): ${roundTrips.map((r) => `${r.ef}: p50 ${r.p50Ms.toFixed(1)} ms`).join(", ")}`);

  // ------------------------------------------------------- single-node index, same data, now
  const single: Measured[] = [];
  for (const ef of [...new Set([...baselineEfs, ...efs])].sort((a, b) => a - b)) {
    const lat: number[] = [];
    let recall = 0;
    let minRecall = 1;
    for (let i = 0; i < queryCount; i++) {
      const started = performance.now();
      const hits = index.search(qRows[i]!, K, { ef });
      lat.push(performance.now() - started);
      const rc = recallOf(hits, truth[i]!);
      recall += rc;
      minRecall = Math.min(minRecall, rc);
    }
    const meter = cpuMeter({ bench: [process.pid] });
    const wall = await inParallel(queryCount, concurrency, async (i) => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      index.search(qRows[i]!, K, { ef });
    });
    const used = meter().bench!;
    single.push({
      ef,
      recallAt10: recall / queryCount,
      minRecall,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      meanMs: lat.reduce((a, b) => a + b, 0) / lat.length,
      qps: queryCount / (wall / 1000),
      cpuMsPerQuery: (used * 1000) / queryCount,
    });
  }
  note(`single-node index measured at ef ${single.map((s) => s.ef).join(",")}`);

  // ------------------------------------------------------------------------ on-chain tasks
  const taskQueries = Array.from({ length: taskCount }, (_, j) => j);
  t = performance.now();
  const answers = await Promise.all(taskQueries.map((j) => client!.searchOnChain(maguId, query(j), K, 10n ** 18n)));
  const tasksWallSeconds = (performance.now() - t) / 1000;
  const onchain = [];
  for (const [j, a] of answers.entries()) {
    const [submitted, finalized] = await Promise.all([net.publicClient.getBlock({ blockNumber: a.submitBlock }), net.publicClient.getBlock({ blockNumber: a.block })]);
    const want = truth[j]!;
    const exact = a.result.length === want.length && a.result.every((h, i) => h.id === want[i]!.id && h.distance === want[i]!.distance);
    onchain.push({
      task: a.task.toString(),
      blocks: Number(a.block - a.submitBlock),
      chainSeconds: Number(finalized.timestamp - submitted.timestamp),
      clientSeconds: a.ms / 1000,
      finalizedBy: a.finalizedBy,
      credits: a.credits.toString(),
      equalsBruteForce: exact,
    });
  }
  note(`on-chain: ${taskCount} tasks in ${tasksWallSeconds.toFixed(1)} s: blocks ${onchain.map((o) => o.blocks).join(",")}, exact ${onchain.map((o) => o.equalsBruteForce).join(",")}`);
  const market = await net.read.searchMarket.read.config();

  // ------------------------------------------------------ proofs missed, members evicted
  const events = async (address: Hex, abi: typeof challengeManagerAbi | typeof maguRegistryAbi, eventName: string) =>
    net!.publicClient.getContractEvents({ address, abi, eventName: eventName as never, fromBlock: formedBlock } as never) as Promise<Array<{ args: Record<string, unknown>; blockNumber: bigint }>>;
  const missed = (await events(net.deployment.contracts.challengeManager as Hex, challengeManagerAbi, "ProofMissed")).map((e) => ({
    member: String(e.args.member),
    period: String(e.args.period),
    misses: String(e.args.misses),
    block: e.blockNumber.toString(),
  }));
  const left = (await events(net.deployment.contracts.maguRegistry as Hex, maguRegistryAbi, "MemberLeft")).map((e) => ({
    member: String(e.args.member),
    slot: Number(e.args.slot),
    evicted: e.args.evicted === true,
    block: e.blockNumber.toString(),
  }));
  const proofs = { formedBlock: formedBlock.toString(), endBlock: (await net.head()).toString(), missed, left, vacantSlotsAfterAdd: vacant };
  if (missed.length > 0 || left.length > 0) {
    note(`proofs: ${missed.length} missed (${[...new Set(missed.map((m) => m.member))].join(", ")}), ${left.length} member(s) left/evicted`);
    await dumpLogs();
  }

  // ------------------------------------------------------------------------------ report
  const matchSingle = (recall: number): { row: Measured; reached: boolean } => {
    const reaching = single.filter((s) => s.recallAt10 >= recall);
    if (reaching.length > 0) return { row: reaching.sort((a, b) => b.qps - a.qps)[0]!, reached: true };
    return { row: [...single].sort((a, b) => b.recallAt10 - a.recallAt10 || b.qps - a.qps)[0]!, reached: false };
  };
  const ratios = distributed.map((d) => {
    const { row, reached } = matchSingle(d.recallAt10);
    const sameEf = single.find((s) => s.ef === d.ef)!;
    return {
      ef: d.ef,
      recallAt10: d.recallAt10,
      singleRecallAtSameEf: sameEf.recallAt10,
      singleEfAtSameRecall: row.ef,
      singleRecallAtThatEf: row.recallAt10,
      singleReachedRecall: reached,
      qpsRatio: d.qps / row.qps,
      batchedQpsRatio: d.batched.qps / matchSingle(d.batched.recallAt10).row.qps,
      p50Ratio: d.p50Ms / row.p50Ms,
      cpuPerQueryRatio: d.cpuMsPerQueryNet / row.cpuMsPerQuery,
    };
  });
  interface Goal {
    met: boolean;
    reason?: string;
    ef?: number;
    recallAt10?: number;
    qps?: number;
    singleEf?: number;
    singleQps?: number;
    qpsRatio?: number;
    /** The same, searching in batches (VectorClient.searchBatch). */
    batchedQps?: number;
    batchedQpsRatio?: number;
    /** Against the fastest single-node ef with recall >= GOAL_RECALL (a looser comparison). */
    qpsRatioAtGoalRecall?: number;
    singleEfAtGoalRecall?: number;
  }
  const eligible = distributed.filter((d) => d.recallAt10 >= GOAL_RECALL).sort((a, b) => b.qps - a.qps)[0];
  let goal: Goal = { met: false, reason: `no ef reached recall@10 ${GOAL_RECALL}` };
  if (eligible !== undefined) {
    const r = ratios.find((x) => x.ef === eligible.ef)!;
    const single95 = matchSingle(GOAL_RECALL).row;
    goal = {
      met: r.qpsRatio >= GOAL_RATIO,
      ef: eligible.ef,
      recallAt10: eligible.recallAt10,
      qps: eligible.qps,
      singleEf: r.singleEfAtSameRecall,
      singleQps: eligible.qps / r.qpsRatio,
      qpsRatio: r.qpsRatio,
      batchedQps: eligible.batched.qps,
      batchedQpsRatio: r.batchedQpsRatio,
      qpsRatioAtGoalRecall: eligible.qps / single95.qps,
      singleEfAtGoalRecall: single95.ef,
    };
  }

  const f = (x: number, d = 1): string => x.toFixed(d);
  const header = ["path", "ef", "recall@10", "p50 ms", "p99 ms", "unverified p50 / p99 ms", `QPS (${concurrency} in flight)`, "CPU ms/query (above idle)", "single-node ef at same recall", "QPS / single-node", `batches of ${batchQueries}: QPS, / single-node`];
  const table: string[][] = [];
  for (const [i, d] of distributed.entries()) {
    const r = ratios[i]!;
    table.push([`distributed (${NODES} nodes, r=${REPLICATION})`, `${d.ef}${d.ef === DEFAULT_EF_SEARCH ? " (default)" : ""}`, f(d.recallAt10, 4), f(d.p50Ms), f(d.p99Ms), `${f(d.unverifiedP50Ms)} / ${f(d.unverifiedP99Ms)}`, f(d.qps), f(d.cpuMsPerQueryNet), `${r.singleEfAtSameRecall}${r.singleReachedRecall ? "" : " (max recall)"}`, f(r.qpsRatio, 3), `${f(d.batched.qps)}, ${f(r.batchedQpsRatio, 3)}`]);
  }
  for (const s of single) table.push(["single-node index", String(s.ef), f(s.recallAt10, 4), f(s.p50Ms, 2), f(s.p99Ms, 2), "", f(s.qps), f(s.cpuMsPerQuery, 2), "", "", ""]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(`vector search: ${count} x ${dim} Gaussian mixture, ${queryCount} queries, k = ${K}, M = ${DEFAULT_M}, efConstruction = ${DEFAULT_EF_CONSTRUCTION}; load ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of table) console.log(line(row));
  console.log(
    `single-node build ${f(baselineBuild.wallSeconds)} s; network ${f(networkSeconds)} s; Magu create ${f(createSeconds)} s; ${batches.length} adds of ${batch} returned after ${f(addSeconds)} s in total, ` +
      `all members indexed after ${f(indexedSeconds)} s (CPU s ${JSON.stringify(Object.fromEntries(Object.entries(addCpu).map(([k, v]) => [k, Number(v.toFixed(1))])))})`,
  );
  console.log(`round trips to one member: ${roundTrips.map((r) => `${r.ef} p50 ${f(r.p50Ms)} ms`).join("; ")}; client placement once per Magu view ${f(clientPlacementMs)} ms`);
  console.log(
    `on-chain (commit ${market.commitBlocks}, reveal ${market.revealBlocks}, dispute ${market.disputeBlocks} blocks of 1 s): ` +
      onchain.map((o) => `task ${o.task}: ${o.blocks} blocks, ${o.chainSeconds} s, ${o.equalsBruteForce ? "= brute force" : "DIFFERS from brute force"}`).join("; "),
  );
  console.log(
    goal.met
      ? `goal (recall@10 >= ${GOAL_RECALL}, QPS >= ${GOAL_RATIO}x single-node at the same recall): MET at ef ${goal.ef} (${f(goal.qpsRatio!, 3)}x; batched ${f(goal.batchedQpsRatio!, 3)}x)`
      : `goal (recall@10 >= ${GOAL_RECALL}, QPS >= ${GOAL_RATIO}x single-node at the same recall): NOT met${goal.qpsRatio !== undefined ? ` (best: ef ${goal.ef}, recall ${f(goal.recallAt10!, 4)}, ${f(goal.qpsRatio!, 3)}x; batched ${f(goal.batchedQpsRatio!, 3)}x)` : ` (${goal.reason})`}`,
  );

  let gas: Record<string, number> | undefined;
  try {
    const all = JSON.parse(await readFile(GAS, "utf8")) as Record<string, number>;
    gas = Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith("SearchMarket.")));
  } catch {
    gas = undefined;
  }
  await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true });
  await writeFile(
    RESULTS,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        node: process.version,
        loadavgEnd: loadavg(),
        loads,
        totalSeconds: (performance.now() - t0) / 1000,
        params: {
          count, dim, queries: queryCount, k: K, seed, mixture: { clusters: 64, spread: 0.3, noise: 0.3 }, metric: "l2", M: DEFAULT_M, efConstruction: DEFAULT_EF_CONSTRUCTION,
          nodesDefaultEf: DEFAULT_EF_SEARCH, nodes: NODES, replication: REPLICATION, validators: 1, blockMs: 1000, automine: false, concurrency, batchQueries, batchesInFlight, batchPasses: BATCH_PASSES,
          fragmentSize: VECTOR_CLIENT_DEFAULTS.fragmentSize, fragments: fragmentCount, batch,
        },
        truthMsPerQuery,
        singleNodeBuild: { ...baselineBuild, unreachable, loadAndWalkSeconds: baselineLoadSeconds, concurrentWith: "ground truth, network start, Magu create (finished before the first add)" },
        idleCpuPerSecond,
        distributedSetup: {
          networkSeconds, createSeconds, addSeconds, indexedSeconds, addCpuSeconds: addCpu, nodeSweepSeconds, batches,
          heldPerMember: members.map((m) => m.held.length),
          nodeMemoryMiB: nodeMemory,
        },
        distributed,
        singleNode: single,
        ratios,
        roundTrips: { member: busiest.node.address, heldFragments: busiest.held.length, requests: rttN, rows: roundTrips },
        clientPlacementMsPerSearch: clientPlacementMs,
        memberFailures: Object.fromEntries(failures),
        onchain: { windows: { commitBlocks: Number(market.commitBlocks), revealBlocks: Number(market.revealBlocks), disputeBlocks: Number(market.disputeBlocks) }, wallSeconds: tasksWallSeconds, tasks: onchain },
        proofs,
        goal: { recallAt10: GOAL_RECALL, qpsRatio: GOAL_RATIO, ...goal },
        gasFromSnapshot: gas,
      },
      (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v),
      2,
    ) + "\n",
  );
  console.log(`wrote ${RESULTS}`);
}

/** Writes every agent's last log lines to LOG_DIR (on failure, or when proofs were missed). */
async function dumpLogs(): Promise<void> {
  if (net === undefined) return;
  await mkdir(LOG_DIR, { recursive: true });
  await Promise.all(net.nodes.map((n, i) => writeFile(join(LOG_DIR, `node-${i + 1}.log`), n.stderr())));
  if (validator !== undefined) await writeFile(join(LOG_DIR, "validator.log"), validator.stderr());
  console.error(`# agent logs (last lines) written to ${LOG_DIR}`);
}

// ------------------------------------------------------------ single-node build (child)

interface BaselineBuild {
  wallSeconds: number;
  cpuSeconds: number;
  fragments: number;
  /** The child's peak resident memory, MiB (process.resourceUsage().maxRSS). */
  peakRssMiB: number;
}

let builder: ChildProcess | undefined;

/** Runs this file with `--build-baseline DIR` and resolves with the figures it prints. */
function buildBaselineChild(dir: string): Promise<BaselineBuild> {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, "--build-baseline", dir, "--count", String(count), "--dim", String(dim), "--seed", String(seed)], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  builder = child;
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    child.once("exit", (code, signal) => {
      builder = undefined;
      if (code !== 0) return reject(new Error(`the single-node index build exited with ${code ?? signal}`));
      try {
        resolve(JSON.parse(out.trim().split("\n").pop()!) as BaselineBuild);
      } catch {
        reject(new Error(`the single-node index build printed no result: ${out.slice(-500)}`));
      }
    });
  });
}

/** Child: builds the single-node index over every record (fragments packed as the client packs them), saves it. */
async function buildBaseline(dir: string): Promise<void> {
  const data = gaussianMixture({ count, dim, seed });
  const fragments = packRows(data, dim, VECTOR_CLIENT_DEFAULTS.fragmentSize);
  const index = await openVectorIndex({ dir, dim, metric: "l2", M: DEFAULT_M, efConstruction: DEFAULT_EF_CONSTRUCTION, initialCapacity: count });
  const t = performance.now();
  const cpu = process.cpuUsage();
  for (let f = 0; f < fragments.length; f++) await index.addFragment(f, fragments[f]!);
  const used = process.cpuUsage(cpu);
  const result: BaselineBuild = { wallSeconds: (performance.now() - t) / 1000, cpuSeconds: (used.user + used.system) / 1e6, fragments: fragments.length, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
  await index.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (args["build-baseline"] !== undefined) {
  await buildBaseline(args["build-baseline"]);
} else {
  try {
    await main();
  } catch (err) {
    await dumpLogs().catch(() => undefined);
    throw err;
  } finally {
    builder?.kill("SIGKILL");
    await client?.stop().catch(() => undefined);
    await probe?.stop().catch(() => undefined);
    await killAllNodes();
    await cleanup();
    if (baselineDir !== undefined) await rm(baselineDir, { recursive: true, force: true });
  }
}
