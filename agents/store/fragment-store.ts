/**
 * Content-addressed fragment store: fragment bytes in plain files sharded by CID (`layout.ts`),
 * metadata (size, stored-at, usage, write intents) in the LevelDB metadata database.
 *
 * Invariants:
 * - Nothing is ever stored or served that does not hash to its CID: bytes are verified before a
 *   write is committed (the rename) and on every read; a file that fails is quarantined and its
 *   entry removed.
 * - A fragment file only ever appears under `blocks/` complete: it is written to `tmp/` (same
 *   filesystem) and renamed into place. A write intent recorded before the rename lets `open`
 *   resolve a write that a crash interrupted (adopt the file if it verifies, else delete it).
 * - `usedBytes` is the sum of the sizes of the fragments with metadata; with writes in progress,
 *   `usedBytes + reserved <= quotaBytes` is checked before any byte is written.
 *
 * Crash guarantees, by `sync` policy:
 * - Process crash (SIGKILL, OOM, uncaught exception), any policy: every put that resolved is
 *   present and valid after reopen; a put in progress is either entirely present or absent; no
 *   temporary file survives the next open. (The page cache outlives the process, so this needs
 *   no fsync; rename atomicity is enough.)
 * - OS crash / power loss:
 *   - `always`: every put that resolved is durable (file fdatasync, rename, directory fsync,
 *     then a synced LevelDB write).
 *   - `batch` (default): everything put before the last completed `flush()` is durable. Flushes
 *     (fdatasync of each new file, fsync of their directories, one synced LevelDB write) run in
 *     the background every `batchSyncIntervalMs` and whenever `batchSyncBytes` were written
 *     since the last one, and in `close()`; writers wait only if 2 x `batchSyncBytes` are
 *     pending (back-pressure). So a power loss costs at most the last ~1 s / 128 MiB of puts,
 *     which may then be missing or be found corrupt at their first read (quarantined and
 *     reported): never served wrong. Callers that must not lose a put (before acknowledging it
 *     on-chain) call `flush()` first.
 *   - `none`: durability is left to the kernel's writeback (typically < 30 s); `flush()` is a
 *     no-op for fragments written under this policy.
 */
import * as fsp from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import {
  DEFAULT_BATCH_SYNC_BYTES,
  DEFAULT_BATCH_SYNC_INTERVAL_MS,
  DEFAULT_SYNC_POLICY,
  IO_PARALLELISM,
  MAX_FRAGMENT_BYTES,
} from "./constants.js";
import {
  CidMismatchError,
  CorruptFragmentError,
  DiskFullError,
  FragmentNotFoundError,
  FragmentTooLargeError,
  InvalidStoreOptionError,
  StoreClosedError,
  StoreFullError,
  StreamLengthError,
} from "./errors.js";
import { blockDir, blockPath, quarantinePath, shardOf, storePaths, tmpPath, type StorePaths } from "./layout.js";
import { silentLogger, type Logger } from "./logger.js";
import { Bucket, decodeUint32, encodeUint32, openMetaDb, type BucketView, type MetaDb } from "./meta-db.js";
import { cidHasher, digestMatchesCid } from "../data/cid.js";
import { assertVerifiable, cidOfDigest, digestFor } from "./verify.js";

/** When a write is made durable against power loss; see the module header. */
export type SyncPolicy = "always" | "batch" | "none";

/** The subset of `node:fs/promises` the store uses (injectable for fault-injection tests). */
export interface StoreFs {
  open: typeof fsp.open;
  rename: typeof fsp.rename;
  unlink: typeof fsp.unlink;
  mkdir: typeof fsp.mkdir;
  readdir: typeof fsp.readdir;
  stat: typeof fsp.stat;
  rm: typeof fsp.rm;
}

export interface FragmentStoreInit {
  /** Store directory (created if missing). */
  dir: string;
  /** Most fragment bytes the store holds; puts past it fail with `StoreFullError`. */
  quotaBytes: number;
  logger?: Logger;
  /** Durability policy (default `"batch"`). */
  sync?: SyncPolicy;
  /** `batch` policy: flush after this many bytes written (default 64 MiB). */
  batchSyncBytes?: number;
  /** `batch` policy: flush at least this often while writes are pending (default 1000 ms). */
  batchSyncIntervalMs?: number;
  /** Largest fragment accepted (default `MAX_FRAGMENT_BYTES`, 4 MiB). */
  maxFragmentBytes?: number;
  /**
   * Metadata database to use instead of opening `<dir>/meta`. It must be dedicated to this store
   * directory; the store does not close it.
   */
  metaDb?: MetaDb;
  /** Filesystem implementation (tests inject faults through it). */
  fs?: StoreFs;
}

export interface FragmentStoreStats {
  /** Bytes of stored fragments (sum of their sizes). */
  usedBytes: number;
  /** `quotaBytes - usedBytes - bytes of writes in progress`, never negative. */
  freeBytes: number;
  quotaBytes: number;
  /** Number of stored fragments. */
  count: number;
}

/** What a consistency check found and repaired. */
export interface FsckReport {
  /** Fragment entries checked. */
  checked: number;
  /** Files without metadata that verified and were adopted. */
  adopted: number;
  /** Files without metadata that did not verify (or had foreign names) and were removed or quarantined. */
  removedOrphans: number;
  /** Entries whose file was missing (entry dropped). */
  droppedMissing: number;
  /** Entries whose file had the wrong size or content (file quarantined, entry dropped). */
  quarantined: number;
}

export interface PutOptions {
  /**
   * Hash the bytes against the CID before committing them (default true). `false` is for callers
   * that hold bytes already verified against this CID (a fragment the p2p layer hashed while it
   * arrived): a fragment is hashed once on receipt, not again here; `fsck` and reads re-verify.
   */
  verify?: boolean;
}

export interface GetOptions {
  /**
   * Hash the bytes against the CID (default true). `false` is for callers that verify the bytes
   * another way anyway (the prover checks Merkle proofs against the on-chain root); the size is
   * still checked.
   */
  verify?: boolean;
}

/** A fragment being read as a stream; `chunks` throws `CorruptFragmentError` before its last chunk if the content does not verify. */
export interface FragmentReadStream {
  size: number;
  chunks: AsyncIterable<Uint8Array>;
}

export interface FragmentStore {
  readonly dir: string;
  /**
   * Stores `bytes` under `cid`, committed only once they hash to it (the hash overlaps the write
   * to a temp file; nothing becomes visible unless it verified). Idempotent: storing a CID
   * already present does nothing (beyond checking the bytes). `{ verify: false }`: the caller
   * verified the bytes against `cid` already (see PutOptions).
   * @throws CidMismatchError, UnsupportedCidError, FragmentTooLargeError, StoreFullError, DiskFullError
   */
  put(cid: CID, bytes: Uint8Array, options?: PutOptions): Promise<void>;
  /**
   * Stores a fragment delivered as chunks totalling `size` bytes, hashing as it writes; commits
   * only if the length and hash match. Resolves without reading `source` when `cid` is present.
   * @throws StreamLengthError, CidMismatchError and the errors of `put`
   */
  putStream(cid: CID, size: number, source: AsyncIterable<Uint8Array>): Promise<void>;
  /**
   * The verified bytes of a fragment.
   * @throws FragmentNotFoundError, CorruptFragmentError (the entry is removed)
   */
  get(cid: CID, options?: GetOptions): Promise<Uint8Array>;
  /**
   * Bytes [offset, offset + length) of a fragment, cut at its end, **not verified**: the caller
   * checks them (e.g. against leaf hashes of a tree it built from the verified whole). A file
   * whose size is not the recorded one is corrupt.
   * @throws FragmentNotFoundError, CorruptFragmentError (the entry is removed), RangeError for an
   * offset past the end or a negative length
   */
  getRange(cid: CID, offset: number, length: number): Promise<Uint8Array>;
  /** The fragment as chunks; the last chunk is only released once the whole content verified. */
  getStream(cid: CID, options?: { chunkSize?: number }): Promise<FragmentReadStream>;
  has(cid: CID): Promise<boolean>;
  /** Removes a fragment; resolves `true` if it was present. */
  delete(cid: CID): Promise<boolean>;
  /** CIDs of all stored fragments (in key byte order). */
  list(): AsyncIterable<CID>;
  stats(): FragmentStoreStats;
  /**
   * Sets the quota (a positive integer of bytes) for the writes that follow: a node resolves its
   * capacity once it knows what the store holds (capacity.ts). A quota below what is stored
   * refuses every new write; nothing is removed.
   */
  setQuota(quotaBytes: number): void;
  /** Makes every fragment written so far durable (fsync of files, directories and metadata). */
  flush(): Promise<void>;
  /**
   * Full consistency check: every entry has a file of the right size, every file under `blocks/`
   * has an entry (adopted if it verifies, removed if not). `deep` also re-hashes every file.
   */
  fsck(options?: { deep?: boolean }): Promise<FsckReport>;
  /** Waits for operations in progress, flushes, records a clean shutdown and closes the database. */
  close(): Promise<void>;
}

/**
 * Opens (creating if needed) the fragment store in `init.dir`. After an unclean shutdown it
 * resolves interrupted writes, removes temporary files and checks every entry has its file.
 *
 * @throws DatabaseLockedError when another process has the store open.
 * @throws SchemaVersionMismatchError when the metadata was written by another schema version.
 */
export async function openFragmentStore(init: FragmentStoreInit): Promise<FragmentStore> {
  validateInit(init);
  const fs = init.fs ?? fsp;
  const paths = storePaths(init.dir);
  const log = init.logger ?? silentLogger;
  await fs.mkdir(paths.blocks, { recursive: true });
  await fs.mkdir(paths.tmp, { recursive: true });
  await fs.mkdir(paths.quarantine, { recursive: true });
  const ownsDb = init.metaDb === undefined;
  const meta = init.metaDb ?? (await openMetaDb(paths.meta, { logger: log }));
  const store = new FsFragmentStore(init, paths, fs, meta, ownsDb, log);
  try {
    await store.start();
  } catch (err) {
    if (ownsDb) await meta.close().catch(() => {});
    throw err;
  }
  return store;
}

function validateInit(init: FragmentStoreInit): void {
  const positive = (option: string, value: unknown): void => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
      throw new InvalidStoreOptionError({ option, value }, "must be a positive integer");
    }
  };
  if (typeof init.dir !== "string" || init.dir === "") {
    throw new InvalidStoreOptionError({ option: "dir", value: init.dir }, "must be a directory path");
  }
  positive("quotaBytes", init.quotaBytes);
  if (init.batchSyncBytes !== undefined) positive("batchSyncBytes", init.batchSyncBytes);
  if (init.batchSyncIntervalMs !== undefined) positive("batchSyncIntervalMs", init.batchSyncIntervalMs);
  if (init.maxFragmentBytes !== undefined) positive("maxFragmentBytes", init.maxFragmentBytes);
  if (init.sync !== undefined && !["always", "batch", "none"].includes(init.sync)) {
    throw new InvalidStoreOptionError({ option: "sync", value: init.sync }, 'must be "always", "batch" or "none"');
  }
}

/** Metadata of one stored fragment. */
export interface FragmentRecord {
  size: number;
  storedAtMs: number;
}

const RECORD_VERSION = 1;

export function encodeFragmentRecord(record: FragmentRecord): Uint8Array {
  const out = new Uint8Array(13);
  const view = new DataView(out.buffer);
  view.setUint8(0, RECORD_VERSION);
  view.setUint32(1, record.size);
  view.setFloat64(5, record.storedAtMs);
  return out;
}

export function decodeFragmentRecord(bytes: Uint8Array): FragmentRecord {
  if (bytes.length !== 13 || bytes[0] !== RECORD_VERSION) {
    throw new RangeError(`bad fragment record (${bytes.length} bytes, version ${bytes[0]})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { size: view.getUint32(1), storedAtMs: view.getFloat64(5) };
}

/** Clean-shutdown flag plus usage counters, in `Bucket.storeState`. */
interface StoreState {
  clean: boolean;
  usedBytes: number;
  count: number;
}

const STATE_KEY = "state";

function encodeState(state: StoreState): Uint8Array {
  const out = new Uint8Array(17);
  const view = new DataView(out.buffer);
  view.setUint8(0, state.clean ? 1 : 0);
  view.setFloat64(1, state.usedBytes);
  view.setFloat64(9, state.count);
  return out;
}

function decodeState(bytes: Uint8Array): StoreState {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { clean: view.getUint8(0) === 1, usedBytes: view.getFloat64(1), count: view.getFloat64(9) };
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function isDiskFull(err: unknown): boolean {
  const code = errno(err);
  if (code === "ENOSPC" || code === "EDQUOT") return true;
  // LevelDB reports a full disk as LEVEL_IO_ERROR with the OS message.
  const message = String((err as Error | undefined)?.message ?? "");
  return /No space left on device|ENOSPC|quota exceeded/i.test(message);
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

class FsFragmentStore implements FragmentStore {
  readonly dir: string;
  private quotaBytes: number;
  private readonly syncPolicy: SyncPolicy;
  private readonly batchSyncBytes: number;
  private readonly batchSyncIntervalMs: number;
  private readonly maxFragmentBytes: number;
  private readonly fragments: BucketView;
  private readonly intents: BucketView;
  private readonly state: BucketView;

  private usedBytes = 0;
  private count = 0;
  private reservedBytes = 0;
  private closing = false;
  private closePromise: Promise<void> | undefined;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly knownDirs = new Set<string>();
  /** Files renamed into place (and their directories) since the last flush (`batch` policy). */
  private pendingFiles: string[] = [];
  private pendingDirs = new Set<string>();
  private pendingBytes = 0;
  private flushChain: Promise<void> = Promise.resolve();
  private backgroundFlush: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    init: FragmentStoreInit,
    private readonly paths: StorePaths,
    private readonly fs: StoreFs,
    private readonly meta: MetaDb,
    private readonly ownsDb: boolean,
    private readonly log: Logger,
  ) {
    this.dir = init.dir;
    this.quotaBytes = init.quotaBytes;
    this.syncPolicy = init.sync ?? DEFAULT_SYNC_POLICY;
    this.batchSyncBytes = init.batchSyncBytes ?? DEFAULT_BATCH_SYNC_BYTES;
    this.batchSyncIntervalMs = init.batchSyncIntervalMs ?? DEFAULT_BATCH_SYNC_INTERVAL_MS;
    this.maxFragmentBytes = init.maxFragmentBytes ?? MAX_FRAGMENT_BYTES;
    this.fragments = meta.bucket(Bucket.fragment);
    this.intents = meta.bucket(Bucket.fragmentIntent);
    this.state = meta.bucket(Bucket.storeState);
  }

  // ---------------------------------------------------------------- lifecycle

  async start(): Promise<void> {
    const started = Date.now();
    const stored = await this.state.get(STATE_KEY);
    const previous = stored ? decodeState(stored) : undefined;
    const tmpRemoved = await this.sweepTmp();
    const intents = await this.resolveIntents();
    let report: Partial<FsckReport> = {};
    if (previous?.clean) {
      this.usedBytes = previous.usedBytes + intents.adoptedBytes;
      this.count = previous.count + intents.adopted;
    } else {
      // New store, or the last run did not close cleanly: recount and check every entry's file.
      report = await this.checkEntries(false, true);
    }
    await this.writeState(false);
    if (this.syncPolicy === "batch") {
      this.flushTimer = setInterval(() => {
        if (this.pendingFiles.length > 0) this.flush().catch((err) => this.log.error("background flush failed", { err }));
      }, this.batchSyncIntervalMs);
      this.flushTimer.unref();
    }
    if (this.usedBytes > this.quotaBytes) {
      this.log.warn("store holds more than its quota; new writes are refused", {
        usedBytes: this.usedBytes,
        quotaBytes: this.quotaBytes,
      });
    }
    this.log.info("fragment store open", {
      dir: this.dir,
      cleanShutdown: previous?.clean ?? null,
      count: this.count,
      usedBytes: this.usedBytes,
      quotaBytes: this.quotaBytes,
      sync: this.syncPolicy,
      tmpRemoved,
      intentsAdopted: intents.adopted,
      intentsDiscarded: intents.discarded,
      ...report,
      ms: Date.now() - started,
    });
  }

  close(): Promise<void> {
    this.closePromise ??= this.closeNow();
    return this.closePromise;
  }

  private async closeNow(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.inflight]);
    if (this.flushTimer) clearInterval(this.flushTimer);
    try {
      await this.flush();
      await this.writeState(true);
    } finally {
      if (this.ownsDb) await this.meta.close();
    }
    this.log.info("fragment store closed", { dir: this.dir, count: this.count, usedBytes: this.usedBytes });
  }

  private assertOpen(): void {
    if (this.closing) throw new StoreClosedError({ dir: this.dir });
  }

  private async writeState(clean: boolean): Promise<void> {
    await this.state.put(STATE_KEY, encodeState({ clean, usedBytes: this.usedBytes, count: this.count }), { sync: true });
  }

  /** Tracks an operation so `close()` waits for it. */
  private track<T>(op: Promise<T>): Promise<T> {
    this.inflight.add(op);
    const done = (): void => {
      this.inflight.delete(op);
    };
    op.then(done, done);
    return op;
  }

  /** Serialises operations on one CID (put/delete/quarantine). */
  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.locks.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  // ---------------------------------------------------------------- writes

  async put(cid: CID, bytes: Uint8Array, options: PutOptions = {}): Promise<void> {
    this.assertOpen();
    this.checkPutable(cid, bytes.length);
    // The hash runs (on the thread pool for sha2-256) while the bytes go to the temp file; the
    // rename (the commit) happens only once they verified. A mismatch is reported before any other error.
    const hashing = options.verify === false ? undefined : digestFor(cid, bytes);
    hashing?.catch(() => {}); // awaited by verify(); not every path gets there
    const verify = async (): Promise<void> => {
      if (hashing === undefined) return;
      const digest = await hashing;
      if (!digestMatchesCid(cid, digest)) {
        throw new CidMismatchError({ cid: cid.toString(), actual: cidOfDigest(cid, digest), size: bytes.length });
      }
    };
    return this.track(
      this.withLock(cid.toString(), async () => {
        if (await this.fragments.has(cid.bytes)) return verify();
        if (bytes.length > this.freeBytes()) await verify();
        await this.commit(cid, bytes.length, async (fh) => {
          const [written, verified] = await Promise.allSettled([writeAll(fh, bytes), verify()]);
          if (verified.status === "rejected") throw verified.reason;
          if (written.status === "rejected") throw written.reason;
        });
      }),
    );
  }

  async putStream(cid: CID, size: number, source: AsyncIterable<Uint8Array>): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new StreamLengthError({ cid: cid.toString(), expected: size, received: 0 });
    }
    this.checkPutable(cid, size);
    return this.track(
      this.withLock(cid.toString(), async () => {
        if (await this.fragments.has(cid.bytes)) return;
        await this.commit(cid, size, async (fh) => {
          const hash = cidHasher(cid);
          let received = 0;
          for await (const chunk of source) {
            received += chunk.length;
            if (received > size) throw new StreamLengthError({ cid: cid.toString(), expected: size, received });
            hash.update(chunk);
            await writeAll(fh, chunk);
          }
          if (received !== size) throw new StreamLengthError({ cid: cid.toString(), expected: size, received });
          const digest = hash.digest();
          if (!digestMatchesCid(cid, digest)) {
            throw new CidMismatchError({ cid: cid.toString(), actual: cidOfDigest(cid, digest), size });
          }
        });
      }),
    );
  }

  private checkPutable(cid: CID, size: number): void {
    assertVerifiable(cid);
    if (size > this.maxFragmentBytes) {
      throw new FragmentTooLargeError({ cid: cid.toString(), size, max: this.maxFragmentBytes });
    }
  }

  private freeBytes(): number {
    return Math.max(0, this.quotaBytes - this.usedBytes - this.reservedBytes);
  }

  /**
   * Writes a new fragment: quota reservation, intent, temp file, (fdatasync), rename, (dir fsync),
   * metadata. On any failure, everything it created is removed. Caller holds the CID's lock.
   */
  private async commit(cid: CID, size: number, writeBody: (fh: FileHandle) => Promise<void>): Promise<void> {
    const free = this.freeBytes();
    if (size > free) throw new StoreFullError({ needed: size, free, quota: this.quotaBytes });
    this.reservedBytes += size;
    const always = this.syncPolicy === "always";
    const key = cid.bytes;
    const tmp = tmpPath(this.paths);
    const dir = blockDir(this.paths, cid);
    const final = join(dir, cid.toString());
    let renamed = false;
    // The intent must be recorded before the rename (when the file appears under blocks/), not
    // before the temp write: the two proceed together.
    const intent = this.intents.put(key, encodeUint32(size), { sync: always });
    intent.catch(() => {}); // observed below; keeps an early failure from being "unhandled"
    try {
      try {
        const fh = await this.fs.open(tmp, "wx");
        try {
          await writeBody(fh);
          if (always) await fh.datasync();
        } finally {
          await fh.close();
        }
      } finally {
        await intent;
      }
      await this.renameIntoPlace(tmp, dir, final);
      renamed = true;
      if (always) await this.fsyncDir(dir);
      await this.meta.batch(
        [
          { type: "del", bucket: Bucket.fragmentIntent, key },
          { type: "put", bucket: Bucket.fragment, key, value: encodeFragmentRecord({ size, storedAtMs: Date.now() }) },
        ],
        { sync: always },
      );
    } catch (err) {
      await this.fs.rm(tmp, { force: true }).catch(() => {});
      if (renamed) await this.fs.rm(final, { force: true }).catch(() => {});
      await intent.catch(() => {});
      await this.intents.del(key).catch(() => {});
      this.reservedBytes -= size;
      if (isDiskFull(err)) {
        this.log.error("disk full while writing fragment", { cid: cid.toString(), size });
        throw new DiskFullError({ cid: cid.toString(), needed: size, path: this.dir, syscall: (err as NodeJS.ErrnoException).syscall }, err);
      }
      throw err;
    }
    this.reservedBytes -= size;
    this.usedBytes += size;
    this.count += 1;
    if (this.syncPolicy === "batch") {
      this.pendingFiles.push(final);
      this.pendingDirs.add(dir);
      this.pendingBytes += size;
      const backPressure = this.maybeFlush();
      if (backPressure) await backPressure;
    }
  }

  /**
   * `batch` policy: starts a background flush once `batchSyncBytes` are pending. If one is
   * already running and twice that is pending, returns it for the writer to wait on, so at most
   * about 2 x `batchSyncBytes` of acknowledged writes are ever waiting for their fsync.
   */
  private maybeFlush(): Promise<void> | undefined {
    if (this.pendingBytes < this.batchSyncBytes) return undefined;
    if (!this.backgroundFlush) {
      this.backgroundFlush = this.flush()
        .catch((err: unknown) => this.log.error("background flush failed", { err }))
        .finally(() => {
          this.backgroundFlush = undefined;
        });
      return undefined;
    }
    return this.pendingBytes >= 2 * this.batchSyncBytes ? this.backgroundFlush : undefined;
  }

  private async renameIntoPlace(tmp: string, dir: string, final: string): Promise<void> {
    if (!this.knownDirs.has(dir)) {
      await this.fs.mkdir(dir, { recursive: true });
      this.knownDirs.add(dir);
    }
    try {
      await this.fs.rename(tmp, final);
    } catch (err) {
      if (errno(err) !== "ENOENT") throw err;
      // The shard directory was removed behind our back: recreate it once.
      this.knownDirs.delete(dir);
      await this.fs.mkdir(dir, { recursive: true });
      this.knownDirs.add(dir);
      await this.fs.rename(tmp, final);
    }
  }

  private async fsyncDir(dir: string): Promise<void> {
    const fh = await this.fs.open(dir, "r");
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  async flush(): Promise<void> {
    // Flushes run one at a time; a flush started while another runs covers what the first missed.
    const run = this.flushChain.then(() => this.flushNow());
    this.flushChain = run.catch(() => {});
    return run;
  }

  private async flushNow(): Promise<void> {
    const files = this.pendingFiles;
    const dirs = [...this.pendingDirs];
    if (files.length === 0) return;
    this.pendingFiles = [];
    this.pendingDirs = new Set();
    this.pendingBytes = 0;
    await forEachLimit(files, IO_PARALLELISM, async (file) => {
      let fh: FileHandle;
      try {
        fh = await this.fs.open(file, "r");
      } catch (err) {
        if (errno(err) === "ENOENT") return; // deleted since
        throw err;
      }
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
    });
    await forEachLimit(dirs, IO_PARALLELISM, async (dir) => {
      try {
        await this.fsyncDir(dir);
      } catch (err) {
        if (errno(err) !== "ENOENT") throw err; // removed from outside; nothing left to make durable
      }
    });
    // A synced LevelDB write flushes its log, making every earlier metadata write durable.
    await this.writeState(false);
  }

  async delete(cid: CID): Promise<boolean> {
    this.assertOpen();
    return this.track(
      this.withLock(cid.toString(), async () => {
        const stored = await this.fragments.get(cid.bytes);
        if (!stored) return false;
        // File first: a crash in between leaves an entry without file, which open drops.
        await this.fs.rm(blockPath(this.paths, cid), { force: true });
        await this.forget(cid, decodeFragmentRecord(stored).size);
        return true;
      }),
    );
  }

  // ---------------------------------------------------------------- reads

  async has(cid: CID): Promise<boolean> {
    this.assertOpen();
    return this.fragments.has(cid.bytes);
  }

  async get(cid: CID, options: GetOptions = {}): Promise<Uint8Array> {
    this.assertOpen();
    assertVerifiable(cid);
    return this.track(this.read(cid, options.verify ?? true));
  }

  private async read(cid: CID, verify: boolean): Promise<Uint8Array> {
    const record = await this.record(cid);
    const bytes = await this.readSpan(cid, record, 0, record.size);
    if (verify && !digestMatchesCid(cid, await digestFor(cid, bytes))) return this.failCorrupt(cid, record, "hash", record.size);
    return bytes;
  }

  async getRange(cid: CID, offset: number, length: number): Promise<Uint8Array> {
    this.assertOpen();
    assertVerifiable(cid);
    return this.track(
      (async () => {
        const record = await this.record(cid);
        if (!Number.isSafeInteger(offset) || offset < 0 || offset >= Math.max(record.size, 1)) {
          throw new RangeError(`offset ${offset} is outside fragment ${cid} (${record.size} bytes)`);
        }
        if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`length ${length} must be a non-negative integer`);
        return this.readSpan(cid, record, offset, Math.min(length, record.size - offset));
      })(),
    );
  }

  /**
   * Bytes [offset, offset + length) of the fragment's file, unhashed; a missing file or one whose
   * size is not the recorded one (also one that shrank while read) fails as for a whole read.
   */
  private async readSpan(cid: CID, record: FragmentRecord, offset: number, length: number): Promise<Buffer> {
    let fh: FileHandle;
    try {
      fh = await this.fs.open(blockPath(this.paths, cid), "r");
    } catch (err) {
      if (errno(err) === "ENOENT") return this.failMissing(cid);
      throw err;
    }
    const bytes = Buffer.allocUnsafe(length);
    let actualSize: number;
    try {
      actualSize = (await fh.stat()).size;
      if (actualSize === record.size) {
        let got = 0;
        while (got < length) {
          const { bytesRead } = await fh.read(bytes, got, length - got, offset + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got < length) actualSize = offset + got; // only if the file shrank while we read
      }
    } finally {
      await fh.close();
    }
    if (actualSize !== record.size) return this.failCorrupt(cid, record, "size", actualSize);
    return bytes;
  }

  async getStream(cid: CID, options: { chunkSize?: number } = {}): Promise<FragmentReadStream> {
    this.assertOpen();
    assertVerifiable(cid);
    const chunkSize = options.chunkSize ?? 64 * 1024;
    const record = await this.record(cid);
    const path = blockPath(this.paths, cid);
    let actualSize: number;
    try {
      actualSize = (await this.fs.stat(path)).size;
    } catch (err) {
      if (errno(err) === "ENOENT") return this.failMissing(cid);
      throw err;
    }
    if (actualSize !== record.size) return this.failCorrupt(cid, record, "size", actualSize);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the generator below is not an arrow function
    const store = this;
    // The file is opened on first read, so a stream that is never consumed holds no descriptor.
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let fh: FileHandle;
      try {
        fh = await store.fs.open(path, "r");
      } catch (err) {
        if (errno(err) === "ENOENT") return await store.failMissing(cid);
        throw err;
      }
      const hash = cidHasher(cid);
      let position = 0;
      let held: Uint8Array | undefined;
      try {
        while (position < record.size) {
          const buf = Buffer.allocUnsafe(Math.min(chunkSize, record.size - position));
          const { bytesRead } = await fh.read(buf, 0, buf.length, position);
          if (bytesRead === 0) break;
          const chunk = buf.subarray(0, bytesRead);
          position += bytesRead;
          hash.update(chunk);
          if (held) yield held;
          held = chunk;
        }
      } finally {
        await fh.close();
      }
      if (position !== record.size) return await store.failCorrupt(cid, record, "size", position);
      if (!digestMatchesCid(cid, hash.digest())) return await store.failCorrupt(cid, record, "hash", position);
      if (held) yield held;
    }
    return { size: record.size, chunks: chunks() };
  }

  async *list(): AsyncIterable<CID> {
    this.assertOpen();
    for await (const key of this.fragments.keys()) yield CID.decode(key);
  }

  setQuota(quotaBytes: number): void {
    if (!Number.isSafeInteger(quotaBytes) || quotaBytes <= 0) {
      throw new InvalidStoreOptionError({ option: "quotaBytes", value: quotaBytes }, "must be a positive integer");
    }
    this.quotaBytes = quotaBytes;
  }

  stats(): FragmentStoreStats {
    return { usedBytes: this.usedBytes, freeBytes: this.freeBytes(), quotaBytes: this.quotaBytes, count: this.count };
  }

  private async record(cid: CID): Promise<FragmentRecord> {
    const stored = await this.fragments.get(cid.bytes);
    if (!stored) throw new FragmentNotFoundError({ cid: cid.toString() });
    return decodeFragmentRecord(stored);
  }

  /** Drops the entry of a fragment whose file is missing, then throws `FragmentNotFoundError`. */
  private async failMissing(cid: CID): Promise<never> {
    await this.withLock(cid.toString(), async () => {
      const stored = await this.fragments.get(cid.bytes);
      if (!stored) return; // deleted meanwhile
      if (await this.exists(blockPath(this.paths, cid))) return; // re-put meanwhile
      await this.forget(cid, decodeFragmentRecord(stored).size);
      this.log.warn("fragment file missing; entry dropped", { cid: cid.toString() });
    });
    throw new FragmentNotFoundError({ cid: cid.toString() });
  }

  /**
   * Quarantines a fragment found corrupt (unless it was replaced since `seen` was read), then
   * throws `CorruptFragmentError`.
   */
  private async failCorrupt(cid: CID, seen: FragmentRecord, reason: "hash" | "size", actualSize: number): Promise<never> {
    const quarantinedTo = await this.withLock(cid.toString(), async () => {
      const stored = await this.fragments.get(cid.bytes);
      if (!stored || decodeFragmentRecord(stored).storedAtMs !== seen.storedAtMs) return undefined;
      return this.quarantine(cid, seen.size);
    });
    this.log.warn("corrupt fragment quarantined", {
      cid: cid.toString(),
      reason,
      expectedSize: seen.size,
      actualSize,
      quarantinedTo,
    });
    throw new CorruptFragmentError({ cid: cid.toString(), reason, expectedSize: seen.size, actualSize, quarantinedTo });
  }

  /** Moves a fragment's file to `quarantine/` and drops its entry. Caller holds the CID's lock. */
  private async quarantine(cid: CID, size: number): Promise<string | undefined> {
    let to: string | undefined = quarantinePath(this.paths, cid.toString());
    try {
      await this.fs.rename(blockPath(this.paths, cid), to);
    } catch (err) {
      if (errno(err) !== "ENOENT") throw err;
      to = undefined;
    }
    await this.forget(cid, size);
    return to;
  }

  /** Drops a fragment's entry and its usage. Caller holds the CID's lock. */
  private async forget(cid: CID, size: number): Promise<void> {
    await this.fragments.del(cid.bytes);
    this.usedBytes -= size;
    this.count -= 1;
  }

  private async exists(path: string): Promise<boolean> {
    try {
      await this.fs.stat(path);
      return true;
    } catch (err) {
      if (errno(err) === "ENOENT") return false;
      throw err;
    }
  }

  // ---------------------------------------------------------------- recovery

  /** Removes every temporary file (writes a crash interrupted before their rename). */
  private async sweepTmp(): Promise<number> {
    const names = await this.fs.readdir(this.paths.tmp);
    await forEachLimit(names, IO_PARALLELISM, (name) =>
      this.fs.rm(join(this.paths.tmp, name), { force: true, recursive: true }),
    );
    if (names.length > 0) this.log.info("removed temporary files of interrupted writes", { count: names.length });
    return names.length;
  }

  /**
   * Resolves writes a crash interrupted after their intent was recorded: adopt the file if it
   * verifies, else remove it. Runs at open, before any operation.
   */
  private async resolveIntents(): Promise<{ adopted: number; adoptedBytes: number; discarded: number }> {
    let adopted = 0;
    let adoptedBytes = 0;
    let discarded = 0;
    const pending: Array<[Uint8Array, Uint8Array]> = [];
    for await (const entry of this.intents.entries()) pending.push(entry);
    for (const [key, value] of pending) {
      const cid = CID.decode(key);
      const size = decodeUint32(value);
      if (!(await this.fragments.has(key))) {
        const path = blockPath(this.paths, cid);
        if ((await this.adoptIfValid(cid, path, size)) !== undefined) {
          adopted += 1;
          adoptedBytes += size;
        } else {
          discarded += 1;
          await this.fs.rm(path, { force: true });
        }
      }
      await this.intents.del(key);
    }
    if (adopted + discarded > 0) this.log.info("resolved interrupted writes", { adopted, discarded });
    return { adopted, adoptedBytes, discarded };
  }

  /**
   * Adds an entry for the file at `path` if its content hashes to `cid` (and it has `size` bytes,
   * when given). Returns the size adopted, or undefined. Does not touch the usage counters.
   */
  private async adoptIfValid(cid: CID, path: string, size?: number): Promise<number | undefined> {
    let bytes: Uint8Array;
    try {
      const st = await this.fs.stat(path);
      if (!st.isFile() || (size !== undefined && st.size !== size) || st.size > this.maxFragmentBytes) return undefined;
      const fh = await this.fs.open(path, "r");
      try {
        bytes = await fh.readFile();
      } finally {
        await fh.close();
      }
    } catch (err) {
      if (errno(err) === "ENOENT") return undefined;
      throw err;
    }
    if (!digestMatchesCid(cid, await digestFor(cid, bytes))) return undefined;
    await this.fragments.put(cid.bytes, encodeFragmentRecord({ size: bytes.length, storedAtMs: Date.now() }));
    return bytes.length;
  }

  /**
   * Checks every entry against its file: missing -> entry dropped; wrong size (or, when `deep`,
   * wrong hash) -> file quarantined, entry dropped. With `recount` (at open, nothing else running)
   * the usage counters are rebuilt from the entries; otherwise they are adjusted per removal.
   */
  private async checkEntries(
    deep: boolean,
    recount: boolean,
  ): Promise<Pick<FsckReport, "checked" | "droppedMissing" | "quarantined">> {
    let droppedMissing = 0;
    let quarantined = 0;
    let checked = 0;
    if (recount) {
      this.usedBytes = 0;
      this.count = 0;
    }
    const check = (cid: CID): Promise<void> =>
      this.withLock(cid.toString(), async () => {
        const stored = await this.fragments.get(cid.bytes);
        if (!stored) return; // deleted since the iterator's snapshot
        const record = decodeFragmentRecord(stored);
        if (recount) {
          // forget() below subtracts; count every entry first so the result is the survivors.
          this.usedBytes += record.size;
          this.count += 1;
        }
        const path = blockPath(this.paths, cid);
        let size: number;
        try {
          size = (await this.fs.stat(path)).size;
        } catch (err) {
          if (errno(err) !== "ENOENT") throw err;
          await this.forget(cid, record.size);
          droppedMissing += 1;
          this.log.warn("fragment file missing; entry dropped", { cid: cid.toString() });
          return;
        }
        let bad: "size" | "hash" | undefined = size !== record.size ? "size" : undefined;
        if (!bad && deep) {
          const fh = await this.fs.open(path, "r");
          let bytes: Uint8Array;
          try {
            bytes = await fh.readFile();
          } finally {
            await fh.close();
          }
          if (!digestMatchesCid(cid, await digestFor(cid, bytes))) bad = "hash";
        }
        if (bad) {
          const to = await this.quarantine(cid, record.size);
          quarantined += 1;
          this.log.warn("corrupt fragment quarantined", { cid: cid.toString(), reason: bad, quarantinedTo: to });
          return;
        }
      });
    let batch: CID[] = [];
    const drain = async (): Promise<void> => {
      await forEachLimit(batch, IO_PARALLELISM, check);
      checked += batch.length;
      batch = [];
    };
    for await (const key of this.fragments.keys()) {
      batch.push(CID.decode(key));
      if (batch.length >= 256) await drain();
    }
    await drain();
    return { checked, droppedMissing, quarantined };
  }

  async fsck(options: { deep?: boolean } = {}): Promise<FsckReport> {
    this.assertOpen();
    const report = await this.track(this.fsckNow(options.deep ?? false));
    this.log.info("fsck done", { ...report });
    return report;
  }

  private async fsckNow(deep: boolean): Promise<FsckReport> {
    const entries = await this.checkEntries(deep, false);
    let adopted = 0;
    let removedOrphans = 0;
    for (const a of await this.fs.readdir(this.paths.blocks)) {
      const dirA = join(this.paths.blocks, a);
      for (const b of await this.readdirIfDir(dirA)) {
        const dirB = join(dirA, b);
        for (const name of await this.readdirIfDir(dirB)) {
          const path = join(dirB, name);
          let cid: CID | undefined;
          try {
            cid = CID.parse(name);
          } catch {
            cid = undefined;
          }
          if (cid && shardOf(cid).join("/") === `${a}/${b}`) {
            const found = cid;
            const outcome = await this.withLock(found.toString(), async () => {
              // A put holds this lock from before its rename until its entry is written.
              if (await this.fragments.has(found.bytes)) return "present" as const;
              const size = await this.adoptIfValid(found, path);
              if (size === undefined) return "invalid" as const;
              this.usedBytes += size;
              this.count += 1;
              this.log.info("orphan fragment file adopted", { cid: found.toString(), size });
              return "adopted" as const;
            });
            if (outcome === "present") continue;
            if (outcome === "adopted") {
              adopted += 1;
              continue;
            }
          }
          removedOrphans += 1;
          const to = quarantinePath(this.paths, name);
          await this.fs.rename(path, to);
          this.log.warn("stray file under blocks/ quarantined", { path, quarantinedTo: to });
        }
      }
    }
    // tmp/ is not swept here: it holds the files of puts in progress. It is emptied at open.
    return { ...entries, adopted, removedOrphans };
  }

  private async readdirIfDir(path: string): Promise<string[]> {
    try {
      return await this.fs.readdir(path);
    } catch (err) {
      if (errno(err) === "ENOTDIR" || errno(err) === "ENOENT") return [];
      throw err;
    }
  }
}

/**
 * The store as the p2p layer's fragment source: reads skip the hash check. Whoever fetches a
 * fragment hashes it as it arrives (and cuts off a peer that sends other bytes), so a second hash
 * on the serving side would only double the work per served byte; the disk is re-verified by
 * `fsck` and, fragment by fragment, by the prover, which rebuilds the tree of every challenged one.
 */
export function servingView(store: FragmentStore): { has(cid: CID): Promise<boolean>; get(cid: CID): Promise<Uint8Array> } {
  return { has: (cid) => store.has(cid), get: (cid) => store.get(cid, { verify: false }) };
}
