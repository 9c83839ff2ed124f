/**
 * `muri devnet` end to end, through the real `bin/muri.js`: a devnet of three nodes comes up (chain,
 * deployment, funded accounts, node processes, DIR/devnet.json), `muri put` stores a 2 MiB file
 * (k=2, m=1 over the three nodes) and `muri get` returns it byte for byte; a bad CID and a second
 * devnet in the same directory fail with one line; SIGTERM stops everything (exit 0, no pid of
 * devnet.json left, RPC port closed). Then three quick start/stop cycles in the same directory
 * leave no process and no port behind.
 * The devnet's dashboard is loaded in a real headless Chromium (puppeteer-core; scripts/chromium.sh
 * installs Debian's package): the nodes and the Magu it shows match `muri status` (the chain); a
 * node killed with SIGKILL shows "down" within one period; a screenshot is saved (to
 * MURI_DASHBOARD_SCREENSHOT when set, as docs/dashboard.png was made).
 * The browser light client (`/light`, agents/light/) in the same Chromium, on a public vector Magu of
 * the same devnet: its proven answers over libp2p WebSockets equal a brute force over the vectors
 * added, through its API and through its form (a screenshot saved, to MURI_LIGHT_SCREENSHOT when
 * set); a member that claims a hit closer than it is gets rejected (and, unverified, would have
 * changed the answer); fragments fetched into IndexedDB answer a search in the browser equal to
 * brute force; after a reload they are served from IndexedDB with no fragment fetched; and a
 * smaller cache bound evicts down to the bound.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, test } from "node:test";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { CHROMIUM, launchChromium } from "../chromium.js";
import { holdersVector } from "../../../agents/data/placement.js";
import { MURI_BIN as MURI, ROOT, muri } from "./run-muri.js";
import { within } from "../within.js";

/**
 * Bounds on a failure only. A devnet is normally ready in well under a minute and stops within a
 * few seconds (its own SIGKILL escalation: 10 s for the agents, then 10 s for the chain).
 */
const READY_MS = 300_000;
const STOP_MS = 60_000;

interface DevnetInfo {
  rpcUrl: string;
  dashboardUrl: string;
  blockMs: number;
  pid: number;
  chainPid: number;
  clientKey: string;
  agents: { role: string; address: string; peerId: string; multiaddrs: string[]; pid: number; dataDir: string }[];
}

interface Running {
  child: ChildProcess;
  info: DevnetInfo;
  exited: Promise<number | null>;
  stderr(): string;
}

const devnets = new Set<Running>();
const dirs: string[] = [];

after(async () => {
  // Whatever a failed test left running: SIGTERM the devnet, then SIGKILL every group it listed.
  for (const d of devnets) {
    d.child.kill("SIGTERM");
    await within(d.exited, STOP_MS);
    for (const pid of pidsOf(d.info)) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    d.child.kill("SIGKILL");
  }
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function pidsOf(info: DevnetInfo): number[] {
  return [info.pid, info.chainPid, ...info.agents.map((a) => a.pid)];
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "muri-devnet-test-"));
  dirs.push(dir);
  return dir;
}

/** Starts `muri devnet --json` and resolves with its ready object. */
async function startDevnet(dir: string, nodes: number): Promise<Running> {
  const child = spawn(process.execPath, [MURI, "devnet", "--nodes", String(nodes), "--validators", "0", "--dir", dir, "--json"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-16_384)));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const info = await new Promise<DevnetInfo>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`devnet not ready after ${READY_MS} ms:\n${stderr}`)), READY_MS);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const msg = JSON.parse(line) as { event?: string } & DevnetInfo;
      if (msg.event === "ready") {
        clearTimeout(timer);
        resolve(msg);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`devnet exited (${code}) before ready:\n${stderr}`));
    });
  });
  const running = { child, info, exited, stderr: () => stderr };
  devnets.add(running);
  return running;
}

/** SIGTERM, then the exit code; afterwards nothing it started runs and its RPC port is closed. */
async function stopAndCheck(d: Running): Promise<void> {
  d.child.kill("SIGTERM");
  const code = await within(d.exited, STOP_MS);
  assert.equal(code, 0, `devnet exit code after SIGTERM:\n${d.stderr()}`);
  devnets.delete(d);
  for (const pid of pidsOf(d.info)) assert.equal(isAlive(pid), false, `pid ${pid} of devnet.json still runs`);
  assert.equal(await portOpen(new URL(d.info.rpcUrl)), false, `${d.info.rpcUrl} still accepts connections`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function portOpen(url: URL): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

const sha256 = async (path: string) => createHash("sha256").update(await readFile(path)).digest("hex");

describe("muri devnet", { timeout: 1_200_000 }, () => {
  test("three nodes: put and get a 2 MiB file, clear errors, SIGTERM leaves nothing behind", async () => {
    const dir = await tempDir();
    let t0 = performance.now();
    const devnet = await startDevnet(dir, 3);
    console.log(`# devnet of 3 nodes ready: ${Math.round(performance.now() - t0)} ms`);
    const file = JSON.parse(await readFile(join(dir, "devnet.json"), "utf8")) as DevnetInfo;
    assert.equal(file.agents.length, 3);
    assert.ok(file.agents.every((a) => a.role === "node" && a.peerId.startsWith("12D3Koo") && a.multiaddrs.length > 0 && a.pid > 0));
    assert.match(file.clientKey, /^0x[0-9a-f]{64}$/);
    assert.equal(file.pid, devnet.child.pid);

    const second = await muri(["devnet", "--nodes", "1", "--validators", "0", "--dir", dir]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /^muri: a devnet is already running in .*\n$/);

    const input = join(dir, "input.bin");
    await writeFile(input, randomBytes(2 * 1024 * 1024));
    t0 = performance.now();
    const put = await muri(["put", input, "--devnet", dir, "--data-shards", "2", "--parity-shards", "1", "--json"]);
    console.log(`# muri put 2 MiB: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(put.code, 0, put.stderr);
    const stored = JSON.parse(put.stdout) as { maguId: string; manifestCid: string; members: string[] };
    assert.equal(stored.members.length, 3);

    // The light client's vector Magu is formed meanwhile (the get sends no transaction; a formation
    // waits for its selection window).
    const vectorMagu = createVectorMagu(dir);
    const output = join(dir, "output.bin");
    t0 = performance.now();
    // The CID alone: the Magu is the one this client directory recorded the put in.
    const get = await muri(["get", stored.manifestCid, "-o", output, "--devnet", dir]);
    console.log(`# muri get 2 MiB: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(await sha256(output), await sha256(input));
    assert.match(put.stdout, /"maguId"/);

    // A valid CID that no record lists: the error says to pass the Magu.
    const unknown = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
    const missing = await muri(["get", unknown, "-o", join(dir, "missing.bin"), "--devnet", dir]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /has no record of manifest bafkreigh2.*pass the Magu with --magu ID/);
    assert.equal(existsSync(join(dir, "missing.bin")), false);

    const bad = await muri(["get", "not-a-cid", "--magu", stored.maguId, "-o", join(dir, "bad.bin"), "--devnet", dir]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /^muri: .*not a valid CID.*\n$/);
    assert.equal(existsSync(join(dir, "bad.bin")), false);

    t0 = performance.now();
    await checkLightClient(devnet.info, dir, await vectorMagu);
    console.log(`# light client in Chromium (vectors added, searches, tamper, cache, reload, private, paid): ${Math.round(performance.now() - t0)} ms`);

    t0 = performance.now();
    await checkDashboard(devnet.info, dir, stored);
    console.log(`# dashboard in Chromium (load, compare, node killed and shown down, screenshot): ${Math.round(performance.now() - t0)} ms`);

    t0 = performance.now();
    await stopAndCheck(devnet);
    console.log(`# devnet stopped: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(existsSync(join(dir, "devnet.pid")), false, "the lock is released");
  });

  test("started and stopped three times in a row: no process and no port left", async () => {
    const dir = await tempDir();
    for (let cycle = 1; cycle <= 3; cycle++) {
      const t0 = performance.now();
      const devnet = await startDevnet(dir, 1);
      await stopAndCheck(devnet);
      console.log(`# cycle ${cycle}: start + stop ${Math.round(performance.now() - t0)} ms`);
    }
  });
});

/** The light page's API (agents/light/page/main.ts), as the tests call it in the page. */
interface LightHit {
  id: string;
  distance: number;
}

/** A public vector Magu (dim 8, l2, replication 2 over the 3 nodes); its id. */
async function createVectorMagu(dir: string): Promise<string> {
  const created = await muri(["magu", "create", "--kind", "vector", "--dim", "8", "--metric", "l2", "--replication", "2", "--members", "3", "--public", "--devnet", dir, "--json"]);
  assert.equal(created.code, 0, created.stderr);
  return (JSON.parse(created.stdout) as { id: string }).id;
}

/**
 * Vector Magu `magu` gets 600 integer vectors in 4 fragments (integers in [-100, 100]: the scale 2^8
 * holds them exactly, so the page's distances are the integer squared distances), then the light
 * page runs in Chromium (see the file comment).
 */
async function checkLightClient(info: DevnetInfo, dir: string, magu: string): Promise<void> {
  let seed = 7;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
  const vectors = Array.from({ length: 600 }, () => Array.from({ length: 8 }, () => Math.floor(random() * 201) - 100));
  const file = join(dir, "vectors.jsonl");
  await writeFile(file, vectors.map((v) => JSON.stringify(v)).join("\n") + "\n");
  const added = await muri(["vectors", "add", "--magu", magu, file, "--fragment-size", "4096", "--devnet", dir, "--json"]);
  assert.equal(added.code, 0, added.stderr);
  assert.equal((JSON.parse(added.stdout) as { fragmentCount: number }).fragmentCount, 4);
  const queries = [
    [10, 20, 30, -40, 50, 0, 5, -5],
    [-100, 100, -100, 100, 0, 0, 0, 0],
    vectors[123]!,
  ];
  const k = 10;
  const bruteForce = (q: number[]): LightHit[] =>
    vectors
      .map((v, id) => ({ id: String(id), distance: v.reduce((n, x, i) => n + (x - q[i]!) ** 2, 0) }))
      .sort((a, b) => a.distance - b.distance || Number(a.id) - Number(b.id))
      .slice(0, k);
  const plain = (hits: LightHit[]): LightHit[] => hits.map(({ id, distance }) => ({ id, distance }));

  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    const url = `${info.dashboardUrl}light`;
    await page.goto(url, { waitUntil: "load" });
    /** Runs `body` in the page with `l` the light client's API (page/main.ts: set before "load"), returning its JSON. */
    const inPage = async <T>(body: string): Promise<T> =>
      JSON.parse((await page.evaluate(`(async () => { const l = await globalThis.muriLight; return JSON.stringify(await (async () => { ${body} })()); })()`)) as string) as T;
    const m = await inPage<{ members: string[]; fragmentCount: number; root: string; public: boolean }>(`return l.magu(${JSON.stringify(magu)});`);
    assert.equal(m.fragmentCount, 4);
    type Result = { hits: (LightHit & { fragment: number })[]; rejected: { member: string; reason: string }[]; failed: unknown[]; uncovered: number[]; paid?: { member: string; searches: string; total: string }[]; ms: number };
    const search = (q: number[], options = {}): Promise<Result> => inPage<Result>(`return l.search(${JSON.stringify(magu)}, ${JSON.stringify(q)}, ${k}, ${JSON.stringify(options)});`);

    // Proven answers from the members over WebSockets equal brute force.
    const honest: Result[] = [];
    for (const q of queries) honest.push(await search(q));
    honest.forEach((r, i) => {
      assert.deepEqual(r.rejected, [], `query ${i}: nobody rejected`);
      assert.deepEqual(r.failed, [], `query ${i}: nobody failed`);
      assert.deepEqual(plain(r.hits), bruteForce(queries[i]!), `query ${i}: the page's proven answer is brute force's`);
    });
    console.log(`# light client: verified searches over WebSockets ${honest.map((r) => Math.round(r.ms)).join(", ")} ms`);

    // As a person would: the form's search lists the same proven hits.
    await page.$eval("input[name=magu]", (e, v) => ((e as unknown as { value: string }).value = v), magu);
    await page.$eval("input[name=query]", (e, v) => ((e as unknown as { value: string }).value = v), JSON.stringify(queries[0]));
    await page.$eval("input[name=k]", (e, v) => ((e as unknown as { value: string }).value = v), String(k));
    await page.click("button[value=search]");
    await page.waitForFunction(`document.querySelectorAll("#hits tr").length === ${k}`, { timeout: 30_000 });
    assert.deepEqual(await page.$$eval("#hits tr", (rows) => rows.map((r) => r.getAttribute("data-id"))), bruteForce(queries[0]!).map((h) => h.id));
    assert.match(await page.$eval("#status", (e) => e.textContent ?? ""), new RegExp(`^${k} proven hits in \\d+ ms; rejected: \\[\\]`));
    await page.screenshot({ path: (process.env.MURI_LIGHT_SCREENSHOT ?? join(dir, "light.png")) as `${string}.png`, fullPage: true });

    // A member claims its best hit 1 closer: unchecked, that is the answer; checked, it is rejected.
    const best = honest[0]!.hits[0]!;
    const liar = m.members[holdersVector(BigInt(magu), best.fragment, m.members.length, 2)[0]!]!;
    const unchecked = await search(queries[0]!, { tamper: liar, verify: false });
    assert.equal(unchecked.hits[0]!.id, best.id);
    assert.ok(unchecked.hits[0]!.distance < best.distance, "unverified, the lie is the answer");
    const checked = await search(queries[0]!, { tamper: liar });
    assert.equal(checked.rejected.length, 1, JSON.stringify(checked.rejected));
    assert.equal(checked.rejected[0]!.member.toLowerCase(), liar.toLowerCase());
    assert.match(checked.rejected[0]!.reason, new RegExp(`^id ${best.id} is at distance \\d+, not \\d+$`));
    assert.deepEqual(plain(checked.hits), bruteForce(queries[0]!), "the other holders' proven hits answer");

    // Fragments fetched into IndexedDB, searched in the browser.
    assert.equal(await inPage<number>(`return l.hold(${JSON.stringify(magu)});`), 4);
    assert.deepEqual(await inPage(`return l.stats();`), { fragmentFetches: 4, cacheHits: 0, readsPaid: 0, readWei: "0" });
    type Held = { hits: (LightHit & { fragment: number })[]; records: number; fragments: number; method: string; exact: boolean; ms: number };
    const heldSearch = async (options: { method?: string; ef?: number } = {}): Promise<Held[]> => {
      const out = [];
      for (const q of queries) out.push(await inPage<Held>(`return l.searchHeld(${JSON.stringify(magu)}, ${JSON.stringify(q)}, ${k}, ${JSON.stringify(options)});`));
      return out;
    };
    for (const [i, r] of (await heldSearch()).entries()) {
      assert.equal(r.records, 600);
      assert.deepEqual([r.method, r.exact], ["scan", true], "600 records are scanned");
      assert.deepEqual(plain(r.hits), bruteForce(queries[i]!), `query ${i}: the held fragments' answer is brute force's`);
    }
    // The graph index (HNSW in WebAssembly) over the same records: with an effort of every record
    // its candidates are all of them, so its exactly ranked answer is brute force's too.
    for (const [i, r] of (await heldSearch({ method: "graph", ef: 600 })).entries()) {
      assert.deepEqual([r.method, r.exact, r.records], ["graph", false, 600]);
      assert.deepEqual(plain(r.hits), bruteForce(queries[i]!), `query ${i}: the graph's answer is brute force's`);
    }
    const refused = await inPage<string>(`return l.searchHeld(${JSON.stringify(magu)}, ${JSON.stringify(queries[0])}, ${k}, { method: "tree" }).then(() => "answered", (e) => e.message);`);
    assert.equal(refused, "method: tree is not auto, scan or graph");

    // Reload: the fragments come from IndexedDB, none is fetched.
    await page.reload({ waitUntil: "load" });
    assert.equal(await inPage<number>(`return l.hold(${JSON.stringify(magu)});`), 4);
    assert.deepEqual(await inPage(`return l.stats();`), { fragmentFetches: 0, cacheHits: 4, readsPaid: 0, readWei: "0" });
    const again = await heldSearch();
    again.forEach((r, i) => assert.deepEqual(plain(r.hits), bruteForce(queries[i]!), `query ${i} after the reload`));
    console.log(`# light client: a scan of 600 held records in the browser ${again.map((r) => r.ms.toFixed(1)).join(", ")} ms`);

    // A bound of 10 KiB keeps two of the 4 KiB fragments (the least recently used evicted).
    await page.goto(`${url}?cacheMiB=${10 / 1024}`, { waitUntil: "load" });
    assert.equal(await inPage<number>(`return l.hold(${JSON.stringify(magu)});`), 4);
    const held = await inPage<{ index: number; size: number }[]>(`return l.held();`);
    assert.deepEqual(held.map((f) => f.index).sort(), [2, 3]);
    assert.equal((await inPage<{ fragmentFetches: number }>(`return l.stats();`)).fragmentFetches, 4, "what was evicted is fetched again");
    assert.ok(held.reduce((n, f) => n + f.size, 0) <= 10 * 1024);
    // The held records follow the cache: only fragments 2 and 3 are searched now.
    for (const r of await heldSearch({ method: "scan" })) {
      assert.equal(r.fragments, 2);
      assert.ok(r.records > 0 && r.records < 600, `${r.records} records in fragments 2 and 3`);
      assert.ok(r.hits.every((h) => h.fragment === 2 || h.fragment === 3), JSON.stringify(r.hits));
    }

    // Private: the owner makes the Magu private; the page is refused until it takes a grant.
    const vis = await muri(["magu", "visibility", magu, "private", "--devnet", dir]);
    assert.equal(vis.code, 0, vis.stderr);
    await page.goto(url, { waitUntil: "load" }); // the page reads the Magu's visibility again
    // Members drop the Magu's visibility when their follower sees VisibilitySet (about a second);
    // until then they still serve it. 60 s bounds a failure.
    const askPrivate = `return l.search(${JSON.stringify(magu)}, ${JSON.stringify(queries[0])}, ${k}).then((r) => r.failed.length > 0 && r.hits.length === 0 ? r.failed.map((f) => f.reason).join("; ") : "answered", (e) => e.message);`;
    let refusal = "";
    for (const until = Date.now() + 60_000; Date.now() < until; await new Promise((r) => setTimeout(r, 500))) {
      refusal = await inPage<string>(askPrivate);
      if (refusal !== "answered") break;
    }
    assert.match(refusal, /is private/, "without a grant every member refuses");
    const accountKey = generatePrivateKey();
    const account = privateKeyToAccount(accountKey).address;
    const granted = await muri(["magu", "grant", magu, "--to", account, "--devnet", dir, "--json"]);
    assert.equal(granted.code, 0, granted.stderr);
    const token = (JSON.parse(granted.stdout) as { token: string }).token;
    // Clear refusals: no key for an account's grant, another account's key, a token that is none.
    const taken = (key?: string, t = token): Promise<string> => inPage<string>(`return l.grant(${JSON.stringify(t)}${key === undefined ? "" : `, ${JSON.stringify(key)}`}).then((g) => "taken by " + g.kind + " " + g.grantee, (e) => e.message);`);
    assert.match(await taken(), new RegExp(`^accountKey: the grant for Magu ${magu} names account ${account}; give that account's private key`));
    assert.match(await taken(`0x${"11".repeat(32)}`), new RegExp(`^accountKey: it is account 0x[0-9a-fA-F]{40}'s, the grant names ${account}$`));
    assert.match(await taken(accountKey, "muri1notatoken"), /^token: not a grant token/);
    assert.equal(await taken(accountKey), `taken by account ${account}`);
    const letIn = await search(queries[0]!);
    assert.deepEqual([letIn.failed, letIn.rejected], [[], []], "with the grant every member answers");
    assert.deepEqual(plain(letIn.hits), bruteForce(queries[0]!), "the private Magu's proven answer is brute force's");

    // Paid: the owner asks 0.5 MURI per search; the page pays each member with vouchers signed by
    // an account with a deposit (the devnet's client account, the owner, here).
    const priced = await muri(["magu", "search-price", magu, "0.5", "--devnet", dir]);
    assert.equal(priced.code, 0, priced.stderr);
    const unpaid = await inPage<string>(`return l.search(${JSON.stringify(magu)}, ${JSON.stringify(queries[0])}, ${k}).then(() => "answered", (e) => e.message);`);
    assert.match(unpaid, new RegExp(`^Magu ${magu} charges 500000000000000000 wei of MURI per search and member: give this page the key of an account`));
    const deposited = await muri(["magu", "deposit", magu, "10", "--devnet", dir]);
    assert.equal(deposited.code, 0, deposited.stderr);
    const { clientKey } = JSON.parse(await readFile(join(dir, "devnet.json"), "utf8")) as { clientKey: string };
    const payer = await inPage<string>(`return l.payer(${JSON.stringify(clientKey)});`);
    assert.equal(payer, privateKeyToAccount(clientKey as `0x${string}`).address);
    for (const n of [1, 2]) {
      const r = await search(queries[n]!);
      assert.deepEqual([r.failed, r.rejected], [[], []], `paid search ${n}: every member answers`);
      assert.deepEqual(plain(r.hits), bruteForce(queries[n]!), `paid search ${n}: brute force's answer`);
      // Each member took a voucher that counts this page's searches there and what they cost.
      assert.deepEqual(
        r.paid!.map((v) => [v.member.toLowerCase(), v.searches, v.total]).sort(),
        m.members.map((a) => [a.toLowerCase(), String(n), String(BigInt(n) * 5n * 10n ** 17n)]).sort(),
        `paid search ${n}`,
      );
    }

    // Paid reads: the owner asks 0.1 MURI per fragment read; with no cache (a bound of 0 keeps
    // nothing) every fragment the page holds is fetched, each prepaid with a read voucher.
    const readPriced = await muri(["magu", "read-price", magu, "0.1", "--devnet", dir]);
    assert.equal(readPriced.code, 0, readPriced.stderr);
    await page.goto(`${url}?cacheMiB=0`, { waitUntil: "load" });
    await inPage(`return l.grant(${JSON.stringify(token)}, ${JSON.stringify(accountKey)});`);
    const unpaidRead = await inPage<string>(`return l.hold(${JSON.stringify(magu)}).then(() => "held", (e) => e.message);`);
    assert.match(unpaidRead, new RegExp(`Magu ${magu} charges 100000000000000000 wei of MURI per fragment read`));
    await inPage(`return l.payer(${JSON.stringify(clientKey)});`);
    assert.equal(await inPage<number>(`return l.hold(${JSON.stringify(magu)});`), 4);
    const readStats = await inPage<{ fragmentFetches: number; cacheHits: number; readsPaid: number; readWei: string }>(`return l.stats();`);
    assert.equal(readStats.cacheHits, 0);
    assert.equal(readStats.readsPaid, 4, "one read voucher per fragment fetched");
    // Each read costs the base price times its fragment's demand multiplier (at least 1x, at most the chain's cap).
    assert.ok(BigInt(readStats.readWei) >= 4n * 10n ** 17n, readStats.readWei);

    assert.deepEqual(pageErrors, [], "no script error on the page");
  } finally {
    await browser.close();
  }
}

/**
 * Opens the devnet's dashboard in headless Chromium: nodes and Magu as `muri status` reads them
 * from the chain, all up; then the last node is SIGKILLed and the page must show it down (and the
 * Magu's stripes degraded) within one period; a screenshot is saved.
 */
async function checkDashboard(info: DevnetInfo, dir: string, stored: { maguId: string; members: string[] }): Promise<void> {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: run scripts/chromium.sh (installs Debian's chromium) or set MURI_CHROMIUM`);
  const status = await muri(["status", "--devnet", dir, "--json"]);
  assert.equal(status.code, 0, status.stderr);
  const chain = JSON.parse(status.stdout) as {
    period: string;
    nodes: { address: string; stake: string; reputation: string }[];
    magus: { id: string; members: string[]; fragments: number }[];
  };
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    const pageErrors: string[] = [];
    page.on("pageerror", (err) => pageErrors.push(String(err)));
    await page.goto(info.dashboardUrl, { waitUntil: "load" });
    // (The page's code runs in the browser: given as strings, since this project's types have no DOM.)
    await page.waitForFunction(`document.querySelectorAll("#nodes tr[data-node]").length === ${chain.nodes.length}`, { timeout: 60_000 });
    await page.waitForFunction(`document.querySelectorAll("#nodes tr[data-health=up]").length === ${chain.nodes.length}`, { timeout: 60_000 });
    const shown = await page.$$eval("#nodes tr[data-node]", (rows) => rows.map((r) => r.getAttribute("data-node")));
    assert.deepEqual(shown.sort(), chain.nodes.map((n) => n.address.toLowerCase()).sort());
    assert.deepEqual(shown.sort(), info.agents.map((a) => a.address.toLowerCase()).sort());
    // The Magu the put made: its id, and its members as the chain lists them.
    const magu = chain.magus.find((m) => m.id === stored.maguId);
    assert.ok(magu, `muri status lists Magu ${stored.maguId}`);
    const members = await page.$$eval(`#magus tr[data-magu="${stored.maguId}"] [data-member]`, (els) => els.map((e) => e.getAttribute("data-member")));
    assert.deepEqual(members.sort(), magu.members.map((m) => m.toLowerCase()).sort());
    const fragments = await page.$eval(`#magus tr[data-magu="${stored.maguId}"] td:nth-child(4)`, (e) => e.textContent);
    assert.match(fragments ?? "", new RegExp(`^${magu.fragments}/`));

    // A node goes down: within one period the page says so (its /metrics stops answering).
    const summary = await page.$eval("#summary", (e) => e.textContent ?? "");
    const periodBlocks = /period \d+ \((\d+) blocks\)/.exec(summary);
    assert.ok(periodBlocks, `the summary line gives the period's length: ${summary}`);
    const periodMs = Number(periodBlocks[1]) * info.blockMs;
    const victim = info.agents[info.agents.length - 1]!;
    const killedAt = performance.now();
    process.kill(victim.pid, "SIGKILL");
    await page.waitForSelector(`#nodes tr[data-node="${victim.address.toLowerCase()}"][data-health=down]`, { timeout: periodMs });
    const shownDownMs = Math.round(performance.now() - killedAt);
    console.log(`# dashboard shows the killed node down after ${shownDownMs} ms (one period: ${periodMs} ms)`);
    await page.waitForSelector(`#magus tr[data-magu="${stored.maguId}"] .stripe.degraded`, { timeout: periodMs });
    assert.equal(await page.$$eval("#nodes tr[data-health=up]", (r) => r.length), 2, "the other two nodes stay up");
    assert.deepEqual(pageErrors, [], "no script error on the page");
    const shot = process.env.MURI_DASHBOARD_SCREENSHOT ?? join(dir, "dashboard.png");
    await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
    assert.ok((await readFile(shot)).subarray(1, 4).toString() === "PNG", `${shot} is a PNG`);
  } finally {
    await browser.close();
  }
}
