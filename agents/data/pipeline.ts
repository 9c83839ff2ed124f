/**
 * The composed blob path (docs: manifest.ts for the layout).
 *
 * Encode: bytes -> stripes of k·F bytes (F = shardSize - 28) -> k plaintext fragments per stripe
 * (the last stripe's bytes spread over its k fragments and zero-padded to its bucketed shard size)
 * -> AES-256-GCM sealed fragments, each filling its data shard -> m Reed-Solomon parity shards ->
 * per shard: its fragment root, which is also its CID (data/cid.ts) -> sink, then the manifest,
 * whose file size is sealed under the secret.
 *
 * Decode: manifest + secret -> open the sealed size and check the MAC ({@link openManifest}) ->
 * per batch of stripes: fetch the k data shards of each, verify them against their CIDs (their
 * fragment roots; skipped when the fetcher verified them already, `verified: true`); for a stripe
 * with a missing or corrupt data shard, fetch its parity shards, verify them too and rebuild the data shards from any k intact ones -> open (decrypt + authenticate) each
 * fragment, cut to the file bytes it holds -> yield plaintext in order, the next batch in flight.
 * A shard that fails its CID check is never decoded from: it counts as missing
 * (`strict: true` turns it into {@link ShardCidMismatchError} instead). {@link decodeRange} decodes one
 * byte range, fetching only the fragments that hold it (a directory's entry). Fewer than k intact shards
 * -> {@link NotEnoughShardsError}; a fragment that fails authentication -> {@link DecryptionError}.
 */
import type { CID } from "multiformats/cid";
import { cidMatches, cidOfFragmentRoot } from "./cid.js";
import { chunk, type ByteSource } from "./chunker.js";
import { FRAGMENT_SIZE } from "./constants.js";
import { CONTENT_RAW, ENCRYPTION_ALG, ENCRYPTION_KDF, ENCRYPTION_OVERHEAD, FileCipher, SEALED_LAYOUT, manifestMac, manifestMacMatches, newFileId, openSealedSize, sealFileSize, type KeySource } from "./crypto.js";
import { ERASURE_ALG, checkErasureParams, encodeParity, reconstructShards, SHARD_ALIGNMENT } from "./erasure.js";
import { FileIdReusedError, InvalidParameterError, ManifestAuthError, ManifestError, NotEnoughShardsError, ShardCidMismatchError, SizeMismatchError } from "./errors.js";
import { encodeManifest, fragmentSpan, layoutFor, manifestMacBody, stripeShardSize, MANIFEST_VERSION, SHARD_PADDING, type Manifest } from "./manifest.js";
import { fragmentRoot } from "./merkle.js";

/** Default data shards per stripe. */
export const DEFAULT_K = 4;
/** Default parity shards per stripe (any 2 of 6 may be lost). */
export const DEFAULT_M = 2;
/** Shards decoded per batch of stripes (read-ahead unit of decodeFile). */
const DECODE_BATCH_SHARDS = 16;

/** Options of {@link encodeFile}. */
export interface EncodeOptions {
  /** The client's 32-byte secret (never stored). */
  readonly secret: Uint8Array;
  /**
   * The file id (HKDF salt), for tests only. Default: fresh random. One given twice in a process is
   * refused ({@link FileIdReusedError}): the same (key, nonce) pairs would seal other bytes.
   */
  readonly fileId?: Uint8Array;
  readonly k?: number;
  readonly m?: number;
  /** Shard size (a multiple of 8, <= FRAGMENT_SIZE). Plaintext fragments are shardSize - 28 bytes. Default FRAGMENT_SIZE. */
  readonly shardSize?: number;
  /**
   * What the plaintext is (crypto.ts `CONTENT_*`: raw, gzip, zstd, a directory pack), sealed with
   * the size so only the secret's holder learns it. Default raw.
   */
  readonly content?: number;
  /** Await the parity before hashing the data shards, instead of hashing while the thread pool encodes (benchmarks). */
  readonly sequential?: boolean;
  /**
   * Recycle stripe buffers: shard bytes given to the sink are then only valid until the sink's
   * promise settles (copy them to keep them). Saves the fresh-page cost of ~1.5 MiB of new
   * buffers per MiB of input, which on this class of machine is comparable to the encryption.
   */
  readonly reuseBuffers?: boolean;
}

/** A small free list of equal-size buffers (the encoder needs at most a few stripes' worth). */
class BufferPool {
  readonly #free = new Map<number, Buffer[]>();

  take(length: number): Buffer {
    return this.#free.get(length)?.pop() ?? Buffer.allocUnsafe(length);
  }

  give(buffer: Buffer): void {
    const list = this.#free.get(buffer.length) ?? [];
    if (list.length < 8) list.push(buffer);
    this.#free.set(buffer.length, list);
  }
}

/** Where a shard sits. */
export interface ShardPosition {
  /** Global shard index: stripe·(k+m) + position (the Magu fragment index for a one-file blob Magu). */
  readonly index: number;
  readonly stripe: number;
  /** 0..k-1 data, k..k+m-1 parity. */
  readonly position: number;
}

/** One shard out of the encoder. */
export interface EncodedShard extends ShardPosition {
  readonly cid: CID;
  /** Fragment root (docs/ENCODING.md) of the shard bytes. */
  readonly root: Buffer;
  readonly bytes: Buffer;
}

/** Receives the k+m shards of each stripe in order; awaited (backpressure). */
export type ShardSink = (shards: readonly EncodedShard[], stripe: number) => void | Promise<void>;

/** Result of {@link encodeFile}. */
export interface EncodeResult {
  readonly manifest: Manifest;
  readonly manifestBytes: Buffer;
  readonly manifestCid: CID;
}

/** Encodes `source` into shards (given to `sink` stripe by stripe) and returns the manifest. */
export async function encodeFile(source: ByteSource, options: EncodeOptions, sink: ShardSink): Promise<EncodeResult> {
  const k = options.k ?? DEFAULT_K;
  const m = options.m ?? DEFAULT_M;
  checkErasureParams({ k, m });
  const shardSize = options.shardSize ?? FRAGMENT_SIZE;
  if (!Number.isSafeInteger(shardSize) || shardSize % SHARD_ALIGNMENT !== 0 || shardSize <= ENCRYPTION_OVERHEAD || shardSize > FRAGMENT_SIZE) {
    throw new InvalidParameterError("shardSize", shardSize, `must be a multiple of ${SHARD_ALIGNMENT} in (${ENCRYPTION_OVERHEAD}, ${FRAGMENT_SIZE}]`);
  }
  const fragmentSize = shardSize - ENCRYPTION_OVERHEAD;
  const cipher = new FileCipher(options.secret, options.fileId !== undefined ? claimFileId(options.fileId) : newFileId());
  const w = k + m;
  const pool = options.reuseBuffers ? new BufferPool() : undefined;
  const take = (length: number): Buffer => pool?.take(length) ?? Buffer.allocUnsafe(length);
  const shardCids: CID[] = [];
  const shardRoots: string[] = [];
  let fileSize = 0;
  let stripe = 0;

  // A shard's CID is its fragment root: one tree hash per shard, computed while the thread pool
  // computes the parity.
  const emit = async (stripeIndex: number, shards: readonly Buffer[], roots: readonly Buffer[]): Promise<void> => {
    const out: EncodedShard[] = shards.map((bytes, position) => ({
      index: stripeIndex * w + position,
      stripe: stripeIndex,
      position,
      cid: cidOfFragmentRoot(roots[position]!),
      root: roots[position]!,
      bytes,
    }));
    for (const s of out) {
      shardCids.push(s.cid);
      shardRoots.push(s.root.toString("hex"));
    }
    await sink(out, stripeIndex);
  };

  // One stripe of plaintext at a time: a full one (k·F bytes) is k full fragments, whatever follows;
  // a short one is the last, and only then is its size, and so its shard size, known.
  const stripeBytes = k * fragmentSize;
  let pad: Buffer | undefined;
  const sealStripe = async (plain: Buffer): Promise<void> => {
    const size = plain.length === stripeBytes ? shardSize : layoutFor(plain.length, fragmentSize, k).lastShardSize;
    const capacity = size - ENCRYPTION_OVERHEAD;
    const data = take(k * shardSize);
    for (let j = 0; j < k; j++) {
      const part = plain.subarray(Math.min(j * capacity, plain.length), Math.min((j + 1) * capacity, plain.length));
      let fragment = part;
      if (part.length < capacity) {
        // Zero padding, sealed with the fragment: no shard shows where the file ends.
        pad ??= Buffer.alloc(fragmentSize);
        fragment = pad.subarray(0, capacity).fill(0);
        part.copy(fragment);
      }
      cipher.seal(stripe * k + j, fragment, data, j * size);
    }
    await flush(data, size);
  };

  const flush = async (current: Buffer, size: number): Promise<void> => {
    const stripeData = current.subarray(0, k * size);
    const shards: Buffer[] = Array.from({ length: k }, (_, j) => stripeData.subarray(j * size, (j + 1) * size));
    const parityBuffer = take(m * size);
    const parityPromise = encodeParity({ k, m }, stripeData, size, parityBuffer);
    let parity: Buffer | undefined;
    if (options.sequential) parity = await parityPromise;
    // Hash the data shards while the thread pool computes the parity.
    const roots: Buffer[] = shards.map((s) => fragmentRoot(s));
    parity ??= await parityPromise;
    for (let j = 0; j < m; j++) {
      const p = parity.subarray(j * size, (j + 1) * size);
      shards.push(p);
      roots.push(fragmentRoot(p));
    }
    await emit(stripe, shards, roots);
    pool?.give(current);
    pool?.give(parityBuffer);
    stripe++;
  };

  let last = -1;
  for await (const plain of chunk(source, { size: stripeBytes, borrow: true })) {
    fileSize += plain.length;
    last = plain.length;
    await sealStripe(plain);
  }
  // An empty file is one stripe of padding; a file that ended on a stripe boundary is complete.
  if (last < 0) await sealStripe(Buffer.alloc(0));

  const layout = layoutFor(fileSize, fragmentSize, k);
  const fileId = cipher.fileId;
  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    fragmentSize,
    sealedSize: sealFileSize(options.secret, fileId, fileSize, options.content ?? CONTENT_RAW),
    encryption: { alg: ENCRYPTION_ALG, kdf: ENCRYPTION_KDF, layout: SEALED_LAYOUT, fileId: fileId.toString("hex"), mac: "" },
    erasure: {
      alg: ERASURE_ALG,
      k,
      m,
      stripes: layout.stripes,
      shardSize: layout.shardSize,
      lastShardSize: layout.lastShardSize,
      padding: SHARD_PADDING,
    },
    shards: shardCids,
    roots: shardRoots,
  };
  const sealed: Manifest = { ...manifest, encryption: { ...manifest.encryption, mac: manifestMac(options.secret, fileId, manifestMacBody(manifest)) } };
  const { bytes, cid } = encodeManifest(sealed);
  return { manifest: sealed, manifestBytes: bytes, manifestCid: cid };
}

/** File ids given to encodeFile in this process (hex): a second use is refused. */
const claimedFileIds = new Set<string>();

function claimFileId(fileId: Uint8Array): Uint8Array {
  const hex = Buffer.from(fileId).toString("hex");
  if (claimedFileIds.has(hex)) throw new FileIdReusedError(hex);
  claimedFileIds.add(hex);
  return fileId;
}

/**
 * Throws {@link ManifestAuthError} unless `manifest`'s MAC matches it under `secret`: a manifest
 * over a prefix of a file's stripes, or with another file's stripes, never reaches decryption.
 */
export function checkManifestMac(manifest: Manifest, secret: KeySource): void {
  const fileId = Buffer.from(manifest.encryption.fileId, "hex");
  if (!manifestMacMatches(secret, fileId, manifestMacBody(manifest), manifest.encryption.mac)) throw new ManifestAuthError(manifest.encryption.fileId);
}

/** A manifest opened with the client's secret (or the file's shared key): the file size members do not see. */
export interface OpenedManifest {
  readonly manifest: Manifest;
  readonly fileSize: number;
  /** What the plaintext is (crypto.ts `CONTENT_*`), sealed beside the size. */
  readonly content: number;
}

/**
 * Opens `manifest` with the client's secret: its sealed size ({@link ManifestSealError}, a
 * {@link ManifestAuthError}, when it does not open: another client's manifest, or an altered seal),
 * then its MAC ({@link ManifestAuthError}: truncated, spliced or otherwise altered), then checks that
 * the size gives the manifest's stripes and last shard size ({@link ManifestError}). No fragment is
 * decrypted before all three hold.
 */
export function openManifest(manifest: Manifest, secret: KeySource): OpenedManifest {
  const { size: fileSize, content } = openSealedSize(secret, Buffer.from(manifest.encryption.fileId, "hex"), manifest.sealedSize);
  checkManifestMac(manifest, secret);
  const layout = layoutFor(fileSize, manifest.fragmentSize, manifest.erasure.k);
  if (layout.stripes !== manifest.erasure.stripes || layout.lastShardSize !== manifest.erasure.lastShardSize) {
    throw new ManifestError(
      `the sealed size ${fileSize} makes ${layout.stripes} stripes with a last shard of ${layout.lastShardSize} bytes, the manifest has ${manifest.erasure.stripes} and ${manifest.erasure.lastShardSize}`,
      "sealedSize",
    );
  }
  return { manifest, fileSize, content };
}

/** Fetches a shard's bytes by CID; undefined when unavailable. The decoder verifies them unless told the fetcher did (`verified`). */
export type ShardFetcher = (cid: CID, where: ShardPosition) => Promise<Uint8Array | undefined>;

/** Options of {@link decodeFile}. */
export interface DecodeOptions {
  /** The client's 32-byte secret, or the file's own key when it was shared with this client (share.ts). */
  readonly secret: KeySource;
  /** Throw {@link ShardCidMismatchError} on the first corrupt shard instead of treating it as missing. */
  readonly strict?: boolean;
  /** Told about every shard that failed its CID check (and was then treated as missing). */
  readonly onCorruptShard?: (where: ShardPosition, cid: CID) => void;
  /**
   * The fetcher returns only bytes it verified against their CID (the p2p layer's fetch hashes a
   * fragment as it arrives): the shards are not hashed a second time here. Default false.
   */
  readonly verified?: boolean;
  /** Batches of stripes fetched ahead of the one being decrypted (default 1; a batch is ceil(16 / k) stripes). */
  readonly readAhead?: number;
  /** Yield plaintext in one recycled buffer: each yielded fragment is only valid until the generator resumes. */
  readonly reuseBuffers?: boolean;
}

/** Options of {@link fetchStripes}. */
export type FetchStripeOptions = Pick<DecodeOptions, "strict" | "onCorruptShard" | "verified"> & {
  /** Return all k+m shards (rebuilding missing parity too), for repair. Default: the k data shards. */
  all?: boolean;
};

/**
 * Fetches and verifies the shards of `stripes`, rebuilding missing ones; resolves to each stripe's
 * k data shards (all k+m with `all`). Data shards of all the stripes are fetched in parallel and
 * checked against their CIDs (unless `verified`); parity is fetched only for stripes that need it.
 * A stripe with fewer than k intact shards rejects with {@link NotEnoughShardsError}.
 */
export async function fetchStripes(manifest: Manifest, stripes: readonly number[], fetch: ShardFetcher, options: FetchStripeOptions = {}): Promise<Buffer[][]> {
  const settled = await fetchStripesSettled(manifest, stripes, fetch, options);
  return settled.map((r) => {
    if (r.status === "rejected") throw r.reason;
    return r.value;
  });
}

/** {@link fetchStripes} with one outcome per stripe, so a decoder can use the stripes before a bad one. */
async function fetchStripesSettled(
  manifest: Manifest,
  stripes: readonly number[],
  fetch: ShardFetcher,
  options: FetchStripeOptions,
): Promise<PromiseSettledResult<Buffer[]>[]> {
  const { k, m } = manifest.erasure;
  const w = k + m;
  for (const stripe of stripes) {
    if (!Number.isSafeInteger(stripe) || stripe < 0 || stripe >= manifest.erasure.stripes) {
      throw new InvalidParameterError("stripe", stripe, `manifest has ${manifest.erasure.stripes} stripes`);
    }
  }
  const shards = stripes.map(() => new Array<Uint8Array | undefined>(w).fill(undefined));
  const corrupt = stripes.map(() => [] as number[]);
  const failure: (Error | undefined)[] = stripes.map(() => undefined);
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

  // Fetches the given (stripe slot, position) pairs in parallel, then checks them against their CIDs in one batch.
  const load = async (wanted: readonly { slot: number; position: number }[]): Promise<void> => {
    const where = (slot: number, position: number): ShardPosition => ({ index: stripes[slot]! * w + position, stripe: stripes[slot]!, position });
    const fetched = await Promise.all(wanted.map(({ slot, position }) => fetch(manifest.shards[stripes[slot]! * w + position]!, where(slot, position))));
    const reject = (slot: number, position: number): void => {
      const at = where(slot, position);
      const cid = manifest.shards[at.index]!;
      if (options.strict) failure[slot] ??= new ShardCidMismatchError(at.index, at.stripe, cid.toString());
      corrupt[slot]!.push(position);
      options.onCorruptShard?.(at, cid);
    };
    const candidates: { slot: number; position: number; bytes: Uint8Array }[] = [];
    fetched.forEach((bytes, i) => {
      const { slot, position } = wanted[i]!;
      if (bytes === undefined) return;
      if (bytes.length === stripeShardSize(manifest, stripes[slot]!)) candidates.push({ slot, position, bytes });
      else reject(slot, position);
    });
    for (const { slot, position, bytes } of candidates) {
      const cid = manifest.shards[stripes[slot]! * w + position]!;
      if (options.verified === true || cidMatches(cid, bytes)) shards[slot]![position] = bytes;
      else reject(slot, position);
    }
  };

  await load(stripes.flatMap((_, slot) => range(0, k).map((position) => ({ slot, position }))));
  const needParity = stripes.map((_, slot) => failure[slot] === undefined && (options.all === true || shards[slot]!.slice(0, k).some((x) => x === undefined)));
  await load(stripes.flatMap((_, slot) => (needParity[slot] ? range(k, w).map((position) => ({ slot, position })) : [])));

  return Promise.allSettled(
    stripes.map(async (stripe, slot) => {
      if (failure[slot] !== undefined) throw failure[slot];
      const given = shards[slot]!;
      const present = given.filter((x) => x !== undefined).length;
      if (present < k) {
        const bad = corrupt[slot]!.sort((a, b) => a - b);
        const missing = range(0, w).filter((i) => given[i] === undefined && !bad.includes(i));
        throw new NotEnoughShardsError(stripe, k, present, missing, bad);
      }
      if (!needParity[slot]) return given.slice(0, k).map((x) => Buffer.from(x!.buffer, x!.byteOffset, x!.byteLength));
      return reconstructShards({ k, m }, given, { only: options.all ? "all" : "data", stripe, corrupt: corrupt[slot] });
    }),
  );
}

/** {@link fetchStripes} for one stripe (repair: `{ all: true }` gives every shard of the stripe back). */
export async function fetchStripe(manifest: Manifest, stripe: number, fetch: ShardFetcher, options: FetchStripeOptions = {}): Promise<Buffer[]> {
  return (await fetchStripes(manifest, [stripe], fetch, options))[0]!;
}

/** Yields the plaintext of the file described by `manifest`, fragment by fragment, in order. */
export async function* decodeFile(manifest: Manifest, fetch: ShardFetcher, options: DecodeOptions): AsyncGenerator<Buffer, void, undefined> {
  const { k, stripes } = manifest.erasure;
  const { fileSize } = openManifest(manifest, options.secret);
  const cipher = new FileCipher(options.secret, Buffer.from(manifest.encryption.fileId, "hex"));
  // Stripes are fetched and verified in batches of about 16 data shards; the next batch is in
  // flight while the current one is decrypted.
  const batch = Math.max(1, Math.ceil(DECODE_BATCH_SHARDS / k));
  const readAhead = Math.max(0, options.readAhead ?? 1);
  const inflight: Promise<PromiseSettledResult<Buffer[]>[]>[] = [];
  let next = 0;
  const start = (): void => {
    const group = Array.from({ length: Math.min(batch, stripes - next) }, (_, i) => next + i);
    next += group.length;
    const p = fetchStripesSettled(manifest, group, fetch, options);
    p.catch(() => undefined); // surfaced when awaited below
    inflight.push(p);
  };
  const out = options.reuseBuffers ? Buffer.allocUnsafe(manifest.fragmentSize) : undefined;
  let produced = 0;
  for (let i = 0; i <= readAhead && next < stripes; i++) start();
  for (let stripe = 0; stripe < stripes; ) {
    const group = await inflight.shift()!;
    if (next < stripes) start();
    for (const result of group) {
      if (result.status === "rejected") throw result.reason;
      const data = result.value;
      for (let j = 0; j < k; j++) {
        const index = stripe * k + j;
        const { offset, length, capacity } = fragmentSpan(manifest, fileSize, index);
        const plain = cipher.open(index, data[j]!, out);
        // Past the sealed size (last stripe only) the plaintext is the encoder's zero padding: data
        // there means the size is short of the data, and the decoder never returns a short file.
        if (length < capacity) {
          const extra = lastNonZero(plain, length);
          if (extra > 0) throw new SizeMismatchError(fileSize, offset + extra);
        }
        if (length === 0) continue;
        produced += length;
        yield plain.subarray(0, length);
      }
      stripe++;
    }
  }
  if (produced !== fileSize) throw new SizeMismatchError(fileSize, produced);
}

/** Options of {@link decodeRange}: {@link DecodeOptions} and the byte range of the plaintext. */
export type DecodeRangeOptions = Pick<DecodeOptions, "secret" | "strict" | "onCorruptShard" | "verified"> & {
  readonly offset: number;
  readonly length: number;
};

/**
 * Yields the plaintext bytes `[offset, offset + length)` of the file of `manifest`, fetching only
 * the data shards (fragments) that hold them, {@link DECODE_BATCH_SHARDS} at a time. A fragment
 * that is missing or fails its CID is rebuilt from its stripe (the stripe's other shards and
 * parity, as {@link decodeFile} does). A range past the file's (sealed) size is refused.
 */
export async function* decodeRange(manifest: Manifest, fetch: ShardFetcher, options: DecodeRangeOptions): AsyncGenerator<Buffer, void, undefined> {
  const { fileSize } = openManifest(manifest, options.secret);
  const { offset, length } = options;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > fileSize) {
    throw new InvalidParameterError("range", { offset, length }, `must lie within the file's ${fileSize} bytes`);
  }
  if (length === 0) return;
  const { k, m, stripes } = manifest.erasure;
  const cipher = new FileCipher(options.secret, Buffer.from(manifest.encryption.fileId, "hex"));
  const wanted: { index: number; offset: number; length: number }[] = [];
  for (let index = 0; index < stripes * k; index++) {
    const span = fragmentSpan(manifest, fileSize, index);
    if (span.length > 0 && span.offset < offset + length && span.offset + span.length > offset) wanted.push({ index, offset: span.offset, length: span.length });
  }
  for (let i = 0; i < wanted.length; i += DECODE_BATCH_SHARDS) {
    const batch = wanted.slice(i, i + DECODE_BATCH_SHARDS);
    const rebuilt = new Map<number, Promise<Buffer[]>>();
    const shards = await Promise.all(
      batch.map(async ({ index }) => {
        const stripe = Math.floor(index / k);
        const where: ShardPosition = { index: stripe * (k + m) + (index % k), stripe, position: index % k };
        const cid = manifest.shards[where.index]!;
        const bytes = await fetch(cid, where);
        if (bytes !== undefined && bytes.length === stripeShardSize(manifest, stripe) && (options.verified === true || cidMatches(cid, bytes))) {
          return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        }
        // Missing or corrupt: the whole stripe, rebuilt from any k of its shards. fetchStripe checks
        // every shard it fetches, this one again, and reports a corrupt one once or (strict) refuses it.
        let whole = rebuilt.get(stripe);
        if (whole === undefined) rebuilt.set(stripe, (whole = fetchStripe(manifest, stripe, fetch, options)));
        return (await whole)[index % k]!;
      }),
    );
    for (let j = 0; j < batch.length; j++) {
      const { index, offset: at, length: held } = batch[j]!;
      const plain = cipher.open(index, shards[j]!);
      const from = Math.max(offset, at) - at;
      const to = Math.min(offset + length, at + held) - at;
      yield plain.subarray(from, to);
    }
  }
}

/** 1 + the index of the last non-zero byte of `bytes` at or after `from`; 0 when they are all zero. */
function lastNonZero(bytes: Buffer, from: number): number {
  for (let i = bytes.length - 1; i >= from; i--) if (bytes[i] !== 0) return i + 1;
  return 0;
}

/** Decodes the whole file into one buffer (small files and tests). */
export async function decodeToBuffer(manifest: Manifest, fetch: ShardFetcher, options: DecodeOptions): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of decodeFile(manifest, fetch, options)) parts.push(part);
  return Buffer.concat(parts);
}

/** Encodes into memory: returns the result and a map CID string -> shard bytes (tests, demos). */
export async function encodeToMemory(source: ByteSource, options: EncodeOptions): Promise<EncodeResult & { shards: Map<string, Buffer> }> {
  const shards = new Map<string, Buffer>();
  const result = await encodeFile(source, options, (stripeShards) => {
    for (const s of stripeShards) shards.set(s.cid.toString(), s.bytes);
  });
  return { ...result, shards };
}

/** A fetcher over a map CID string -> bytes. */
export function memoryFetcher(shards: ReadonlyMap<string, Uint8Array>): ShardFetcher {
  return async (cid) => shards.get(cid.toString());
}
