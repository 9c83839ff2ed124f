/**
 * Fragment transfer throughput between two processes on loopback, all measured in the same run:
 *
 *   - fetch:        libp2p `/muri/fragment/1.0.0` fetches (TCP + noise + yamux, each fragment
 *                   verified against its CID), 1 / 4 / 16 requests in flight on one connection;
 *   - bare stream:  the same libp2p connection stack carrying the bytes on one stream with no
 *                   framing and no CID check (the ceiling for anything built on libp2p here);
 *   - raw TCP:      a plain socket streaming the same bytes (the brief's baseline), and the same
 *                   with the receiver sha256-hashing each fragment (the check a fetch must do).
 *
 * Each yamux configuration (libp2p's defaults, the p2p layer's YAMUX_DEFAULTS) gets its own server
 * child (this file with `--serve`) so both ends use the same settings. Every libp2p measurement is
 * interleaved with the raw runs so they see the same machine load; the best of `rounds` is kept.
 * Prints a table and writes bench/results/transfer.json.
 *
 *   tsx bench/transfer.ts [--fragments 256] [--rounds 2]
 */
import { spawn } from "node:child_process";
import { createCipheriv, createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { connect, createServer, type Socket } from "node:net";
import { cpus, loadavg } from "node:os";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { CID } from "multiformats/cid";
import { fragmentCid } from "../agents/data/cid.js";
import { FRAGMENT_SIZE } from "../agents/data/constants.js";
import type { PeerId } from "@libp2p/interface";
import { YAMUX_DEFAULTS, createP2PNode, type P2PNode, type YamuxTuning } from "../agents/p2p/index.js";

const DISTINCT_FRAGMENTS = 32;
const BARE_PROTOCOL = "/muri/bench/bare/1.0.0";
const RESULTS = fileURLToPath(new URL("./results/transfer.json", import.meta.url));
const SELF = fileURLToPath(import.meta.url);

/** yamux settings compared: libp2p's defaults and the p2p layer's (YAMUX_DEFAULTS). */
const CONFIGS: Array<{ name: string; yamux: YamuxTuning }> = [
  { name: "yamux defaults", yamux: { initialStreamWindowSize: 256 * 1024, maxStreamWindowSize: 16 << 20 } },
  { name: "muri tuning", yamux: { ...YAMUX_DEFAULTS } },
];
const CONCURRENCY = [1, 4, 16];

function fragment(i: number): Uint8Array {
  const key = createHash("sha256").update(`bench-${i}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(FRAGMENT_SIZE));
}

// ------------------------------------------------------------------ server (child process)

async function serve(yamux: YamuxTuning): Promise<void> {
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
  const node = await createP2PNode({ source: store, sink: store, yamux, limits: { maxInboundStreams: 256, maxConcurrentTransfers: 256, maxTransfersPerPeer: 256 } });
  await node.start();

  // libp2p ceiling: one bare stream (same connection stack, no fragment framing, no CID check); the
  // client writes a u32 count, the server writes that many fragments back to back.
  await node.libp2p.handle(BARE_PROTOCOL, async (stream) => {
    const request = await new Promise<Uint8Array>((resolve) =>
      stream.addEventListener("message", (e) => resolve(e.data.subarray()), { once: true }),
    );
    const count = new DataView(request.buffer, request.byteOffset, request.byteLength).getUint32(0);
    for (let i = 0; i < count; i++) if (!stream.send(ordered[i % ordered.length])) await stream.onDrain();
    await stream.close();
  });

  // Raw baseline: the client sends a u32 count; the server writes that many fragments back to back.
  const server = createServer((socket: Socket) => {
    socket.setNoDelay(true);
    socket.once("data", async (request: Buffer) => {
      const count = request.readUInt32BE(0);
      for (let i = 0; i < count; i++) {
        if (!socket.write(ordered[i % ordered.length])) await new Promise((resolve) => socket.once("drain", resolve));
      }
      socket.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  process.stdout.write(`${JSON.stringify({ multiaddr: node.multiaddrs[0].toString(), port, cids: [...fragments.keys()] })}\n`);

  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once("close", resolve));
  server.close();
  await node.stop();
  process.exit(0);
}

// ------------------------------------------------------------------ client (parent process)

interface ServerInfo {
  multiaddr: string;
  port: number;
  cids: string[];
}

async function startServer(yamux: YamuxTuning): Promise<{ info: ServerInfo; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ["--import", "tsx", SELF, "--serve", JSON.stringify(yamux)], { stdio: ["pipe", "pipe", "inherit"] });
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
  try {
    const info = await new Promise<ServerInfo>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("bench server did not start within 30 s")), 30_000);
      createInterface({ input: child.stdout }).once("line", (line) => {
        clearTimeout(timer);
        resolve(JSON.parse(line) as ServerInfo);
      });
      child.once("exit", (code) => reject(new Error(`bench server exited with ${code}`)));
    });
    return { info, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Raw TCP: one socket, `count` fragments streamed back to back; returns MB/s (MiB). With `verify`
 * the receiver also sha256-hashes each fragment as it arrives (the work a fetch must do anyway).
 */
async function rawTcp(port: number, count: number, verify = false): Promise<number> {
  const expected = count * FRAGMENT_SIZE;
  const socket = connect({ port, host: "127.0.0.1", noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const started = performance.now();
  let received = 0;
  const request = Buffer.alloc(4);
  request.writeUInt32BE(count);
  socket.write(request);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("raw TCP transfer timed out")), 120_000);
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
  if (received !== expected) throw new Error(`raw TCP received ${received} of ${expected} bytes`);
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

interface Row {
  config: string;
  mode: string;
  concurrency: number;
  mbps: number;
}

async function main(): Promise<void> {
  const count = arg("fragments", 256);
  const rounds = arg("rounds", 2);
  const rows: Row[] = [];
  let raw = 0;
  let rawSha = 0;
  const best = (xs: number[]): number => Math.max(...xs);

  for (const config of CONFIGS) {
    const server = await startServer(config.yamux);
    const store = { has: () => false, get: (): Uint8Array => new Uint8Array(), put: () => {} };
    const client = await createP2PNode({ source: store, sink: store, yamux: config.yamux, limits: { maxOutboundStreams: 256 } });
    try {
      await client.start();
      const peer = await client.dial(server.info.multiaddr);
      const cids = server.info.cids.map((c) => CID.parse(c));
      const fetch = (cid: CID): Promise<Uint8Array> => client.fetchFragment(peer, cid, { timeoutMs: 60_000 });
      await libp2pFetches(fetch, cids, 16, 4); // warm-up: JIT, yamux windows
      await bareStream(client, peer, 16);
      await rawTcp(server.info.port, 16);

      // Interleave every measurement with the raw baselines so they see the same machine load.
      const measure = async (mode: string, concurrency: number, run: () => Promise<number>): Promise<void> => {
        const runs: number[] = [];
        for (let r = 0; r < rounds; r++) {
          raw = Math.max(raw, await rawTcp(server.info.port, count));
          runs.push(await run());
          rawSha = Math.max(rawSha, await rawTcp(server.info.port, count, true));
        }
        rows.push({ config: config.name, mode, concurrency, mbps: best(runs) });
        console.error(`  ${config.name} ${mode} x${concurrency}: ${best(runs).toFixed(1)} MB/s (raw ${raw.toFixed(0)}, raw+sha256 ${rawSha.toFixed(0)})`);
      };
      await measure("bare stream", 1, () => bareStream(client, peer, count));
      for (const concurrency of CONCURRENCY) {
        await measure("fetch", concurrency, () => libp2pFetches(fetch, cids, count, concurrency));
      }
    } finally {
      await client.stop();
      await server.stop();
    }
  }

  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const header = ["yamux config", "mode", "in flight", "MB/s", "of raw TCP", "of raw TCP+sha256"];
  const table = rows.map((r) => [r.config, r.mode, String(r.concurrency), r.mbps.toFixed(1), pct(r.mbps / raw), pct(r.mbps / rawSha)]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i])).join("  ");
  console.log(`fragment transfer between two processes, ${count} x ${FRAGMENT_SIZE / 1024} KiB per run, best of ${rounds} (MB = MiB)`);
  console.log(`raw TCP (bytes only): ${raw.toFixed(1)} MB/s; raw TCP + sha256 of each fragment: ${rawSha.toFixed(1)} MB/s`);
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of table) console.log(line(row));
  const fetches = rows.filter((r) => r.mode === "fetch");
  const top = fetches.reduce((a, b) => (b.mbps > a.mbps ? b : a));
  const ceiling = best(rows.filter((r) => r.mode === "bare stream").map((r) => r.mbps));
  console.log(
    `best fetch: ${top.config}, ${top.concurrency} in flight: ${top.mbps.toFixed(1)} MB/s = ${pct(top.mbps / raw)} of raw TCP, ` +
      `${pct(top.mbps / rawSha)} of raw TCP+sha256, ${pct(top.mbps / ceiling)} of a bare libp2p stream`,
  );

  await mkdir(fileURLToPath(new URL("./results/", import.meta.url)), { recursive: true });
  const round3 = (x: number): number => Number(x.toFixed(3));
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
        rawTcpMbps: Number(raw.toFixed(1)),
        rawTcpSha256Mbps: Number(rawSha.toFixed(1)),
        bareStreamMbps: Number(ceiling.toFixed(1)),
        runs: rows.map((r) => ({
          ...r,
          mbps: Number(r.mbps.toFixed(1)),
          ofRawTcp: round3(r.mbps / raw),
          ofRawTcpSha256: round3(r.mbps / rawSha),
        })),
        bestFetch: {
          config: top.config,
          concurrency: top.concurrency,
          mbps: Number(top.mbps.toFixed(1)),
          ofRawTcp: round3(top.mbps / raw),
          ofRawTcpSha256: round3(top.mbps / rawSha),
          ofBareStream: round3(top.mbps / ceiling),
        },
      },
      null,
      2,
    )}\n`,
  );
}

if (process.argv[2] === "--serve") await serve(JSON.parse(process.argv[3]) as YamuxTuning);
else await main();
