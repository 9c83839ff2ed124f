/**
 * Seeded test data for the vector index: a Gaussian mixture (clusters of points around random
 * centres), quantized and packed into fragments like a client's upload. Seeded PRNG only, so every
 * run sees the same vectors.
 */
import { packVectors, quantize } from "../../../agents/data/vectors.js";

/** sfc32: a small, fast, seeded 32-bit generator; returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ (seed >>> 0);
  let c = 0xb7e15162;
  let d = seed | 1;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

/** Standard normal samples (Box-Muller) from a uniform generator. */
export function gaussian(rand: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

export interface MixtureOptions {
  count: number;
  dim: number;
  seed: number;
  /** Number of clusters (default 64). */
  clusters?: number;
  /** Standard deviation of the cluster centres' components (default 0.3). */
  spread?: number;
  /** Standard deviation of a point around its centre (default 0.3). */
  noise?: number;
}

/** The cluster centres of a mixture (shared by its data and its queries). */
export function mixtureCentres(opts: MixtureOptions): Float64Array {
  const { dim, seed, clusters = 64, spread = 0.3 } = opts;
  const g = gaussian(prng(seed));
  const centres = new Float64Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = g() * spread;
  return centres;
}

/** `count` points of the mixture, row-major, components clamped to [-1.99, 1.99] (int16-quantizable). */
export function gaussianMixture(opts: MixtureOptions, stream = 1): Float32Array {
  const { count, dim, seed, clusters = 64, noise = 0.3 } = opts;
  const centres = mixtureCentres(opts);
  const rand = prng(seed * 7919 + stream);
  const g = gaussian(rand);
  const out = new Float32Array(count * dim);
  for (let r = 0; r < count; r++) {
    const c = Math.floor(rand() * clusters);
    for (let i = 0; i < dim; i++) out[r * dim + i] = Math.max(-1.99, Math.min(1.99, centres[c * dim + i]! + g() * noise));
  }
  return out;
}

/** Quantized rows (the int16 queries and records the index sees). */
export function quantizeRows(vectors: Float32Array, dim: number): Int16Array[] {
  const rows: Int16Array[] = [];
  for (let r = 0; r < vectors.length / dim; r++) rows.push(quantize(vectors.subarray(r * dim, (r + 1) * dim), dim, r));
  return rows;
}

/** Packs rows into fragments of at most `fragmentSize` bytes with ids `idOf(row)`. */
export function packRows(vectors: Float32Array, dim: number, fragmentSize: number, idOf: (row: number) => bigint = (r) => BigInt(r)): Buffer[] {
  const count = vectors.length / dim;
  function* rows() {
    for (let r = 0; r < count; r++) yield { id: idOf(r), vector: vectors.subarray(r * dim, (r + 1) * dim) };
  }
  return [...packVectors(rows(), dim, fragmentSize)];
}

/**
 * Clustered binary vectors: `clusters` random centres of `dim` bits; each vector is a centre with
 * every bit flipped with probability `flip` (default 0.1). Row-major packed bits (data/vectors.ts
 * `packBits`), count × ceil(dim / 8) bytes, padding bits zero. Seeded.
 */
export function bitMixture(opts: { count: number; dim: number; seed: number; clusters?: number; flip?: number }): Uint8Array {
  const { count, dim, seed } = opts;
  const clusters = opts.clusters ?? 32;
  const flip = opts.flip ?? 0.1;
  const rand = prng(seed);
  const width = Math.ceil(dim / 8);
  const centres = Array.from({ length: clusters }, () => Array.from({ length: dim }, () => (rand() < 0.5 ? 1 : 0)));
  const out = new Uint8Array(count * width);
  for (let r = 0; r < count; r++) {
    const centre = centres[Math.floor(rand() * clusters)]!;
    for (let i = 0; i < dim; i++) {
      const bit = rand() < flip ? 1 - centre[i]! : centre[i]!;
      if (bit === 1) out[r * width + (i >> 3)]! |= 0x80 >> (i & 7);
    }
  }
  return out;
}
