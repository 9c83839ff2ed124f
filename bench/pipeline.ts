/**
 * Blob pipeline throughput: chunk + AES-256-GCM + Reed-Solomon (k data + m parity, default 4 + 2)
 * + the fragment Merkle root of every shard (which is also its CID), over the same in-memory
 * bytes as, measured in the same run:
 *   - AES-256-GCM alone (node:crypto, one cipher per fragment, output discarded);
 *   - SHA-256 alone (node:crypto, one hash per 1 MiB fragment);
 *   - the fragment Merkle root alone (the active hash backend, and node:crypto);
 * and the reverse path (shards from memory, CIDs verified, rebuilt, decrypted) with all data
 * shards present and with m shards lost per stripe.
 *
 * Pipeline rows:
 *   - "sequential": the Reed-Solomon parity is awaited before the shards are hashed, so only one
 *     thread works at any time (the JS thread, or one libuv pool thread for the parity): one core.
 *   - "overlapped": the default; the JS thread hashes the data shards while a pool thread computes
 *     the parity.
 * The encoder and decoder run with `reuseBuffers` (the sink/consumer only reads each buffer before
 * the next), except the row that says "fresh buffers".
 *
 * Two figures per row: wall MB/s, and CPU MB/s = bytes / (user + system CPU time of the process).
 * On a shared machine the wall figure moves with the neighbours' load; the CPU figure is what one
 * dedicated core would do (for the sequential rows; overlapped rows add the pool thread's time).
 * MB/s = 10^6 plaintext bytes per second; every figure is the best of --runs interleaved rounds.
 *
 * Usage: tsx bench/pipeline.ts [--mib 256] [--runs 3] [--k 4] [--m 2] [--out bench/results/pipeline.json]
 */
import { createCipheriv, hash as cryptoHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { FRAGMENT_SIZE } from "../agents/data/constants.js";
import { ENCRYPTION_OVERHEAD } from "../agents/data/crypto.js";
import { hashBackend, nodeCryptoBackend, setHashBackend } from "../agents/data/hash-backend.js";
import { fragmentRoot } from "../agents/data/merkle.js";
import { decodeFile, encodeFile, type EncodeResult, type ShardFetcher } from "../agents/data/pipeline.js";

const { values: args } = parseArgs({
  options: {
    mib: { type: "string", default: "256" },
    runs: { type: "string", default: "3" },
    k: { type: "string", default: "4" },
    m: { type: "string", default: "2" },
    out: { type: "string", default: "bench/results/pipeline.json" },
  },
});
const total = Number(args.mib) * 2 ** 20;
const runs = Math.max(1, Number(args.runs));
const k = Number(args.k);
const m = Number(args.m);
const PIECE = 8 * 2 ** 20;

// Input: an AES-CTR keystream (incompressible, deterministic), generated before timing.
console.log(`preparing ${args.mib} MiB of input...`);
const input = createCipheriv("aes-256-ctr", Buffer.alloc(32, 7), Buffer.alloc(16)).update(Buffer.alloc(total));
const secret = Buffer.alloc(32, 9);
const fragmentPlain = FRAGMENT_SIZE - ENCRYPTION_OVERHEAD;
const backend = hashBackend();

async function* source(): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < total; offset += PIECE) yield input.subarray(offset, Math.min(total, offset + PIECE));
}

async function withBackend<T>(b: typeof backend, fn: () => Promise<T> | T): Promise<T> {
  const previous = setHashBackend(b);
  try {
    return await fn();
  } finally {
    setHashBackend(previous);
  }
}

let stored: { result: EncodeResult; shards: Buffer[] } | undefined;

async function encodeStored(): Promise<void> {
  const shards: Buffer[] = [];
  const result = await encodeFile(source(), { secret, k, m }, (stripe) => {
    for (const s of stripe) shards[s.index] = s.bytes;
  });
  stored = { result, shards };
}

async function drain(lost: (stripe: number, position: number) => boolean): Promise<void> {
  const s = stored!;
  const fetch: ShardFetcher = async (_cid, where) => (lost(where.stripe, where.position) ? undefined : s.shards[where.index]);
  let n = 0;
  for await (const part of decodeFile(s.result.manifest, fetch, { secret, reuseBuffers: true })) n += part.length;
  if (n !== total) throw new Error(`decoded ${n} bytes, expected ${total}`);
}

/** name, what fraction of `total` it processes, the work. */
const measurements: [string, number, () => Promise<void> | void][] = [
  [
    "AES-256-GCM alone (node:crypto)",
    1,
    () => {
      for (let offset = 0, i = 0; offset < total; offset += fragmentPlain, i++) {
        const iv = Buffer.alloc(12);
        iv.writeUInt32BE(i, 8);
        const c = createCipheriv("aes-256-gcm", secret, iv);
        c.update(input.subarray(offset, Math.min(total, offset + fragmentPlain)));
        c.final();
        c.getAuthTag();
      }
    },
  ],
  [
    "SHA-256 alone (node:crypto)",
    1,
    () => {
      for (let offset = 0; offset < total; offset += FRAGMENT_SIZE) cryptoHash("sha256", input.subarray(offset, offset + FRAGMENT_SIZE), "buffer");
    },
  ],
  [
    `fragment Merkle root alone (${backend.name})`,
    1,
    () => {
      for (let offset = 0; offset < total; offset += FRAGMENT_SIZE) fragmentRoot(input.subarray(offset, offset + FRAGMENT_SIZE));
    },
  ],
  [
    "fragment Merkle root alone (node:crypto)",
    0.25, // slow; a quarter of the data is enough for the ratio
    () =>
      withBackend(nodeCryptoBackend, () => {
        for (let offset = 0; offset < total / 4; offset += FRAGMENT_SIZE) fragmentRoot(input.subarray(offset, offset + FRAGMENT_SIZE));
      }),
  ],
  [
    `encode k=${k} m=${m}, sequential (one core), ${backend.name}`,
    1,
    async () => {
      await encodeFile(source(), { secret, k, m, sequential: true, reuseBuffers: true }, () => {});
    },
  ],
  [
    `encode k=${k} m=${m}, overlapped, ${backend.name}`,
    1,
    async () => {
      await encodeFile(source(), { secret, k, m, reuseBuffers: true }, () => {});
    },
  ],
  [`encode k=${k} m=${m}, overlapped, fresh buffers kept, ${backend.name}`, 1, encodeStored],
  [
    `encode k=8 m=2, sequential (one core), ${backend.name}`,
    1,
    async () => {
      await encodeFile(source(), { secret, k: 8, m: 2, sequential: true, reuseBuffers: true }, () => {});
    },
  ],
  [
    `encode k=${k} m=${m}, sequential (one core), node:crypto hashing`,
    0.25,
    () =>
      withBackend(nodeCryptoBackend, async () => {
        async function* quarter(): AsyncGenerator<Buffer> {
          for (let offset = 0; offset < total / 4; offset += PIECE) yield input.subarray(offset, Math.min(total / 4, offset + PIECE));
        }
        await encodeFile(quarter(), { secret, k, m, sequential: true, reuseBuffers: true }, () => {});
      }),
  ],
  [`decode k=${k} m=${m}, all data shards present`, 1, () => drain(() => false)],
  [
    `decode k=${k} m=${m}, ${m} of ${k + m} shards lost per stripe`,
    1,
    () => drain((stripe, position) => position === stripe % (k + m) || (m > 1 && position === (stripe + 3) % (k + m))),
  ],
];

interface Best {
  wall: number;
  cpu: number;
}
const best = new Map<string, Best>();

const load = loadavg();
console.log(`${total / 2 ** 20} MiB, k=${k} m=${m}, ${runs} rounds, hash backend ${backend.name}, load average ${load.map((x) => x.toFixed(2)).join(" ")}`);
for (let round = 0; round < runs; round++) {
  for (const [name, fraction, fn] of measurements) {
    const bytes = total * fraction;
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    await fn();
    const wallMs = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const b = best.get(name) ?? { wall: 0, cpu: 0 };
    best.set(name, { wall: Math.max(b.wall, Math.round(bytes / 1e3 / wallMs)), cpu: Math.max(b.cpu, Math.round(bytes / 1e3 / cpuMs)) });
  }
  console.log(`round ${round + 1}/${runs} done (load ${loadavg()[0]!.toFixed(2)})`);
}

const aes = best.get("AES-256-GCM alone (node:crypto)")!;
const sha = best.get("SHA-256 alone (node:crypto)")!;
const rows = [...best.entries()].map(([name, b]) => ({
  name,
  wallMBps: b.wall,
  cpuMBps: b.cpu,
  wallVsAes: Number((b.wall / aes.wall).toFixed(3)),
  wallVsSha256: Number((b.wall / sha.wall).toFixed(3)),
  cpuVsAes: Number((b.cpu / aes.cpu).toFixed(3)),
  cpuVsSha256: Number((b.cpu / sha.cpu).toFixed(3)),
}));
const width = Math.max(...rows.map((r) => r.name.length));
const head = ["wall MB/s", "x AES", "x SHA", "CPU MB/s", "x AES", "x SHA"];
console.log(`\n${"measurement".padEnd(width)}  ${head.map((h) => h.padStart(9)).join(" ")}`);
for (const r of rows) {
  const cells = [r.wallMBps, r.wallVsAes.toFixed(2), r.wallVsSha256.toFixed(2), r.cpuMBps, r.cpuVsAes.toFixed(2), r.cpuVsSha256.toFixed(2)];
  console.log(`${r.name.padEnd(width)}  ${cells.map((c) => String(c).padStart(9)).join(" ")}`);
}

const report = {
  bench: "pipeline",
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, loadAverageAtStart: load.map((x) => Number(x.toFixed(2))) },
  params: {
    bytes: total,
    k,
    m,
    shardSize: FRAGMENT_SIZE,
    plaintextFragment: fragmentPlain,
    runs,
    hashBackend: backend.name,
    note:
      "MB/s = 1e6 plaintext bytes/s, best of interleaved runs. wall = elapsed; cpu = bytes / process CPU time (user+sys, all threads). " +
      "sequential = one thread busy at a time (one core); overlapped = parity on a libuv pool thread while the JS thread hashes. " +
      "Encode/decode reuse buffers unless the row says fresh buffers.",
  },
  results: rows,
};
await mkdir(dirname(args.out), { recursive: true });
await writeFile(args.out, JSON.stringify(report, null, 2) + "\n");
console.log(`\nwrote ${args.out}`);
