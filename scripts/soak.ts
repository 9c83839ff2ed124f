/**
 * `npm run soak [-- --minutes N]` (default 30): five node processes, a validator and a client on a
 * hardhat chain with 1-s blocks, all on 127.0.0.1, while the script makes trouble (issue 12):
 * - a reorganisation every `REORG_EVERY_MIN` minutes (`evm_snapshot`, blocks mined, `evm_revert`,
 *   other blocks after it: the proofs and other transactions of the dropped blocks are gone);
 * - one RPC outage of 30 s for every agent (their RPC goes through a proxy that answers 503);
 * - node-2 restarted twice (SIGTERM, start again on the same directory);
 * - a flooding peer: oversized frames from fresh identities (each is banned), dribbled pushes, and
 *   expensive searches (k 1,000, exact) at every node, as fast as they are answered.
 * Meanwhile the client stores a file at the start and one more half-way, and reads both back at
 * the end. Periods are 60 blocks with a 30-block grace, so a 30-s outage fits inside a proof window.
 *
 * Must hold, else it exits 1: no honest member misses a proof in any period whose deadline passed;
 * every agent's resident memory stays under `MEMORY_BOUND_MIB`; every event follower (nodes and
 * validator, from their `/metrics`) ends healthy; both files read back intact. Prints a table and
 * writes `bench/results/soak.json`. Not part of `npm test` (it takes `--minutes` plus setup).
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Stream } from "@libp2p/interface";
import { multiaddr } from "@multiformats/multiaddr";
import type { Address, Hex } from "viem";
import { FRAGMENT_SIZE } from "../agents/data/constants.js";
import { fragmentCid } from "../agents/data/cid.js";
import { writeNpy } from "../agents/data/vector-files.js";
import { FRAGMENT_PROTOCOL, Op, createP2PNode, encodeRequestHeader, searchRequest, type P2PNode } from "../agents/p2p/index.js";
import { encodeQuery } from "../agents/roles/shared/vector-service.js";
import { cleanup } from "../test/agents/chain/harness.js";
import { muri } from "../test/agents/cli/run-muri.js";
import { gaussianMixture, quantizeRows } from "../test/agents/index/fixtures.js";
import { MemoryFragmentStore } from "../test/agents/p2p/fixtures.js";
import { killAllNodes, randomFile, saveLogs, sha256File, startClient, startNetwork, type AgentProcess, type Network } from "../test/agents/roles/e2e-helpers.js";

const { values } = parseArgs({ options: { minutes: { type: "string", default: "30" } } });
const MINUTES = Number(values.minutes);
if (!(MINUTES > 0)) throw new Error(`--minutes must be a positive number, got ${values.minutes}`);
const RUN_MS = MINUTES * 60_000;
const NODES = 5;
const CLIENT = 6;
const VALIDATOR = 7;
const RESTARTED = 1; // node-2
const REORG_EVERY_MIN = 4;
const REORG_BLOCKS = 3;
const OUTAGE_MS = 30_000;
const MEMORY_BOUND_MIB = 1_536;
const PARAMETERS = { periodBlocks: 60, graceBlocks: 30, settleDelayBlocks: 120, epochBlocks: 240, commitBlocks: 16, revealBlocks: 16, disputeBlocks: 16 };
const DIM = 32;
/** The flooder's searches in flight at each node. */
const SEARCHES_IN_FLIGHT = 8;
const PROVEN = 1;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (msg: string): void => console.log(`# ${new Date().toISOString().slice(11, 19)} ${msg}`);

/** Resident memory of a process in MiB (0 when it is gone). */
async function rssMib(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

interface FloodCounts {
  oversized: number;
  oversizedCutOff: number;
  dribbled: number;
  dribbleCutOff: number;
  searches: number;
  searchBusy: number;
  searchAnswered: number;
  searchFailed: number;
}

/** The flooding peer: runs until `stop` aborts, counting what it sent and what it got. */
async function flood(net: Network, vectorMagu: bigint, stop: AbortSignal, counts: FloodCounts): Promise<void> {
  const query = encodeQuery(quantizeRows(gaussianMixture({ count: 1, dim: DIM, seed: 9 }, 3), DIM)[0]!);
  const searcher = await createP2PNode({ source: new MemoryFragmentStore(), sink: new MemoryFragmentStore() });
  await searcher.start();
  const targets = () => net.nodes.map((n) => multiaddr(n.multiaddrs[0]!));
  /** One raw request from a fresh identity (a banned one could not connect again). */
  const rawAttack = async (kind: "oversized" | "dribble"): Promise<boolean> => {
    const attacker: P2PNode = await createP2PNode({ source: new MemoryFragmentStore(), sink: new MemoryFragmentStore(), dht: { clientMode: true } });
    await attacker.start();
    try {
      const list = targets();
      const target = list[Math.floor(Math.random() * list.length)]!;
      const stream: Stream = await attacker.libp2p.dialProtocol(target, FRAGMENT_PROTOCOL, { signal: AbortSignal.timeout(5_000) });
      const closed = new Promise<boolean>((resolve) => {
        stream.addEventListener("close", () => resolve(true), { once: true });
        setTimeout(() => resolve(false), 20_000).unref();
      });
      const cid = fragmentCid(randomBytes(64));
      if (kind === "oversized") {
        stream.send(encodeRequestHeader({ op: Op.Push, cid, length: FRAGMENT_SIZE + 1 }));
        stream.send(randomBytes(64 * 1024));
      } else {
        stream.send(encodeRequestHeader({ op: Op.Push, cid, length: 256 * 1024 }));
        for (let i = 0; i < 100 && stream.status === "open" && !stop.aborted; i++) {
          stream.send(randomBytes(32));
          await sleep(200);
        }
      }
      return await closed;
    } catch {
      return true; // refused or reset at once
    } finally {
      await attacker.stop();
    }
  };
  const searchLoop = async (): Promise<void> => {
    while (!stop.aborted) {
      // SEARCHES_IN_FLIGHT at every node at once, as fast as they are answered.
      await Promise.all(
        targets().flatMap((target) => Array.from({ length: SEARCHES_IN_FLIGHT }, () => target)).map(async (target) => {
          counts.searches++;
          try {
            // A search is answered with a binary frame (roles/shared/search-wire.ts), an error with JSON.
            const answer = (await searchRequest(searcher.libp2p, target, { op: "search", magu: vectorMagu.toString(), query, k: 1000, exact: true })) as Uint8Array | { ok?: boolean; error?: string };
            if (answer instanceof Uint8Array) counts.searchAnswered++;
            else if (String(answer.error).startsWith("busy")) counts.searchBusy++;
            else counts.searchFailed++;
          } catch (err) {
            if (String((err as Error).message).includes("busy")) counts.searchBusy++;
            else counts.searchFailed++;
          }
        }),
      );
    }
  };
  const rawLoop = async (): Promise<void> => {
    for (let i = 0; !stop.aborted; i++) {
      if (i % 2 === 0) {
        counts.oversized++;
        if (await rawAttack("oversized")) counts.oversizedCutOff++;
      } else {
        counts.dribbled++;
        if (await rawAttack("dribble")) counts.dribbleCutOff++;
      }
      await sleep(2_000);
    }
  };
  try {
    await Promise.all([searchLoop(), rawLoop()]);
  } finally {
    await searcher.stop();
  }
}

/** `muri_follower_healthy` of every follower an agent reports, from its /metrics. */
async function followerHealth(url: string | null | undefined): Promise<Record<string, number> | string> {
  if (!url) return "no metrics URL";
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^muri_follower_healthy\{follower="([^"]+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2]);
    return out;
  } catch (err) {
    return `unreachable: ${(err as Error).message}`;
  }
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const net = await startNetwork({
    prefix: "muri-soak-",
    nodes: NODES,
    fund: [CLIENT, VALIDATOR],
    blockMs: 1000,
    automine: false,
    rpcProxy: true,
    nodeArgs: () => ["--metrics-port", "0"],
    parameters: PARAMETERS,
  });
  const validator = await net.startValidator(VALIDATOR, ["--metrics-port", "0"]);
  const client = await startClient(net, CLIENT);
  const chainArgs = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[CLIENT]!];
  log(`setup: ${Math.round((performance.now() - t0) / 1000)} s; agents reach the chain through ${net.proxy!.url}`);

  // Data: a blob Magu (k=3, m=2 over the five nodes) and a vector Magu (r=2) for the searches.
  const fileA = await randomFile(net.dir, "a.bin", 8 * 1024 * 1024);
  const storedA = await client.put(fileA.path, { k: 3, m: 2, members: NODES });
  log(`put a.bin into Magu ${storedA.maguId}`);
  const created = await muri(["magu", "create", "--kind", "vector", "--dim", String(DIM), "--metric", "l2", "--replication", "2", "--members", String(NODES), "--fragments", "16", "--periods", "10000", "--price", "0.000001", "--json", ...chainArgs]);
  if (created.code !== 0) throw new Error(`muri magu create: ${created.stderr}`);
  const vectorMagu = BigInt((JSON.parse(created.stdout) as { id: string }).id);
  await writeNpy(join(net.dir, "vectors.npy"), gaussianMixture({ count: 20_000, dim: DIM, seed: 4 }), DIM);
  const added = await muri(["vectors", "add", "--magu", String(vectorMagu), join(net.dir, "vectors.npy"), "--json", ...chainArgs, "--client-dir", join(net.dir, "client-cli")], {}, 300_000);
  if (added.code !== 0) throw new Error(`muri vectors add: ${added.stderr}`);
  log(`vector Magu ${vectorMagu}: 20k x ${DIM} added`);
  const magus: bigint[] = [storedA.maguId, vectorMagu];
  const startBlock = await net.head();

  // Trouble, on a schedule.
  const agents = (): AgentProcess[] => [...net.nodes, validator];
  const maxRss = new Map<string, number>();
  const events: string[] = [];
  const counts: FloodCounts = { oversized: 0, oversizedCutOff: 0, dribbled: 0, dribbleCutOff: 0, searches: 0, searchBusy: 0, searchAnswered: 0, searchFailed: 0 };
  const stopFlood = new AbortController();
  const flooding = flood(net, vectorMagu, stopFlood.signal, counts).catch((err: unknown) => events.push(`flooder failed: ${(err as Error).message}`));
  const started = performance.now();
  const at = (fraction: number): number => started + fraction * RUN_MS;
  const restartsAt = [at(0.25), at(0.7)];
  const outageAt = at(0.45);
  // The first after 3 minutes (sooner in a short run), then every REORG_EVERY_MIN minutes.
  let nextReorg = started + Math.min(REORG_EVERY_MIN * 60_000 - 60_000, 0.15 * RUN_MS);
  let outageDone = false;
  let storedB: Awaited<ReturnType<typeof client.put>> | undefined;
  let fileB: { path: string; sha256: string } | undefined;
  let reorgs = 0;
  const rpc = (method: string, params: unknown[] = []) => net.publicClient.request({ method: method as never, params: params as never });
  while (performance.now() - started < RUN_MS) {
    const now = performance.now();
    for (const [i, a] of agents().entries()) {
      const name = i < NODES ? `node-${i + 1}` : "validator";
      maxRss.set(name, Math.max(maxRss.get(name) ?? 0, await rssMib(a.pid)));
    }
    if (now >= nextReorg && now < started + RUN_MS - 30_000) {
      const head = await net.head();
      const snapshot = (await rpc("evm_snapshot")) as Hex;
      await sleep(REORG_BLOCKS * 1000 + 500);
      const dropped = (await net.head()) - head;
      await rpc("evm_revert", [snapshot]);
      reorgs++;
      events.push(`reorg ${reorgs}: ${dropped} blocks after ${head} dropped`);
      log(events.at(-1)!);
      nextReorg = now + REORG_EVERY_MIN * 60_000;
    }
    if (!outageDone && now >= outageAt) {
      outageDone = true;
      net.proxy!.down = true;
      log("RPC outage: the agents' provider answers 503 for 30 s");
      await sleep(OUTAGE_MS);
      net.proxy!.down = false;
      events.push(`RPC outage of ${OUTAGE_MS / 1000} s from block ${await net.head()}`);
      log("RPC back");
    }
    if (restartsAt.length > 0 && now >= restartsAt[0]!) {
      restartsAt.shift();
      await net.nodes[RESTARTED]!.kill("SIGTERM");
      const t = performance.now();
      await net.startNode(RESTARTED);
      events.push(`node-${RESTARTED + 1} restarted (${Math.round((performance.now() - t) / 1000)} s to ready)`);
      log(events.at(-1)!);
    }
    if (storedB === undefined && now >= at(0.55)) {
      fileB = await randomFile(net.dir, "b.bin", 4 * 1024 * 1024);
      storedB = await client.put(fileB.path, { k: 3, m: 2, members: NODES });
      magus.push(storedB.maguId);
      events.push(`put b.bin into Magu ${storedB.maguId} during the run`);
      log(events.at(-1)!);
    }
    await sleep(5_000);
  }
  stopFlood.abort();
  await flooding;
  log("trouble over: checking");

  // Every period whose deadline passed: proven, or nothing to prove; anything else is a miss.
  const { challengeManager, maguRegistry } = net.read;
  const head = await net.head();
  const misses: string[] = [];
  let proven = 0;
  let nothing = 0;
  for (const maguId of magus) {
    const info = await maguRegistry.read.maguInfo([maguId]);
    for (const member of info.members as readonly Address[]) {
      const m = await maguRegistry.read.membership([maguId, member]);
      for (let p = m.joinPeriod; ; p++) {
        if ((await challengeManager.read.proofDeadline([p])) >= head) break;
        const [, count] = await maguRegistry.read.challengedData([maguId, member, p]);
        if (count === 0) continue;
        const state = await challengeManager.read.proofState([maguId, member, p]);
        if (state === PROVEN) proven++;
        else if ((await challengeManager.read.challengeFor([maguId, member, p])).length === 0) nothing++;
        else misses.push(`Magu ${maguId} member ${member} period ${p}: state ${state}`);
      }
    }
  }
  const health: Record<string, Record<string, number> | string> = {};
  for (const [i, n] of net.nodes.entries()) health[`node-${i + 1}`] = await followerHealth(n.metricsUrl);
  health.validator = await followerHealth(validator.metricsUrl);
  const unhealthy = Object.entries(health).filter(([, h]) => typeof h === "string" || Object.values(h).length === 0 || Object.values(h).some((v) => v !== 1));
  const reads: string[] = [];
  for (const [name, file, stored] of [["a.bin", fileA, storedA], ["b.bin", fileB, storedB]] as const) {
    if (stored === undefined || file === undefined) continue;
    const out = join(net.dir, `${name}.out`);
    await client.get(stored, out);
    if ((await sha256File(out)) !== file.sha256) reads.push(`${name} read back differs`);
  }
  const overMemory = [...maxRss].filter(([, mib]) => mib > MEMORY_BOUND_MIB);

  const result = {
    date: new Date().toISOString(),
    minutes: MINUTES,
    blocks: Number(head - startBlock),
    parameters: PARAMETERS,
    magus: magus.map(String),
    proofs: { proven, nothingToProve: nothing, missed: misses.length, misses },
    reorgs,
    events,
    flood: counts,
    maxRssMib: Object.fromEntries([...maxRss].map(([k, v]) => [k, Math.round(v)])),
    memoryBoundMib: MEMORY_BOUND_MIB,
    followers: health,
    readBack: reads.length === 0 ? "both files intact" : reads,
  };
  console.log(`\nsoak: ${MINUTES} min, ${result.blocks} blocks, ${reorgs} reorganisations, 1 RPC outage, 2 restarts`);
  console.log(`| check | result |\n| --- | --- |`);
  console.log(`| proofs (honest members, periods past their deadline) | ${proven} proven, ${nothing} with nothing to prove, **${misses.length} missed** |`);
  console.log(`| max resident memory (MiB, bound ${MEMORY_BOUND_MIB}) | ${[...maxRss].map(([k, v]) => `${k} ${Math.round(v)}`).join(", ")} |`);
  console.log(`| followers healthy at the end | ${unhealthy.length === 0 ? "all" : JSON.stringify(unhealthy)} |`);
  console.log(`| flood: oversized frames cut off | ${counts.oversizedCutOff} / ${counts.oversized} |`);
  console.log(`| flood: dribbled pushes cut off | ${counts.dribbleCutOff} / ${counts.dribbled} |`);
  console.log(`| flood: searches k=1000 exact (answered / busy / failed) | ${counts.searchAnswered} / ${counts.searchBusy} / ${counts.searchFailed} of ${counts.searches} |`);
  console.log(`| files read back | ${result.readBack} |`);
  for (const e of events) console.log(`#   ${e}`);
  await mkdir("bench/results", { recursive: true });
  await writeFile("bench/results/soak.json", `${JSON.stringify(result, null, 2)}\n`);

  await saveLogs("soak-node", net.nodes);
  await saveLogs("soak-validator", [validator]);
  await client.stop();
  await net.proxy?.close();
  const failed = misses.length > 0 || unhealthy.length > 0 || overMemory.length > 0 || reads.length > 0;
  if (failed) console.log("soak: FAILED");
  return failed ? 1 : 0;
}

main()
  .then(async (code) => {
    await killAllNodes();
    await cleanup();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    console.error(err);
    await killAllNodes();
    await cleanup();
    process.exit(1);
  });
