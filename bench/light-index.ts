/**
 * The browser light client's search over what it holds (agents/light/held-index.ts), measured in
 * headless Chromium (Debian's `chromium`, scripts/chromium.sh; MURI_CHROMIUM overrides): for each
 * set, one seeded Gaussian mixture (test/agents/index/fixtures.ts) packed into records as a vector
 * Magu's fragments hold them, then in the page
 *   - the first light client's per-record loop (a new Int16Array and a bigint distance per record),
 *   - `scanHeld` over the decoded rows (exact; checked equal to the per-record loop),
 *   - `HeldGraph` (hnswlib-wasm, M 16, efConstruction 100, the nodes' settings): build time, and
 *     per ef the query time and recall@10 against the exact answer.
 * Ratios are to the scan in the same page; "break-even" is how many queries pay for the graph's
 * build (build / (scan - graph query)). The page is served from 127.0.0.1 by this process.
 *
 * Usage: tsx bench/light-index.ts [--sets 10000x64,50000x64,200000x64] [--metric l2] [--queries 200]
 *   [--per-record 5] [--ef 16,32,64,128] [--out bench/results/light-index.json]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { bundleForBrowser } from "../agents/light/bundle.js";
import { launchChromium } from "../test/agents/chromium.js";
import type { BenchParams, BenchResult } from "./light-index-page.js";

const { values: args } = parseArgs({
  options: {
    sets: { type: "string", default: "10000x64,50000x64,200000x64" },
    metric: { type: "string", default: "l2" },
    queries: { type: "string", default: "200" },
    "per-record": { type: "string", default: "5" },
    ef: { type: "string", default: "16,32,64,128" },
    out: { type: "string", default: "bench/results/light-index.json" },
  },
});
if (args.metric !== "l2" && args.metric !== "ip") throw new Error(`--metric: ${args.metric} is not l2 or ip (a Hamming Magu is always scanned)`);
const sets = args.sets.split(",").map((s) => {
  const [count, dim] = s.split("x").map(Number);
  if (!Number.isInteger(count) || !Number.isInteger(dim) || count! < 1 || dim! < 1) throw new Error(`--sets: "${s}" is not COUNTxDIM`);
  return { count: count!, dim: dim! };
});

const HERE = dirname(fileURLToPath(import.meta.url));
const script = await bundleForBrowser(join(HERE, "light-index-page.ts"));
const server = createServer((req, res) => {
  if (req.url === "/bench.js") {
    res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    return;
  }
  res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><meta charset="utf-8"><script type="module" src="/bench.js"></script>');
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = (server.address() as { port: number }).port;

// One set is one call into the page: 250k rows of dim 128 take minutes.
const browser = await launchChromium({ protocolTimeout: 3_600_000 });
const version = await browser.version();
const results: BenchResult[] = [];
try {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: "load" });
  await page.waitForFunction("typeof globalThis.benchHeld === 'function'", { timeout: 60_000 });
  for (const set of sets) {
    const params: BenchParams = { ...set, metric: args.metric, queries: Number(args.queries), perRecordQueries: Number(args["per-record"]), efs: args.ef.split(",").map(Number), seed: 11 };
    const r = JSON.parse((await page.evaluate(`globalThis.benchHeld(${JSON.stringify(params)}).then(JSON.stringify)`)) as string) as BenchResult;
    if (errors.length > 0) throw new Error(`the page failed: ${errors.join("; ")}`);
    results.push(r);
    console.error(`# ${r.count} x ${r.dim}: scan ${r.scanMs.toFixed(2)} ms, graph built in ${(r.graphBuildMs / 1000).toFixed(1)} s`);
  }
} finally {
  await browser.close();
  server.close();
}

const f = (x: number, d = 2): string => x.toFixed(d);
console.log(`\nSearching what a browser holds (${version}, ${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}), ${args.metric}, k 10, ${args.queries} queries; ratios to the scan in the same page`);
console.log("| rows x dim | per-record loop | scan (p99) | per-record / scan | graph build | ef | graph query (p99) | scan / graph | recall@10 | break-even queries |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of results) {
  for (const [i, g] of r.graph.entries()) {
    const gain = r.scanMs - g.queryMs;
    const head = i === 0 ? [`${r.count} x ${r.dim}`, `${f(r.perRecordMs)} ms`, `${f(r.scanMs)} (${f(r.scanP99Ms)}) ms`, `${f(r.perRecordMs / r.scanMs, 1)}x`, `${f(r.graphBuildMs / 1000, 1)} s`] : ["", "", "", "", ""];
    console.log(`| ${[...head, String(g.ef), `${f(g.queryMs, 3)} (${f(g.p99Ms, 3)}) ms`, `${f(r.scanMs / g.queryMs, 1)}x`, f(g.recallAt10, 3), gain > 0 ? String(Math.ceil(r.graphBuildMs / gain)) : "never"].join(" | ")} |`);
  }
}
await mkdir(dirname(args.out), { recursive: true });
await writeFile(args.out, JSON.stringify({ date: new Date().toISOString(), browser: version, cores: cpus().length, load: loadavg(), metric: args.metric, queries: Number(args.queries), results }, null, 2) + "\n");
console.log(`\nwrote ${args.out}`);
