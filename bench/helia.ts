/**
 * MuriData put/get against Helia (IPFS in JavaScript) add/cat, same file, same machine, same run.
 *
 *   - MuriData: `muri devnet` (a Hardhat chain with the contracts, 5 node processes, no validator)
 *     in a temporary directory; the storage client (agents/roles/client/client.ts) runs in this process
 *     through its API (no CLI start-up in the figures): `put` (encrypt + Reed-Solomon k=3 m=2,
 *     while a Magu is created and formed; commit the root; push every shard to its holder) and
 *     `get` (fetch from the holders, verify, decrypt, write the file). The put's phases are timed
 *     from the client's log lines (encode, Magu formed, commit, push), and the CPU seconds of every
 *     process (client, nodes, chain; Helia's two nodes) are read from /proc: MB per CPU-second is
 *     less bent by the load of a shared machine than MB/s.
 *   - Helia: two nodes, each with libp2p on 127.0.0.1 over TCP only (noise, yamux, identify), no
 *     bootstrap, no DHT, no HTTP routers or gateways, memory blockstores, dialled directly to each
 *     other: node A (a child process, this file with `--helia-node`) `unixfs.addByteStream` of the
 *     file read from disk; node B (this process) `unixfs.cat` of the root CID over bitswap, written
 *     to a file. Fresh nodes every run, so B never has a block before the cat.
 *
 * Runs are interleaved (MuriData put + get, then Helia add + cat) so both see the same load; the
 * median of `--runs` is reported, and every output file is checked byte for byte against the input.
 * Prints a table and writes bench/results/helia.json (MB = MiB).
 *
 *   tsx bench/helia.ts [--mib 256] [--runs 3] [--nodes 5] [--pin]
 *
 * `--pin` puts this process (the client) on core 0 and the nodes and the chain on the other cores,
 * as if the client had a machine of its own; the results then go to bench/results/helia-pinned.json.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createReadStream, createWriteStream, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { unixfs } from "@helia/unixfs";
import { identify } from "@libp2p/identify";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createHeliaLight } from "helia";
import { withBitswap } from "@helia/bitswap";
import { withLibp2pLight } from "@helia/libp2p";
import { CID } from "multiformats/cid";
import type { Hex } from "viem";
import { loadDevnet } from "../agents/cli/context.js";
import { CLIENT_DEFAULTS, createClient, shardCountOf, type StorageClient } from "../agents/roles/client/client.js";
import { createChainClients, getMuriContracts, settledRequestBlock, type Deployment } from "../agents/chain/index.js";
import { randomFileOf, sha256File } from "./lib/files.js";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const MURI = join(ROOT, "bin", "muri.js");
const SELF = fileURLToPath(import.meta.url);
/** `--pin`: see the module comment. */
const PIN = process.argv.includes("--pin");
const RESULTS = fileURLToPath(new URL(PIN ? "./results/helia-pinned.json" : "./results/helia.json", import.meta.url));

/** Pins `pid` (every thread) to the cores that are not the client's. */
function pinAwayFromClient(pid: number): void {
  execFileSync("taskset", ["-a", "-p", "-c", `1-${cpus().length - 1}`, String(pid)], { stdio: "ignore" });
}
const MIB = 1024 * 1024;
const DEVNET_READY_MS = 180_000;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** CPU seconds (user + system) a process has used so far, from /proc (0 once it is gone). */
function cpuOf(pid: number): number {
  if (pid === process.pid) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** CPU seconds used by groups of processes between `start()` and the returned function's call. */
function cpuMeter(groups: Record<string, number[]>): () => Record<string, number> {
  const before = Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.map(cpuOf)]));
  return () =>
    Object.fromEntries(
      Object.entries(groups).map(([name, pids]) => [name, Number(pids.reduce((sum, pid, i) => sum + cpuOf(pid) - before[name]![i]!, 0).toFixed(2))]),
    );
}


// -------------------------------------------------------------------------------------- Helia

/** A Helia node: libp2p on 127.0.0.1 over TCP only, bitswap, memory blockstore, nothing else. */
async function startHelia() {
  const helia = withBitswap(
    withLibp2pLight(createHeliaLight(), {
      addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() },
    }),
  );
  await helia.start();
  return helia;
}

/** Child process: Helia node A. Prints its address, then answers `add PATH` lines with the CID and time. */
async function heliaNode(): Promise<void> {
  const helia = await startHelia();
  const fs = unixfs(helia);
  process.stdout.write(`${JSON.stringify({ multiaddr: helia.libp2p.getMultiaddrs()[0]!.toString() })}\n`);
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [cmd, path] = line.split(" ");
    if (cmd !== "add" || path === undefined) continue;
    const started = performance.now();
    const cid = await fs.addByteStream(createReadStream(path) as AsyncIterable<Uint8Array>);
    const ms = performance.now() - started;
    process.stdout.write(`${JSON.stringify({ cid: cid.toString(), ms })}\n`);
  }
  await helia.stop();
  process.exit(0);
}

interface HeliaRun {
  addMs: number;
  catMs: number;
  cid: string;
  /** CPU seconds: node A during the add; A and B (this process) during the cat. */
  addCpu: Record<string, number>;
  catCpu: Record<string, number>;
}

/** One Helia round: fresh node A (child) adds the file, fresh node B (here) cats it to `out`. */
async function heliaRound(input: string, out: string): Promise<HeliaRun> {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, "--helia-node"], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  if (PIN && child.pid !== undefined) pinAwayFromClient(child.pid);
  const replies = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async <T>(what: string): Promise<T> => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 600_000);
    try {
      const r = await replies.next();
      if (r.done) throw new Error(`Helia node A exited before ${what}`);
      return JSON.parse(r.value) as T;
    } finally {
      clearTimeout(timer);
    }
  };
  const b = await startHelia();
  try {
    const { multiaddr: addrA } = await next<{ multiaddr: string }>("its address");
    let meter = cpuMeter({ nodeA: [child.pid!] });
    child.stdin!.write(`add ${input}\n`);
    const added = await next<{ cid: string; ms: number }>("the add");
    const addCpu = meter();
    await b.libp2p.dial(multiaddr(addrA), { signal: AbortSignal.timeout(10_000) });
    const fs = unixfs(b);
    meter = cpuMeter({ nodeA: [child.pid!], nodeB: [process.pid] });
    // A bitswap want can stall for good (seen once in ten 256 MiB cats on a loaded machine): the
    // cat is aborted after STALL_MS without a byte, and the caller runs the round again.
    const controller = new AbortController();
    let lastByte = performance.now();
    const watchdog = setInterval(() => {
      if (performance.now() - lastByte > STALL_MS) controller.abort(new HeliaStallError(`Helia cat: no byte for ${STALL_MS / 1000} s`));
    }, 1_000);
    const started = performance.now();
    try {
      const counted = async function* (source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
        for await (const chunk of source) {
          lastByte = performance.now();
          yield chunk;
        }
      };
      await pipeline(Readable.from(counted(fs.cat(CID.parse(added.cid), { signal: controller.signal }))), createWriteStream(out));
    } catch (err) {
      throw controller.signal.aborted ? controller.signal.reason : err;
    } finally {
      clearInterval(watchdog);
    }
    const catMs = performance.now() - started;
    return { addMs: added.ms, catMs, cid: added.cid, addCpu, catCpu: meter() };
  } finally {
    await b.stop();
    await stopChild(child);
  }
}

/** A Helia cat that stopped receiving bytes. */
class HeliaStallError extends Error {}
const STALL_MS = 60_000;
const HELIA_ATTEMPTS = 3;

/** heliaRound, run again (fresh nodes) after a stalled cat; `stalls` counts the stalled attempts. */
async function heliaRoundRetrying(input: string, out: string, stalls: { count: number }): Promise<HeliaRun> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await heliaRound(input, out);
    } catch (err) {
      if (!(err instanceof HeliaStallError) || attempt >= HELIA_ATTEMPTS) throw err;
      stalls.count++;
      console.error(`# ${err.message}; running the Helia round again (attempt ${attempt + 1} of ${HELIA_ATTEMPTS})`);
      await rm(out, { force: true });
    }
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

// ----------------------------------------------------------------------------------- MuriData

interface Devnet {
  child: ChildProcess;
  dir: string;
  stop(): Promise<void>;
}

/** `muri devnet --nodes N --validators 0 --dir DIR --json`, resolved once it printed `ready`. */
async function startDevnet(dir: string, nodes: number): Promise<Devnet> {
  const child = spawn(process.execPath, [MURI, "devnet", "--nodes", String(nodes), "--validators", "0", "--dir", dir, "--json"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-16_384)));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`devnet not ready after ${DEVNET_READY_MS} ms:\n${stderr}`)), DEVNET_READY_MS);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        try {
          if ((JSON.parse(line) as { event?: string }).event === "ready") {
            clearTimeout(timer);
            resolve();
          }
        } catch {
          // not JSON
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`devnet exited (${code}) before ready:\n${stderr}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, dir, stop };
}

interface MuriRun {
  putMs: number;
  getMs: number;
  /**
   * Put phases, ms from the start: the encode (encrypt + RS + hashes, into the client's stage)
   * runs while the Magu is created and formed (approve, createMagu, formMagu); once formed the
   * batch is opened and each shard is pushed as it is staged; `deliveredMs`: the last shard, the
   * manifest and the index are on the members. Then the acknowledgements and commitData
   * (`commitMs`, a duration) and the record (`tailMs`).
   */
  encodeMs: number;
  formedMs: number;
  deliveredMs: number;
  commitMs: number;
  tailMs: number;
  /** CPU seconds during the put and the get: this client, the node processes, the chain. */
  putCpu: Record<string, number>;
  getCpu: Record<string, number>;
  shards: number;
  maguId: string;
}

/**
 * An empty blob Magu (k=3, m=2, `members`) with room for `fragments`, created and formed from `key`'s
 * account, for the appends: a put into an existing Magu has no formation to wait for.
 */
async function createEmptyMagu(deployment: Deployment, key: Hex, fragments: number, members: number): Promise<bigint> {
  const clients = createChainClients({ rpcUrl: deployment.rpcUrl, chainId: deployment.chainId, privateKey: key });
  const c = getMuriContracts(deployment.contracts, clients);
  const mined = async (hash: Promise<Hex>): Promise<bigint> => {
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash: await hash, pollingInterval: 100 });
    if (receipt.status !== "success") throw new Error(`transaction ${receipt.transactionHash} reverted`);
    return receipt.blockNumber;
  };
  const periods = CLIENT_DEFAULTS.durationPeriods;
  const price = CLIENT_DEFAULTS.pricePerFragmentPeriod;
  const { formationDeposit } = await c.maguRegistry.read.config();
  // A request sees stake changes two selection epochs old: request once the nodes' stakes count
  // (as the client does), mining to that block, or the draw finds too few nodes.
  const settled = await settledRequestBlock(c);
  const now = await clients.publicClient.getBlockNumber({ cacheTime: 0 });
  if (now < settled) await clients.publicClient.request({ method: "hardhat_mine" as never, params: [`0x${(settled - now).toString(16)}`] as never });
  await mined(c.token.write.approve([deployment.contracts.maguRegistry, price * BigInt(fragments) * periods + formationDeposit]));
  await mined(
    c.maguRegistry.write.createMagu([
      { kind: 0, metric: 0, dimension: 0, members, replication: 0, dataShards: 3, parityShards: 2, maxFragments: fragments, durationPeriods: periods, pricePerFragmentPeriod: price },
    ]),
  );
  const id = await c.maguRegistry.read.maguCount();
  const info = await c.maguRegistry.read.maguInfo([id]);
  // Members are drawn in the request's selection window: mine to its first block.
  const [opens] = await c.maguRegistry.read.selectionWindow([info.requestBlock]);
  const head = await clients.publicClient.getBlockNumber({ cacheTime: 0 });
  if (head < opens) await clients.publicClient.request({ method: "hardhat_mine" as never, params: [`0x${(opens - head).toString(16)}`] as never });
  if ((await clients.publicClient.getBlockNumber({ cacheTime: 0 })) < opens) throw new Error("the chain did not mine the blocks before formMagu");
  await mined(c.maguRegistry.write.formMagu([id]));
  return id;
}

/** The put's phases from the client's log marks (see MuriRun). */
function putPhases(marks: Map<string, number>, t0: number): Pick<MuriRun, "encodeMs" | "formedMs" | "deliveredMs" | "commitMs" | "tailMs"> {
  const at = (what: string): number => {
    const t = marks.get(what);
    if (t === undefined) throw new Error(`client logged no "${what}"`);
    return t - t0;
  };
  return {
    encodeMs: at("encoded"),
    formedMs: marks.has("magu formed") ? at("magu formed") : 0,
    deliveredMs: at("batch delivered"),
    commitMs: at("tx mined:commitData") - at("batch delivered"),
    tailMs: at("put complete") - at("tx mined:commitData"),
  };
}

/**
 * One MuriData round: put `input` into a new Magu (or append it to Magu `into`), get it back to
 * `out` (no get when `out` is undefined).
 */
async function muriRound(client: StorageClient, marks: Map<string, number>, pids: Record<string, number[]>, input: string, out: string | undefined, into?: bigint): Promise<MuriRun> {
  marks.clear();
  let meter = cpuMeter(pids);
  const t0 = performance.now();
  const put = into === undefined ? await client.put(input) : await client.putInto(into, input);
  const putMs = performance.now() - t0;
  const phases = putPhases(marks, t0);
  const putCpu = meter();
  meter = cpuMeter(pids);
  const t1 = performance.now();
  if (out !== undefined) await client.get(put, out);
  const getMs = performance.now() - t1;
  const getCpu = meter();
  return { putMs, getMs, ...phases, putCpu, getCpu, shards: put.shards, maguId: put.maguId.toString() };
}

// ---------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  // An aborted Helia cat can leave a rejected block request behind: report it, do not crash.
  process.on("unhandledRejection", (err) => console.error(`# unhandled rejection (ignored): ${(err as Error)?.message ?? String(err)}`));
  const mib = arg("mib", 256);
  const runs = arg("runs", 3);
  const nodes = arg("nodes", 5);
  if (PIN && cpus().length < 2) throw new Error("--pin needs at least two cores");
  const bytes = mib * MIB;
  const work = await mkdtemp(join(tmpdir(), "muri-bench-helia-"));
  let devnet: Devnet | undefined;
  let client: StorageClient | undefined;
  let sequential: StorageClient | undefined;
  try {
    const input = join(work, "input.bin");
    await randomFileOf(input, bytes);
    const inputHash = await sha256File(input);
    console.error(`# ${mib} MiB random input; starting muri devnet with ${nodes} nodes`);
    const t = performance.now();
    devnet = await startDevnet(join(work, "devnet"), nodes);
    const devnetMs = performance.now() - t;
    const { deployment, clientKey } = await loadDevnet(devnet.dir);
    const info = JSON.parse(await readFile(join(devnet.dir, "devnet.json"), "utf8")) as { chainPid: number; agents: { pid: number }[] };
    const pids = { client: [process.pid], nodes: info.agents.map((a) => a.pid), chain: [info.chainPid] };
    if (PIN) {
      // The client on core 0, the nodes and the chain on the others: as if the client ran on its
      // own machine (Helia's node A goes with the nodes, node B stays with the client).
      for (const pid of [...pids.nodes, ...pids.chain]) pinAwayFromClient(pid);
      execFileSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
    }
    if (clientKey === undefined) throw new Error("devnet.json has no clientKey");
    const marks = new Map<string, number>();
    const mark = (msg: string, fields?: Record<string, unknown>): void => {
      marks.set(msg === "tx mined" ? `tx mined:${String(fields?.what)}` : msg, performance.now());
    };
    const logger = { debug: mark, info: mark, warn: (m: string, f?: object) => console.error(`# client warn: ${m} ${JSON.stringify(f)}`), error: (m: string, f?: object) => console.error(`# client error: ${m} ${JSON.stringify(f)}`) };
    client = createClient({ dir: join(work, "client"), deployment, privateKey: clientKey }, { logger });
    await client.start();
    // The baseline of the overlap: the same put, its shards pushed only once the file is encoded.
    sequential = createClient({ dir: join(work, "client-sequential"), deployment, privateKey: clientKey, pushWhileEncoding: false }, { logger });
    await sequential.start();
    console.error(`# devnet ready in ${(devnetMs / 1000).toFixed(1)} s`);

    const muri: MuriRun[] = [];
    const seq: MuriRun[] = [];
    const append: MuriRun[] = [];
    const appendSeq: MuriRun[] = [];
    // One Magu per client for the appends, with room for every run's file (a node of the devnet
    // backs at most ten memberships with its stake).
    const appendFragments = shardCountOf(bytes, 3, 2) * runs;
    const appendMagu = await createEmptyMagu(deployment, clientKey, appendFragments, nodes);
    const appendSeqMagu = await createEmptyMagu(deployment, clientKey, appendFragments, nodes);
    const helia: HeliaRun[] = [];
    const check = async (path: string, what: string): Promise<void> => {
      if ((await stat(path)).size !== bytes || (await sha256File(path)) !== inputHash) throw new Error(`${what}: output differs from the input`);
      await rm(path);
    };
    // Warm-up (JIT, connections, page cache) with a small file, not measured.
    const warm = join(work, "warm.bin");
    await randomFileOf(warm, 8 * MIB);
    await muriRound(client, marks, pids, warm, join(work, "warm-out.bin"));
    const stalls = { count: 0 };
    await heliaRoundRetrying(warm, join(work, "warm-helia.bin"), stalls);
    for (let r = 0; r < runs; r++) {
      const m = await muriRound(client, marks, pids, input, join(work, "muri-out.bin"));
      await check(join(work, "muri-out.bin"), "MuriData get");
      muri.push(m);
      seq.push(await muriRound(sequential, marks, pids, input, undefined));
      // The same file appended to a Magu formed beforehand: nothing to wait for but the encoding.
      append.push(await muriRound(client, marks, pids, input, undefined, appendMagu));
      appendSeq.push(await muriRound(sequential, marks, pids, input, undefined, appendSeqMagu));
      const h = await heliaRoundRetrying(input, join(work, "helia-out.bin"), stalls);
      await check(join(work, "helia-out.bin"), "Helia cat");
      helia.push(h);
      const mbps = (ms: number): string => (mib / (ms / 1000)).toFixed(1);
      const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
      console.error(
        `  run ${r + 1}: muri put ${mbps(m.putMs)} MB/s (encode ${s(m.encodeMs)}, Magu formed at ${s(m.formedMs)}, delivered at ${s(m.deliveredMs)}, acks + commit ${s(m.commitMs)}; cpu ${JSON.stringify(m.putCpu)}), ` +
          `sequential put ${mbps(seq[r]!.putMs)} MB/s (encode ${s(seq[r]!.encodeMs)}, delivered at ${s(seq[r]!.deliveredMs)}), ` +
          `append ${mbps(append[r]!.putMs)} MB/s (encode ${s(append[r]!.encodeMs)}, delivered at ${s(append[r]!.deliveredMs)}), ` +
          `sequential append ${mbps(appendSeq[r]!.putMs)} MB/s (encode ${s(appendSeq[r]!.encodeMs)}, delivered at ${s(appendSeq[r]!.deliveredMs)}), ` +
          `get ${mbps(m.getMs)} MB/s (cpu ${JSON.stringify(m.getCpu)}); ` +
          `helia add ${mbps(h.addMs)} MB/s (cpu ${JSON.stringify(h.addCpu)}), cat ${mbps(h.catMs)} MB/s (cpu ${JSON.stringify(h.catCpu)}) (load ${loadavg()[0]!.toFixed(1)})`,
      );
    }

    const rate = (ms: number): number => mib / (ms / 1000);
    const med = {
      put: rate(median(muri.map((x) => x.putMs))),
      get: rate(median(muri.map((x) => x.getMs))),
      add: rate(median(helia.map((x) => x.addMs))),
      cat: rate(median(helia.map((x) => x.catMs))),
      /** Until the bytes are on a second node, as after a put: add on A, then cat on B. */
      addThenCat: rate(median(helia.map((x) => x.addMs + x.catMs))),
    };
    const phasesOf = (xs: MuriRun[]) => ({
      encodeMs: median(xs.map((x) => x.encodeMs)),
      formedMs: median(xs.map((x) => x.formedMs)),
      deliveredMs: median(xs.map((x) => x.deliveredMs)),
      commitMs: median(xs.map((x) => x.commitMs)),
      tailMs: median(xs.map((x) => x.tailMs)),
    });
    const phases = phasesOf(muri);
    // The overlap against its limit: in the sequential put, encode E, formation F (0 for an append)
    // and the push span S (from the end of the encoding, or the formation if later, to the
    // delivery) are apart; a put that overlaps them perfectly takes max(E, F + S) plus the same
    // acknowledgements, commit and record.
    const overlapOf = (overlapped: MuriRun[], sequentialRuns: MuriRun[]) => {
      const seqPhases = phasesOf(sequentialRuns);
      const pushSpanMs = median(sequentialRuns.map((x) => x.deliveredMs - Math.max(x.encodeMs, x.formedMs)));
      const idealMs = Math.max(seqPhases.encodeMs, seqPhases.formedMs + pushSpanMs) + seqPhases.commitMs + seqPhases.tailMs;
      // On a shared machine the client and the nodes compete for the same cores: no schedule can
      // finish before the put's CPU seconds (every process) spread over every core.
      const cpuFloorMs = (1000 * median(overlapped.map((x) => Object.values(x.putCpu).reduce((a, b) => a + b, 0)))) / cpus().length;
      return { putMs: median(overlapped.map((x) => x.putMs)), sequentialPutMs: median(sequentialRuns.map((x) => x.putMs)), idealMs, seqPhases, pushSpanMs, cpuFloorMs };
    };
    const overlaps = { "new Magu": overlapOf(muri, seq), "append to a formed Magu": overlapOf(append, appendSeq) };
    const total = (cpu: Record<string, number>): number => Object.values(cpu).reduce((a, b) => a + b, 0);
    /** MiB per CPU-second over every process involved (less sensitive to the machine's load). */
    const perCpu = {
      put: mib / median(muri.map((x) => total(x.putCpu))),
      get: mib / median(muri.map((x) => total(x.getCpu))),
      add: mib / median(helia.map((x) => total(x.addCpu))),
      cat: mib / median(helia.map((x) => total(x.catCpu))),
      addThenCat: mib / median(helia.map((x) => total(x.addCpu) + total(x.catCpu))),
    };
    const rows = [
      ["MuriData put (encrypt + RS k=3 m=2 + Magu + push to 5 nodes)", med.put, "Helia add", med.add],
      ["MuriData get (fetch + verify + decrypt, to a file)", med.get, "Helia cat (bitswap, to a file)", med.cat],
      ["MuriData put (as above)", med.put, "Helia add, then cat on B (bytes on a 2nd node)", med.addThenCat],
    ] as const;
    console.log(`MuriData vs Helia, ${mib} MiB random file, median of ${runs} runs, MB = MiB, on ${cpus().length} cores (load ${loadavg()[0]!.toFixed(1)})`);
    const header = ["MuriData", "MB/s", "Helia (baseline)", "MB/s", "MuriData / Helia", "MB per CPU-s (MuriData, Helia)"];
    const cpuCells = [
      `${perCpu.put.toFixed(1)}, ${perCpu.add.toFixed(1)}`,
      `${perCpu.get.toFixed(1)}, ${perCpu.cat.toFixed(1)}`,
      `${perCpu.put.toFixed(1)}, ${perCpu.addThenCat.toFixed(1)}`,
    ];
    const table = rows.map(([a, x, b, y], i) => [a, x.toFixed(1), b, y.toFixed(1), (x / y).toFixed(2), cpuCells[i]!]);
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
    console.log(line(header));
    console.log(line(widths.map((w) => "-".repeat(w))));
    for (const row of table) console.log(line(row));
    const sec = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
    console.log(
      `put phases (median): encode ${sec(phases.encodeMs)} while the Magu formed (at ${sec(phases.formedMs)}) and the shards were pushed ` +
        `(all delivered at ${sec(phases.deliveredMs)}), acknowledgements + commit ${sec(phases.commitMs)}, record ${sec(phases.tailMs)}`,
    );
    for (const [what, o] of Object.entries(overlaps)) {
      console.log(
        `overlap, ${what}: put ${sec(o.putMs)}; sequential (push after encode) ${sec(o.sequentialPutMs)}: encode E ${sec(o.seqPhases.encodeMs)}, formed F at ${sec(o.seqPhases.formedMs)}, ` +
          `push S ${sec(o.pushSpanMs)}, acks/commit/record ${sec(o.seqPhases.commitMs + o.seqPhases.tailMs)}; perfect overlap max(E, F + S) + the rest = ${sec(o.idealMs)}; ` +
          `put / sequential ${(o.putMs / o.sequentialPutMs).toFixed(2)}, put / perfect overlap ${(o.putMs / o.idealMs).toFixed(2)}; ` +
          `CPU floor (CPU-s of every process / ${cpus().length} cores) ${sec(o.cpuFloorMs)}, put / CPU floor ${(o.putMs / o.cpuFloorMs).toFixed(2)}`,
      );
    }

    if (stalls.count > 0) console.log(`Helia cats that stalled (no byte for ${STALL_MS / 1000} s) and were run again: ${stalls.count}`);
    await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true });
    const r1 = (x: number): number => Number(x.toFixed(1));
    const r3 = (x: number): number => Number(x.toFixed(3));
    await writeFile(
      RESULTS,
      `${JSON.stringify(
        {
          bench: "helia",
          date: new Date().toISOString(),
          node: process.version,
          cpus: cpus().length,
          loadavg1: Number(loadavg()[0]!.toFixed(2)),
          fileBytes: bytes,
          runs,
          unit: "MiB/s",
          statistic: "median",
          muridata: {
            how: "client API in-process against muri devnet",
            nodes,
            dataShards: 3,
            parityShards: 2,
            putMbps: r1(med.put),
            getMbps: r1(med.get),
            putPhasesMs: {
              encode: Math.round(phases.encodeMs),
              formedAt: Math.round(phases.formedMs),
              deliveredAt: Math.round(phases.deliveredMs),
              acksAndCommit: Math.round(phases.commitMs),
              record: Math.round(phases.tailMs),
            },
            appendMbps: r1(rate(median(append.map((x) => x.putMs)))),
            overlap: {
              how: "each put again with pushWhileEncoding false (shards pushed after the encoding) in the same run; perfect = max(encode, formation + push span) + acks, commit, record of that put; append = putInto an empty Magu formed beforehand",
              ...Object.fromEntries(
                Object.entries(overlaps).map(([what, o]) => [
                  what,
                  {
                    putMs: Math.round(o.putMs),
                    sequentialPutMs: Math.round(o.sequentialPutMs),
                    sequentialPhasesMs: { encode: Math.round(o.seqPhases.encodeMs), formedAt: Math.round(o.seqPhases.formedMs), pushSpan: Math.round(o.pushSpanMs), acksAndCommit: Math.round(o.seqPhases.commitMs), record: Math.round(o.seqPhases.tailMs) },
                    perfectOverlapMs: Math.round(o.idealMs),
                    putOverSequential: r3(o.putMs / o.sequentialPutMs),
                    putOverPerfectOverlap: r3(o.putMs / o.idealMs),
                    cpuFloorMs: Math.round(o.cpuFloorMs),
                    putOverCpuFloor: r3(o.putMs / o.cpuFloorMs),
                  },
                ]),
              ),
            },
            putMbPerCpuSecond: r1(perCpu.put),
            getMbPerCpuSecond: r1(perCpu.get),
            runs: muri.map((x) => ({ ...x, putMbps: r1(rate(x.putMs)), getMbps: r1(rate(x.getMs)) })),
            sequentialRuns: seq.map((x) => ({ ...x, putMbps: r1(rate(x.putMs)) })),
            appendRuns: append.map((x) => ({ ...x, putMbps: r1(rate(x.putMs)) })),
            sequentialAppendRuns: appendSeq.map((x) => ({ ...x, putMbps: r1(rate(x.putMs)) })),
          },
          baselines: {
            helia: {
              how: "helia (createHeliaLight + libp2p TCP/noise/yamux/identify + bitswap), memory blockstores, two nodes dialled directly on 127.0.0.1",
              addMbps: r1(med.add),
              catMbps: r1(med.cat),
              addMbPerCpuSecond: r1(perCpu.add),
              catMbPerCpuSecond: r1(perCpu.cat),
              addThenCatMbps: r1(med.addThenCat),
              addThenCatMbPerCpuSecond: r1(perCpu.addThenCat),
              stalledCatsRetried: stalls.count,
              runs: helia.map((x) => ({ ...x, addMbps: r1(rate(x.addMs)), catMbps: r1(rate(x.catMs)) })),
            },
          },
          ratios: {
            putOverAdd: r3(med.put / med.add),
            getOverCat: r3(med.get / med.cat),
            putOverAddThenCat: r3(med.put / med.addThenCat),
            putOverAddPerCpu: r3(perCpu.put / perCpu.add),
            getOverCatPerCpu: r3(perCpu.get / perCpu.cat),
          },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await client?.stop();
    await sequential?.stop();
    await devnet?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--helia-node") await heliaNode();
else await main();
