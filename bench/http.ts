/**
 * The HTTP API (`muri serve`, issue 18) against the in-process clients it wraps, in the same run on
 * the same network: what the daemon costs a program that talks to it over HTTP instead of importing
 * agents/roles/client.
 *
 * A `hardhat node`, 3 node processes (test/agents/roles/e2e-helpers.ts), and two accounts: one for
 * the in-process StorageClient / VectorClient, one for a `muri serve` child process (a daemon of
 * its own, as a user runs it). Every timed HTTP request is made by a third process, the daemon's
 * user (bench/lib/http-user.ts, forked, talking to the daemon through the SDK `MuriClient`), as a
 * program calling the API is: the garbage of the in-process client this process hosts for the
 * baseline then never stalls the HTTP side's receiving. Each round, in turn:
 *   - put: a `--mib` MiB random file into a new blob Magu (k=2, m=1, 3 members; Magu creation and
 *     formation included on both sides): `StorageClient.put(path)` against `PUT /v1/blobs` with the
 *     file streamed as the request body with its Content-Length (fetch, `duplex: "half"`), which the
 *     daemon encodes as it arrives while its Magu is created and formed (the default, as the
 *     in-process put does) and, a second put, with `form=complete` (the Magu created once the whole
 *     body is in);
 *   - get: the file just put, whole: `StorageClient.get` to a file against `GET /v1/blobs/{cid}`
 *     drained to a file (the daemon streams the file as it decodes it, keeping a copy in its cache
 *     when the file fits the cache's bound, `muri serve --cache`, 512 MiB by default); a second GET
 *     is given too (from the cache when it was kept, else fetched again); the two gets take turns
 *     going first from round to round;
 *   - the CPU seconds each get cost this process, the daemon's user, the daemon and the nodes
 *     (/proc/PID/stat): the HTTP hop's own cost beside the decoding both sides do;
 *   - the daemon's resident memory: its peak (VmHWM, /proc) after the round, which must stay under
 *     {@link SERVE_RSS_BOUND_MIB} whatever `--mib` is (the bench fails otherwise).
 * Then search: a vector Magu (`--vectors` vectors of `--dim`, r = 2) added through the daemon;
 * `--queries` queries, k = 10, exact = false, each hit's proof checked (the default), sequential
 * and `--concurrency` in flight, through `POST /v1/magus/{id}/search` against `VectorClient.search`
 * of the same account in this process.
 *
 * The best of `--rounds` is kept for each figure. Ratios are HTTP / in-process (1 = no cost).
 * Prints a table and writes bench/results/http.json.
 *
 *   tsx bench/http.ts [--mib 64] [--rounds 2] [--vectors 2000] [--dim 32] [--queries 200] [--concurrency 8] [--cache MIB]
 */
import { fork } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import type { Hex } from "viem";
import { CID } from "multiformats/cid";
import { createClient } from "../agents/roles/client/client.js";
import { DEFAULT_CACHE_BYTES } from "../agents/roles/client/http-api.js";
import { createVectorClient } from "../agents/roles/client/vector-client.js";
import { MuriClient } from "../agents/sdk/client.js";
import { startMuri } from "../test/agents/cli/run-muri.js";
import { gaussianMixture } from "../test/agents/index/fixtures.js";
import type { UserAnswer, UserRequest } from "./lib/http-user.js";
import { qps } from "./lib/qps.js";
import { memoryOf, randomFile, SERVE_RSS_BOUND_MIB, sha256File, startNetwork, tearDown, waitFor } from "../test/agents/roles/e2e-helpers.js";

const RESULTS = fileURLToPath(new URL("./results/http.json", import.meta.url));
const USER = fileURLToPath(new URL("./lib/http-user.ts", import.meta.url));
const NODES = 3;
const LOCAL = NODES + 1;
const DAEMON = NODES + 2;
const K = 10;

const { values: args } = parseArgs({
  options: {
    mib: { type: "string", default: "64" },
    rounds: { type: "string", default: "2" },
    vectors: { type: "string", default: "2000" },
    dim: { type: "string", default: "32" },
    queries: { type: "string", default: "200" },
    concurrency: { type: "string", default: "8" },
    /** The daemon's read cache bound in MiB (`muri serve --cache`); its default when left out. */
    cache: { type: "string" },
  },
});
function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}
const mib = positiveInt("mib", args.mib);
/** Whether the daemon keeps the file for the second GET (its read cache's default bound, `muri serve --cache`). */
const cacheBytes = args.cache === undefined ? DEFAULT_CACHE_BYTES : args.cache === "0" ? 0 : positiveInt("cache", args.cache) * 1024 * 1024;
const cacheKeeps = mib * 1024 * 1024 <= cacheBytes;
const rounds = positiveInt("rounds", args.rounds);
const vectorCount = positiveInt("vectors", args.vectors);
const dim = positiveInt("dim", args.dim);
const queryCount = positiveInt("queries", args.queries);
const concurrency = positiveInt("concurrency", args.concurrency);

const t0 = performance.now();
const note = (msg: string): void => console.error(`# [${((performance.now() - t0) / 1000).toFixed(0)} s, load ${loadavg()[0]!.toFixed(1)}] ${msg}`);
const seconds = async (work: () => Promise<unknown>): Promise<number> => {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
};
/**
 * `work` (which answers the seconds it took), tried up to 3 times: a read that fails on this shared
 * machine (a member too slow to answer in time) is tried again and recorded, not hidden; the time
 * of the try that succeeded.
 */
const failures: Array<{ what: string; error: string }> = [];
async function timed(what: string, work: () => Promise<number>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      failures.push({ what, error: (err as Error).message });
      note(`${what} failed (${(err as Error).message}), attempt ${attempt}`);
      if (attempt === 3) throw err;
    }
  }
}

/** CPU seconds so far of this process, the daemon's user, the daemon and the nodes together (/proc/PID/stat, 100 Hz ticks). */
async function cpuNow(): Promise<number[]> {
  const ticks = async (pid: number): Promise<number> => {
    const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  const nodes = await Promise.all(net.nodes.map((n) => ticks(n.pid)));
  return [await ticks(process.pid), await ticks(user.pid!), await ticks(serve.pid), nodes.reduce((a, b) => a + b, 0)];
}
const cpuSince = (a: number[], b: number[]): number[] => b.map((x, i) => Number((x - a[i]!).toFixed(2)));
/** CPU seconds of each get, [this process, the daemon's user, the daemon, the nodes], summed over the rounds. */
const CPU_ORDER = ["bench process", "daemon's user", "daemon", "nodes"];
const getCpu = { inProcess: [0, 0, 0, 0], http: [0, 0, 0, 0] };
const addCpu = (to: number[], add: number[]): void => add.forEach((x, i) => (to[i] = Number((to[i]! + x).toFixed(2))));

const net = await startNetwork({ prefix: "muri-bench-http-", nodes: NODES, fund: [LOCAL, DAEMON] });
const local = createClient({ dir: join(net.dir, "local"), deployment: net.deployment, rpcUrl: net.chain.rpcUrl, privateKey: net.chain.keys[LOCAL]! as Hex });
await local.start();
const daemonArgs = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[DAEMON]!, "--client-dir", join(net.dir, "daemon")];
const serve = await startMuri(["serve", "--listen", "127.0.0.1:0", ...daemonArgs, ...(args.cache === undefined ? [] : ["--cache", `${cacheBytes}`])]);
const api = new MuriClient({ url: serve.ready.url as string });
const user = fork(USER, [serve.ready.url as string], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
/** One request made by the daemon's user process; its answer, or its error thrown here. */
async function asUser(req: UserRequest): Promise<UserAnswer> {
  const answer = await new Promise<UserAnswer>((resolve, reject) => {
    const exited = (code: number | null): void => reject(new Error(`the daemon's user process exited (${code}) during ${req.op}`));
    user.once("exit", exited);
    user.once("message", (m: UserAnswer) => {
      user.off("exit", exited);
      resolve(m);
    });
    user.send(req);
  });
  if (answer.error !== undefined) throw new Error(`${req.op} through the daemon: ${answer.error}`);
  return answer;
}
/** The seconds `req` took in the daemon's user (its own clock: no IPC in the figure). */
const userSeconds = async (req: UserRequest): Promise<number> => (await asUser(req)).seconds!;
const vectors = createVectorClient({ dir: join(net.dir, "local-vectors"), deployment: net.deployment, rpcUrl: net.chain.rpcUrl, privateKey: net.chain.keys[DAEMON]! as Hex });
try {
  await mkdir(join(net.dir, "out"), { recursive: true });
  const bytes = mib * 1024 * 1024;
  const mbps = (s: number): number => Number((mib / s).toFixed(1));
  const best = { putLocal: Infinity, putHttp: Infinity, putHttpComplete: Infinity, getLocal: Infinity, getHttp: Infinity, getHttpCached: Infinity };
  let peakMiB = 0;
  const idle = await memoryOf(serve.pid);
  for (let round = 1; round <= rounds; round++) {
    const file = await randomFile(net.dir, `put-${round}.bin`, bytes);
    let localRef: { maguId: bigint; manifestCid: CID } | undefined;
    const putLocal = await seconds(async () => (localRef = await local.put(file.path, { k: 2, m: 1, members: NODES })));
    note(`round ${round}: in-process put ${putLocal.toFixed(1)} s`);
    const put = await asUser({ op: "put", path: file.path, size: bytes, query: { k: 2, m: 1, members: NODES } });
    const [putHttp, cid] = [put.seconds!, put.manifestCid!];
    const putHttpComplete = await userSeconds({ op: "put", path: file.path, size: bytes, query: { k: 2, m: 1, members: NODES, form: "complete" } });
    note(`round ${round}: HTTP put ${putHttp.toFixed(1)} s, with form=complete ${putHttpComplete.toFixed(1)} s`);
    const outLocal = join(net.dir, "out", `local-${round}.bin`);
    const outHttp = join(net.dir, "out", `http-${round}.bin`);
    const download = (): Promise<number> => userSeconds({ op: "get", cid, out: outHttp });
    /** A get, timed, with the CPU seconds it cost each process. */
    const metered = async (what: string, work: () => Promise<number>): Promise<{ s: number; cpu: number[] }> => {
      const before = await cpuNow();
      const s = await timed(what, work);
      return { s, cpu: cpuSince(before, await cpuNow()) };
    };
    const getLocalNow = (): Promise<{ s: number; cpu: number[] }> => metered("in-process get", () => seconds(() => local.get(localRef!, outLocal)));
    const getHttpNow = (): Promise<{ s: number; cpu: number[] }> => metered("HTTP get", download);
    // The gets take turns going first: what the nodes still do for the puts just made (their first
    // proofs over the new fragments, compactions) then slows each side alike.
    const first = round % 2 === 1 ? "in-process" : "HTTP";
    let inProcessGet: { s: number; cpu: number[] };
    let httpGet: { s: number; cpu: number[] };
    if (first === "in-process") {
      inProcessGet = await getLocalNow();
      httpGet = await getHttpNow();
    } else {
      httpGet = await getHttpNow();
      inProcessGet = await getLocalNow();
    }
    const [getLocal, cpuLocal, getHttp, cpuHttp] = [inProcessGet.s, inProcessGet.cpu, httpGet.s, httpGet.cpu];
    addCpu(getCpu.inProcess, cpuLocal);
    addCpu(getCpu.http, cpuHttp);
    const getHttpCached = await timed("HTTP get (again)", download);
    note(`round ${round}: CPU s of the gets (${CPU_ORDER.join(", ")}): in-process ${cpuLocal.join(" / ")}, HTTP ${cpuHttp.join(" / ")}`);
    note(`round ${round}: get in-process ${getLocal.toFixed(1)} s, HTTP ${getHttp.toFixed(1)} s (${first} first; HTTP again ${getHttpCached.toFixed(1)} s, ${cacheKeeps ? "from the daemon's cache" : "larger than its cache: fetched again"})`);
    for (const out of [outLocal, outHttp]) {
      if ((await sha256File(out)) !== file.sha256) throw new Error(`${out} is not the file that was put`);
    }
    for (const key of Object.keys(best) as Array<keyof typeof best>) best[key] = Math.min(best[key], { putLocal, putHttp, putHttpComplete, getLocal, getHttp, getHttpCached }[key]);
    peakMiB = Math.max(peakMiB, (await memoryOf(serve.pid)).peakMiB);
    await Promise.all([file.path, outLocal, outHttp].map((p) => rm(p, { force: true })));
  }

  note("search: creating and filling a vector Magu through the daemon");
  const made = await api.createMagu({ kind: "vector", dim, replication: 2, members: NODES, fragments: Math.max(64, Math.ceil(vectorCount / 100)) });
  const rows = gaussianMixture({ count: vectorCount, dim, seed: 7 });
  const batch = 1000;
  for (let from = 0; from < vectorCount; from += batch) {
    const to = Math.min(vectorCount, from + batch);
    await api.addVectors(made.id, { vectors: Array.from({ length: to - from }, (_, i) => ({ vector: Array.from(rows.subarray((from + i) * dim, (from + i + 1) * dim)) })) });
  }
  // Queries near stored points (a row, each component moved by up to ±0.05).
  const queries = Array.from({ length: queryCount }, (_, i) => Array.from(rows.subarray(((i * 7919) % vectorCount) * dim, (((i * 7919) % vectorCount) + 1) * dim), (x, j) => x + (((i * 31 + j * 17) % 11) - 5) / 100));
  await waitFor("every member indexed the vectors", 300_000, async () => {
    const r = await api.search(made.id, { vector: queries[0]!, k: K }).catch(() => undefined);
    return r?.complete === true && r.results.length === K ? true : undefined;
  }, 500);
  await vectors.start();
  const maguId = BigInt(made.id);
  await vectors.search(maguId, queries[0]!, K); // warm: access session, peers
  const search = { httpSeq: 0, localSeq: 0, httpConc: 0, localConc: 0 };
  for (let round = 1; round <= rounds; round++) {
    search.localSeq = Math.max(search.localSeq, await qps(queries, 1, (q) => vectors.search(maguId, q, K)));
    search.httpSeq = Math.max(search.httpSeq, (await asUser({ op: "search", id: made.id, queries, inFlight: 1, k: K })).qps!);
    search.localConc = Math.max(search.localConc, await qps(queries, concurrency, (q) => vectors.search(maguId, q, K)));
    search.httpConc = Math.max(search.httpConc, (await asUser({ op: "search", id: made.id, queries, inFlight: concurrency, k: K })).qps!);
    note(`search round ${round}: sequential ${search.localSeq.toFixed(0)} vs ${search.httpSeq.toFixed(0)} QPS, ${concurrency} in flight ${search.localConc.toFixed(0)} vs ${search.httpConc.toFixed(0)}`);
  }

  const ratio = (http: number, inProcess: number): number => Number((http / inProcess).toFixed(3));
  const table = [
    { what: `put ${mib} MiB (new Magu)`, inProcess: `${mbps(best.putLocal)} MiB/s`, http: `${mbps(best.putHttp)} MiB/s`, ratio: ratio(best.putLocal, best.putHttp) },
    { what: `put ${mib} MiB, form=complete`, inProcess: `${mbps(best.putLocal)} MiB/s`, http: `${mbps(best.putHttpComplete)} MiB/s`, ratio: ratio(best.putLocal, best.putHttpComplete) },
    { what: `get ${mib} MiB`, inProcess: `${mbps(best.getLocal)} MiB/s`, http: `${mbps(best.getHttp)} MiB/s`, ratio: ratio(best.getLocal, best.getHttp) },
    { what: `get ${mib} MiB again (${cacheKeeps ? "daemon's cache" : "not cached: over --cache"})`, inProcess: "-", http: `${mbps(best.getHttpCached)} MiB/s`, ratio: "-" },
    { what: "search, sequential", inProcess: `${search.localSeq.toFixed(0)} QPS`, http: `${search.httpSeq.toFixed(0)} QPS`, ratio: ratio(search.httpSeq, search.localSeq) },
    { what: `search, ${concurrency} in flight`, inProcess: `${search.localConc.toFixed(0)} QPS`, http: `${search.httpConc.toFixed(0)} QPS`, ratio: ratio(search.httpConc, search.localConc) },
  ];
  const widths = ["what", "inProcess", "http", "ratio"].map((c) => Math.max(c.length, ...table.map((r) => String(r[c as keyof (typeof table)[0]]).length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  console.log(line(["what", "in-process", "HTTP", "HTTP/in-process"]));
  for (const r of table) console.log(line([r.what, r.inProcess, r.http, String(r.ratio)]));
  for (const f of failures) console.log(`retried: ${f.what}: ${f.error}`);
  console.log(`CPU s of the gets over ${rounds} round(s) (${CPU_ORDER.join(" / ")}): in-process ${getCpu.inProcess.join(" / ")}, HTTP ${getCpu.http.join(" / ")}`);
  console.log(`daemon resident memory: ${idle.rssMiB} MiB idle, peak ${peakMiB} MiB while putting and getting ${mib} MiB files (bound ${SERVE_RSS_BOUND_MIB} MiB)`);
  await writeFile(
    RESULTS,
    JSON.stringify(
      {
        bench: "http",
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        loadavg1: Number(loadavg()[0]!.toFixed(2)),
        fileMiB: mib,
        rounds,
        put: { inProcessMiBps: mbps(best.putLocal), httpMiBps: mbps(best.putHttp), ratio: ratio(best.putLocal, best.putHttp), inProcessSeconds: Number(best.putLocal.toFixed(2)), httpSeconds: Number(best.putHttp.toFixed(2)), formComplete: { httpMiBps: mbps(best.putHttpComplete), ratio: ratio(best.putLocal, best.putHttpComplete) } },
        get: { inProcessMiBps: mbps(best.getLocal), httpMiBps: mbps(best.getHttp), ratio: ratio(best.getLocal, best.getHttp), httpAgainMiBps: mbps(best.getHttpCached), againFromDaemonCache: cacheKeeps, cpuSecondsAllRounds: { order: CPU_ORDER, ...getCpu } },
        daemonMemoryMiB: { idleRss: idle.rssMiB, peak: peakMiB, bound: SERVE_RSS_BOUND_MIB },
        failures,
        search: {
          vectors: vectorCount,
          dim,
          k: K,
          queries: queryCount,
          verify: true,
          sequential: { inProcessQps: Math.round(search.localSeq), httpQps: Math.round(search.httpSeq), ratio: ratio(search.httpSeq, search.localSeq) },
          concurrent: { inFlight: concurrency, inProcessQps: Math.round(search.localConc), httpQps: Math.round(search.httpConc), ratio: ratio(search.httpConc, search.localConc) },
        },
      },
      null,
      2,
    ) + "\n",
  );
  console.log(`wrote ${RESULTS}`);
  if (peakMiB > SERVE_RSS_BOUND_MIB) throw new Error(`the daemon's peak resident memory ${peakMiB} MiB is over its bound of ${SERVE_RSS_BOUND_MIB} MiB`);
} finally {
  await vectors.stop().catch(() => undefined);
  if (user.connected) user.disconnect();
  await serve.stop();
  await tearDown("bench-http", net.nodes, local);
}
