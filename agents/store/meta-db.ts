/**
 * The node's metadata database: one LevelDB (via `level`) shared by every layer, split into
 * buckets by a one-byte key prefix (Lodestar `buckets.ts`). A bucket id is never reused: retire
 * a bucket by leaving its id in the enum with a comment, and add new ones at the end.
 *
 * At open the database-wide schema version is checked (Helia's habit) and a lock held by another
 * process is reported as `DatabaseLockedError` instead of LevelDB's generic "not open".
 */
import { mkdir } from "node:fs/promises";
import { Level } from "level";
import { META_SCHEMA_VERSION } from "./constants.js";
import { DatabaseLockedError, DatabaseOpenError, SchemaVersionMismatchError, StoreClosedError } from "./errors.js";
import { silentLogger, type Logger } from "./logger.js";

/**
 * Key-prefix ids of the metadata buckets. Append only; never renumber or reuse an id.
 * Later layers add their buckets here (cursors, tasks, ...).
 */
export const Bucket = {
  /** Database-wide records (`MetaKey`): schema version. */
  meta: 0,
  /** store/: fragment CID bytes -> `FragmentRecord` (size, stored-at). */
  fragment: 1,
  /** store/: CID bytes -> size, a write in progress (resolved at open after a crash). */
  fragmentIntent: 2,
  /** store/: the fragment store's state (clean-shutdown flag and usage counters). */
  storeState: 3,
  /** chain/: event-follower cursors (last processed block per contract). Reserved. */
  chainCursor: 4,
  /** roles/: durable tasks: search tasks (a node's `s` keys, a validator's `v` keys) and the batch documents a validator still has to fetch (`d` keys). */
  task: 5,
  /** roles/: what the node knows of each Magu it is in (root, fragment roots and CIDs, held, proven). */
  magu: 6,
  /** roles/: vector Magus: the verified vector index document (CID) of each Magu this agent knows. */
  vector: 7,
  /** roles/: CID bytes of a kept document (manifest, Magu index, vector index) -> its Magu id (32 bytes): whose data it is, for access. */
  document: 8,
  /** roles/: Magu id (32) ‖ payer (20) -> the latest search voucher this node took from the payer (JSON). */
  voucher: 9,
  /** roles/: Magu id (32) ‖ reader (20) -> the latest read voucher this node took from the reader (JSON). */
  readVoucher: 10,
} as const;
export type Bucket = (typeof Bucket)[keyof typeof Bucket];

/** Keys inside `Bucket.meta`. */
export const MetaKey = {
  schemaVersion: "schemaVersion",
} as const;

export type MetaKeyInput = Uint8Array | string;

/** One write of an atomic multi-bucket batch. */
export type MetaBatchOp =
  | { type: "put"; bucket: Bucket; key: MetaKeyInput; value: Uint8Array }
  | { type: "del"; bucket: Bucket; key: MetaKeyInput };

export interface WriteOptions {
  /** fsync the LevelDB log before resolving (durable against power loss). Default false. */
  sync?: boolean;
}

/** A view of one bucket: keys given and returned without the prefix. */
export interface BucketView {
  readonly id: Bucket;
  get(key: MetaKeyInput): Promise<Uint8Array | undefined>;
  has(key: MetaKeyInput): Promise<boolean>;
  put(key: MetaKeyInput, value: Uint8Array, options?: WriteOptions): Promise<void>;
  del(key: MetaKeyInput, options?: WriteOptions): Promise<void>;
  /** Keys in byte order, prefix stripped. */
  keys(options?: { limit?: number }): AsyncIterable<Uint8Array>;
  /** Entries in key byte order, prefix stripped. */
  entries(options?: { limit?: number }): AsyncIterable<[Uint8Array, Uint8Array]>;
  /** Deletes every key of the bucket. */
  clear(): Promise<void>;
}

export interface MetaDb {
  /** Directory of the LevelDB. */
  readonly path: string;
  /** The underlying database (binary keys and values); prefer `bucket()`. */
  readonly db: Level<Uint8Array, Uint8Array>;
  bucket(id: Bucket): BucketView;
  /** Atomic batch over any buckets. */
  batch(ops: MetaBatchOp[], options?: WriteOptions): Promise<void>;
  close(): Promise<void>;
}

export interface OpenMetaDbOptions {
  /** Expected schema version (default `META_SCHEMA_VERSION`). */
  schemaVersion?: number;
  logger?: Logger;
}

const utf8 = new TextEncoder();

/** The full LevelDB key of `key` in `bucket`. */
export function bucketKey(bucket: Bucket, key: MetaKeyInput): Uint8Array {
  const body = typeof key === "string" ? utf8.encode(key) : key;
  const out = new Uint8Array(body.length + 1);
  out[0] = bucket;
  out.set(body, 1);
  return out;
}

export function encodeUint32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

export function decodeUint32(bytes: Uint8Array): number {
  if (bytes.length !== 4) throw new RangeError(`expected 4 bytes, got ${bytes.length}`);
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
}

/**
 * Opens (creating if needed) the metadata database in `dir`.
 *
 * @throws DatabaseLockedError when another process holds the database.
 * @throws SchemaVersionMismatchError when the database was written with another schema version.
 * @throws DatabaseOpenError for any other open failure (corruption, permissions).
 */
export async function openMetaDb(dir: string, options: OpenMetaDbOptions = {}): Promise<MetaDb> {
  const expected = options.schemaVersion ?? META_SCHEMA_VERSION;
  const log = options.logger ?? silentLogger;
  await mkdir(dir, { recursive: true });
  const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
  try {
    await db.open();
  } catch (err) {
    throw openError(dir, err);
  }

  try {
    const versionKey = bucketKey(Bucket.meta, MetaKey.schemaVersion);
    const stored = await db.get(versionKey);
    if (stored === undefined) {
      let empty = true;
      for await (const _ of db.keys({ limit: 1 })) empty = false;
      if (!empty) throw new SchemaVersionMismatchError({ path: dir, found: 0, expected });
      await db.put(versionKey, encodeUint32(expected), { sync: true });
      log.info("created metadata database", { path: dir, schemaVersion: expected });
    } else {
      const found = decodeUint32(stored);
      if (found !== expected) throw new SchemaVersionMismatchError({ path: dir, found, expected });
    }
  } catch (err) {
    await db.close();
    throw err;
  }
  return new LevelMetaDb(dir, db);
}

function openError(path: string, err: unknown): Error {
  const e = err as { code?: string; cause?: { code?: string } };
  if (e.code === "LEVEL_LOCKED" || e.cause?.code === "LEVEL_LOCKED") return new DatabaseLockedError({ path }, err);
  return new DatabaseOpenError({ path, causeCode: e.cause?.code ?? e.code }, err);
}

class LevelMetaDb implements MetaDb {
  private readonly buckets = new Map<Bucket, BucketView>();

  constructor(
    readonly path: string,
    readonly db: Level<Uint8Array, Uint8Array>,
  ) {}

  bucket(id: Bucket): BucketView {
    let view = this.buckets.get(id);
    if (!view) {
      view = new LevelBucket(this, id);
      this.buckets.set(id, view);
    }
    return view;
  }

  async batch(ops: MetaBatchOp[], options: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    await this.db.batch(
      ops.map((op) =>
        op.type === "put"
          ? { type: "put" as const, key: bucketKey(op.bucket, op.key), value: op.value }
          : { type: "del" as const, key: bucketKey(op.bucket, op.key) },
      ),
      { sync: options.sync ?? false },
    );
  }

  assertOpen(): void {
    if (this.db.status !== "open") throw new StoreClosedError({ dir: this.path });
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}

class LevelBucket implements BucketView {
  private readonly range: { gte: Uint8Array; lt: Uint8Array };

  constructor(
    private readonly owner: LevelMetaDb,
    readonly id: Bucket,
  ) {
    this.range = { gte: Uint8Array.of(id), lt: Uint8Array.of(id + 1) };
  }

  async get(key: MetaKeyInput): Promise<Uint8Array | undefined> {
    this.owner.assertOpen();
    return this.owner.db.get(bucketKey(this.id, key));
  }

  async has(key: MetaKeyInput): Promise<boolean> {
    this.owner.assertOpen();
    return this.owner.db.has(bucketKey(this.id, key));
  }

  async put(key: MetaKeyInput, value: Uint8Array, options: WriteOptions = {}): Promise<void> {
    this.owner.assertOpen();
    await this.owner.db.put(bucketKey(this.id, key), value, { sync: options.sync ?? false });
  }

  async del(key: MetaKeyInput, options: WriteOptions = {}): Promise<void> {
    this.owner.assertOpen();
    await this.owner.db.del(bucketKey(this.id, key), { sync: options.sync ?? false });
  }

  async *keys(options: { limit?: number } = {}): AsyncIterable<Uint8Array> {
    this.owner.assertOpen();
    for await (const key of this.owner.db.keys({ ...this.range, limit: options.limit ?? -1 })) {
      yield key.subarray(1);
    }
  }

  async *entries(options: { limit?: number } = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    this.owner.assertOpen();
    for await (const [key, value] of this.owner.db.iterator({ ...this.range, limit: options.limit ?? -1 })) {
      yield [key.subarray(1), value];
    }
  }

  async clear(): Promise<void> {
    this.owner.assertOpen();
    await this.owner.db.clear(this.range);
  }
}
