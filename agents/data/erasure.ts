/**
 * Reed-Solomon erasure coding (k data + m parity shards, any k rebuild the rest) over
 * @ronomon/reed-solomon (Cauchy bit-matrix, native, runs in libuv's thread pool).
 *
 * Shards carry nothing but their bytes: all shards of a stripe have the same size, a multiple of
 * 8 bytes. Integrity is the caller's job, by CID, before decoding: this module treats every shard
 * it is given as correct, so verify first (the pipeline does, see pipeline.ts).
 */
import { createRequire } from "node:module";
import { ErasureCodingError, InvalidParameterError, NotEnoughShardsError, ShardSizeError } from "./errors.js";

interface ReedSolomonModule {
  MAX_K: number;
  MAX_M: number;
  create(k: number, m: number): Buffer;
  encode(
    context: Buffer,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error?: Error) => void,
  ): void;
}

const ReedSolomon = createRequire(import.meta.url)("@ronomon/reed-solomon") as ReedSolomonModule;

/** Largest k and m the coder supports. */
export const MAX_DATA_SHARDS = 24;
export const MAX_PARITY_SHARDS = 6;
/** Shard sizes must be a multiple of this. */
export const SHARD_ALIGNMENT = 8;
/** Name recorded in manifests. */
export const ERASURE_ALG = "reed-solomon-cauchy-gf2^8/ronomon";

/** Erasure parameters. */
export interface ErasureParams {
  /** Data shards per stripe. */
  readonly k: number;
  /** Parity shards per stripe (0: no redundancy). */
  readonly m: number;
}

/** Throws unless 1 <= k <= 24 and 0 <= m <= 6. */
export function checkErasureParams({ k, m }: ErasureParams): void {
  if (!Number.isSafeInteger(k) || k < 1 || k > MAX_DATA_SHARDS) throw new InvalidParameterError("k", k, `must be in [1, ${MAX_DATA_SHARDS}]`);
  if (!Number.isSafeInteger(m) || m < 0 || m > MAX_PARITY_SHARDS) throw new InvalidParameterError("m", m, `must be in [0, ${MAX_PARITY_SHARDS}]`);
}

/** Throws unless `shardSize` is a positive multiple of 8 that fits the coder. */
export function checkShardSize(shardSize: number): void {
  if (!Number.isSafeInteger(shardSize) || shardSize <= 0 || shardSize % SHARD_ALIGNMENT !== 0 || shardSize > 0xffffffff) {
    throw new InvalidParameterError("shardSize", shardSize, `must be a positive multiple of ${SHARD_ALIGNMENT}`);
  }
}

/** Rounds `n` up to the shard alignment. */
export function alignShardSize(n: number): number {
  return Math.max(SHARD_ALIGNMENT, Math.ceil(n / SHARD_ALIGNMENT) * SHARD_ALIGNMENT);
}

const contexts = new Map<string, Buffer>();

function contextFor(k: number, m: number): Buffer {
  const key = `${k}/${m}`;
  let context = contexts.get(key);
  if (context === undefined) {
    context = ReedSolomon.create(k, m);
    contexts.set(key, context);
  }
  return context;
}

function run(
  params: ErasureParams,
  operation: string,
  sources: number,
  targets: number,
  data: Buffer,
  parity: Buffer,
  shardSize: number,
): Promise<void> {
  const { k, m } = params;
  return new Promise((resolve, reject) => {
    try {
      ReedSolomon.encode(contextFor(k, m), sources, targets, data, 0, k * shardSize, parity, 0, m * shardSize, (error) => {
        if (error) reject(new ErasureCodingError(k, m, operation, error));
        else resolve();
      });
    } catch (err) {
      reject(new ErasureCodingError(k, m, operation, err));
    }
  });
}

/**
 * Computes the m parity shards of a stripe whose k data shards lie contiguously in
 * `data[0, k·shardSize)`. Writes into `parity` (m·shardSize bytes) when given, else allocates.
 * `data` must not change until the promise settles.
 */
export async function encodeParity(params: ErasureParams, data: Buffer, shardSize: number, parity?: Buffer): Promise<Buffer> {
  checkErasureParams(params);
  checkShardSize(shardSize);
  const { k, m } = params;
  if (data.length < k * shardSize) throw new InvalidParameterError("data", data, `needs ${k} shards of ${shardSize} bytes`);
  const out = parity ?? Buffer.allocUnsafe(m * shardSize);
  if (out.length < m * shardSize) throw new InvalidParameterError("parity", out, `needs ${m} shards of ${shardSize} bytes`);
  if (m === 0) return out;
  let sources = 0;
  for (let i = 0; i < k; i++) sources |= 1 << i;
  let targets = 0;
  for (let i = k; i < k + m; i++) targets |= 1 << i;
  await run(params, "encode", sources, targets, data, out, shardSize);
  return out;
}

function shardSizeOf(shards: readonly (Uint8Array | undefined)[]): number {
  let size: number | undefined;
  shards.forEach((shard, index) => {
    if (shard === undefined) return;
    if (size === undefined) size = shard.length;
    else if (shard.length !== size) throw new ShardSizeError(index, size, shard.length);
  });
  if (size === undefined) throw new InvalidParameterError("shards", 0, "no shard present");
  checkShardSize(size);
  return size;
}

/** The m parity shards of k equal-size data shards. */
export async function encodeShards(params: ErasureParams, dataShards: readonly Uint8Array[]): Promise<Buffer[]> {
  checkErasureParams(params);
  const { k, m } = params;
  if (dataShards.length !== k) throw new InvalidParameterError("dataShards", dataShards.length, `need exactly k = ${k}`);
  const shardSize = shardSizeOf(dataShards);
  const data = Buffer.allocUnsafe(k * shardSize);
  dataShards.forEach((s, i) => data.set(s, i * shardSize));
  const parity = await encodeParity(params, data, shardSize);
  return Array.from({ length: m }, (_, j) => parity.subarray(j * shardSize, (j + 1) * shardSize));
}

/**
 * Rebuilds the missing (`undefined`) shards of a stripe from any k present ones. `shards` has
 * k + m entries (data first, then parity). Returns all k + m shards, or only the k data shards
 * with `{ only: "data" }` (cheaper when the parity is not needed). Present shards are returned
 * as given (not copied). Throws {@link NotEnoughShardsError} with fewer than k present.
 */
export async function reconstructShards(
  params: ErasureParams,
  shards: readonly (Uint8Array | undefined)[],
  options: { only?: "data" | "all"; stripe?: number; corrupt?: readonly number[] } = {},
): Promise<Buffer[]> {
  checkErasureParams(params);
  const { k, m } = params;
  if (shards.length !== k + m) throw new InvalidParameterError("shards", shards.length, `need k + m = ${k + m} entries`);
  const missing: number[] = [];
  shards.forEach((s, i) => {
    if (s === undefined) missing.push(i);
  });
  const present = k + m - missing.length;
  if (present < k) throw new NotEnoughShardsError(options.stripe ?? 0, k, present, missing, [...(options.corrupt ?? [])]);
  const shardSize = shardSizeOf(shards);
  const wanted = options.only === "data" ? missing.filter((i) => i < k) : missing;
  const asBuffer = (s: Uint8Array): Buffer => (Buffer.isBuffer(s) ? s : Buffer.from(s.buffer, s.byteOffset, s.byteLength));
  if (wanted.length === 0) return shards.slice(0, options.only === "data" ? k : k + m).map((s) => asBuffer(s!));
  const data = Buffer.allocUnsafe(k * shardSize);
  const parity = Buffer.allocUnsafe(Math.max(1, m) * shardSize);
  let sources = 0;
  let targets = 0;
  shards.forEach((s, i) => {
    if (s === undefined) {
      if (wanted.includes(i)) targets |= 1 << i;
      return;
    }
    sources |= 1 << i;
    if (i < k) data.set(s, i * shardSize);
    else parity.set(s, (i - k) * shardSize);
  });
  await run(params, "reconstruct", sources, targets, data, parity, shardSize);
  const out: Buffer[] = [];
  for (let i = 0; i < (options.only === "data" ? k : k + m); i++) {
    const given = shards[i];
    if (given !== undefined) out.push(asBuffer(given));
    else out.push(i < k ? data.subarray(i * shardSize, (i + 1) * shardSize) : parity.subarray((i - k) * shardSize, (i - k + 1) * shardSize));
  }
  return out;
}
