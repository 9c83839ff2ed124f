/**
 * Canonical integer encoding of float vectors for vector Magus, so that every node and the
 * contract compute bit-identical distances.
 *
 * Quantization at a Magu's scale 2^e (e an integer in [VECTOR_SCALE_EXP_MIN, VECTOR_SCALE_EXP_MAX]):
 * each component x is first rounded to float32 (Math.fround), then
 * q = round_half_away_from_zero(x · 2^e) (exact in float64: a power of two only moves the exponent);
 * q must fit int16 ([-32768, 32767]). NaN, ±Infinity and values outside the scale's range are
 * rejected with {@link VectorValueError} naming the row and column (and the scale).
 *
 * The scale belongs to the Magu: its first batch picks it ({@link chooseScaleExp}: the largest 2^e
 * at which every component of the batch fits int16) and the vector index document records it
 * (vector-manifest.ts, `scaleExp`; absent means {@link VECTOR_SCALE_EXP} = 14, the fixed scale of
 * the documents written before the field existed). Members, validators and the contract never
 * need it: they compute distances on the int16 records. Clients need it to quantize queries and
 * later batches and to turn canonical distances back into the units of the floats.
 *
 * Record: uint64 id (big-endian) ‖ dim × int16 (big-endian, two's complement): 8 + 2·dim bytes.
 * Fragment: whole records back to back, at most floor(FRAGMENT_SIZE / recordSize) of them; a record
 * never spans two fragments; no header (dim is a Magu parameter).
 *
 * Distances, exact, as bigint over the int16 components a, b:
 * - squared L2 = Σ_i (a_i − b_i)²  (smaller is closer)
 * - inner product = Σ_i a_i · b_i    (larger is closer)
 * The cosine metric measures the inner product too: its client scales every vector and query to
 * unit L2 length ({@link normalizeVector}) before quantizing it, at the fixed scale
 * {@link COSINE_SCALE_EXP}, so the inner product of the int16 vectors is the cosine similarity
 * times 2^28 (up to the quantization error, docs/SEARCH.md).
 * Both are computed in float64 and are exact: |terms| <= 65535² and dim <= 524284 (a record fits a
 * fragment) keep every partial sum below 2^53. The contract recomputes them in int256. In the
 * units of the floats they are the canonical distance / 2^(2e).
 */
import { FRAGMENT_SIZE } from "./constants.js";
import { InvalidParameterError, VectorDimensionError, VectorIdError, VectorRecordError, VectorValueError, VectorZeroError } from "./errors.js";

/** The default scale exponent: a document without `scaleExp` quantizes at 2^14 (the only scale before it). */
export const VECTOR_SCALE_EXP = 14;
/** The default quantization scale 2^14: q = round(x · 16384). */
export const VECTOR_SCALE = 16384;
/**
 * Smallest and largest scale exponents. Every finite float32 batch gets a scale inside: its largest
 * |x| (below 2^128) needs 2^-115 at the smallest, the smallest subnormal (2^-149) 2^163 at the
 * largest. Within these bounds x · 2^e (|x| in [2^-149, 2^128)) stays a normal float64, so exact.
 */
export const VECTOR_SCALE_EXP_MIN = -128;
export const VECTOR_SCALE_EXP_MAX = 176;
/**
 * The scale exponent of every cosine Magu: 2^14, the largest scale that holds every component of
 * every unit vector ([-1, 1]; 1 · 2^15 = 32768 does not fit int16), so no later batch or query can
 * fall outside it. It is the default scale, so a cosine Magu's documents carry no `scaleExp`.
 */
export const COSINE_SCALE_EXP = VECTOR_SCALE_EXP;
/** Bytes of a record id (uint64). */
export const VECTOR_ID_SIZE = 8;
const INT16_MIN = -32768;
const INT16_MAX = 32767;
const UINT64_MAX = (1n << 64n) - 1n;

/** Bytes of one record of dimension `dim`. */
export function recordSize(dim: number): number {
  checkDim(dim);
  return VECTOR_ID_SIZE + 2 * dim;
}

/** Records of dimension `dim` per fragment of at most `fragmentSize` bytes. */
export function recordsPerFragment(dim: number, fragmentSize: number = FRAGMENT_SIZE): number {
  const perFragment = Math.floor(fragmentSize / recordSize(dim));
  if (perFragment < 1) throw new InvalidParameterError("dim", dim, `a record of ${recordSize(dim)} bytes does not fit a ${fragmentSize}-byte fragment`);
  return perFragment;
}

function checkDim(dim: number): void {
  if (!Number.isSafeInteger(dim) || dim < 1 || VECTOR_ID_SIZE + 2 * dim > FRAGMENT_SIZE) {
    throw new InvalidParameterError("dim", dim, `must be an integer in [1, ${(FRAGMENT_SIZE - VECTOR_ID_SIZE) / 2}]`);
  }
}

/** 2^exp, after checking that `exp` is an integer in [VECTOR_SCALE_EXP_MIN, VECTOR_SCALE_EXP_MAX]. */
export function scaleOfExp(exp: number): number {
  if (!Number.isSafeInteger(exp) || exp < VECTOR_SCALE_EXP_MIN || exp > VECTOR_SCALE_EXP_MAX) {
    throw new InvalidParameterError("scaleExp", exp, `must be an integer in [${VECTOR_SCALE_EXP_MIN}, ${VECTOR_SCALE_EXP_MAX}]`);
  }
  return 2 ** exp;
}

/** The exponent e of a scale 2^e (InvalidParameterError unless `scale` is such a power of two). */
export function expOfScale(scale: number): number {
  const exp = typeof scale === "number" && scale > 0 ? Math.log2(scale) : NaN;
  if (!Number.isInteger(exp) || 2 ** exp !== scale || exp < VECTOR_SCALE_EXP_MIN || exp > VECTOR_SCALE_EXP_MAX) {
    throw new InvalidParameterError("scale", scale, `must be a power of two 2^e, e an integer in [${VECTOR_SCALE_EXP_MIN}, ${VECTOR_SCALE_EXP_MAX}]`);
  }
  return exp;
}

/**
 * What the scale 2^exp holds: x (as float32) quantizes into int16 exactly when
 * -32768.5 · 2^-exp < x < 32767.5 · 2^-exp; this returns 32767.5 · 2^-exp, below which every |x| fits.
 */
export function scaleLimit(exp: number): number {
  return (INT16_MAX + 0.5) / scaleOfExp(exp);
}

function roundHalfAway(scaled: number): number {
  return scaled < 0 ? -Math.floor(-scaled + 0.5) : Math.floor(scaled + 0.5);
}

/** Quantizes one float component at `scale` (a power of two 2^e, default 2^14; row and column name it in errors). */
export function quantizeComponent(x: number, row = 0, column = 0, scale: number = VECTOR_SCALE): number {
  if (scale !== VECTOR_SCALE) expOfScale(scale);
  return quantizeAt(x, row, column, scale);
}

function quantizeAt(x: number, row: number, column: number, scale: number): number {
  const f = Math.fround(x);
  if (Number.isNaN(f)) throw new VectorValueError(row, column, x, "is NaN");
  if (!Number.isFinite(f)) throw new VectorValueError(row, column, x, "is not finite");
  const q = roundHalfAway(f * scale);
  if (q < INT16_MIN || q > INT16_MAX) throw outOfScale(x, q, row, column, scale);
  return q === 0 ? 0 : q; // no -0
}

function outOfScale(x: number, q: number, row: number, column: number, scale: number): VectorValueError {
  const exp = expOfScale(scale);
  return new VectorValueError(
    row,
    column,
    x,
    `quantizes to ${q} at scale 2^${exp}, outside int16 [${INT16_MIN}, ${INT16_MAX}] (scale 2^${exp} holds |x| below ${formatLimit(scaleLimit(exp))})`,
    exp,
  );
}

/** A range limit for messages: 6 significant digits. */
function formatLimit(x: number): string {
  return Number(x.toPrecision(6)).toString();
}

/** Quantizes a float vector of dimension `dim` at `scale` (a power of two 2^e; default 2^14). */
export function quantize(vector: ArrayLike<number>, dim: number = vector.length, row = 0, scale: number = VECTOR_SCALE): Int16Array {
  checkDim(dim);
  if (scale !== VECTOR_SCALE) expOfScale(scale);
  if (vector.length !== dim) throw new VectorDimensionError(row, dim, vector.length);
  const out = new Int16Array(dim);
  for (let c = 0; c < dim; c++) out[c] = quantizeAt(vector[c]!, row, c, scale);
  return out;
}

/** The float values a quantized vector stands for (q / scale, default 2^14), as float32. */
export function dequantize(q: Int16Array, scale: number = VECTOR_SCALE): Float32Array {
  if (scale !== VECTOR_SCALE) expOfScale(scale);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) out[i] = q[i]! / scale;
  return out;
}

/**
 * The scale exponent a Magu's first batch picks: the largest e in [VECTOR_SCALE_EXP_MIN,
 * VECTOR_SCALE_EXP_MAX] at which every component of `values` (row-major, `dim` per row) quantizes
 * into int16, so the batch's largest |x| lands in [2^14, 2^15] after scaling. 0..255 integers get
 * 2^7 (exact), ±300 2^6, ±15 2^11, ±2 2^13, [1, 2) and (-2, -1] 2^14, ±1e-3 2^24. An all-zero batch
 * gets the default {@link VECTOR_SCALE_EXP}. NaN and ±Infinity throw VectorValueError (row, column).
 * Rounding is monotone, so checking the largest and the most negative component suffices.
 */
export function chooseScaleExp(values: ArrayLike<number>, dim: number = values.length): number {
  checkDim(dim);
  let maxPos = 0;
  let maxNeg = 0;
  for (let i = 0; i < values.length; i++) {
    const f = Math.fround(values[i]!);
    if (Number.isNaN(f)) throw new VectorValueError(Math.floor(i / dim), i % dim, values[i]!, "is NaN");
    if (!Number.isFinite(f)) throw new VectorValueError(Math.floor(i / dim), i % dim, values[i]!, "is not finite");
    if (f > maxPos) maxPos = f;
    else if (-f > maxNeg) maxNeg = -f;
  }
  const largest = Math.max(maxPos, maxNeg);
  if (largest === 0) return VECTOR_SCALE_EXP;
  const fits = (e: number): boolean => {
    const s = 2 ** e;
    return roundHalfAway(maxPos * s) <= INT16_MAX && roundHalfAway(-maxNeg * s) >= INT16_MIN;
  };
  let e = Math.min(VECTOR_SCALE_EXP_MAX, Math.max(VECTOR_SCALE_EXP_MIN, Math.floor(Math.log2(INT16_MAX / largest))));
  while (e < VECTOR_SCALE_EXP_MAX && fits(e + 1)) e++;
  while (e > VECTOR_SCALE_EXP_MIN && !fits(e)) e--;
  return e;
}

/** A record: id and quantized components. */
export interface VectorRecord {
  readonly id: bigint;
  readonly values: Int16Array;
}

/** A float vector with its id, as given by a client. */
export interface FloatVector {
  readonly id: bigint | number;
  readonly vector: ArrayLike<number>;
}

function toId(id: bigint | number, row: number): bigint {
  const v = typeof id === "bigint" ? id : Number.isSafeInteger(id) ? BigInt(id) : -1n;
  if (v < 0n || v > UINT64_MAX) throw new VectorIdError(row, id);
  return v;
}

/** Writes one record at `out[offset..]`; returns the bytes written. */
export function writeRecord(id: bigint, values: Int16Array, out: Buffer, offset: number): number {
  out.writeBigUInt64BE(id, offset);
  let o = offset + VECTOR_ID_SIZE;
  for (let i = 0; i < values.length; i++, o += 2) out.writeInt16BE(values[i]!, o);
  return o - offset;
}

/** Encodes one record (uint64_be id ‖ int16_be components). */
export function encodeRecord(record: VectorRecord): Buffer {
  const out = Buffer.allocUnsafe(VECTOR_ID_SIZE + 2 * record.values.length);
  writeRecord(toId(record.id, 0), record.values, out, 0);
  return out;
}

/**
 * Quantizes (at `scale`, default 2^14) and packs vectors into fragments of at most `fragmentSize`
 * bytes, records never split. Rows are numbered from 0 in iteration order for error messages.
 */
export function* packVectors(vectors: Iterable<FloatVector>, dim: number, fragmentSize: number = FRAGMENT_SIZE, scale: number = VECTOR_SCALE): Generator<Buffer, void, undefined> {
  if (scale !== VECTOR_SCALE) expOfScale(scale);
  const size = recordSize(dim);
  const perFragment = recordsPerFragment(dim, fragmentSize);
  let current = Buffer.allocUnsafe(perFragment * size);
  let count = 0;
  let row = 0;
  for (const v of vectors) {
    const id = toId(v.id, row);
    const values = quantize(v.vector, dim, row, scale);
    writeRecord(id, values, current, count * size);
    count++;
    row++;
    if (count === perFragment) {
      yield current;
      current = Buffer.allocUnsafe(perFragment * size);
      count = 0;
    }
  }
  if (count > 0) yield current.subarray(0, count * size);
}

/** Packs already-quantized records (same rules as {@link packVectors}). */
export function* packRecords(records: Iterable<VectorRecord>, dim: number, fragmentSize: number = FRAGMENT_SIZE): Generator<Buffer, void, undefined> {
  const size = recordSize(dim);
  const perFragment = recordsPerFragment(dim, fragmentSize);
  let current = Buffer.allocUnsafe(perFragment * size);
  let count = 0;
  let row = 0;
  for (const r of records) {
    if (r.values.length !== dim) throw new VectorDimensionError(row, dim, r.values.length);
    writeRecord(toId(r.id, row), r.values, current, count * size);
    count++;
    row++;
    if (count === perFragment) {
      yield current;
      current = Buffer.allocUnsafe(perFragment * size);
      count = 0;
    }
  }
  if (count > 0) yield current.subarray(0, count * size);
}

/** Reads the records of one fragment; throws {@link VectorRecordError} unless it is whole records. */
export function unpackFragment(bytes: Uint8Array, dim: number): VectorRecord[] {
  const size = recordSize(dim);
  if (bytes.length % size !== 0) throw new VectorRecordError(bytes.length, size);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: VectorRecord[] = [];
  for (let offset = 0; offset < buf.length; offset += size) {
    const values = new Int16Array(dim);
    for (let c = 0; c < dim; c++) values[c] = buf.readInt16BE(offset + VECTOR_ID_SIZE + 2 * c);
    out.push({ id: buf.readBigUInt64BE(offset), values });
  }
  return out;
}

function checkPair(a: Int16Array, b: Int16Array): void {
  if (a.length !== b.length) throw new VectorDimensionError(0, a.length, b.length);
}

/** Exact Σ (a_i − b_i)². */
export function squaredL2(a: Int16Array, b: Int16Array): bigint {
  checkPair(a, b);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  return BigInt(sum);
}

/** Exact Σ a_i · b_i. */
export function innerProduct(a: Int16Array, b: Int16Array): bigint {
  checkPair(a, b);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return BigInt(sum);
}

/**
 * The distance metrics of vector Magus, by their CLI names, in MaguRegistry `Metric` order from 1:
 * `l2` (`Metric.L2` = 1), `ip` (`Metric.InnerProduct` = 2), `cosine` (`Metric.Cosine` = 3).
 */
export const VECTOR_METRICS = ["l2", "ip", "cosine"] as const;
/** A Magu's distance metric, by its CLI name (see {@link VECTOR_METRICS}). */
export type VectorMetric = (typeof VECTOR_METRICS)[number];
/** `"l2", "ip" or "cosine"`: the metric names for messages. */
export const VECTOR_METRICS_TEXT = '"l2", "ip" or "cosine"';

/** Whether `value` is one of {@link VECTOR_METRICS}. */
export function isVectorMetric(value: unknown): value is VectorMetric {
  return typeof value === "string" && (VECTOR_METRICS as readonly string[]).includes(value);
}

/**
 * The canonical distance of docs/SEARCH.md: `l2` = Σ (a_i − b_i)², `ip` and `cosine` = −Σ a_i · b_i
 * (a cosine Magu's vectors were normalised before quantization). Smaller is closer for all, so
 * hits order ascending by `(distance, id)`.
 */
export function canonicalDistance(metric: VectorMetric, a: Int16Array, b: Int16Array): bigint {
  if (metric === "l2") return squaredL2(a, b);
  if (metric === "ip" || metric === "cosine") return -innerProduct(a, b);
  throw new InvalidParameterError("metric", metric, `must be ${VECTOR_METRICS_TEXT}`);
}

/**
 * `vector` scaled to unit L2 length, for a cosine Magu: each component rounded to float32 (as
 * quantization reads it), the norm taken in float64 (exact enough: no float32 component's square
 * overflows or underflows it), each component divided by it. NaN and ±Infinity throw
 * VectorValueError (row, column); a vector of zeros has no direction and throws VectorZeroError
 * (row). The result's components lie in [-1, 1].
 */
export function normalizeVector(vector: ArrayLike<number>, row = 0): Float64Array {
  const out = new Float64Array(vector.length);
  let sum = 0;
  for (let c = 0; c < vector.length; c++) {
    const f = Math.fround(vector[c]!);
    if (Number.isNaN(f)) throw new VectorValueError(row, c, vector[c]!, "is NaN");
    if (!Number.isFinite(f)) throw new VectorValueError(row, c, vector[c]!, "is not finite");
    out[c] = f;
    sum += f * f;
  }
  if (sum === 0) throw new VectorZeroError(row);
  const norm = Math.sqrt(sum);
  for (let c = 0; c < out.length; c++) out[c] = Math.max(-1, Math.min(1, out[c]! / norm));
  return out;
}


/** What orders search hits: the fields of a result entry word. */
export interface HitKey {
  readonly distance: bigint;
  readonly id: bigint;
  readonly fragment?: number;
  readonly position?: number;
}

/** One search hit as a result entry word carries it (docs/SEARCH.md "Result entries"). */
export interface HitEntry {
  readonly distance: bigint;
  readonly id: bigint;
  readonly fragment: number;
  readonly position: number;
}

/**
 * Orders hits ascending by `(distance, id)`, then `(fragment, position)` when both carry them: the
 * order of their entry words compared as unsigned integers.
 */
export function compareHits(a: HitKey, b: HitKey): number {
  if (a.distance !== b.distance) return a.distance < b.distance ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  const fa = a.fragment ?? 0;
  const fb = b.fragment ?? 0;
  if (fa !== fb) return fa - fb;
  return (a.position ?? 0) - (b.position ?? 0);
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT32_MAX = 0xffff_ffff;
const SIGN_FLIP = 1n << 63n;
const MASK64 = (1n << 64n) - 1n;
const WORD_MAX = (1n << 256n) - 1n;

/**
 * The 32-byte result entry word of a hit, as an unsigned bigint: bits 255..192 the distance key
 * `uint64(int64(distance)) XOR 2^63` (order-preserving), 191..128 the id, 127..96 the fragment,
 * 95..64 the position, 63..0 zero. Words compare as unsigned integers in {@link compareHits} order.
 */
export function encodeHit(hit: HitEntry): bigint {
  const { distance, id, fragment, position } = hit;
  if (typeof distance !== "bigint" || distance < INT64_MIN || distance > INT64_MAX) {
    throw new InvalidParameterError("distance", distance, "must be a bigint in the int64 range");
  }
  if (typeof id !== "bigint" || id < 0n || id > UINT64_MAX) throw new InvalidParameterError("id", id, "must be a uint64 bigint");
  if (!Number.isInteger(fragment) || fragment < 0 || fragment > UINT32_MAX) throw new InvalidParameterError("fragment", fragment, "must be a uint32");
  if (!Number.isInteger(position) || position < 0 || position > UINT32_MAX) throw new InvalidParameterError("position", position, "must be a uint32");
  const key = (distance & MASK64) ^ SIGN_FLIP;
  return (key << 192n) | (id << 128n) | (BigInt(fragment) << 96n) | (BigInt(position) << 64n);
}

/** {@link encodeHit} as a `0x`-prefixed 64-digit hex string (a Solidity `bytes32`). */
export function encodeHitHex(hit: HitEntry): `0x${string}` {
  return `0x${encodeHit(hit).toString(16).padStart(64, "0")}`;
}

/** Reads a result entry word (bigint or `0x` hex of at most 32 bytes); its low 64 bits must be zero. */
export function decodeHit(word: bigint | string): HitEntry {
  let w: bigint;
  if (typeof word === "string") {
    if (!/^0x[0-9a-fA-F]{1,64}$/.test(word)) throw new InvalidParameterError("word", word, "must be 0x followed by 1 to 64 hex digits");
    w = BigInt(word);
  } else {
    w = word;
  }
  if (typeof w !== "bigint" || w < 0n || w > WORD_MAX) throw new InvalidParameterError("word", word, "must be a 256-bit unsigned integer");
  if ((w & MASK64) !== 0n) throw new InvalidParameterError("word", word, "its low 64 bits must be zero (a well-formed entry)");
  const key = (w >> 192n) ^ SIGN_FLIP;
  const distance = key >= SIGN_FLIP ? key - (1n << 64n) : key;
  return {
    distance,
    id: (w >> 128n) & MASK64,
    fragment: Number((w >> 96n) & 0xffff_ffffn),
    position: Number((w >> 64n) & 0xffff_ffffn),
  };
}
