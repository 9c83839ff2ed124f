/**
 * Fragment store throughput: writes and reads of 1 MiB fragments through `FragmentStore` against,
 * in the same run and on the same filesystem:
 *   - raw fs: `writeFile`/`readFile` of the same bytes, nothing else (the ceiling);
 *   - raw fs, synced per batch: the same with the store's `batch` durability (fdatasync of every
 *     file and fsync of the directory once per 64 MiB and at the end of the writes);
 *   - raw fs + CID hash: raw fs plus the fragment-root hash of every fragment (the ceiling for a
 *     store that verifies);
 *   - LevelDB values: the bytes as values in classic-level, verified (the layout we did not pick).
 * The store rows: `verified upstream` is how a node uses it (the p2p layer hashed a received
 * fragment, so `put(..., { verify: false })`; served reads through `servingView`, no hash);
 * `sync=none|batch|always` verify the CID on every write and read.
 * Each is run with 1 and with N operations in flight. Reads follow writes, so they are served
 * from the page cache (dropping it needs root); the write figures include no final sync for raw
 * fs, which is the kernel's writeback — the store's `always` policy pays fsync per fragment.
 *
 * The store row with `get verify=false` shows the store's own read overhead without the hash.
 * The layouts take turns slice by slice (see `measureAll`), so a busy shared machine slows all alike.
 *
 * Usage: tsx bench/store.ts [--mib 512] [--concurrency 1,4] [--slices 16] [--out bench/results/store.json]
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Level } from "level";
import type { CID } from "multiformats/cid";
import { fragmentCid } from "../agents/data/cid.js";
import { FRAGMENT_SIZE } from "../agents/data/constants.js";
import { fragmentRoot } from "../agents/data/merkle.js";
import { openFragmentStore, servingView, type SyncPolicy } from "../agents/store/fragment-store.js";
import { digestMatchesCid } from "../agents/data/cid.js";
import { digestFor } from "../agents/store/verify.js";

const { values: args } = parseArgs({
  options: {
    mib: { type: "string", default: "512" },
    concurrency: { type: "string", default: "1,4" },
    slices: { type: "string", default: "16" },
    out: { type: "string", default: "bench/results/store.json" },
  },
});
const totalMiB = Number(args.mib);
const count = Math.max(1, Math.round((totalMiB * 2 ** 20) / FRAGMENT_SIZE));
const concurrencies = args.concurrency.split(",").map(Number);
const slices = Math.max(1, Number(args.slices));

// Fragment i = a random base with i written into its first bytes: distinct CIDs, cheap to make.
const base = randomBytes(FRAGMENT_SIZE);
function fragment(i: number): Uint8Array {
  const bytes = new Uint8Array(base);
  new DataView(bytes.buffer).setUint32(0, i);
  return bytes;
}
console.log(`preparing ${count} CIDs...`);
const cids: CID[] = Array.from({ length: count }, (_, i) => fragmentCid(fragment(i)));

interface Layout {
  name: string;
  setup(dir: string): Promise<void>;
  write(i: number, bytes: Uint8Array): Promise<void>;
  read(i: number): Promise<Uint8Array>;
  /** Read without the CID check, where the layout offers it. */
  readUnverified?(i: number): Promise<Uint8Array>;
  /** Work after the last write that belongs to the write phase (flush, close). */
  endWrites?(): Promise<void>;
  teardown(): Promise<void>;
}

async function verified(i: number, bytes: Uint8Array): Promise<Uint8Array> {
  if (!digestMatchesCid(cids[i]!, await digestFor(cids[i]!, bytes))) throw new Error(`fragment ${i} does not verify`);
  return bytes;
}

/** Raw files with the store's `batch` durability: fdatasync of each file and fsync of the directory per 64 MiB. */
function rawFsSynced(): Layout {
  let dir = "";
  let pending: string[] = [];
  const BATCH = 64;
  const flush = async (): Promise<void> => {
    const files = pending;
    pending = [];
    for (const path of files) {
      const fh = await open(path, "r");
      await fh.datasync();
      await fh.close();
    }
    const d = await open(dir, "r");
    await d.sync();
    await d.close();
  };
  return {
    name: "raw fs, synced per batch",
    async setup(d) {
      dir = join(d, "raw-synced");
      await mkdir(dir);
    },
    async write(i, bytes) {
      const path = join(dir, String(i));
      await writeFile(path, bytes);
      pending.push(path);
      if (pending.length >= BATCH) await flush();
    },
    async endWrites() {
      await flush();
    },
    read: (i) => readFile(join(dir, String(i))),
    async teardown() {},
  };
}

function rawFs(withHash: boolean): Layout {
  let dir = "";
  return {
    name: withHash ? "raw fs + CID hash" : "raw fs",
    async setup(d) {
      dir = join(d, "raw");
      await mkdir(dir);
    },
    async write(i, bytes) {
      // Hash and write overlap, as in the store.
      await Promise.all([withHash ? verified(i, bytes) : undefined, writeFile(join(dir, String(i)), bytes)]);
    },
    async read(i) {
      const bytes = await readFile(join(dir, String(i)));
      return withHash ? verified(i, bytes) : bytes;
    },
    async teardown() {},
  };
}

function store(sync: SyncPolicy, upstream = false): Layout {
  let s: Awaited<ReturnType<typeof openFragmentStore>>;
  let dir = "";
  return {
    name: upstream ? `store sync=${sync}, verified upstream` : `store sync=${sync}`,
    async setup(d) {
      dir = join(d, "store");
      s = await openFragmentStore({ dir, quotaBytes: 2 ** 45, sync });
    },
    write: (i, bytes) => s.put(cids[i]!, bytes, { verify: !upstream }),
    read: (i) => (upstream ? servingView(s).get(cids[i]!) : s.get(cids[i]!)),
    readUnverified: sync === "batch" && !upstream ? (i) => s.get(cids[i]!, { verify: false }) : undefined,
    // Durability of the write phase is part of its cost: flush, and reopen for the reads.
    async endWrites() {
      await s.close();
      s = await openFragmentStore({ dir, quotaBytes: 2 ** 45, sync });
    },
    teardown: () => s.close(),
  };
}

function levelValues(): Layout {
  let db: Level<Uint8Array, Uint8Array>;
  return {
    name: "LevelDB values + CID hash",
    async setup(d) {
      db = new Level<Uint8Array, Uint8Array>(join(d, "level"), { keyEncoding: "view", valueEncoding: "view" });
      await db.open();
    },
    async write(i, bytes) {
      await verified(i, bytes);
      await db.put(cids[i]!.bytes, bytes);
    },
    async read(i) {
      const bytes = await db.get(cids[i]!.bytes);
      if (!bytes) throw new Error(`fragment ${i} missing`);
      return verified(i, bytes);
    },
    teardown: () => db.close(),
  };
}

async function runPool(concurrency: number, lo: number, hi: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = lo;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < hi) await fn(next++);
    }),
  );
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

interface Row {
  layout: string;
  concurrency: number;
  writeMBps: number;
  readMBps: number;
  readUnverifiedMBps?: number;
  writeVsRawFs?: number;
  readVsRawFs?: number;
  readUnverifiedVsRawFs?: number;
  /** Against raw fs with the same durability (the store's `batch`). */
  writeVsRawFsSynced?: number;
  /** Against the ceiling once every byte must be hashed. */
  writeVsRawFsSha256?: number;
  readVsRawFsSha256?: number;
}

/**
 * Measures every layout at one concurrency. The machine is shared, so layouts take turns: the
 * fragments are cut into slices and each slice is written (then read) by every layout in a
 * rotating order; a layout's time is the sum over its slices, so load drift hits all alike.
 */
async function measureAll(concurrency: number): Promise<Row[]> {
  const layouts = makeLayouts();
  const root = await mkdtemp(join(tmpdir(), "muri-bench-store-"));
  try {
    for (const [n, layout] of layouts.entries()) {
      const dir = join(root, String(n));
      await mkdir(dir);
      await layout.setup(dir);
    }
    const secs = layouts.map(() => ({ write: 0, read: 0, readUnverified: 0 }));
    const sliceSize = Math.ceil(count / Math.min(slices, count));
    const phase = async (
      name: "write" | "read" | "readUnverified",
      op: (layout: Layout) => ((i: number) => Promise<void>) | undefined,
    ): Promise<void> => {
      for (let lo = 0, s = 0; lo < count; lo += sliceSize, s++) {
        const hi = Math.min(count, lo + sliceSize);
        for (let k = 0; k < layouts.length; k++) {
          const n = (k + s) % layouts.length;
          const fn = op(layouts[n]!);
          if (fn) secs[n]![name] += await runPool(concurrency, lo, hi, fn);
        }
      }
    };
    const checkLength = (bytes: Uint8Array, i: number): void => {
      if (bytes.length !== FRAGMENT_SIZE) throw new Error(`fragment ${i}: ${bytes.length} bytes`);
    };
    await phase("write", (l) => (i) => l.write(i, fragment(i)));
    for (const [n, layout] of layouts.entries()) {
      if (layout.endWrites) secs[n]!.write += await timed(() => layout.endWrites!());
    }
    await phase("read", (l) => async (i) => checkLength(await l.read(i), i));
    await phase("readUnverified", (l) => {
      const read = l.readUnverified;
      return read ? async (i) => checkLength(await read(i), i) : undefined;
    });
    for (const layout of layouts) await layout.teardown();
    const mb = (count * FRAGMENT_SIZE) / 1e6;
    return layouts.map((layout, n) => ({
      layout: layout.name,
      concurrency,
      writeMBps: mb / secs[n]!.write,
      readMBps: mb / secs[n]!.read,
      ...(layout.readUnverified ? { readUnverifiedMBps: mb / secs[n]!.readUnverified } : {}),
    }));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** The CID hash (fragment root, through the hash backend) of 64 fragments on one core. */
function cidHashThroughput(): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < 64; i++) fragmentRoot(base);
  return (64 * FRAGMENT_SIZE) / 1e6 / (Number(process.hrtime.bigint() - start) / 1e9);
}

const makeLayouts = (): Layout[] => [
  rawFs(false),
  rawFs(true),
  rawFsSynced(),
  store("batch", true),
  store("none"),
  store("batch"),
  store("always"),
  levelValues(),
];
const rows: Row[] = [];
const sha256MBps = cidHashThroughput();
for (const concurrency of concurrencies) {
  console.log(`${concurrency} in flight...`);
  const measured = await measureAll(concurrency);
  const raw = measured[0]!;
  const rawSha = measured[1]!;
  const rawSynced = measured[2]!;
  for (const row of measured) {
    row.writeVsRawFsSynced = row.writeMBps / rawSynced.writeMBps;
    row.writeVsRawFsSha256 = row.writeMBps / rawSha.writeMBps;
    row.readVsRawFsSha256 = row.readMBps / rawSha.readMBps;
    row.writeVsRawFs = row.writeMBps / raw.writeMBps;
    row.readVsRawFs = row.readMBps / raw.readMBps;
    if (row.readUnverifiedMBps !== undefined) row.readUnverifiedVsRawFs = row.readUnverifiedMBps / raw.readMBps;
    rows.push(row);
  }
}

const pct = (x: number | undefined) => (x === undefined ? "" : `${(x * 100).toFixed(0)}%`);
console.log(`\n${count} x ${FRAGMENT_SIZE / 2 ** 20} MiB fragments; fragment-root hash on one core: ${sha256MBps.toFixed(0)} MB/s`);
console.table(
  rows.map((r) => ({
    layout: r.layout,
    "in flight": r.concurrency,
    "write MB/s": Math.round(r.writeMBps),
    "/raw fs": pct(r.writeVsRawFs),
    "/raw synced": pct(r.writeVsRawFsSynced),
    "/raw+hash": pct(r.writeVsRawFsSha256),
    "read MB/s": Math.round(r.readMBps),
    "/raw fs ": pct(r.readVsRawFs),
    "/raw+hash ": pct(r.readVsRawFsSha256),
    "read no-verify MB/s": r.readUnverifiedMBps === undefined ? "" : Math.round(r.readUnverifiedMBps),
    "/raw fs  ": pct(r.readUnverifiedVsRawFs),
  })),
);

const round = (x: number | undefined) => (x === undefined ? undefined : Math.round(x * 1000) / 1000);
await writeFile(
  args.out,
  JSON.stringify(
    {
      bench: "store",
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version, tmpdir: tmpdir() },
      fragments: count,
      fragmentBytes: FRAGMENT_SIZE,
      slices,
      cidHashSingleCoreMBps: Math.round(sha256MBps),
      note:
        "reads are from the page cache; raw fs writes are not fsynced, 'raw fs, synced per batch' fdatasyncs every file and fsyncs the directory per 64 MiB (the store's batch policy); store sync=none/batch/always as in agents/store/fragment-store.ts; 'verified upstream' = put with verify:false and reads through servingView (a node's path)",
      results: rows.map((r) => ({
        ...r,
        writeMBps: Math.round(r.writeMBps),
        readMBps: Math.round(r.readMBps),
        writeVsRawFs: round(r.writeVsRawFs),
        readVsRawFs: round(r.readVsRawFs),
        readUnverifiedMBps: r.readUnverifiedMBps === undefined ? undefined : Math.round(r.readUnverifiedMBps),
        readUnverifiedVsRawFs: round(r.readUnverifiedVsRawFs),
        writeVsRawFsSynced: round(r.writeVsRawFsSynced),
        writeVsRawFsSha256: round(r.writeVsRawFsSha256),
        readVsRawFsSha256: round(r.readVsRawFsSha256),
      })),
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${args.out}`);
