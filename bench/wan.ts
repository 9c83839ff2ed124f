/**
 * MuriData put/get over an emulated WAN link, next to raw TCP over the same link in the same run.
 *
 * Layout (everything in two network namespaces this benchmark creates and deletes; the root
 * namespace gets no address, route or qdisc):
 *
 *   namespace muriwanA                        namespace muriwanB
 *   +-------------------------+               +------------------------------------------+
 *   | storage client (child   |   TUN pair    | hardhat node   http://10.213.77.1:8545   |
 *   | process, this file with | muriwanA0 <-> | 5 node processes /ip4/10.213.77.1/tcp/*  |
 *   | --client-a), raw TCP    | 10.213.77.2   | raw TCP server 10.213.77.1:9100          |
 *   | sender/receiver         | muriwanB0     | this file with --stage-b (orchestrator)  |
 *   +-------------------------+ 10.213.77.1   +------------------------------------------+
 *
 * The link: the brief was veth + `tc netem`, but this machine's kernel has no netem (nor fq, nor
 * gact; CONFIG_NET_SCH_NETEM is not set and there are no modules), so the link is a TUN device in
 * each namespace (point to point, MTU 1500, no offloads: one IP packet at a time) joined by a small
 * userspace forwarder (LINK_EMULATOR below, Python, one process, in the orchestrator's care) that
 * holds every packet 10 ms each way (20 ms RTT, FIFO, no jitter, no reordering) and drops 0.5% of
 * the packets each way at random, queue limit 100k packets. The forwarder costs CPU per packet
 * (counted in the results); the "no delay/loss" baseline goes through the same forwarder with no delay
 * and no loss, so the two differ by the delay and the loss only. The client reaches the chain
 * (JSON-RPC) and the nodes (libp2p TCP + noise + yamux) only across that link; the nodes talk to
 * each other and to the chain inside muriwanB.
 *
 * Per round, with the delay and loss on and then (unless `--no-plain`) off (the same TUN path, the
 * forwarder passing every packet at once: the second baseline, "no delay/loss" below):
 *   - raw TCP from A to B moving the put's wire bytes (every shard, 1.67x the file for k=3 m=2),
 *     over one connection and over `--conns` (default 5: the put and get run over one connection
 *     per node, with many yamux streams each) connections in parallel, the bytes split evenly;
 *     raw TCP from B to A moving the get's bytes (the data shards, k/(k+m) of those);
 *   - MuriData `put` (new Magu: encode + create/form/commit on the chain + push every shard) and
 *     `get` (fetch, verify, decrypt, write), the output checked byte for byte against the input.
 * Each MuriData figure is given as a ratio to raw TCP moving the same bytes over the same link in
 * the same run (raw time / MuriData time: 1.0 = as fast as raw TCP). The push span alone (Magu
 * formed -> every shard delivered, from the client's log) is compared too: it is the part of a put
 * that is pure transfer.
 *
 *   sudo npm run bench:wan [-- --mib 64] [--runs 3] [--conns 5] [--no-plain] [--cc reno]
 *
 * `--keep-logs` keeps the chain's and the nodes' logs (in $TMPDIR/muri-bench-wan-logs-*, also kept
 * when a run fails), the nodes' with the fragment protocol's debug lines.
 * `--cc NAME` sets the TCP congestion control in both namespaces (one of the root namespace's
 * net.ipv4.tcp_allowed_congestion_control, reno or bbr here; MuriData's connections and raw
 * TCP alike; default: the kernel's, bbr here) and writes bench/results/wan-NAME.json instead.
 *
 * Needs root, iproute2 (`ip`), python3 and /dev/net/tun; without them it prints why and exits 0 (so `npm run bench`
 * passes elsewhere). Writes bench/results/wan.json (MB = MiB).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Address, Hex } from "viem";
import { createChainClients, getMuriContracts, loadDeployment, type Deployment } from "../agents/chain/index.js";
import { devnetAddress, devnetKey, DEVNET_DEFAULTS } from "../agents/cli/devnet/devnet.js";
import { HARDHAT_CLI, readyLine, ROOT, runToEnd, spawnManaged, type Managed } from "../agents/cli/devnet/processes.js";
import { rpcCall } from "../agents/cli/devnet/rpc.js";
import { FRAGMENT_SIZE } from "../agents/data/constants.js";
import { createClient, shardCountOf, type PutResult, type StorageClient } from "../agents/roles/client/client.js";
import { randomFileOf, sha256File } from "./lib/files.js";

const SELF = fileURLToPath(import.meta.url);
/** `--cc NAME`: TCP congestion control in both namespaces (default: the kernel's, bbr on this machine). */
const CC = ((): string | undefined => {
  const i = process.argv.indexOf("--cc");
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (i >= 0 && (v === undefined || !/^[a-z0-9_]+$/.test(v))) throw new Error("--cc needs a congestion control name (reno, bbr, ...: one of net.ipv4.tcp_allowed_congestion_control)");
  return v;
})();
const RESULTS = fileURLToPath(new URL(CC === undefined ? "./results/wan.json" : `./results/wan-${CC}.json`, import.meta.url));
const MIB = 1024 * 1024;

const NS_A = "muriwanA";
const NS_B = "muriwanB";
const TUN_A = "muriwanA0";
const TUN_B = "muriwanB0";
const ADDR_A = "10.213.77.2";
const ADDR_B = "10.213.77.1";
const RPC_PORT = 8545;
const TCP_PORT = 9100;
/** Per direction (A -> B and B -> A each): together 20 ms RTT. */
const NETEM = { delayMs: 10, lossPercent: 0.5, limitPackets: 100_000 } as const;

/**
 * The link emulator (python3 -c): opens a TUN device in namespace argv[1] named argv[2] and one in
 * argv[3] named argv[4], then forwards every packet read from one to the other after `delay`
 * seconds, dropping a `loss` fraction at random; at most argv[5] packets wait per direction.
 * Control on stdin, one line each: "set DELAY_MS LOSS_PERCENT" (answers "ok"), "stats" (answers
 * one JSON line of counters and the emulator's CPU seconds); EOF ends it. Prints "ready" once both
 * devices exist.
 */
const LINK_EMULATOR = String.raw`
import ctypes, os, sys, fcntl, struct, select, random, time, json, collections, resource
libc = ctypes.CDLL(None, use_errno=True)
def tun_in(ns, name):
    nsfd = os.open("/var/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(nsfd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(nsfd)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN | IFF_NO_PI
    return fd
a = tun_in(sys.argv[1], sys.argv[2])
b = tun_in(sys.argv[3], sys.argv[4])
limit = int(sys.argv[5])
delay = 0.0
loss = 0.0
ctl = sys.stdin.fileno()
os.set_blocking(ctl, False)
st = {"aToB": {"forwarded": 0, "lost": 0, "queueFull": 0}, "bToA": {"forwarded": 0, "lost": 0, "queueFull": 0}}
dirs = {a: (b, collections.deque(), st["aToB"]), b: (a, collections.deque(), st["bToA"])}
rnd = random.random
mono = time.monotonic
pending = b""
print("ready", flush=True)
while True:
    now = mono()
    nxt = None
    for out, q, c in dirs.values():
        while q and q[0][0] <= now:
            try:
                os.write(out, q.popleft()[1])
            except OSError:
                c["queueFull"] += 1
        if q and (nxt is None or q[0][0] < nxt):
            nxt = q[0][0]
    r, _, _ = select.select([a, b, ctl], [], [], None if nxt is None else max(0.0, nxt - mono()))
    now = mono()
    for fd in r:
        if fd == ctl:
            data = os.read(ctl, 4096)
            if not data:
                sys.exit(0)
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if words and words[0] == "set":
                    delay = float(words[1]) / 1000.0
                    loss = float(words[2]) / 100.0
                    print("ok", flush=True)
                elif words and words[0] == "stats":
                    u = resource.getrusage(resource.RUSAGE_SELF)
                    print(json.dumps(dict(st, cpuSeconds=round(u.ru_utime + u.ru_stime, 2))), flush=True)
            continue
        out, q, c = dirs[fd]
        for _ in range(256):
            try:
                p = os.read(fd, 65536)
            except BlockingIOError:
                break
            if loss > 0 and rnd() < loss:
                c["lost"] += 1
            elif delay == 0 and not q:
                try:
                    os.write(out, p)
                    c["forwarded"] += 1
                except OSError:
                    c["queueFull"] += 1
            elif len(q) < limit:
                q.append((now + delay, p))
                c["forwarded"] += 1
            else:
                c["queueFull"] += 1
`;

const NODES = 5;
const K = 3;
const M = 2;
const BLOCK_MS = DEVNET_DEFAULTS.blockMs;
/** Bounds: the whole run, one step of the set-up, one transfer, one put or get. */
const RUN_DEADLINE_MS = 60 * 60_000;
const SETUP_STEP_MS = 180_000;
const TRANSFER_MS = 600_000;
const WORKER_REPLY_MS = 900_000;
const STOP_MS = 15_000;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function run(cmd: string, args: string[], okToFail = false): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
  } catch (err) {
    if (okToFail) return "";
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}



async function writeAll(sock: Socket, bytes: number, block: Buffer): Promise<void> {
  for (let left = bytes; left > 0; ) {
    const n = Math.min(left, block.length);
    left -= n;
    if (!sock.write(n === block.length ? block : block.subarray(0, n))) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          sock.off("close", onClose);
          resolve();
        };
        const onClose = (): void => {
          sock.off("drain", onDrain);
          reject(new Error("raw TCP: socket closed mid-write"));
        };
        sock.once("drain", onDrain);
        sock.once("close", onClose);
      });
    }
  }
}

// ------------------------------------------------------------------------------ namespaces (root)

function namespacesExist(): string[] {
  return run("ip", ["netns", "list"], true)
    .split("\n")
    .map((l) => l.split(" ")[0]!)
    .filter((n) => n === NS_A || n === NS_B);
}

/** Kills what still runs in our namespaces (processes this benchmark started), then deletes them. */
function teardownNamespaces(): void {
  for (const ns of namespacesExist()) {
    for (const pid of run("ip", ["netns", "pids", ns], true).split("\n").filter((p) => /^\d+$/.test(p))) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
    run("ip", ["netns", "del", ns], true); // the TUN devices went with the emulator
  }
}

function setupNamespaces(): void {
  for (const ns of [NS_A, NS_B]) {
    run("ip", ["netns", "add", ns]);
    run("ip", ["-n", ns, "link", "set", "lo", "up"]);
    if (CC !== undefined) run("ip", ["netns", "exec", ns, "sysctl", "-q", "-w", `net.ipv4.tcp_congestion_control=${CC}`]);
  }
}

/** The root process: creates the namespaces, runs the benchmark in muriwanB, always cleans up. */
async function rootMain(): Promise<void> {
  if (process.getuid?.() !== 0 || !existsSync("/dev/net/tun") || run("sh", ["-c", "command -v ip && command -v python3"], true).trim().split("\n").length < 2) {
    console.error("# bench/wan.ts skipped: it needs root, iproute2 (ip), python3 and /dev/net/tun to build its network namespaces and link");
    return;
  }
  teardownNamespaces(); // a run killed with SIGKILL may have left ours behind
  let child: ChildProcess | undefined;
  const killChild = (signal: NodeJS.Signals): void => {
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // gone
    }
  };
  process.once("exit", () => {
    killChild("SIGKILL");
    teardownNamespaces();
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      console.error(`# ${sig}: stopping`);
      killChild("SIGTERM");
      setTimeout(() => process.exit(1), 30_000).unref();
    });
  }
  try {
    setupNamespaces();
    child = spawn("ip", ["netns", "exec", NS_B, process.execPath, "--import", "tsx", SELF, "--stage-b", ...process.argv.slice(2)], {
      cwd: ROOT,
      stdio: "inherit",
      detached: true,
    });
    const deadline = setTimeout(() => {
      console.error(`# no result after ${RUN_DEADLINE_MS / 60_000} min: stopping`);
      killChild("SIGTERM");
      setTimeout(() => killChild("SIGKILL"), 30_000).unref();
    }, RUN_DEADLINE_MS + 120_000);
    const [code, signal] = (await once(child, "exit")) as [number | null, string | null];
    clearTimeout(deadline);
    if (code !== 0) process.exitCode = 1;
    if (code !== 0) console.error(`# the benchmark in ${NS_B} ended with ${code ?? signal}`);
  } finally {
    killChild("SIGKILL");
    teardownNamespaces();
  }
}

// --------------------------------------------------------------------------- client (namespace A)

interface PutReply {
  putMs: number;
  encodeMs: number;
  formedMs: number;
  deliveredMs: number;
  commitMs: number;
  shards: number;
  missing: number;
}

/** One raw TCP transfer of `bytes` split over `conns` connections; ms from the first connect to the last byte. */
async function rawTcp(direction: "up" | "down", bytes: number, conns: number): Promise<number> {
  const block = randomBytes(MIB);
  const per = Math.ceil(bytes / conns);
  const one = (n: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const sock = connect({ host: ADDR_B, port: TCP_PORT });
      const timer = setTimeout(() => sock.destroy(new Error(`raw TCP ${direction}: not done after ${TRANSFER_MS} ms`)), TRANSFER_MS);
      let got = 0;
      const done = (err?: Error): void => {
        clearTimeout(timer);
        sock.destroy();
        if (err) reject(err);
        else resolve();
      };
      sock.once("error", done);
      sock.on("data", (c: Buffer) => {
        got += c.length;
        if (direction === "up" || got >= n) done();
      });
      sock.once("end", () => done(got >= n || direction === "up" ? undefined : new Error(`raw TCP down: ${got} of ${n} bytes`)));
      sock.once("connect", () => {
        const head = Buffer.alloc(9);
        head[0] = direction === "up" ? 0x55 : 0x44;
        head.writeBigUInt64BE(BigInt(n), 1);
        sock.write(head);
        if (direction === "up") writeAll(sock, n, block).catch(done);
      });
    });
  const started = performance.now();
  await Promise.all(Array.from({ length: conns }, (_, i) => one(Math.max(0, Math.min(per, bytes - i * per)))));
  return performance.now() - started;
}

/** Median TCP connect time to B (about one RTT). */
async function connectRtt(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    await new Promise<void>((resolve, reject) => {
      const sock = connect({ host: ADDR_B, port: TCP_PORT });
      const timer = setTimeout(() => sock.destroy(new Error("connect: no answer after 10 s")), 10_000);
      sock.once("connect", () => {
        clearTimeout(timer);
        sock.destroy();
        resolve();
      });
      sock.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    times.push(performance.now() - t);
  }
  return median(times);
}

/**
 * Child process in namespace A: the storage client and the raw TCP end. Reads one JSON command a
 * line on stdin, answers one JSON line on stdout.
 */
async function clientMain(): Promise<void> {
  let client: StorageClient | undefined;
  let last: PutResult | undefined;
  const marks = new Map<string, number>();
  const mark = (msg: string, fields?: Record<string, unknown>): void => {
    marks.set(msg === "tx mined" ? `tx mined:${String(fields?.what)}` : msg, performance.now());
  };
  const logger = {
    debug: mark,
    info: mark,
    warn: (m: string, f?: object) => process.stderr.write(`# client warn: ${m} ${JSON.stringify(f, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}\n`),
    error: (m: string, f?: object) => process.stderr.write(`# client error: ${m} ${JSON.stringify(f, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v))}\n`),
  };
  const reply = (x: object): void => void process.stdout.write(`${JSON.stringify(x)}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line) as { op: string; [k: string]: unknown };
    try {
      if (cmd.op === "start") {
        const deployment = await loadDeployment(String(cmd.deployment));
        client = createClient({ dir: String(cmd.dir), deployment, privateKey: cmd.key as Hex }, { logger });
        await client.start();
        reply({ ok: true });
      } else if (cmd.op === "put") {
        if (client === undefined) throw new Error("put before start");
        marks.clear();
        const t0 = performance.now();
        last = await client.put(String(cmd.path), { k: K, m: M, members: NODES });
        const putMs = performance.now() - t0;
        const at = (what: string): number => {
          const t = marks.get(what);
          if (t === undefined) throw new Error(`client logged no "${what}"`);
          return t - t0;
        };
        const r: PutReply = {
          putMs,
          encodeMs: at("encoded"),
          formedMs: marks.has("magu formed") ? at("magu formed") : 0,
          deliveredMs: at("batch delivered"),
          commitMs: at("tx mined:commitData") - at("batch delivered"),
          shards: last.shards,
          missing: last.missing.length,
        };
        reply(r);
      } else if (cmd.op === "get") {
        if (client === undefined || last === undefined) throw new Error("get before put");
        const t0 = performance.now();
        const g = await client.get(last, String(cmd.out));
        reply({ getMs: performance.now() - t0, fetched: g.fetched, failed: g.failed });
      } else if (cmd.op === "tcp") {
        reply({ ms: await rawTcp(cmd.direction as "up" | "down", Number(cmd.bytes), Number(cmd.conns)) });
      } else if (cmd.op === "rtt") {
        reply({ ms: await connectRtt() });
      } else if (cmd.op === "sysctl") {
        reply({ value: run("sysctl", ["-n", String(cmd.name)], true).trim() });
      } else if (cmd.op === "stop") {
        break;
      }
    } catch (err) {
      reply({ error: (err as Error).stack ?? String(err) });
    }
  }
  await client?.stop();
  process.exit(0);
}

// ------------------------------------------------------------------ orchestrator (namespace B)

/** The raw TCP end in B: 'U' + length: read that many bytes, answer one byte; 'D' + length: send them. */
function rawTcpServer(): Promise<Server> {
  const block = randomBytes(MIB);
  const server = createServer((sock) => {
    let head = Buffer.alloc(0);
    let op = 0;
    let left = 0;
    sock.on("error", () => sock.destroy());
    sock.on("data", (chunk: Buffer) => {
      if (op === 0) {
        head = Buffer.concat([head, chunk]);
        if (head.length < 9) return;
        op = head[0]!;
        left = Number(head.readBigUInt64BE(1));
        chunk = head.subarray(9);
        if (op === 0x44) {
          writeAll(sock, left, block).then(
            () => sock.end(),
            () => sock.destroy(),
          );
          return;
        }
        if (op !== 0x55) return void sock.destroy();
      }
      if (op === 0x55) {
        left -= chunk.length;
        if (left <= 0) sock.end(Buffer.from("K"));
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(TCP_PORT, ADDR_B, () => resolve(server));
  });
}

/** The link emulator (LINK_EMULATOR), its two TUN devices configured once it is up. */
class Link {
  private readonly lines: AsyncIterator<string>;
  private constructor(readonly child: ChildProcess) {
    this.lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }
  static async start(): Promise<Link> {
    const child = spawn("python3", ["-c", LINK_EMULATOR, NS_A, TUN_A, NS_B, TUN_B, String(NETEM.limitPackets)], { stdio: ["pipe", "pipe", "inherit"] });
    const link = new Link(child);
    if ((await link.next("ready")) !== "ready") throw new Error("link emulator: no ready line");
    for (const [ns, dev, addr, peer] of [
      [NS_A, TUN_A, ADDR_A, ADDR_B],
      [NS_B, TUN_B, ADDR_B, ADDR_A],
    ] as const) {
      run("ip", ["-n", ns, "addr", "add", `${addr}/32`, "peer", `${peer}/32`, "dev", dev]);
      run("ip", ["-n", ns, "link", "set", dev, "mtu", "1500", "txqueuelen", "10000", "up"]);
    }
    return link;
  }
  private async next(what: string): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        this.lines.next(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`link emulator: no answer to ${what} in 10 s`)), 10_000))),
      ]);
      if (r.done) throw new Error(`link emulator exited before ${what}`);
      return r.value;
    } finally {
      clearTimeout(timer);
    }
  }
  /** WAN (NETEM) or a plain pass-through. */
  async set(wan: boolean): Promise<void> {
    this.child.stdin!.write(wan ? `set ${NETEM.delayMs} ${NETEM.lossPercent}\n` : "set 0 0\n");
    if ((await this.next("set")) !== "ok") throw new Error("link emulator: set not acknowledged");
  }
  async stats(): Promise<Record<string, unknown>> {
    this.child.stdin!.write("stats\n");
    return JSON.parse(await this.next("stats")) as Record<string, unknown>;
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), STOP_MS);
    await exited;
    clearTimeout(timer);
  }
}

class Worker {
  private readonly replies: AsyncIterator<string>;
  constructor(readonly child: ChildProcess) {
    this.replies = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }
  async ask<T>(cmd: object): Promise<T> {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        this.replies.next(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`client worker: no answer to ${JSON.stringify(cmd)} after ${WORKER_REPLY_MS} ms`)), WORKER_REPLY_MS))),
      ]);
      if (r.done) throw new Error(`client worker exited before answering ${JSON.stringify(cmd)}`);
      const x = JSON.parse(r.value) as T & { error?: string };
      if (x.error !== undefined) throw new Error(`client worker: ${x.error}`);
      return x;
    } finally {
      clearTimeout(timer);
    }
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.stdin!.write(`${JSON.stringify({ op: "stop" })}\n`);
    const timer = setTimeout(() => {
      try {
        process.kill(-this.child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    }, STOP_MS);
    await exited;
    clearTimeout(timer);
  }
}

/** MURI transfers from account #0 (as the devnet's funding), each waited for. */
async function fund(deployment: Deployment, transfers: { to: Address; amount: bigint }[]): Promise<void> {
  const clients = createChainClients({ rpcUrl: deployment.rpcUrl, chainId: deployment.chainId, privateKey: devnetKey(0) });
  const c = getMuriContracts(deployment.contracts, clients);
  for (const t of transfers) {
    const hash = await c.token.write.transfer([t.to, t.amount]);
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50, timeout: 60_000 });
    if (receipt.status !== "success") throw new Error(`funding ${t.to} reverted`);
  }
}

interface LinkRound {
  rawUp1Ms: number;
  rawUpNMs: number;
  rawDown1Ms: number;
  rawDownNMs: number;
  put: PutReply;
  getMs: number;
  getFailedFetches: number;
  load1: number;
}

/**
 * The nodes' failed fragment requests and cut-offs, summed over the nodes from their Prometheus
 * counters (agents/p2p/metrics.ts): `muri_p2p_requests_failed_total{op,code}` (a fetch served or a
 * push received that failed, and why) and `muri_p2p_protocol_violations_total{code}` (a peer cut
 * off and banned: too slow, or breaking the protocol).
 */
async function nodeP2pFailures(urls: string[]): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  for (const url of urls) {
    const text = await fetch(url, { signal: AbortSignal.timeout(5_000) })
      .then((r) => r.text())
      .catch(() => "");
    for (const line of text.split("\n")) {
      const m = /^(muri_p2p_(?:requests_failed|protocol_violations)_total)\{(.*)\} (\d+)/.exec(line);
      if (m === null || Number(m[3]) === 0) continue;
      const key = `${m[1]}{${m[2]}}`;
      sums[key] = (sums[key] ?? 0) + Number(m[3]);
    }
  }
  return sums;
}

async function stageB(): Promise<void> {
  const mib = arg("mib", 64);
  const runs = arg("runs", 3);
  const conns = arg("conns", 5);
  const plain = !process.argv.includes("--no-plain");
  const bytes = mib * MIB;
  const shards = shardCountOf(bytes, K, M);
  const putWireBytes = shards * FRAGMENT_SIZE;
  const getWireBytes = (shards / (K + M)) * K * FRAGMENT_SIZE;
  const signal = AbortSignal.timeout(RUN_DEADLINE_MS);
  const work = await mkdtemp(join(tmpdir(), "muri-bench-wan-"));
  const logs = join(work, "logs");
  await mkdir(logs, { recursive: true });
  const managed: Managed[] = [];
  let worker: Worker | undefined;
  let server: Server | undefined;
  let link: Link | undefined;
  const metricsUrls: string[] = [];
  /** Holders the client cut off (its "cutting off" log lines). */
  const clientCutOffs = { count: 0, examples: [] as string[] };
  let stopping: Promise<void> | undefined;
  /** Set when the run fails: the chain's, the nodes' and the deploy's logs are kept, not deleted. */
  let keepLogs = process.argv.includes("--keep-logs");
  const cleanup = (): Promise<void> =>
    (stopping ??= (async () => {
      await worker?.stop().catch(() => undefined);
      const [chain, ...agents] = managed;
      await Promise.all(agents.map((p) => p.stop(STOP_MS)));
      await chain?.stop(STOP_MS);
      server?.close();
      await link?.stop().catch(() => undefined);
      if (keepLogs) {
        const kept = join(tmpdir(), `muri-bench-wan-logs-${Date.now()}`);
        await rename(logs, kept).then(
          () => console.error(`# logs kept in ${kept}`),
          () => undefined,
        );
      }
      await rm(work, { recursive: true, force: true });
    })());
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      keepLogs = true;
      void cleanup().finally(() => process.exit(1));
    });
  }
  try {
    const input = join(work, "input.bin");
    await randomFileOf(input, bytes);
    const inputHash = await sha256File(input);
    const t = performance.now();
    link = await Link.start();
    const emu = link;
    await emu.set(false);
    // The chain and the nodes, as `muri devnet` starts them (agents/cli/devnet/devnet.ts), but on
    // the TUN address of B instead of 127.0.0.1.
    const rpcUrl = `http://${ADDR_B}:${RPC_PORT}`;
    console.error(`# ${mib} MiB random input; starting hardhat node on ${rpcUrl} and ${NODES} nodes in ${NS_B}`);
    const chain = spawnManaged({ name: "hardhat node", args: [HARDHAT_CLI, "node", "--hostname", ADDR_B, "--port", String(RPC_PORT)], logFile: join(logs, "chain.log") });
    managed.push(chain);
    for (let until = Date.now() + SETUP_STEP_MS; ; ) {
      if (!chain.alive()) throw new Error(`hardhat node exited; see ${chain.logFile}`);
      if (await rpcCall(rpcUrl, "eth_chainId").then(() => true, () => false)) break;
      if (Date.now() > until || signal.aborted) throw new Error("hardhat node did not serve JSON-RPC");
      await new Promise((r) => setTimeout(r, 250));
    }
    await rpcCall(rpcUrl, "evm_setIntervalMining", [BLOCK_MS]);
    const deploymentFile = join(work, "deployment.json");
    const deploy = spawnManaged({
      name: "deploy-local",
      args: [HARDHAT_CLI, "run", "--no-compile", "scripts/deploy-local.ts", "--network", "localhost"],
      env: { ...process.env, MURI_RPC_URL: rpcUrl, MURI_DEPLOYMENT_FILE: deploymentFile },
      logFile: join(logs, "deploy.log"),
    });
    await runToEnd(deploy, SETUP_STEP_MS, signal);
    const deployment = await loadDeployment(deploymentFile);
    const clientIndex = 1 + NODES;
    await fund(deployment, [
      ...Array.from({ length: NODES }, (_, i) => ({ to: devnetAddress(1 + i), amount: DEVNET_DEFAULTS.agentMuri * 10n ** 18n })),
      { to: devnetAddress(clientIndex), amount: DEVNET_DEFAULTS.clientMuri * 10n ** 18n },
    ]);
    await Promise.all(
      Array.from({ length: NODES }, async (_, i) => {
        const m = spawnManaged({
          name: `node-${i + 1}`,
          args: ["--import", "tsx", join(ROOT, "agents", "roles", "node", "run-node.ts"), "--rpc", rpcUrl, "--deployment", deploymentFile, "--dir", join(work, `node-${i + 1}`), "--listen", `/ip4/${ADDR_B}/tcp/0`, "--metrics-port", "0"],
          // `--keep-logs`: the logs outlive the run, with the nodes' fragment protocol's debug lines.
          env: { ...process.env, MURI_NODE_KEY: devnetKey(1 + i), ...(keepLogs ? { DEBUG: "muri:p2p:fragment*" } : {}) },
          logFile: join(logs, `node-${i + 1}.log`),
          pipeStdout: true,
        });
        managed.push(m);
        const ready = await readyLine<{ metricsUrl?: string }>(m, SETUP_STEP_MS, signal);
        if (ready.metricsUrl !== undefined) metricsUrls.push(ready.metricsUrl);
      }),
    );
    await rpcCall(rpcUrl, "evm_setAutomine", [false]);
    server = await rawTcpServer();
    // The client's fragment protocol logs a holder it cuts off (too slow, or breaking the
    // protocol: fragment-protocol.ts `cutOff`) on stderr; counted here and passed through.
    const child = spawn("ip", ["netns", "exec", NS_A, process.execPath, "--import", "tsx", SELF, "--client-a"], {
      cwd: ROOT,
      env: { ...process.env, DEBUG: "muri:p2p:fragment:error" },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      process.stderr.write(`${line}\n`);
      const m = /cutting off \S+: (.*)/.exec(line);
      if (m === null) return;
      clientCutOffs.count++;
      if (clientCutOffs.examples.length < 5) clientCutOffs.examples.push(m[1]!.slice(0, 300));
    });
    worker = new Worker(child);
    await worker.ask({ op: "start", deployment: deploymentFile, key: devnetKey(clientIndex), dir: join(work, "client") });
    console.error(`# network up in ${((performance.now() - t) / 1000).toFixed(1)} s; client in ${NS_A} (${ADDR_A}), chain and nodes in ${NS_B} (${ADDR_B})`);
    const sysctls: Record<string, string> = {};
    for (const name of ["net.ipv4.tcp_congestion_control", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"]) {
      sysctls[`${NS_A}:${name}`] = (await worker.ask<{ value: string }>({ op: "sysctl", name })).value;
      sysctls[`${NS_B}:${name}`] = run("sysctl", ["-n", name], true).trim();
    }

    const w = worker;
    const out = join(work, "out.bin");
    const round = async (label: string, path: string, size: number, hash: string): Promise<LinkRound> => {
      const putB = shardCountOf(size, K, M) * FRAGMENT_SIZE;
      const getB = (putB / (K + M)) * K;
      const rawUp1Ms = (await w.ask<{ ms: number }>({ op: "tcp", direction: "up", bytes: putB, conns: 1 })).ms;
      const rawUpNMs = (await w.ask<{ ms: number }>({ op: "tcp", direction: "up", bytes: putB, conns })).ms;
      const rawDown1Ms = (await w.ask<{ ms: number }>({ op: "tcp", direction: "down", bytes: getB, conns: 1 })).ms;
      const rawDownNMs = (await w.ask<{ ms: number }>({ op: "tcp", direction: "down", bytes: getB, conns })).ms;
      const put = await w.ask<PutReply>({ op: "put", path });
      const { getMs, failed } = await w.ask<{ getMs: number; failed: number }>({ op: "get", out });
      if ((await stat(out)).size !== size || (await sha256File(out)) !== hash) throw new Error(`${label}: the file got back differs from the input`);
      await rm(out);
      const r = { rawUp1Ms, rawUpNMs, rawDown1Ms, rawDownNMs, put, getMs, getFailedFetches: failed, load1: Number(loadavg()[0]!.toFixed(2)) };
      const mbps = (b: number, ms: number): string => `${(b / MIB / (ms / 1000)).toFixed(1)} MB/s`;
      console.error(
        `  ${label}: raw up x1 ${mbps(putB, rawUp1Ms)}, x${conns} ${mbps(putB, rawUpNMs)}; raw down x1 ${mbps(getB, rawDown1Ms)}, x${conns} ${mbps(getB, rawDownNMs)}; ` +
          `put ${mbps(size, put.putMs)} (formed ${(put.formedMs / 1000).toFixed(1)} s, delivered ${(put.deliveredMs / 1000).toFixed(1)} s, commit ${(put.commitMs / 1000).toFixed(1)} s, ${put.missing} members missing), get ${mbps(size, getMs)} (${failed} failed fetches) (load ${r.load1})`,
      );
      return r;
    };

    // Warm-up without delay or loss (JIT, connections), not measured.
    await emu.set(false);
    const warm = join(work, "warm.bin");
    await randomFileOf(warm, 8 * MIB);
    await round("warm-up (8 MiB, no delay or loss)", warm, 8 * MIB, await sha256File(warm));
    const rtt: Record<string, number> = {};
    await emu.set(true);
    rtt.wan = (await w.ask<{ ms: number }>({ op: "rtt" })).ms;
    await emu.set(false);
    rtt.plain = (await w.ask<{ ms: number }>({ op: "rtt" })).ms;
    console.error(`# TCP connect time A -> B: ${rtt.wan.toFixed(1)} ms with the emulated WAN, ${rtt.plain.toFixed(2)} ms without delay and loss`);

    const wan: LinkRound[] = [];
    const lan: LinkRound[] = [];
    const linkBefore = await emu.stats();
    for (let r = 0; r < runs; r++) {
      await emu.set(true);
      wan.push(await round(`run ${r + 1}, emulated WAN`, input, bytes, inputHash));
      if (plain) {
        await emu.set(false);
        lan.push(await round(`run ${r + 1}, no delay or loss`, input, bytes, inputHash));
      }
    }
    await emu.set(false);
    const linkAfter = await emu.stats();
    const nodeFailures = await nodeP2pFailures(metricsUrls);
    console.error(`# the nodes' failed fragment requests and cut-offs: ${JSON.stringify(nodeFailures)}; holders the client cut off: ${clientCutOffs.count}`);

    const summarize = (rs: LinkRound[]) => {
      const put = median(rs.map((x) => x.put.putMs));
      const push = median(rs.map((x) => x.put.deliveredMs - x.put.formedMs));
      const get = median(rs.map((x) => x.getMs));
      const up1 = median(rs.map((x) => x.rawUp1Ms));
      const upN = median(rs.map((x) => x.rawUpNMs));
      const down1 = median(rs.map((x) => x.rawDown1Ms));
      const downN = median(rs.map((x) => x.rawDownNMs));
      const rate = (b: number, ms: number): number => Number((b / MIB / (ms / 1000)).toFixed(1));
      const ratio = (raw: number, muri: number): number => Number((raw / muri).toFixed(3));
      return {
        muridata: {
          putMbps: rate(bytes, put),
          getMbps: rate(bytes, get),
          putMs: Math.round(put),
          getMs: Math.round(get),
          pushSpanMs: Math.round(push),
          pushSpanWireMbps: rate(putWireBytes, push),
          putPhasesMs: {
            encode: Math.round(median(rs.map((x) => x.put.encodeMs))),
            formedAt: Math.round(median(rs.map((x) => x.put.formedMs))),
            deliveredAt: Math.round(median(rs.map((x) => x.put.deliveredMs))),
            acksAndCommit: Math.round(median(rs.map((x) => x.put.commitMs))),
          },
        },
        rawTcp: {
          upOneConnMs: Math.round(up1),
          upOneConnWireMbps: rate(putWireBytes, up1),
          upParallelMs: Math.round(upN),
          upParallelWireMbps: rate(putWireBytes, upN),
          downOneConnMs: Math.round(down1),
          downOneConnWireMbps: rate(getWireBytes, down1),
          downParallelMs: Math.round(downN),
          downParallelWireMbps: rate(getWireBytes, downN),
        },
        /** raw TCP time for the same bytes / MuriData time (1 = as fast as raw TCP). */
        ratios: {
          putVsOneConn: ratio(up1, put),
          putVsParallel: ratio(upN, put),
          pushSpanVsOneConn: ratio(up1, push),
          pushSpanVsParallel: ratio(upN, push),
          getVsOneConn: ratio(down1, get),
          getVsParallel: ratio(downN, get),
        },
        runs: rs,
      };
    };
    const wanS = summarize(wan);
    const lanS = plain ? summarize(lan) : undefined;

    console.log(
      `MuriData over an emulated WAN (${2 * NETEM.delayMs} ms RTT, ${NETEM.lossPercent}% loss each way), ${mib} MiB file (${(putWireBytes / MIB).toFixed(0)} MiB of shards), ` +
        `median of ${runs}, MB = MiB, ratio = raw TCP time for the same bytes / MuriData time, ${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}`,
    );
    const header = ["link", "MuriData", "s", "MB/s (file)", `raw TCP x1 s (MB/s wire)`, `raw TCP x${conns} s (MB/s wire)`, "ratio vs x1", `ratio vs x${conns}`];
    const rows: string[][] = [];
    for (const [link, s] of [
      ["WAN 20 ms 0.5%", wanS],
      ["no delay/loss", lanS],
    ] as const) {
      if (s === undefined) continue;
      const sec = (ms: number): string => (ms / 1000).toFixed(1);
      rows.push([link, "put", sec(s.muridata.putMs), String(s.muridata.putMbps), `${sec(s.rawTcp.upOneConnMs)} (${s.rawTcp.upOneConnWireMbps})`, `${sec(s.rawTcp.upParallelMs)} (${s.rawTcp.upParallelWireMbps})`, String(s.ratios.putVsOneConn), String(s.ratios.putVsParallel)]);
      rows.push([link, "push span", sec(s.muridata.pushSpanMs), `${s.muridata.pushSpanWireMbps} wire`, "", "", String(s.ratios.pushSpanVsOneConn), String(s.ratios.pushSpanVsParallel)]);
      rows.push([link, "get", sec(s.muridata.getMs), String(s.muridata.getMbps), `${sec(s.rawTcp.downOneConnMs)} (${s.rawTcp.downOneConnWireMbps})`, `${sec(s.rawTcp.downParallelMs)} (${s.rawTcp.downParallelWireMbps})`, String(s.ratios.getVsOneConn), String(s.ratios.getVsParallel)]);
    }
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
    console.log(line(header));
    console.log(line(widths.map((x) => "-".repeat(x))));
    for (const row of rows) console.log(line(row));

    await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true });
    await writeFile(
      RESULTS,
      `${JSON.stringify(
        {
          bench: "wan",
          date: new Date().toISOString(),
          node: process.version,
          cpus: cpus().length,
          loadavg: loadavg().map((x) => Number(x.toFixed(2))),
          fileBytes: bytes,
          putWireBytes,
          getWireBytes,
          runs,
          unit: "MiB/s",
          statistic: "median",
          layout: {
            client: `namespace ${NS_A}, TUN ${TUN_A} ${ADDR_A} (peer ${ADDR_B}): the storage client (agents/roles/client/client.ts) in a child process; the raw TCP sender/receiver`,
            network: `namespace ${NS_B}, TUN ${TUN_B} ${ADDR_B} (peer ${ADDR_A}): hardhat node (${BLOCK_MS} ms interval mining) on ${ADDR_B}:${RPC_PORT}, ${NODES} node processes listening on /ip4/${ADDR_B}/tcp/0, the raw TCP server on ${ADDR_B}:${TCP_PORT}`,
            path: "client <-> chain and client <-> nodes cross the emulated link; nodes <-> chain and nodes <-> nodes stay inside the second namespace",
          },
          link: {
            where: `a userspace forwarder (python3) between TUN ${TUN_A} and TUN ${TUN_B}: this kernel has no sch_netem`,
            delayMsEachWay: NETEM.delayMs,
            rttMs: 2 * NETEM.delayMs,
            lossPercentEachWay: NETEM.lossPercent,
            limitPackets: NETEM.limitPackets,
            mtu: 1500,
            jitter: "none (FIFO, no reordering)",
            tcpConnectMs: { wan: Number(rtt.wan.toFixed(2)), plain: Number(rtt.plain.toFixed(3)) },
            emulatorCountersAfterWarmUp: linkBefore,
            emulatorCountersAtEnd: linkAfter,
          },
          sysctls,
          muridata: { dataShards: K, parityShards: M, nodes: NODES, how: "put into a new Magu (encode, create/form/commit, push), get to a file, checked byte for byte" },
          rawTcp: { connsParallel: conns, how: "node:net, the bytes split evenly over the connections; up = A->B the put's shard bytes, down = B->A the get's data-shard bytes; from the first connect to the last byte" },
          /** Summed over the nodes, the whole run (warm-up included). */
          nodeP2pFailures: nodeFailures,
          clientCutOffs,
          wan: wanS,
          /** The same forwarder passing every packet at once: no delay, no loss. */
          plain: lanS ?? null,
        },
        (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v),
        2,
      )}\n`,
    );
  } catch (err) {
    keepLogs = true;
    console.error(`# the nodes' failed fragment requests and cut-offs: ${JSON.stringify(await nodeP2pFailures(metricsUrls))}; holders the client cut off: ${clientCutOffs.count}`);
    throw err;
  } finally {
    await cleanup();
  }
}

if (process.argv.includes("--client-a")) await clientMain();
else if (process.argv.includes("--stage-b")) await stageB();
else await rootMain();
