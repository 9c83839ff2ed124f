/**
 * Fragment transfer throughput between two processes on loopback, all measured in the same run:
 *
 *   - raw TCP:          a plain socket streaming the fragments' bytes, nothing else;
 *   - TLS 1.3 + sha256: a node:tls TLS 1.3 socket (self-signed certificate made at start) streaming
 *                       the same bytes, the receiver hashing each fragment with one SHA-256 pass:
 *                       the cryptographic work any encrypted, verifying transfer must do. This is
 *                       the baseline every row is compared to (issue 19: verified fetch >= 0.8x);
 *                       TLS 1.3 alone and raw TCP + sha256 are printed too;
 *   - per libp2p transport (`tcp-noise`, `tcp-tls`, `quic`; see TRANSPORT_NAMES):
 *       bare stream:  the connection stack carrying the bytes on one stream with no framing and no
 *                     CID check (the ceiling for anything built on that transport);
 *       fetch:        `/muri/fragment/1.0.0` fetches, each fragment verified against its CID by the
 *                     p2p layer, 1 and 4 requests in flight on one connection.
 *
 * One server child (this file with `--serve`) holds a node per transport, the raw and the TLS
 * listener; the parent holds a client node per transport. Each round runs every measurement once,
 * in turn, so all see the same machine load; the best of `rounds` is kept. CPU time of both
 * processes per MiB is recorded too (the least of the rounds): on a shared machine it moves far less
 * with other jobs' load than throughput does, so it ranks the stacks more reliably. Fragment CIDs come from
 * the data layer's `fragmentCid` and the fetches verify through the p2p layer, so the bench follows
 * whatever CID scheme those use. Prints a table and writes bench/results/transfer.json.
 *
 *   tsx bench/transfer.ts [--fragments 256] [--rounds 3]
 */
import { spawn } from "node:child_process";
import { createCipheriv, createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { cpus, loadavg } from "node:os";
import { createInterface } from "node:readline";
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { generateCertificate } from "@libp2p/tls/utils";
import { CID } from "multiformats/cid";
import { fragmentCid } from "../agents/data/cid.js";
import { FRAGMENT_SIZE } from "../agents/data/constants.js";
import type { PeerId } from "@libp2p/interface";
import { TRANSPORT_NAMES, createP2PNode, type P2PNode, type TransportName } from "../agents/p2p/index.js";

const DISTINCT_FRAGMENTS = 32;
const BARE_PROTOCOL = "/muri/bench/bare/1.0.0";
const RESULTS = fileURLToPath(new URL("./results/transfer.json", import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const CONCURRENCY = [1, 4];
const LIMITS = { maxInboundStreams: 256, maxOutboundStreams: 256, maxConcurrentTransfers: 256, maxTransfersPerPeer: 256 };

function fragment(i: number): Uint8Array {
  const key = createHash("sha256").update(`bench-${i}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(FRAGMENT_SIZE));
}

// ------------------------------------------------------------------ server (child process)

/** Answers a u32 count with that many fragments back to back, then ends the socket. */
function sendFragments(ordered: Uint8Array[]): (socket: Socket) => void {
  return (socket) => {
    socket.setNoDelay(true);
    socket.once("data", async (request: Buffer) => {
      const count = request.readUInt32BE(0);
      for (let i = 0; i < count; i++) {
        if (!socket.write(ordered[i % ordered.length])) await new Promise((resolve) => socket.once("drain", resolve));
      }
      socket.end();
    });
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

async function serve(): Promise<void> {
  const fragments = new Map<string, Uint8Array>();
  const ordered: Uint8Array[] = [];
  for (let i = 0; i < DISTINCT_FRAGMENTS; i++) {
    const bytes = fragment(i);
    fragments.set(fragmentCid(bytes).toString(), bytes);
    ordered.push(bytes);
  }
  const store = {
    has: (cid: CID) => fragments.has(cid.toString()),
    get: (cid: CID) => fragments.get(cid.toString())!,
    put: () => {},
  };

  const nodes: P2PNode[] = [];
  const multiaddrs: Partial<Record<TransportName, string>> = {};
  for (const transport of TRANSPORT_NAMES) {
    const node = await createP2PNode({ source: store, sink: store, transports: [transport], limits: LIMITS });
    await node.start();
    // The transport's ceiling: one bare stream (no fragment framing, no CID check); the client
    // writes a u32 count, the server writes that many fragments back to back.
    await node.libp2p.handle(BARE_PROTOCOL, async (stream) => {
      const request = await new Promise<Uint8Array>((resolve) =>
        stream.addEventListener("message", (e) => resolve(e.data.subarray()), { once: true }),
      );
      const count = new DataView(request.buffer, request.byteOffset, request.byteLength).getUint32(0);
      for (let i = 0; i < count; i++) if (!stream.send(ordered[i % ordered.length])) await stream.onDrain();
      await stream.close();
    });
    nodes.push(node);
    multiaddrs[transport] = node.multiaddrs[0].toString();
  }

  const raw = createServer(sendFragments(ordered));
  // A self-signed certificate made here (no openssl needed): the libp2p TLS helper signs one for a
  // fresh key; the baseline only needs some certificate the client accepts without checking.
  const { cert, key } = await generateCertificate(await generateKeyPair("Ed25519"));
  const tls = createTlsServer({ cert, key, minVersion: "TLSv1.3" }, sendFragments(ordered));
  const ports = { raw: await listen(raw), tls: await listen(tls) };
  process.stdout.write(`${JSON.stringify({ multiaddrs, ports, cids: [...fragments.keys()] })}\n`);

  // Each `cpu` line is answered with this process's CPU time so far (user + system, microseconds).
  const lines = createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    if (line === "cpu") {
      const { user, system } = process.cpuUsage();
      process.stdout.write(`${user + system}\n`);
    }
  });
  await new Promise<void>((resolve) => lines.once("close", resolve));
  raw.close();
  tls.close();
  await Promise.all(nodes.map((node) => node.stop()));
  process.exit(0);
}

// ------------------------------------------------------------------ client (parent process)

interface ServerInfo {
  multiaddrs: Record<TransportName, string>;
  ports: { raw: number; tls: number };
  cids: string[];
}

interface BenchServer {
  info: ServerInfo;
  /** The server process's CPU time so far (user + system, microseconds). */
  cpu: () => Promise<number>;
  stop: () => Promise<void>;
}

async function startServer(): Promise<BenchServer> {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, "--serve"], { stdio: ["pipe", "pipe", "inherit"] });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin.end();
    const exited = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5_000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!exited) child.kill("SIGKILL");
  };
  const stdout = createInterface({ input: child.stdout });
  try {
    const info = await new Promise<ServerInfo>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("bench server did not start within 30 s")), 30_000);
      stdout.once("line", (line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as ServerInfo);
      });
      child.once("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    const waiting: Array<(micros: number) => void> = [];
    stdout.on("line", (line) => waiting.shift()?.(Number(line)));
    const cpu = (): Promise<number> =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write("cpu\n");
      });
    return { info, cpu, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Opens a plain TCP socket to the raw listener. */
async function openRaw(port: number): Promise<Socket> {
  const socket = connect({ port, host: "127.0.0.1", noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

let tlsCipher = "";

/** Opens a TLS 1.3 socket to the TLS listener (handshake done; the certificate is not checked). */
async function openTls(port: number): Promise<TLSSocket> {
  const socket = tlsConnect({ port, host: "127.0.0.1", minVersion: "TLSv1.3", rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  socket.setNoDelay(true);
  tlsCipher = `${socket.getProtocol()} ${socket.getCipher().standardName}`;
  return socket;
}

/**
 * A plain socket (raw or TLS, already connected): `count` fragments streamed back to back; returns
 * MB/s (MiB). With `verify` the receiver also SHA-256-hashes each fragment as it arrives (the work
 * a verifying receiver must do anyway).
 */
async function socketTransfer(socket: Socket, count: number, verify: boolean): Promise<number> {
  const expected = count * FRAGMENT_SIZE;
  const started = performance.now();
  let received = 0;
  const request = Buffer.alloc(4);
  request.writeUInt32BE(count);
  socket.write(request);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("socket transfer timed out")), 120_000);
    let hash = createHash("sha256");
    let inFragment = 0;
    socket.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (!verify) return;
      let offset = 0;
      while (offset < chunk.length) {
        const take = Math.min(chunk.length - offset, FRAGMENT_SIZE - inFragment);
        hash.update(chunk.subarray(offset, offset + take));
        offset += take;
        inFragment += take;
        if (inFragment === FRAGMENT_SIZE) {
          hash.digest();
          hash = createHash("sha256");
          inFragment = 0;
        }
      }
    });
    socket.once("end", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once("error", reject);
  });
  const seconds = (performance.now() - started) / 1000;
  socket.destroy();
  if (received !== expected) throw new Error(`socket received ${received} of ${expected} bytes`);
  return count / seconds;
}

/** libp2p bare stream: `count` fragments' bytes on one stream, only counted; returns MB/s (MiB). */
async function bareStream(node: P2PNode, peer: PeerId, count: number): Promise<number> {
  const stream = await node.libp2p.dialProtocol(peer, BARE_PROTOCOL, { signal: AbortSignal.timeout(10_000) });
  let received = 0;
  const started = performance.now();
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("bare stream timed out")), 120_000);
    stream.addEventListener("message", (e) => {
      received += e.data.byteLength;
    });
    stream.addEventListener("remoteCloseWrite", () => {
      clearTimeout(timer);
      resolve();
    });
    stream.addEventListener("close", (e) => {
      clearTimeout(timer);
      if (e.error !== undefined) reject(e.error);
      else resolve();
    });
  });
  const request = new Uint8Array(4);
  new DataView(request.buffer).setUint32(0, count);
  stream.send(request);
  await done;
  const seconds = (performance.now() - started) / 1000;
  await stream.close().catch(() => {});
  if (received !== count * FRAGMENT_SIZE) throw new Error(`bare stream received ${received} bytes`);
  return count / seconds;
}

/** libp2p: `count` verified fetches, `concurrency` at a time over one connection; returns MB/s (MiB). */
async function libp2pFetches(
  fetch: (cid: CID) => Promise<Uint8Array>,
  cids: CID[],
  count: number,
  concurrency: number,
): Promise<number> {
  let next = 0;
  let bytes = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const got = await fetch(cids[i % cids.length]);
        bytes += got.length;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (bytes !== count * FRAGMENT_SIZE) throw new Error(`fetched ${bytes} bytes`);
  return count / seconds;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

interface Measurement {
  /** Row label: `raw TCP`, `TLS 1.3 + sha256`, or a transport name. */
  stack: string;
  mode: "bytes" | "bytes + sha256" | "bare stream" | "fetch";
  concurrency: number;
  run: (count: number) => Promise<number>;
  /** MB/s of each round. */
  runs: number[];
  /** CPU time of both processes per MiB moved (ms), each round. */
  cpuMsPerMiB: number[];
}

const BASELINE = "TLS 1.3 + sha256";

async function main(): Promise<void> {
  const count = arg("fragments", 256);
  const rounds = arg("rounds", 3);
  const server = await startServer();
  const { info } = server;
  const store = { has: () => false, get: (): Uint8Array => new Uint8Array(), put: () => {} };
  const clients: P2PNode[] = [];
  try {
    const cids = info.cids.map((c) => CID.parse(c));
    const plain = (stack: string, mode: Measurement["mode"], open: () => Promise<Socket>): Measurement => ({
      stack,
      mode,
      concurrency: 1,
      run: async (n) => socketTransfer(await open(), n, mode === "bytes + sha256"),
      runs: [],
      cpuMsPerMiB: [],
    });
    const measurements: Measurement[] = [
      plain("raw TCP", "bytes", () => openRaw(info.ports.raw)),
      plain("raw TCP", "bytes + sha256", () => openRaw(info.ports.raw)),
      plain("TLS 1.3", "bytes", () => openTls(info.ports.tls)),
      plain("TLS 1.3", "bytes + sha256", () => openTls(info.ports.tls)),
    ];
    for (const transport of TRANSPORT_NAMES) {
      const client = await createP2PNode({ source: store, sink: store, transports: [transport], limits: LIMITS });
      clients.push(client);
      await client.start();
      const peer = await client.dial(info.multiaddrs[transport]);
      const fetch = (cid: CID): Promise<Uint8Array> => client.fetchFragment(peer, cid, { timeoutMs: 60_000 });
      await libp2pFetches(fetch, cids, 16, 4); // warm-up: JIT, windows
      await bareStream(client, peer, 16);
      measurements.push({ stack: transport, mode: "bare stream", concurrency: 1, run: (n) => bareStream(client, peer, n), runs: [], cpuMsPerMiB: [] });
      for (const concurrency of CONCURRENCY) {
        measurements.push({ stack: transport, mode: "fetch", concurrency, run: (n) => libp2pFetches(fetch, cids, n, concurrency), runs: [], cpuMsPerMiB: [] });
      }
    }
    for (const m of measurements.slice(0, 4)) await m.run(16); // warm-up

    // Every round runs every measurement once, so each sees the same spread of machine load. CPU
    // time (both processes) is taken too: on a shared machine it varies far less than wall time.
    const cpuNow = async (): Promise<number> => {
      const { user, system } = process.cpuUsage();
      return user + system + (await server.cpu());
    };
    for (let r = 0; r < rounds; r++) {
      for (const m of measurements) {
        const before = await cpuNow();
        m.runs.push(await m.run(count));
        m.cpuMsPerMiB.push(((await cpuNow()) - before) / 1000 / count);
      }
      console.error(`  round ${r + 1}/${rounds}: ${measurements.map((m) => `${m.stack} ${m.mode} x${m.concurrency} ${m.runs[r].toFixed(0)}`).join(", ")}`);
    }
    await report(measurements, count, rounds);
  } finally {
    await Promise.all(clients.map((client) => client.stop()));
    await server.stop();
  }
}

async function report(measurements: Measurement[], count: number, rounds: number): Promise<void> {
  const best = (m: Measurement): number => Math.max(...m.runs);
  const leastCpu = (m: Measurement): number => Math.min(...m.cpuMsPerMiB);
  const find = (stack: string, mode: Measurement["mode"]): Measurement => measurements.find((m) => m.stack === stack && m.mode === mode)!;
  const raw = best(find("raw TCP", "bytes"));
  const baseline = find("TLS 1.3", "bytes + sha256");
  const rows = measurements.map((m) => ({
    stack: m.stack,
    mode: m.mode,
    concurrency: m.concurrency,
    mbps: best(m),
    ofBaseline: best(m) / best(baseline),
    ofRawTcp: best(m) / raw,
    cpuMsPerMiB: leastCpu(m),
    // Baseline CPU per MiB over this row's: 1 = as cheap as the TLS socket, 0.5 = twice its cost.
    cpuOfBaseline: leastCpu(baseline) / leastCpu(m),
  }));

  const ratio = (x: number): string => x.toFixed(2);
  const header = ["stack", "mode", "in flight", "MB/s", `of ${BASELINE}`, "of raw TCP", "CPU ms/MiB", `CPU: ${BASELINE} / row`];
  const table = rows.map((r) => [r.stack, r.mode, String(r.concurrency), r.mbps.toFixed(1), ratio(r.ofBaseline), ratio(r.ofRawTcp), r.cpuMsPerMiB.toFixed(2), ratio(r.cpuOfBaseline)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(`fragment transfer between two processes, ${count} x ${FRAGMENT_SIZE / 1024} KiB per run, best of ${rounds} (MB = MiB); TLS baseline: ${tlsCipher}`);
  console.log("CPU = user + system time of both processes per MiB moved, least of the rounds");
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of table) console.log(line(row));
  const fetches = rows.filter((r) => r.mode === "fetch");
  const top = fetches.reduce((a, b) => (b.mbps > a.mbps ? b : a));
  const cheapest = fetches.reduce((a, b) => (b.cpuMsPerMiB < a.cpuMsPerMiB ? b : a));
  console.log(`best fetch: ${top.stack}, ${top.concurrency} in flight: ${ratio(top.ofBaseline)}x ${BASELINE}, ${ratio(top.ofRawTcp)}x raw TCP (goal of issue 19: >= 0.80x ${BASELINE})`);
  console.log(`cheapest fetch: ${cheapest.stack}, ${cheapest.concurrency} in flight: ${cheapest.cpuMsPerMiB.toFixed(2)} CPU ms/MiB = ${ratio(1 / cheapest.cpuOfBaseline)}x the baseline's`);

  const round3 = (x: number): number => Number(x.toFixed(3));
  const fixed = (r: (typeof rows)[number]): object => ({
    ...r,
    mbps: Number(r.mbps.toFixed(1)),
    ofBaseline: round3(r.ofBaseline),
    ofRawTcp: round3(r.ofRawTcp),
    cpuMsPerMiB: round3(r.cpuMsPerMiB),
    cpuOfBaseline: round3(r.cpuOfBaseline),
  });
  await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true });
  await writeFile(
    RESULTS,
    `${JSON.stringify(
      {
        bench: "transfer",
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        loadavg1: Number(loadavg()[0].toFixed(2)),
        fragmentBytes: FRAGMENT_SIZE,
        fragmentsPerRun: count,
        rounds,
        unit: "MiB/s",
        baseline: { stack: BASELINE, cipher: tlsCipher, mbps: Number(best(baseline).toFixed(1)), cpuMsPerMiB: round3(leastCpu(baseline)) },
        rawTcpMbps: Number(raw.toFixed(1)),
        runs: rows.map(fixed),
        bestFetch: fixed(top),
        cheapestFetch: fixed(cheapest),
      },
      null,
      2,
    )}\n`,
  );
}

if (process.argv[2] === "--serve") await serve();
else await main();
