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
import puppeteer from "puppeteer-core";
import { MURI_BIN as MURI, ROOT, muri } from "./run-muri.js";

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

/** `p`'s value, or "timeout" after `ms` (the timer does not outlive the race). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

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

/** Debian's Chromium (scripts/chromium.sh installs it); MURI_CHROMIUM overrides the path. */
const CHROMIUM = process.env.MURI_CHROMIUM ?? "/usr/bin/chromium";

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
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    // Without the background-networking flags Chromium dials out (updates, sync), and this
    // machine's closed network refuses it loudly.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    userDataDir: await mkdtemp(join(tmpdir(), "muri-chromium-")),
  });
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
