/**
 * A tiny `/metrics` HTTP endpoint over a prom-client registry, bound to 127.0.0.1 by default.
 * Any role (validator, node agent) can serve its own registry with it:
 *
 * ```ts
 * const registry = new Registry();
 * const server = await startMetricsServer({ port: 9464 }, { registry });
 * server.url; // http://127.0.0.1:9464/metrics
 * await server.close();
 * ```
 * Only `GET /metrics` is served (200, Prometheus text format); everything else is 404.
 * `registerFollowerMetrics` adds the event followers' health to a registry.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Gauge, type Registry } from "prom-client";
import type { FollowerState, FollowerStatus } from "../../chain/index.js";
import type { SearchBudgetStats } from "./search-budget.js";

export interface MetricsServerInit {
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Listen address (default 127.0.0.1). */
  host?: string;
}

export interface MetricsServerComponents {
  registry: Registry;
}

export interface MetricsServer {
  readonly port: number;
  /** `http://host:port/metrics`. */
  readonly url: string;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

export async function startMetricsServer(init: MetricsServerInit, components: MetricsServerComponents): Promise<MetricsServer> {
  const { registry } = components;
  const server = await startHttpServer(init, (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    serveMetrics(registry, res);
  });
  return { ...server, url: `${server.origin}/metrics` };
}

/** Answers with `registry`'s metrics in Prometheus text format (500 and the message if collecting fails). */
export function serveMetrics(registry: Registry, res: ServerResponse): void {
  registry.metrics().then(
    (body) => res.writeHead(200, { "content-type": registry.contentType }).end(body),
    (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${(err as Error).message}\n`),
  );
}

/** A listening HTTP server: its port, `http://host:port` and how to close it. */
export interface HttpServer {
  readonly port: number;
  readonly origin: string;
  close(): Promise<void>;
}

/** Listens on `init.host` (default 127.0.0.1) and `init.port` (0: a free one) with `handler`. */
export async function startHttpServer(init: MetricsServerInit, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<HttpServer> {
  const host = init.host ?? "127.0.0.1";
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(init.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Where a follower's health comes from: its name and a status reader (undefined before start). */
export type FollowerSources = Record<string, () => FollowerStatus | undefined>;

/** States in which a follower is doing its job; any other (failed, lagging, backing-off) is not. */
const HEALTHY_STATES: ReadonlySet<FollowerState> = new Set(["syncing", "following"]);

/** Whether a follower status is healthy: running and not stuck (state syncing or following). */
export function followerHealthy(status: FollowerStatus | undefined): boolean {
  return status !== undefined && HEALTHY_STATES.has(status.state);
}

/**
 * Gauges of the event followers' health, read when `/metrics` is scraped:
 * `muri_follower_healthy{follower}` (1 syncing or following, else 0), `muri_follower_state{follower,state}`,
 * `muri_follower_cursor_block`, `muri_follower_head_block`, `muri_follower_lag_blocks` and
 * `muri_follower_reorgs` (reorganisations rewound over since start).
 */
export function registerFollowerMetrics(registry: Registry, sources: FollowerSources): void {
  const each = (read: (s: FollowerStatus) => bigint | number | undefined) =>
    function (this: Gauge<"follower">) {
      this.reset();
      for (const [name, status] of Object.entries(sources)) {
        const s = status();
        const v = s === undefined ? undefined : read(s);
        if (v !== undefined) this.set({ follower: name }, Number(v));
      }
    };
  const gauge = (name: string, help: string, read: (s: FollowerStatus) => bigint | number | undefined) =>
    new Gauge({ name, help, labelNames: ["follower"] as const, registers: [registry], collect: each(read) });
  gauge("muri_follower_healthy", "1 while the event follower syncs or follows, 0 when it lags, backs off or failed", (s) => (followerHealthy(s) ? 1 : 0));
  gauge("muri_follower_cursor_block", "Last block the event follower fully processed", (s) => s.cursor);
  gauge("muri_follower_head_block", "Last head the event follower saw", (s) => s.head);
  gauge("muri_follower_lag_blocks", "Blocks between the head and the cursor", (s) => s.lagBlocks);
  gauge("muri_follower_reorgs", "Chain reorganisations the event follower rewound over since start", (s) => s.reorgs);
  new Gauge({
    name: "muri_follower_state",
    help: "1 for the event follower's current state",
    labelNames: ["follower", "state"] as const,
    registers: [registry],
    collect(this: Gauge<"follower" | "state">) {
      this.reset();
      for (const [name, status] of Object.entries(sources)) {
        const s = status();
        if (s !== undefined) this.set({ follower: name, state: s.state }, 1);
      }
    },
  });
}

/**
 * Counters of the search budget (`search-budget.ts`), read when `/metrics` is scraped:
 * `muri_search_served_total`, `muri_search_refused_total{scope="peer"|"node"}`,
 * `muri_search_time_ms_total` and `muri_search_budget_peers` (peers with a bucket).
 */
export function registerSearchBudgetMetrics(registry: Registry, stats: () => SearchBudgetStats): void {
  const gauge = (name: string, help: string, read: (s: SearchBudgetStats) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect(this: Gauge) {
        this.set(read(stats()));
      },
    });
  gauge("muri_search_served_total", "Peers' searches this node ran", (s) => s.served);
  gauge("muri_search_time_ms_total", "Search time charged to peers, in ms", (s) => Math.round(s.chargedMs));
  gauge("muri_search_budget_peers", "Peers with a search budget bucket now", (s) => s.peers);
  new Gauge({
    name: "muri_search_refused_total",
    help: "Peers' searches answered busy: the peer's share (scope=peer) or the node's total (scope=node) was spent",
    labelNames: ["scope"] as const,
    registers: [registry],
    collect(this: Gauge<"scope">) {
      const s = stats();
      this.set({ scope: "peer" }, s.refusedPeer);
      this.set({ scope: "node" }, s.refusedNode);
    },
  });
}

/** A maker of unlabelled gauges in `registry`, each set from `read` when scraped. */
function gaugeIn(registry: Registry): (name: string, help: string, read: () => number) => Gauge {
  return (name, help, read) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect(this: Gauge) {
        this.set(read());
      },
    });
}

/** `muri_access_*` and `muri_search_paid_*`: what the access gate let in and refused, and paid searches. */
export function registerAccessMetrics(
  registry: Registry,
  access: () => { granted: number; refused: number; grants: number },
  meter?: () => { charged: number; refused: number; settled: number; owed: bigint },
): void {
  const gauge = gaugeIn(registry);
  gauge("muri_access_granted_total", "Reads and searches of Magus let through the access gate", () => access().granted);
  gauge("muri_access_refused_total", "Reads and searches refused: the peer was no member, validator or grantee of a private Magu", () => access().refused);
  gauge("muri_access_grants", "Grants presented and held now", () => access().grants);
  if (meter === undefined) return;
  gauge("muri_search_paid_total", "Paid searches answered (vouchers kept)", () => meter().charged);
  gauge("muri_search_unpaid_refused_total", "Searches refused for a missing or insufficient voucher", () => meter().refused);
  gauge("muri_search_settlements_total", "Voucher settlements sent on chain", () => meter().settled);
  gauge("muri_search_owed_wei", "Voucher totals not settled yet, in token wei", () => Number(meter().owed));
}

/** Paid reads (read-meter.ts): fetches served against read vouchers, their settlements and what they earned. */
export function registerReadMetrics(
  registry: Registry,
  reads: () => { paidFetches: number; refused: number; settled: number; owed: bigint; redeemed: bigint; unsettledReads: number },
): void {
  const gauge = gaugeIn(registry);
  gauge("muri_reads_paid_fetches_total", "Fetches of priced Magus' data served against read vouchers", () => reads().paidFetches);
  gauge("muri_reads_refused_total", "Fetches and read vouchers refused (not prepaid, over the reader's max, deposit short)", () => reads().refused);
  gauge("muri_reads_vouchers_redeemed_total", "Read vouchers redeemed on chain (settleRead)", () => reads().settled);
  gauge("muri_reads_earned_wei_total", "Tokens read vouchers paid this node on chain since it started, in token wei", () => Number(reads().redeemed));
  gauge("muri_reads_owed_wei", "Read voucher totals not redeemed yet, in token wei", () => Number(reads().owed));
  gauge("muri_reads_unsettled_fragments", "Fragments served and not listed in a settleRead yet", () => reads().unsettledReads);
}
