/**
 * What a node knows of each Magu it is in, persisted in `Bucket.magu` of the metadata database:
 * the committed root, the ordered fragment roots (needed for Magu-tree proofs; the client
 * publishes them, `recordFragments` checks they fold to the root), each fragment's CID, which
 * fragments this node holds, and the last period it proved.
 *
 * Keys (inside `Bucket.magu`; `id` is the Magu id as 32 bytes big-endian):
 * - `i` ‖ id                -> version u8 ‖ root 32 ‖ fragmentCount u32 ‖ updatedAtMs f64
 * - `f` ‖ id ‖ index u32    -> fragment root 32 ‖ CID bytes
 * - `h` ‖ id                -> held fragment indices, u32 each, ascending
 * - `p` ‖ id                -> last proven period u64 ‖ proofs recorded u32
 *
 * A record is replaced in one atomic batch (a later commit that appends fragments calls
 * `recordFragments` again with the whole list); held fragments and proof history survive it.
 */
import { CID } from "multiformats/cid";
import type { Hex } from "viem";
import { maguRoot } from "../../data/merkle.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { Bucket, bucketKey, type MetaBatchOp, type MetaDb } from "../../store/meta-db.js";

const RECORD_VERSION = 1;
const HASH = 32;

/** Base class of the roles layer's index errors (code + structured context). */
export class MaguIndexError<Context extends object = Record<string, unknown>> extends Error {
  readonly code: string;
  readonly context: Context;
  constructor(code: string, message: string, context: Context) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
}

/** The fragment roots given do not fold to the committed root. Nothing was recorded. */
export class MaguRootMismatchError extends MaguIndexError<{ maguId: bigint; expected: Hex; actual: Hex; fragmentCount: number }> {
  static readonly code = "ERR_MAGU_ROOT_MISMATCH";
  constructor(context: { maguId: bigint; expected: Hex; actual: Hex; fragmentCount: number }) {
    super(
      MaguRootMismatchError.code,
      `Magu ${context.maguId}: ${context.fragmentCount} fragment roots fold to ${context.actual}, not the committed root ${context.expected}`,
      context,
    );
  }
}

/** A malformed argument (lengths differ, a hash is not 32 bytes, an index is out of range). */
export class InvalidMaguRecordError extends MaguIndexError<{ maguId: bigint; field: string; problem: string }> {
  static readonly code = "ERR_INVALID_MAGU_RECORD";
  constructor(context: { maguId: bigint; field: string; problem: string }) {
    super(InvalidMaguRecordError.code, `Magu ${context.maguId}: ${context.field} ${context.problem}`, context);
  }
}

/** What the node knows of one Magu. */
export interface MaguRecord {
  readonly maguId: bigint;
  /** The Magu root the fragment roots fold to. */
  readonly root: Hex;
  readonly fragmentCount: number;
  /** Fragment roots in fragment-index order. */
  readonly fragmentRoots: readonly Buffer[];
  /** CID of each fragment, in fragment-index order. */
  readonly cids: readonly CID[];
  /** Fragment indices this node holds (ascending). */
  readonly held: readonly number[];
  /** Last period this node's proof was recorded for, if any. */
  readonly lastProvenPeriod?: bigint;
  /** Proofs recorded so far. */
  readonly provenCount: number;
  readonly updatedAtMs: number;
}

export interface MaguIndexInit {
  logger?: Logger;
}

export interface MaguIndexComponents {
  metaDb: MetaDb;
}

export interface MaguIndex {
  /**
   * Records (or replaces) the data of `maguId`: the committed `root` and the ordered fragment
   * roots and CIDs. Held fragments and proof history are kept.
   * @throws MaguRootMismatchError when `maguRoot(fragmentRoots) !== root`; InvalidMaguRecordError
   */
  recordFragments(maguId: bigint, root: Hex | Uint8Array, fragmentRoots: readonly Uint8Array[], cids: readonly CID[]): Promise<MaguRecord>;
  /** Sets which fragments this node holds (indices into the recorded list, if one is recorded). */
  setHeld(maguId: bigint, fragments: readonly number[]): Promise<void>;
  /** Notes that this node's proof for `period` is on chain (keeps the highest period). */
  recordProven(maguId: bigint, period: bigint): Promise<void>;
  /** The record of `maguId`, or undefined if its fragments were never recorded. */
  get(maguId: bigint): Promise<MaguRecord | undefined>;
  /** Ids of every Magu with recorded fragments, ascending. */
  maguIds(): Promise<bigint[]>;
  /** Forgets `maguId` entirely. */
  remove(maguId: bigint): Promise<void>;
}

/** Opens the index over `components.metaDb` (no I/O until used). */
export function createMaguIndex(init: MaguIndexInit, components: MaguIndexComponents): MaguIndex {
  return new LevelMaguIndex(components.metaDb, init.logger ?? silentLogger);
}

// ------------------------------------------------------------------------------------ encoding

function idBytes(maguId: bigint): Uint8Array {
  if (maguId < 0n || maguId >= 1n << 256n) throw new RangeError(`Magu id out of range: ${maguId}`);
  return Buffer.from(maguId.toString(16).padStart(64, "0"), "hex");
}

function key(tag: string, maguId: bigint, suffix?: Uint8Array): Uint8Array {
  const id = idBytes(maguId);
  const out = new Uint8Array(1 + HASH + (suffix?.length ?? 0));
  out[0] = tag.charCodeAt(0);
  out.set(id, 1);
  if (suffix) out.set(suffix, 1 + HASH);
  return out;
}

function u32(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n);
  return b;
}

function toHex(bytes: Uint8Array): Hex {
  return `0x${Buffer.from(bytes).toString("hex")}`;
}

function rootBytes(maguId: bigint, root: Hex | Uint8Array): Buffer {
  const b = typeof root === "string" ? Buffer.from(root.replace(/^0x/, ""), "hex") : Buffer.from(root);
  if (b.length !== HASH) throw new InvalidMaguRecordError({ maguId, field: "root", problem: "must be 32 bytes" });
  return b;
}

function encodeInfo(root: Uint8Array, fragmentCount: number, updatedAtMs: number): Uint8Array {
  const out = Buffer.alloc(1 + HASH + 4 + 8);
  out[0] = RECORD_VERSION;
  out.set(root, 1);
  out.writeUInt32BE(fragmentCount, 1 + HASH);
  out.writeDoubleBE(updatedAtMs, 1 + HASH + 4);
  return out;
}

function decodeInfo(bytes: Uint8Array): { root: Buffer; fragmentCount: number; updatedAtMs: number } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length !== 1 + HASH + 12 || b[0] !== RECORD_VERSION) throw new RangeError(`bad Magu info record (${b.length} bytes, version ${b[0]})`);
  return { root: Buffer.from(b.subarray(1, 1 + HASH)), fragmentCount: b.readUInt32BE(1 + HASH), updatedAtMs: b.readDoubleBE(1 + HASH + 4) };
}

function encodeIndices(indices: readonly number[]): Uint8Array {
  const out = Buffer.allocUnsafe(4 * indices.length);
  indices.forEach((f, i) => out.writeUInt32BE(f, 4 * i));
  return out;
}

function decodeIndices(bytes: Uint8Array): number[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 4 <= b.length; i += 4) out.push(b.readUInt32BE(i));
  return out;
}

// ------------------------------------------------------------------------------ implementation

class LevelMaguIndex implements MaguIndex {
  /** Decoded records (the fragment lists are read once, then served from memory). */
  private readonly cache = new Map<bigint, MaguRecord | null>();
  /** Serialises writes per Magu so read-modify-write of a record never interleaves. */
  private readonly locks = new Map<bigint, Promise<unknown>>();

  constructor(
    private readonly meta: MetaDb,
    private readonly log: Logger,
  ) {}

  private withLock<T>(maguId: bigint, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(maguId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => {});
    this.locks.set(maguId, settled);
    void settled.then(() => {
      if (this.locks.get(maguId) === settled) this.locks.delete(maguId);
    });
    return next;
  }

  async recordFragments(maguId: bigint, root: Hex | Uint8Array, fragmentRoots: readonly Uint8Array[], cids: readonly CID[]): Promise<MaguRecord> {
    const rootValue = rootBytes(maguId, root);
    if (fragmentRoots.length < 1) throw new InvalidMaguRecordError({ maguId, field: "fragmentRoots", problem: "is empty" });
    if (cids.length !== fragmentRoots.length) {
      throw new InvalidMaguRecordError({ maguId, field: "cids", problem: `has ${cids.length} entries for ${fragmentRoots.length} fragment roots` });
    }
    fragmentRoots.forEach((r, i) => {
      if (!(r instanceof Uint8Array) || r.length !== HASH) {
        throw new InvalidMaguRecordError({ maguId, field: `fragmentRoots[${i}]`, problem: "must be 32 bytes" });
      }
    });
    cids.forEach((c, i) => {
      if (CID.asCID(c) === null) throw new InvalidMaguRecordError({ maguId, field: `cids[${i}]`, problem: "is not a CID" });
    });
    const actual = maguRoot(fragmentRoots);
    if (!actual.equals(rootValue)) {
      throw new MaguRootMismatchError({ maguId, expected: toHex(rootValue), actual: toHex(actual), fragmentCount: fragmentRoots.length });
    }
    return this.withLock(maguId, async () => {
      const previous = await this.load(maguId);
      const ops: MetaBatchOp[] = [];
      const now = Date.now();
      ops.push({ type: "put", bucket: Bucket.magu, key: key("i", maguId), value: encodeInfo(rootValue, fragmentRoots.length, now) });
      fragmentRoots.forEach((r, i) => {
        const cidBytes = cids[i]!.bytes;
        const value = new Uint8Array(HASH + cidBytes.length);
        value.set(r, 0);
        value.set(cidBytes, HASH);
        ops.push({ type: "put", bucket: Bucket.magu, key: key("f", maguId, u32(i)), value });
      });
      for (let i = fragmentRoots.length; i < (previous?.fragmentCount ?? 0); i++) {
        ops.push({ type: "del", bucket: Bucket.magu, key: key("f", maguId, u32(i)) });
      }
      await this.meta.batch(ops, { sync: true });
      const record: MaguRecord = {
        maguId,
        root: toHex(rootValue),
        fragmentCount: fragmentRoots.length,
        fragmentRoots: fragmentRoots.map((r) => Buffer.from(r)),
        cids: [...cids],
        held: previous?.held ?? (await this.readHeld(maguId)),
        lastProvenPeriod: previous?.lastProvenPeriod,
        provenCount: previous?.provenCount ?? 0,
        updatedAtMs: now,
      };
      this.cache.set(maguId, record);
      this.log.info("recorded Magu fragments", { maguId: maguId.toString(), root: record.root, fragmentCount: record.fragmentCount });
      return record;
    });
  }

  async setHeld(maguId: bigint, fragments: readonly number[]): Promise<void> {
    const sorted = [...new Set(fragments)].sort((a, b) => a - b);
    for (const f of sorted) {
      if (!Number.isSafeInteger(f) || f < 0 || f > 0xffffffff) throw new InvalidMaguRecordError({ maguId, field: "held", problem: `has a bad index ${f}` });
    }
    return this.withLock(maguId, async () => {
      const record = await this.load(maguId);
      if (record && sorted.length > 0 && sorted[sorted.length - 1]! >= record.fragmentCount) {
        throw new InvalidMaguRecordError({ maguId, field: "held", problem: `names fragment ${sorted[sorted.length - 1]} of ${record.fragmentCount}` });
      }
      await this.meta.bucket(Bucket.magu).put(key("h", maguId), encodeIndices(sorted), { sync: true });
      if (record) this.cache.set(maguId, { ...record, held: sorted });
    });
  }

  recordProven(maguId: bigint, period: bigint): Promise<void> {
    return this.withLock(maguId, async () => {
      const bucket = this.meta.bucket(Bucket.magu);
      const current = await this.readProven(maguId);
      if (current.lastProvenPeriod !== undefined && current.lastProvenPeriod >= period) return;
      const value = Buffer.allocUnsafe(12);
      value.writeBigUInt64BE(period, 0);
      value.writeUInt32BE(Math.min(current.provenCount + 1, 0xffffffff), 8);
      await bucket.put(key("p", maguId), value);
      const record = this.cache.get(maguId);
      if (record) this.cache.set(maguId, { ...record, lastProvenPeriod: period, provenCount: current.provenCount + 1 });
    });
  }

  async get(maguId: bigint): Promise<MaguRecord | undefined> {
    return (await this.load(maguId)) ?? undefined;
  }

  async maguIds(): Promise<bigint[]> {
    const out: bigint[] = [];
    const gte = bucketKey(Bucket.magu, new Uint8Array(["i".charCodeAt(0)]));
    const lt = bucketKey(Bucket.magu, new Uint8Array(["i".charCodeAt(0) + 1]));
    for await (const k of this.meta.db.keys({ gte, lt })) {
      out.push(BigInt(`0x${Buffer.from(k.subarray(2, 2 + HASH)).toString("hex")}`));
    }
    return out;
  }

  remove(maguId: bigint): Promise<void> {
    return this.withLock(maguId, async () => {
      const ops: MetaBatchOp[] = ["i", "h", "p"].map((t) => ({ type: "del", bucket: Bucket.magu, key: key(t, maguId) }) as MetaBatchOp);
      for await (const k of this.fragmentKeys(maguId)) ops.push({ type: "del", bucket: Bucket.magu, key: k });
      await this.meta.batch(ops, { sync: true });
      this.cache.set(maguId, null);
    });
  }

  // ---------------------------------------------------------------------------------- reading

  private async load(maguId: bigint): Promise<MaguRecord | null> {
    const cached = this.cache.get(maguId);
    if (cached !== undefined) return cached;
    const bucket = this.meta.bucket(Bucket.magu);
    const infoBytes = await bucket.get(key("i", maguId));
    if (infoBytes === undefined) {
      this.cache.set(maguId, null);
      return null;
    }
    const info = decodeInfo(infoBytes);
    const fragmentRoots: Buffer[] = [];
    const cids: CID[] = [];
    const prefix = bucketKey(Bucket.magu, key("f", maguId));
    for await (const [k, v] of this.meta.db.iterator({ gte: prefix, lt: bucketKey(Bucket.magu, key("f", maguId, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff]))) })) {
      const index = Buffer.from(k.buffer, k.byteOffset, k.byteLength).readUInt32BE(prefix.length);
      if (index !== fragmentRoots.length) throw new RangeError(`Magu ${maguId}: fragment entry ${index} out of order (expected ${fragmentRoots.length})`);
      fragmentRoots.push(Buffer.from(v.subarray(0, HASH)));
      cids.push(CID.decode(v.subarray(HASH)));
    }
    if (fragmentRoots.length !== info.fragmentCount) {
      throw new RangeError(`Magu ${maguId}: ${fragmentRoots.length} fragment entries for a count of ${info.fragmentCount}`);
    }
    const proven = await this.readProven(maguId);
    const record: MaguRecord = {
      maguId,
      root: toHex(info.root),
      fragmentCount: info.fragmentCount,
      fragmentRoots,
      cids,
      held: await this.readHeld(maguId),
      lastProvenPeriod: proven.lastProvenPeriod,
      provenCount: proven.provenCount,
      updatedAtMs: info.updatedAtMs,
    };
    this.cache.set(maguId, record);
    return record;
  }

  private async readHeld(maguId: bigint): Promise<number[]> {
    const bytes = await this.meta.bucket(Bucket.magu).get(key("h", maguId));
    return bytes === undefined ? [] : decodeIndices(bytes);
  }

  private async readProven(maguId: bigint): Promise<{ lastProvenPeriod?: bigint; provenCount: number }> {
    const bytes = await this.meta.bucket(Bucket.magu).get(key("p", maguId));
    if (bytes === undefined || bytes.length !== 12) return { provenCount: 0 };
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { lastProvenPeriod: b.readBigUInt64BE(0), provenCount: b.readUInt32BE(8) };
  }

  private async *fragmentKeys(maguId: bigint): AsyncIterable<Uint8Array> {
    const gte = bucketKey(Bucket.magu, key("f", maguId));
    const lt = bucketKey(Bucket.magu, key("f", maguId, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff])));
    for await (const k of this.meta.db.keys({ gte, lt })) yield k.subarray(1);
  }
}

/** CIDs (as strings) of the fragments the Magus recorded in `index` hold here, `except` one Magu. */
export async function heldCids(index: Pick<MaguIndex, "maguIds" | "get">, except?: bigint): Promise<Set<string>> {
  const held = new Set<string>();
  for (const id of await index.maguIds()) {
    if (id === except) continue;
    const record = await index.get(id);
    for (const f of record?.held ?? []) {
      const cid = record!.cids[f];
      if (cid !== undefined) held.add(cid.toString());
    }
  }
  return held;
}
