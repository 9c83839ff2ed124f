/**
 * The web dashboard's server side: what `GET /api/dashboard.json` answers, gathered from public
 * data only (chain views and events read with viem, and the agents' Prometheus `/metrics`), and
 * the HTTP server that serves it with the page (agents/roles/shared/dashboard/: plain ES-module
 * JS, HTML and CSS) and uPlot's files from node_modules. No login, nothing signed.
 *
 * ```ts
 * const source = createDashboardSource({ deployment, rpcUrl, agents: () => [{ name: "node-1", address, metricsUrl }] });
 * const server = await startDashboardServer({ port: 8080 }, { source, registry });
 * server.url; // http://127.0.0.1:8080/
 * ```
 * Each snapshot reads the nodes (`nodeAt`, `nodeInfo`, claimable rewards and payments), the
 * Magus (`maguInfo`, `membership`), the last search tasks (`task`, `TaskFinalized` for the answer)
 * and the proof, miss and reward events since the last snapshot (kept per period and node), then
 * scrapes every known agent's `/metrics` (a 2 s timeout). An agent whose `/metrics` does not answer
 * is "down" at once; a node whose metrics are unknown (not an agent of this process) is "down" when
 * it missed a proof of the last closed period and proved none, else "up" when it proved one, else
 * "unknown". Proofs are summed per period for the page's proofs plot; samples of the totals
 * (proofs, rewards, reads and searches served) are kept for its plots over time.
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { zeroAddress, type Address } from "viem";
import type { Registry } from "prom-client";
import { createChainClients, getMuriContracts, type Deployment } from "../../chain/index.js";
import { serveMetrics, startHttpServer, type MetricsServerInit } from "./metrics-server.js";

/** An agent whose `/metrics` the dashboard scrapes. */
export interface DashboardAgent {
  name: string;
  role: "node" | "validator";
  address: Address;
  metricsUrl?: string;
}

export interface DashboardSourceInit {
  deployment: Deployment;
  rpcUrl: string;
  /** The agents this process knows (the devnet's, or the one agent serving the page). */
  agents: () => DashboardAgent[];
  /** Samples kept for the plots (default 720: an hour at one poll per 5 s). */
  historySize?: number;
  /** Search tasks listed, newest first (default 20). */
  maxTasks?: number;
  /** Scrape timeout of an agent's `/metrics` (default 2000 ms). */
  metricsTimeoutMs?: number;
}

export interface DashboardSource {
  /** Reads the chain and the agents now; concurrent calls share one read. */
  snapshot(): Promise<DashboardSnapshot>;
}

export type NodeHealth = "up" | "down" | "unknown";

export interface DashboardSnapshot {
  time: number;
  chainId: number;
  block: number;
  period: number;
  periodBlocks: number;
  epoch: number;
  nodes: {
    address: Address;
    name?: string;
    roles: string[];
    stake: string;
    locked: string;
    capacity: string;
    usedCapacity: string;
    reputation: number;
    magus: number;
    /** Rewards credited by Rewards since the deployment, in token wei. */
    rewarded: string;
    /** What the node can claim now (Rewards + MaguRegistry payments), in token wei. */
    claimable: string;
    /** Passed and missed proofs per period, the last periods only. */
    proofs: { period: number; passed: number; missed: number }[];
    lastProofPeriod?: number;
    health: NodeHealth;
    /** Why `health` says what it says. */
    healthReason: string;
    metrics?: { url: string; reachable: boolean; lastSeen?: number; error?: string };
  }[];
  magus: {
    id: string;
    kind: string;
    status: string;
    owner: Address;
    members: { address: Address; active: boolean; provedPeriods: number; misses: number; health: NodeHealth }[];
    fragments: number;
    maxFragments: number;
    startPeriod: number;
    endPeriod: number;
    /** Shards (blob) or replicas (vector) of a stripe that must be alive for it to be readable. */
    needed: number;
    /** Each stripe: how many of its holders are up, of how many (every member holds one shard or replica of each stripe it is placed on). */
    stripes: { index: number; holders: number; up: number; health: "ok" | "degraded" | "lost" }[];
  }[];
  /** Proofs passed and missed per period over all nodes, the last periods. */
  proofsByPeriod: { period: number; passed: number; missed: number }[];
  tasks: { id: string; magu: string; fee: string; k: number; committers: number; state: string; answer?: string[] }[];
  history: { time: number; block: number; proofsPassed: number; proofsMissed: number; rewarded: string; served: number }[];
}

const KINDS = ["blob", "vector"];
const STATUSES = ["none", "requested", "active", "ended", "cancelled"];
/** Periods of per-node proof counts kept and shown. */
const PERIODS_SHOWN = 12;
/** Periods of the proofs plot. */
const PERIODS_PLOTTED = 100;
/** Stripes listed per Magu (a stripe is one row of k + m fragments; bigger Magus are summarised by the first ones). */
const STRIPES_SHOWN = 64;

export function createDashboardSource(init: DashboardSourceInit): DashboardSource {
  const { publicClient } = createChainClients({ rpcUrl: init.rpcUrl, chainId: init.deployment.chainId });
  const c = getMuriContracts(init.deployment.contracts, { publicClient });
  const historySize = init.historySize ?? 720;
  const maxTasks = init.maxTasks ?? 20;
  const timeoutMs = init.metricsTimeoutMs ?? 2000;
  // Events are read once, incrementally: next block to read from, and what they added up to.
  let fromBlock = init.deployment.deployBlock;
  const proofs = new Map<string, Map<number, { passed: number; missed: number }>>();
  const rewarded = new Map<string, bigint>();
  const answers = new Map<string, string[]>();
  const lastSeen = new Map<string, number>();
  const history: DashboardSnapshot["history"] = [];
  let totals = { passed: 0, missed: 0 };
  let periodBlocks: number | undefined;
  let inFlight: Promise<DashboardSnapshot> | undefined;

  const bump = (member: string, period: number, key: "passed" | "missed") => {
    const byPeriod = proofs.get(member.toLowerCase()) ?? new Map<number, { passed: number; missed: number }>();
    const p = byPeriod.get(period) ?? { passed: 0, missed: 0 };
    p[key]++;
    byPeriod.set(period, p);
    proofs.set(member.toLowerCase(), byPeriod);
    totals = { ...totals, [key]: totals[key] + 1 };
  };

  async function readEvents(head: bigint): Promise<void> {
    if (head < fromBlock) return;
    const range = { fromBlock, toBlock: head };
    const [submitted, missed, credited, finalized] = await Promise.all([
      c.challengeManager.getEvents.ProofSubmitted({}, range),
      c.challengeManager.getEvents.ProofMissed({}, range),
      c.rewards.getEvents.RewardCredited({}, range),
      c.searchMarket.getEvents.TaskFinalized({}, range),
    ]);
    for (const e of submitted) if (e.args.member && e.args.period !== undefined) bump(e.args.member, Number(e.args.period), "passed");
    for (const e of missed) if (e.args.member && e.args.period !== undefined) bump(e.args.member, Number(e.args.period), "missed");
    for (const e of credited) {
      if (!e.args.account || e.args.amount === undefined) continue;
      const key = e.args.account.toLowerCase();
      rewarded.set(key, (rewarded.get(key) ?? 0n) + e.args.amount);
    }
    for (const e of finalized) if (e.args.task !== undefined) answers.set(e.args.task.toString(), [...(e.args.result ?? [])]);
    fromBlock = head + 1n;
  }

  async function scrape(agent: DashboardAgent): Promise<{ reachable: boolean; served: number; error?: string }> {
    if (!agent.metricsUrl) return { reachable: false, served: 0, error: "no metrics URL" };
    try {
      const res = await fetch(agent.metricsUrl, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) return { reachable: false, served: 0, error: `HTTP ${res.status}` };
      const text = await res.text();
      lastSeen.set(agent.address.toLowerCase(), Date.now());
      const m = /^muri_access_granted_total (\S+)$/m.exec(text);
      return { reachable: true, served: m ? Number(m[1]) : 0 };
    } catch (err) {
      return { reachable: false, served: 0, error: (err as Error).message };
    }
  }

  async function read(): Promise<DashboardSnapshot> {
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    periodBlocks ??= Number((await c.maguRegistry.read.config()).periodBlocks);
    const agents = init.agents();
    const [period, epoch, slotCount, maguCount, taskCount, scraped] = await Promise.all([
      c.maguRegistry.read.currentPeriod({ blockNumber: head }),
      c.rewards.read.currentEpoch({ blockNumber: head }),
      c.nodeRegistry.read.nodeCount({ blockNumber: head }),
      c.maguRegistry.read.maguCount({ blockNumber: head }),
      c.searchMarket.read.taskCount({ blockNumber: head }),
      Promise.all(agents.map(scrape)),
      readEvents(head),
    ]);
    const at = { blockNumber: head };
    const agentOf = new Map(agents.map((a, i) => [a.address.toLowerCase(), { agent: a, scrape: scraped[i]! }]));

    const addresses = (await Promise.all(Array.from({ length: Number(slotCount) }, (_, i) => c.nodeRegistry.read.nodeAt([BigInt(i)], at)))).filter(
      (a) => a !== zeroAddress,
    );
    const magus = await Promise.all(
      Array.from({ length: Number(maguCount) }, async (_, i) => {
        const id = maguCount - BigInt(i); // newest first
        const info = await c.maguRegistry.read.maguInfo([id], at);
        const members = await Promise.all(
          info.members.filter((m) => m !== zeroAddress).map(async (address) => ({ address, m: await c.maguRegistry.read.membership([id, address], at) })),
        );
        return { id, info, members };
      }),
    );
    const heldBy = new Map<string, number>();
    for (const m of magus) {
      if (m.info.status !== 2) continue;
      for (const x of m.members) if (x.m.active) heldBy.set(x.address.toLowerCase(), (heldBy.get(x.address.toLowerCase()) ?? 0) + 1);
    }

    const now = Date.now();
    const lastClosed = Number(period) - 1;
    const nodes = await Promise.all(
      addresses.map(async (address) => {
        const key = address.toLowerCase();
        const [info, rewardsClaimable, payments] = await Promise.all([
          c.nodeRegistry.read.nodeInfo([address], at),
          c.rewards.read.claimable([address], at),
          c.maguRegistry.read.claimable([address], at),
        ]);
        const byPeriod = proofs.get(key) ?? new Map<number, { passed: number; missed: number }>();
        const periods = [...byPeriod.keys()].sort((a, b) => a - b);
        const proved = periods.filter((p) => byPeriod.get(p)!.passed > 0);
        const lastProofPeriod = proved.at(-1);
        const known = agentOf.get(key);
        let health: NodeHealth;
        let healthReason: string;
        if (known?.agent.metricsUrl) {
          health = known.scrape.reachable ? "up" : "down";
          healthReason = known.scrape.reachable ? "its /metrics answers" : `its /metrics does not answer (${known.scrape.error ?? "unreachable"})`;
        } else if ((byPeriod.get(lastClosed)?.missed ?? 0) > 0 && (byPeriod.get(lastClosed)?.passed ?? 0) === 0) {
          health = "down";
          healthReason = `missed its proofs of period ${lastClosed}`;
        } else if (lastProofPeriod !== undefined && lastProofPeriod >= lastClosed) {
          health = "up";
          healthReason = `proved in period ${lastProofPeriod}`;
        } else {
          health = "unknown";
          healthReason = "no metrics and no recent proof on chain";
        }
        const roles = [info.roles & 1 ? "node" : "", info.roles & 2 ? "validator" : ""].filter(Boolean);
        return {
          address,
          ...(known ? { name: known.agent.name } : {}),
          roles,
          stake: info.stake.toString(),
          locked: info.locked.toString(),
          capacity: info.capacity.toString(),
          usedCapacity: info.usedCapacity.toString(),
          reputation: Number(info.reputation),
          magus: heldBy.get(key) ?? 0,
          rewarded: (rewarded.get(key) ?? 0n).toString(),
          claimable: (rewardsClaimable + payments).toString(),
          proofs: periods.slice(-PERIODS_SHOWN).map((p) => ({ period: p, ...byPeriod.get(p)! })),
          ...(lastProofPeriod !== undefined ? { lastProofPeriod } : {}),
          health,
          healthReason,
          ...(known?.agent.metricsUrl
            ? { metrics: { url: known.agent.metricsUrl, reachable: known.scrape.reachable, ...(lastSeen.has(key) ? { lastSeen: lastSeen.get(key)! } : {}), ...(known.scrape.error ? { error: known.scrape.error } : {}) } }
            : {}),
        };
      }),
    );
    const healthOf = new Map(nodes.map((n) => [n.address.toLowerCase(), n.health]));

    const maguRows = magus.map(({ id, info, members }) => {
      const p = info.params;
      const blob = p.kind === 0;
      const stripeWidth = blob ? p.dataShards + p.parityShards : p.members;
      const needed = blob ? p.dataShards : 1;
      const stripeCount = stripeWidth > 0 ? Math.ceil(info.fragmentCount / stripeWidth) : 0;
      const rows = members.map((x) => ({
        address: x.address,
        active: x.m.active,
        provedPeriods: Number(x.m.provedPeriods),
        misses: Number(x.m.misses),
        health: (x.m.active ? (healthOf.get(x.address.toLowerCase()) ?? "unknown") : "down") as NodeHealth,
      }));
      // Placement spreads each stripe's shards (blob) or replicas (vector) over distinct members;
      // with as many members as a stripe is wide every member holds a part of every stripe, which
      // is the devnet's case and the one measured here. Otherwise the stripe's holders are the
      // members (an upper bound: health is the share of members up).
      const holders = Math.min(stripeWidth, rows.length);
      const upShare = rows.length === 0 ? 0 : rows.filter((r) => r.health === "up").length / rows.length;
      const up = Math.round(holders * upShare);
      const stripes = Array.from({ length: Math.min(stripeCount, STRIPES_SHOWN) }, (_, index) => ({
        index,
        holders,
        up,
        health: (up >= holders ? "ok" : up >= needed ? "degraded" : "lost") as "ok" | "degraded" | "lost",
      }));
      return {
        id: id.toString(),
        kind: KINDS[p.kind] ?? String(p.kind),
        status: STATUSES[info.status] ?? String(info.status),
        owner: info.owner,
        members: rows,
        fragments: info.fragmentCount,
        maxFragments: p.maxFragments,
        startPeriod: Number(info.startPeriod),
        endPeriod: Number(info.endPeriod),
        needed,
        stripes,
      };
    });

    const shownTasks = taskCount > BigInt(maxTasks) ? maxTasks : Number(taskCount);
    const tasks = await Promise.all(
      Array.from({ length: shownTasks }, async (_, i) => {
        const id = taskCount - BigInt(i); // newest first (ids start at 1)
        const t = await c.searchMarket.read.task([id], at);
        const state = t.finalized
          ? "finalized"
          : head <= t.commitDeadline
            ? "committing"
            : head <= t.revealDeadline
              ? "revealing"
              : head <= t.disputeDeadline
                ? "disputing"
                : "to finalize";
        const answer = answers.get(id.toString());
        return { id: id.toString(), magu: t.magu.toString(), fee: t.fee.toString(), k: t.k, committers: t.committers, state, ...(answer ? { answer } : {}) };
      }),
    );

    const perPeriod = new Map<number, { passed: number; missed: number }>();
    for (const byPeriod of proofs.values()) {
      for (const [p, v] of byPeriod) {
        const sum = perPeriod.get(p) ?? { passed: 0, missed: 0 };
        perPeriod.set(p, { passed: sum.passed + v.passed, missed: sum.missed + v.missed });
      }
    }
    const proofsByPeriod = [...perPeriod.keys()].sort((a, b) => a - b).slice(-PERIODS_PLOTTED).map((p) => ({ period: p, ...perPeriod.get(p)! }));
    let rewardedTotal = 0n;
    for (const v of rewarded.values()) rewardedTotal += v;
    history.push({
      time: now,
      block: Number(head),
      proofsPassed: totals.passed,
      proofsMissed: totals.missed,
      rewarded: rewardedTotal.toString(),
      served: scraped.reduce((s, x) => s + x.served, 0),
    });
    if (history.length > historySize) history.splice(0, history.length - historySize);
    return {
      time: now,
      chainId: init.deployment.chainId,
      block: Number(head),
      period: Number(period),
      periodBlocks,
      epoch: Number(epoch),
      nodes,
      magus: maguRows,
      proofsByPeriod,
      tasks,
      history: [...history],
    };
  }

  return {
    snapshot() {
      inFlight ??= read().finally(() => (inFlight = undefined));
      return inFlight;
    },
  };
}

/** The page's own files (index.html, dashboard.js, dashboard.css), beside this module. */
const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "dashboard");
/** uPlot's browser build, served from node_modules (no CDN: the page must work offline). */
const UPLOT_DIR = join(dirname(createRequire(import.meta.url).resolve("uplot/package.json")), "dist");
const TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

/**
 * The browser light client the server may carry (agents/light/: the layer above this one hands it
 * in): its page, its script (built on demand) and where the chain is, for `/light`,
 * `/light/light.js` and `/api/light.json`.
 */
export interface DashboardLightClient {
  /** Path of the page's HTML file. */
  page: string;
  /** The page's script (an ES module). */
  script(): Promise<string>;
  /** What `/api/light.json` answers: the chain's RPC URL, its id and the contracts the page reads. */
  config: { rpcUrl: string; chainId: number; contracts: { nodeRegistry: Address; maguRegistry: Address; maguAccess: Address } };
}

interface DashboardComponents {
  source: DashboardSource;
  registry?: Registry;
  light?: DashboardLightClient;
}

export interface DashboardServer {
  readonly port: number;
  /** The page: `http://host:port/`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `GET /` (the page), `/dashboard/*` (its scripts and styles), `/vendor/uplot/*`,
 * `/api/dashboard.json` (a snapshot), with a registry `/metrics`, and with a light client `/light`,
 * `/light/light.js` and `/api/light.json`; anything else is 404.
 */
export async function startDashboardServer(init: MetricsServerInit, components: DashboardComponents): Promise<DashboardServer> {
  const server = await startHttpServer(init, (req, res) => void route(req, res, components));
  return { port: server.port, url: `${server.origin}/`, close: () => server.close() };
}

async function route(req: IncomingMessage, res: ServerResponse, components: DashboardComponents): Promise<void> {
  const path = (req.url ?? "").split("?")[0] ?? "";
  if (req.method !== "GET") {
    res.writeHead(405, { "content-type": "text/plain", allow: "GET" }).end("only GET\n");
    return;
  }
  if (path === "/metrics" && components.registry) {
    serveMetrics(components.registry, res);
    return;
  }
  if (path === "/api/dashboard.json") {
    try {
      const snapshot = await components.source.snapshot();
      res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(snapshot));
    } catch (err) {
      res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify({ error: `reading the chain failed: ${(err as Error).message}` }));
    }
    return;
  }
  const { light } = components;
  if (light !== undefined && (path === "/light/light.js" || path === "/api/light.json")) {
    try {
      const [type, body] = path === "/api/light.json" ? ["application/json", JSON.stringify(light.config)] : [TYPES[".js"]!, await light.script()];
      res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
    } catch (err) {
      res.writeHead(500, { "content-type": "text/plain" }).end(`building the light client failed: ${(err as Error).message}\n`);
    }
    return;
  }
  const file =
    path === "/" ? join(PAGE_DIR, "index.html")
    : path === "/light" && light !== undefined ? light.page
    : path.startsWith("/dashboard/") ? inside(PAGE_DIR, path.slice("/dashboard/".length))
    : path.startsWith("/vendor/uplot/") ? inside(UPLOT_DIR, path.slice("/vendor/uplot/".length))
    : undefined;
  const type = file === undefined ? undefined : TYPES[extname(file)];
  if (file === undefined || type === undefined) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    return;
  }
  try {
    res.writeHead(200, { "content-type": type }).end(await readFile(file));
  } catch {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  }
}

/** `dir/name`, or undefined when `name` would leave `dir` (`../`). */
function inside(dir: string, name: string): string | undefined {
  let file: string;
  try {
    file = normalize(join(dir, decodeURIComponent(name)));
  } catch {
    return undefined; // a malformed %-escape
  }
  return file.startsWith(dir + "/") ? file : undefined;
}
