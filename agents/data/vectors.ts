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
 * A Hamming Magu's record is uint64 id ‖ ceil(dim / 8) bytes of packed bits instead: bit i of the
 * vector is bit 7 − (i mod 8) of byte floor(i / 8) (MSB first), the padding bits past `dim` zero
 * ({@link packBits}); its values are that Uint8Array, not quantized floats (no scale).
 * {@link vectorSize} and {@link recordSize} give the sizes by metric; every caller uses them.
 * Fragment: whole records back to back, at most floor(FRAGMENT_SIZE / recordSize) of them; a record
 * never spans two fragments; no header (dim is a Magu parameter).
 *
 * Control records have an id in the top 256 uint64 values ({@link CONTROL_ID_MIN}); they are
 * never vectors (not indexed, not hits). A vector's payload (a small JSON object) follows its record
 * in the same fragment as payload chunk records ({@link PAYLOAD_ID} ‖ vb bytes; the chunks' bytes
 * together: uint32_be length ‖ UTF-8 JSON ‖ zeros), so the record's proof extends to it. A deletion
 * is a batch of tombstone records ({@link TOMBSTONE_ID} ‖ deleted ids as uint64_be, 0xff-padded).
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
 * - Hamming = popcount(a XOR b) over the first dim bits (smaller is closer), an exact integer in
 *   [0, dim]. Padding bits never count: records and queries are read with them cleared
 *   ({@link readVector}), as the contract masks them.
 */
import { FRAGMENT_SIZE } from "./constants.js";
import { InvalidParameterError, VectorBitError, VectorDimensionError, VectorIdError, VectorPayloadError, VectorRecordError, VectorValueError, VectorZeroError } from "./errors.js";

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
/**
 * Ids from here up (the top 256 uint64 values) are control records, never a vector: payload chunks
 * ({@link PAYLOAD_ID}) and tombstones ({@link TOMBSTONE_ID}). A vector's id is at most
 * {@link MAX_VECTOR_ID}; indexes, members and the contract never treat a control record as a hit.
 */
export const CONTROL_ID_MIN = (1n << 64n) - 256n;
/** The largest id a vector may have. */
export const MAX_VECTOR_ID = CONTROL_ID_MIN - 1n;
/** Id of a payload chunk record: the payload of the vector record just before the chunks. */
export const PAYLOAD_ID = (1n << 64n) - 2n;
/** Id of a tombstone record: its vector bytes list deleted ids. */
export const TOMBSTONE_ID = (1n << 64n) - 1n;
/** Most bytes of one vector's payload (its JSON text, UTF-8). */
export const MAX_PAYLOAD_BYTES = 4096;
/** Bytes of a payload's length prefix (uint32_be) in its first chunk. */
export const PAYLOAD_LENGTH_SIZE = 4;

/** Whether `id` is a control record's (payload chunk or tombstone), not a vector's. */
export function isControlId(id: bigint): boolean {
  return id >= CONTROL_ID_MIN;
}

/**
 * Bytes of one vector (a record after its id, or a query) of dimension `dim`: 2·dim int16
 * components, or for `hamming` ceil(dim / 8) bytes of packed bits. `metric` defaults to an int16
 * metric (l2, ip and cosine share the layout).
 */
export function vectorSize(dim: number, metric: VectorMetric = "l2"): number {
  checkDim(dim, metric);
  return metric === "hamming" ? Math.ceil(dim / 8) : 2 * dim;
}

/** Bytes of one record of dimension `dim` under `metric` (default: an int16 metric): 8 + {@link vectorSize}. */
export function recordSize(dim: number, metric: VectorMetric = "l2"): number {
  return VECTOR_ID_SIZE + vectorSize(dim, metric);
}

/** Records of dimension `dim` under `metric` (default: an int16 metric) per fragment of at most `fragmentSize` bytes. */
export function recordsPerFragment(dim: number, fragmentSize: number = FRAGMENT_SIZE, metric: VectorMetric = "l2"): number {
  const size = recordSize(dim, metric);
  const perFragment = Math.floor(fragmentSize / size);
  if (perFragment < 1) throw new InvalidParameterError("dim", dim, `a record of ${size} bytes does not fit a ${fragmentSize}-byte fragment`);
  return perFragment;
}

/** The largest dimension whose record fits a fragment: int16 components, or bits for `hamming`. */
export function maxDim(metric: VectorMetric = "l2"): number {
  return metric === "hamming" ? (FRAGMENT_SIZE - VECTOR_ID_SIZE) * 8 : (FRAGMENT_SIZE - VECTOR_ID_SIZE) / 2;
}

function checkDim(dim: number, metric: VectorMetric = "l2"): void {
  if (!isVectorMetric(metric)) throw new InvalidParameterError("metric", metric, `must be ${VECTOR_METRICS_TEXT}`);
  if (!Number.isSafeInteger(dim) || dim < 1 || dim > maxDim(metric)) {
    throw new InvalidParameterError("dim", dim, `must be an integer in [1, ${maxDim(metric)}]`);
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

/**
 * A vector as stored and searched: int16 components (l2, ip, cosine), or for a Hamming Magu its
 * bits packed MSB first, ceil(dim / 8) bytes (a Uint8Array that is not an Int16Array).
 */
export type VectorValues = Int16Array | Uint8Array;

/** A record of any metric: id and {@link VectorValues}. */
export interface AnyVectorRecord {
  readonly id: bigint;
  readonly values: VectorValues;
  /** The vector's payload (UTF-8 JSON object text), stored in chunk records after it; packing only. */
  readonly payload?: Uint8Array | null;
}

/** The int16 metrics, whose records are {@link VectorRecord}s. */
export type Int16Metric = Exclude<VectorMetric, "hamming">;

/** A float vector with its id, as given by a client. */
export interface FloatVector {
  readonly id: bigint | number;
  readonly vector: ArrayLike<number>;
  /** Its payload (UTF-8 JSON object text, at most {@link MAX_PAYLOAD_BYTES}), if any. */
  readonly payload?: Uint8Array | null;
}

function toId(id: bigint | number, row: number): bigint {
  const v = typeof id === "bigint" ? id : Number.isSafeInteger(id) ? BigInt(id) : -1n;
  if (v < 0n || v > MAX_VECTOR_ID) throw new VectorIdError(row, id);
  return v;
}

/** Records of payload chunks a payload of `length` bytes takes in a Magu whose vectors have `vb` bytes. */
export function payloadRecordCount(length: number, vb: number): number {
  return length === 0 ? 0 : Math.ceil((PAYLOAD_LENGTH_SIZE + length) / vb);
}

/**
 * Checks a payload (the UTF-8 JSON text of one object, at most {@link MAX_PAYLOAD_BYTES}) and returns it;
 * {@link VectorPayloadError} names the row otherwise.
 */
export function checkPayload(payload: Uint8Array, row: number): Uint8Array {
  if (payload.length > MAX_PAYLOAD_BYTES) throw new VectorPayloadError(row, `is ${payload.length} bytes of JSON, above the ${MAX_PAYLOAD_BYTES}-byte limit`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    throw new VectorPayloadError(row, "is not JSON text");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new VectorPayloadError(row, "is not a JSON object");
  return payload;
}

/**
 * Writes `payload`'s chunk records at `out[offset..]`: {@link PAYLOAD_ID} ‖ `vb` bytes each, the
 * bytes of all chunks together being uint32_be length ‖ payload ‖ zeros. Returns the bytes written.
 */
function writePayload(payload: Uint8Array, vb: number, out: Buffer, offset: number): number {
  const n = payloadRecordCount(payload.length, vb);
  const stream = Buffer.alloc(n * vb);
  stream.writeUInt32BE(payload.length, 0);
  stream.set(payload, PAYLOAD_LENGTH_SIZE);
  for (let i = 0; i < n; i++) {
    const o = offset + i * (VECTOR_ID_SIZE + vb);
    out.writeBigUInt64BE(PAYLOAD_ID, o);
    out.set(stream.subarray(i * vb, (i + 1) * vb), o + VECTOR_ID_SIZE);
  }
  return n * (VECTOR_ID_SIZE + vb);
}

/**
 * The payload of the vector record at byte `start` of `bytes` (a fragment, or a run of its leaves
 * starting at the record; `size`: the fragment's bytes from `start` on), records of `rs` bytes:
 * `end` is the first byte past what decides it (the payload's last chunk; without a payload, the
 * next record's id, or `start + rs` at the fragment's end) and `payload` its bytes, or null.
 * Throws when the chunks are malformed (a length past {@link MAX_PAYLOAD_BYTES}, a chunk that is not
 * one, or chunks past the fragment).
 */
export function readPayload(bytes: Uint8Array, start: number, rs: number, size: number): { payload: Uint8Array | null; end: number } {
  const vb = rs - VECTOR_ID_SIZE;
  const next = start + rs;
  if (next >= size) return { payload: null, end: next };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (next + VECTOR_ID_SIZE > buf.length) throw new InvalidParameterError("bytes", buf.length, `the next record's id ends at byte ${next + VECTOR_ID_SIZE}`);
  if (buf.readBigUInt64BE(next) !== PAYLOAD_ID) return { payload: null, end: next + VECTOR_ID_SIZE };
  const stream: Buffer[] = [];
  let have = 0;
  let length = -1;
  for (let o = next; length < 0 || have < PAYLOAD_LENGTH_SIZE + length; o += rs) {
    if (o + rs > size || o + rs > buf.length) throw new InvalidParameterError("payload", o, "its chunks run past the fragment");
    if (buf.readBigUInt64BE(o) !== PAYLOAD_ID) throw new InvalidParameterError("payload", o, "a chunk record is missing");
    stream.push(buf.subarray(o + VECTOR_ID_SIZE, o + rs));
    have += vb;
    if (length < 0 && have >= PAYLOAD_LENGTH_SIZE) {
      length = Buffer.concat(stream).readUInt32BE(0);
      if (length < 1 || length > MAX_PAYLOAD_BYTES) throw new InvalidParameterError("payload", length, `a payload length must be in [1, ${MAX_PAYLOAD_BYTES}]`);
    }
  }
  const all = Buffer.concat(stream);
  return { payload: Uint8Array.from(all.subarray(PAYLOAD_LENGTH_SIZE, PAYLOAD_LENGTH_SIZE + length)), end: next + stream.length * rs };
}

/** Ids one tombstone record lists in a Magu whose vectors have `vb` bytes. */
export function tombstonesPerRecord(vb: number): number {
  return Math.floor(vb / VECTOR_ID_SIZE);
}

/**
 * Tombstone fragments deleting `ids` (vector ids, in order) in a Magu of `dim` and `metric`: records
 * {@link TOMBSTONE_ID} ‖ the ids as uint64_be, as many as fit the vector bytes, the rest 0xff. The
 * bytes are a function of the ids, so a document can list them and anyone rebuild the fragments.
 */
export function packTombstones(ids: readonly bigint[], dim: number, metric: VectorMetric = "l2", fragmentSize: number = FRAGMENT_SIZE): Buffer[] {
  const vb = vectorSize(dim, metric);
  const per = tombstonesPerRecord(vb);
  if (per < 1) throw new InvalidParameterError("dim", dim, `a ${vb}-byte vector holds no 8-byte id: vectors cannot be deleted from this Magu`);
  const rs = VECTOR_ID_SIZE + vb;
  const records = Math.ceil(ids.length / per);
  const perFragment = recordsPerFragment(dim, fragmentSize, metric);
  const out: Buffer[] = [];
  for (let first = 0; first < records; first += perFragment) {
    const n = Math.min(perFragment, records - first);
    const frag = Buffer.alloc(n * rs, 0xff);
    for (let r = 0; r < n; r++) {
      frag.writeBigUInt64BE(TOMBSTONE_ID, r * rs);
      for (let j = 0; j < per; j++) {
        const id = ids[(first + r) * per + j];
        if (id === undefined) break;
        frag.writeBigUInt64BE(toId(id, (first + r) * per + j), r * rs + VECTOR_ID_SIZE + j * VECTOR_ID_SIZE);
      }
    }
    out.push(frag);
  }
  return out;
}

/** The position of the first tombstone record in fragment `bytes`, or -1 when it holds none. */
export function firstTombstone(bytes: Uint8Array, dim: number, metric: VectorMetric = "l2"): number {
  const rs = recordSize(dim, metric);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let o = 0, p = 0; o + rs <= buf.length; o += rs, p++) if (buf.readBigUInt64BE(o) === TOMBSTONE_ID) return p;
  return -1;
}

/** The vector ids the tombstone records of fragment `bytes` delete (control ids in their slots are padding). */
export function tombstoneIds(bytes: Uint8Array, dim: number, metric: VectorMetric = "l2"): bigint[] {
  const vb = vectorSize(dim, metric);
  const rs = VECTOR_ID_SIZE + vb;
  const per = tombstonesPerRecord(vb);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ids: bigint[] = [];
  for (let o = 0; o + rs <= buf.length; o += rs) {
    if (buf.readBigUInt64BE(o) !== TOMBSTONE_ID) continue;
    for (let j = 0; j < per; j++) {
      const id = buf.readBigUInt64BE(o + VECTOR_ID_SIZE + j * VECTOR_ID_SIZE);
      if (!isControlId(id)) ids.push(id);
    }
  }
  return ids;
}

/** Writes one record at `out[offset..]` (int16 components, or packed bits copied); returns the bytes written. */
export function writeRecord(id: bigint, values: VectorValues, out: Buffer, offset: number): number {
  out.writeBigUInt64BE(id, offset);
  let o = offset + VECTOR_ID_SIZE;
  if (!(values instanceof Int16Array)) {
    out.set(values, o);
    return VECTOR_ID_SIZE + values.length;
  }
  for (let i = 0; i < values.length; i++, o += 2) out.writeInt16BE(values[i]!, o);
  return o - offset;
}

/** Encodes one record (uint64_be id ‖ int16_be components, or ‖ packed bits). */
export function encodeRecord(record: AnyVectorRecord): Buffer {
  const out = Buffer.allocUnsafe(VECTOR_ID_SIZE + record.values.byteLength);
  writeRecord(toId(record.id, 0), record.values, out, 0);
  return out;
}

/**
 * Quantizes (at `scale`, default 2^14) and packs vectors into fragments of at most `fragmentSize`
 * bytes, records never split. Rows are numbered from 0 in iteration order for error messages.
 */
export function* packVectors(vectors: Iterable<FloatVector>, dim: number, fragmentSize: number = FRAGMENT_SIZE, scale: number = VECTOR_SCALE): Generator<Buffer, void, undefined> {
  if (scale !== VECTOR_SCALE) expOfScale(scale);
  let row = 0;
  yield* packInto(
    (function* () {
      for (const v of vectors) {
        const id = toId(v.id, row);
        yield { id, values: quantize(v.vector, dim, row, scale), payload: v.payload };
        row++;
      }
    })(),
    dim,
    fragmentSize,
    "l2",
  );
}

/**
 * Packs records into fragments of at most `fragmentSize` bytes: each record, then its payload's
 * chunk records right after it, never split across fragments.
 */
function* packInto(records: Iterable<AnyVectorRecord>, dim: number, fragmentSize: number, metric: VectorMetric): Generator<Buffer, void, undefined> {
  const size = recordSize(dim, metric);
  const vb = size - VECTOR_ID_SIZE;
  const perFragment = recordsPerFragment(dim, fragmentSize, metric);
  let current = Buffer.allocUnsafe(perFragment * size);
  let count = 0;
  let row = 0;
  for (const r of records) {
    if (metric === "hamming") checkPackedBits(r.values, dim, row);
    else if (!(r.values instanceof Int16Array) || r.values.length !== dim) throw new VectorDimensionError(row, dim, r.values.length);
    const id = toId(r.id, row);
    const payload = r.payload === undefined || r.payload === null ? undefined : checkPayload(r.payload, row);
    const n = 1 + (payload === undefined ? 0 : payloadRecordCount(payload.length, vb));
    if (n > perFragment) throw new VectorPayloadError(row, `needs ${n} records of ${size} bytes with its vector, more than a ${fragmentSize}-byte fragment holds`);
    if (count + n > perFragment) {
      yield current.subarray(0, count * size);
      current = Buffer.allocUnsafe(perFragment * size);
      count = 0;
    }
    writeRecord(id, r.values, current, count * size);
    if (payload !== undefined) writePayload(payload, vb, current, (count + 1) * size);
    count += n;
    row++;
    if (count === perFragment) {
      yield current;
      current = Buffer.allocUnsafe(perFragment * size);
      count = 0;
    }
  }
  if (count > 0) yield current.subarray(0, count * size);
}

/**
 * Packs already-quantized records (same rules as {@link packVectors}); for `hamming` the values are
 * packed bits, ceil(dim / 8) bytes with zero padding (VectorBitError names a row that is not).
 */
export function* packRecords(records: Iterable<AnyVectorRecord>, dim: number, fragmentSize: number = FRAGMENT_SIZE, metric: VectorMetric = "l2"): Generator<Buffer, void, undefined> {
  yield* packInto(records, dim, fragmentSize, metric);
}

/**
 * Reads the records of one fragment (metric default: an int16 metric); throws
 * {@link VectorRecordError} unless it is whole records. Hamming records come with their padding
 * bits cleared ({@link readVector}).
 */
export function unpackFragment(bytes: Uint8Array, dim: number, metric?: Int16Metric): VectorRecord[];
export function unpackFragment(bytes: Uint8Array, dim: number, metric: VectorMetric): AnyVectorRecord[];
export function unpackFragment(bytes: Uint8Array, dim: number, metric: VectorMetric = "l2"): AnyVectorRecord[] {
  const size = recordSize(dim, metric);
  if (bytes.length % size !== 0) throw new VectorRecordError(bytes.length, size);
  const out: AnyVectorRecord[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    out.push({ id: readRecordId(bytes, offset), values: readVector(bytes, offset + VECTOR_ID_SIZE, dim, metric) });
  }
  return out;
}

function readRecordId(bytes: Uint8Array, offset: number): bigint {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, VECTOR_ID_SIZE).readBigUInt64BE(0);
}

/**
 * The vector at `bytes[offset..]` (a record's after its id, or a query's): dim int16 big-endian
 * components, or for `hamming` a copy of its ceil(dim / 8) bytes with the padding bits past `dim`
 * cleared, so a distance never counts them (the contract masks them the same way).
 */
export function readVector(bytes: Uint8Array, offset: number, dim: number, metric: VectorMetric): VectorValues {
  const size = vectorSize(dim, metric);
  if (offset < 0 || offset + size > bytes.length) throw new InvalidParameterError("offset", offset, `a ${size}-byte vector does not fit ${bytes.length} bytes`);
  if (metric === "hamming") {
    const out = Uint8Array.from(bytes.subarray(offset, offset + size));
    out[size - 1]! &= paddingMask(dim);
    return out;
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Int16Array(dim);
  for (let c = 0; c < dim; c++) values[c] = buf.readInt16BE(offset + 2 * c);
  return values;
}

/**
 * A query's bytes (what a request and SearchMarket.submit carry) for a Magu of dimension `dim`
 * and `metric`: vectorSize(dim, metric) bytes, else InvalidParameterError saying what was expected.
 */
export function decodeVector(bytes: Uint8Array, dim: number, metric: VectorMetric): VectorValues {
  const size = vectorSize(dim, metric);
  if (bytes.length !== size) {
    const what = metric === "hamming" ? `${size} bytes of packed bits (${dim} bits)` : `${size} bytes (${dim} int16 components)`;
    throw new InvalidParameterError("query", `${bytes.length} bytes`, `must be ${what}, the Magu's dimension`);
  }
  return readVector(bytes, 0, dim, metric);
}

/** The bytes of a vector as a query carries them: int16 big-endian components, or the packed bits as they are. */
export function encodeVector(values: VectorValues): Buffer {
  if (!(values instanceof Int16Array)) return Buffer.from(values);
  const out = Buffer.allocUnsafe(2 * values.length);
  for (let i = 0; i < values.length; i++) out.writeInt16BE(values[i]!, 2 * i);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Binary vectors (Hamming Magus)

/** The mask of the bits of a packed vector's last byte that belong to the vector (the rest is padding). */
function paddingMask(dim: number): number {
  const used = dim % 8;
  return used === 0 ? 0xff : (0xff << (8 - used)) & 0xff;
}

/**
 * Packs a vector of `dim` bits given as 0/1 numbers: bit i to bit 7 − (i mod 8) of byte
 * floor(i / 8), the padding bits zero. Anything but 0 or 1 throws VectorBitError (row, column).
 */
export function packBits(bits: ArrayLike<number>, dim: number = bits.length, row = 0): Uint8Array {
  checkDim(dim, "hamming");
  if (bits.length !== dim) throw new VectorDimensionError(row, dim, bits.length);
  const out = new Uint8Array(Math.ceil(dim / 8));
  for (let i = 0; i < dim; i++) {
    const b = bits[i];
    if (b === 1) out[i >> 3]! |= 0x80 >> (i & 7);
    else if (b !== 0) throw new VectorBitError(row, i, String(b), "is not a bit: a binary vector's components are 0 or 1");
  }
  return out;
}

/** The `dim` bits of a packed vector as 0/1 numbers, written into `out` (a new array by default). */
export function unpackBits(packed: Uint8Array, dim: number, out: number[] | Float32Array | Uint8Array = new Uint8Array(dim)): typeof out {
  for (let i = 0; i < dim; i++) out[i] = (packed[i >> 3]! >> (7 - (i & 7))) & 1;
  return out;
}

/**
 * Checks that `values` is a packed vector of `dim` bits: a Uint8Array (not int16 components) of
 * ceil(dim / 8) bytes whose padding bits are zero; VectorBitError or VectorDimensionError otherwise.
 */
export function checkPackedBits(values: VectorValues, dim: number, row = 0): void {
  const size = vectorSize(dim, "hamming");
  if (values instanceof Int16Array) throw new VectorBitError(row, 0, `${values.length} int16 components`, `is not a binary vector: a Hamming record holds ${size} bytes of packed bits`);
  if (values.length !== size) throw new VectorBitError(row, 0, `${values.length} bytes`, `is not ${size} bytes of packed bits (${dim} bits)`);
  const pad = values[size - 1]! & ~paddingMask(dim) & 0xff;
  if (pad !== 0) {
    throw new VectorBitError(row, dim, `byte ${size - 1} = 0x${values[size - 1]!.toString(16).padStart(2, "0")}`, `sets padding bits past bit ${dim - 1}: the low ${8 * size - dim} bits of the last byte must be zero`);
  }
}

/** Set bits of every byte value. */
const POPCOUNT = Uint8Array.from({ length: 256 }, (_, b) => {
  let n = 0;
  for (let x = b; x !== 0; x &= x - 1) n++;
  return n;
});

/** popcount(a XOR b) over the bytes of two packed vectors (their padding bits cleared, so only the vectors' bits count). */
export function hammingDistance(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new VectorDimensionError(0, a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) n += POPCOUNT[a[i]! ^ b[i]!]!;
  return n;
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
 * `l2` (`Metric.L2` = 1), `ip` (`Metric.InnerProduct` = 2), `cosine` (`Metric.Cosine` = 3),
 * `hamming` (`Metric.Hamming` = 4, binary vectors).
 */
export const VECTOR_METRICS = ["l2", "ip", "cosine", "hamming"] as const;
/** A Magu's distance metric, by its CLI name (see {@link VECTOR_METRICS}). */
export type VectorMetric = (typeof VECTOR_METRICS)[number];
/** `"l2", "ip", "cosine" or "hamming"`: the metric names for messages. */
export const VECTOR_METRICS_TEXT = '"l2", "ip", "cosine" or "hamming"';

/** Whether `value` is one of {@link VECTOR_METRICS}. */
export function isVectorMetric(value: unknown): value is VectorMetric {
  return typeof value === "string" && (VECTOR_METRICS as readonly string[]).includes(value);
}

/**
 * The canonical distance of docs/SEARCH.md: `l2` = Σ (a_i − b_i)², `ip` and `cosine` = −Σ a_i · b_i
 * (a cosine Magu's vectors were normalised before quantization), `hamming` = popcount(a XOR b) of
 * two packed vectors read by {@link readVector}. Smaller is closer for all, so hits order ascending
 * by `(distance, id)`.
 */
export function canonicalDistance(metric: VectorMetric, a: VectorValues, b: VectorValues): bigint {
  const packed = !(a instanceof Int16Array) || !(b instanceof Int16Array);
  if ((metric === "hamming") !== packed || (packed && (a instanceof Int16Array || b instanceof Int16Array))) {
    throw new InvalidParameterError("vectors", metric, metric === "hamming" ? "a Hamming distance is between packed bits (Uint8Array)" : "must be int16 components (Int16Array)");
  }
  if (metric === "hamming") return BigInt(hammingDistance(a as Uint8Array, b as Uint8Array));
  const x = a as Int16Array;
  const y = b as Int16Array;
  if (metric === "l2") return squaredL2(x, y);
  if (metric === "ip" || metric === "cosine") return -innerProduct(x, y);
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
