/**
 * `muri devnet` end to end, through the real `bin/muri.js`: a devnet of three nodes comes up (chain,
 * deployment, funded accounts, node processes, DIR/devnet.json), `muri put` stores a 2 MiB file
 * (k=2, m=1 over the three nodes) and `muri get` returns it byte for byte; a bad CID and a second
 * devnet in the same directory fail with one line; SIGTERM stops everything (exit 0, no pid of
 * devnet.json left, RPC port closed). Then three quick start/stop cycles in the same directory
 * leave no process and no port behind.
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
import { MURI_BIN as MURI, ROOT, muri } from "./run-muri.js";

/**
 * Bounds on a failure only. A devnet is normally ready in well under a minute and stops within a
 * few seconds (its own SIGKILL escalation: 10 s for the agents, then 10 s for the chain).
 */
const READY_MS = 300_000;
const STOP_MS = 60_000;

interface DevnetInfo {
  rpcUrl: string;
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
