/**
 * Named errors of the data layer. One class per condition, each with a stable `code` and a
 * structured `context` (Lodestar `LodestarError` style), so callers branch on `code` or
 * `instanceof`, never on message text.
 */
import { MuriError } from "./muri-error.js";

/** Base class of every data-layer error. */
export class DataError<C extends Record<string, unknown> = Record<string, unknown>> extends MuriError<C> {}

/** An argument or parameter is outside what the data layer accepts (sizes, k/m, indices...). */
export class InvalidParameterError extends DataError<{ name: string; value: unknown; reason: string }> {
  constructor(name: string, value: unknown, reason: string) {
    super("ERR_INVALID_PARAMETER", `invalid ${name} (${describe(value)}): ${reason}`, { name, value, reason });
  }
}

/** An index (leaf, fragment, shard) is out of range for the structure it addresses. */
export class IndexOutOfRangeError extends DataError<{ what: string; index: number; count: number }> {
  constructor(what: string, index: number, count: number) {
    super("ERR_INDEX_OUT_OF_RANGE", `${what} index ${index} out of range [0, ${count})`, { what, index, count });
  }
}

/** A fragment is larger than the protocol allows. */
export class FragmentTooLargeError extends DataError<{ size: number; max: number }> {
  constructor(size: number, max: number) {
    super("ERR_FRAGMENT_TOO_LARGE", `fragment of ${size} bytes exceeds the maximum of ${max}`, { size, max });
  }
}

/** AES-256-GCM authentication failed: the sealed fragment, key, file id or index is wrong. No plaintext is returned. */
export class DecryptionError extends DataError<{ fragmentIndex: number; reason: string }> {
  constructor(fragmentIndex: number, reason: string, cause?: unknown) {
    super("ERR_DECRYPT_AUTH", `fragment ${fragmentIndex} failed to decrypt: ${reason}`, { fragmentIndex, reason }, { cause });
  }
}

/**
 * A manifest's MAC does not match it under this client's secret: it was truncated, had stripes
 * spliced in from another file, or is not this client's. Nothing was decrypted.
 */
export class ManifestAuthError<C extends { fileId: string } = { fileId: string }> extends DataError<C> {
  constructor(fileId: string);
  constructor(fileId: string, code: string, message: string, context: C);
  constructor(fileId: string, code?: string, message?: string, context?: C) {
    super(
      code ?? "ERR_MANIFEST_AUTH",
      message ??
        `the manifest of file ${fileId} does not match its MAC under this client's secret: it was altered (truncated or spliced) or belongs to another client`,
      context ?? ({ fileId } as C),
    );
  }
}

/**
 * A manifest's sealed file size does not open under this client's secret (AES-256-GCM refused it):
 * the manifest belongs to another client, or its `sealedSize` was altered. A {@link ManifestAuthError}
 * with its own code; no size and nothing else was decrypted.
 */
export class ManifestSealError extends ManifestAuthError<{ fileId: string; reason: string }> {
  constructor(fileId: string, reason: string) {
    super(
      fileId,
      "ERR_MANIFEST_SEAL",
      `the sealed size in the manifest of file ${fileId} does not open under this client's secret (${reason}): the manifest belongs to another client, or its seal was altered`,
      { fileId, reason },
    );
  }
}

/** A file id was given to the encoder a second time: the same (key, nonce) pairs would seal other bytes. */
export class FileIdReusedError extends DataError<{ fileId: string }> {
  constructor(fileId: string) {
    super("ERR_FILE_ID_REUSED", `file id ${fileId} was used before: each encoding needs a fresh one (leave fileId unset)`, { fileId });
  }
}

/** Bytes fetched for a shard do not hash to the CID the manifest names. */
export class ShardCidMismatchError extends DataError<{ shardIndex: number; stripe: number; cid: string }> {
  constructor(shardIndex: number, stripe: number, cid: string) {
    super("ERR_SHARD_CID_MISMATCH", `shard ${shardIndex} (stripe ${stripe}) does not match its CID ${cid}`, {
      shardIndex,
      stripe,
      cid,
    });
  }
}

/** Fewer than k shards of a stripe are available and intact, so the stripe cannot be rebuilt. */
export class NotEnoughShardsError extends DataError<{
  stripe: number;
  needed: number;
  available: number;
  missing: number[];
  corrupt: number[];
}> {
  constructor(stripe: number, needed: number, available: number, missing: number[], corrupt: number[]) {
    super(
      "ERR_NOT_ENOUGH_SHARDS",
      `stripe ${stripe}: ${available} intact shards, ${needed} needed (missing [${missing.join(",")}], corrupt [${corrupt.join(",")}])`,
      { stripe, needed, available, missing, corrupt },
    );
  }
}

/** A shard has the wrong length for its stripe. */
export class ShardSizeError extends DataError<{ shardIndex: number; expected: number; actual: number }> {
  constructor(shardIndex: number, expected: number, actual: number) {
    super("ERR_SHARD_SIZE", `shard ${shardIndex} is ${actual} bytes, expected ${expected}`, { shardIndex, expected, actual });
  }
}

/** The Reed-Solomon native coder reported a failure. */
export class ErasureCodingError extends DataError<{ k: number; m: number; operation: string }> {
  constructor(k: number, m: number, operation: string, cause: unknown) {
    super("ERR_ERASURE_CODING", `reed-solomon ${operation} (k=${k}, m=${m}) failed: ${(cause as Error)?.message ?? cause}`, { k, m, operation }, { cause });
  }
}

/** A manifest is malformed: not canonical dag-json, a missing or mistyped field, inconsistent sizes. */
export class ManifestError extends DataError<{ reason: string; field?: string }> {
  constructor(reason: string, field?: string, code = "ERR_MANIFEST_INVALID") {
    super(code, field === undefined ? `invalid manifest: ${reason}` : `invalid manifest field ${field}: ${reason}`, { reason, field });
  }
}

/** Manifest bytes do not hash to the CID they were fetched by. */
export class ManifestCidMismatchError extends ManifestError {
  constructor(expected: string, actual: string) {
    super(`bytes hash to ${actual}, expected ${expected}`, undefined, "ERR_MANIFEST_CID_MISMATCH");
  }
}

/**
 * The decoded length disagrees with the manifest's (opened) size: truncated or extended data, or
 * data in the sealed padding past the size (`actual` is then the least size the data needs).
 */
export class SizeMismatchError extends DataError<{ expected: number; actual: number }> {
  constructor(expected: number, actual: number) {
    super("ERR_SIZE_MISMATCH", `decoded ${actual} bytes, manifest says ${expected}`, { expected, actual });
  }
}

/** A float vector component cannot be quantized (NaN, Infinity, or out of the int16 range). */
export class VectorValueError extends DataError<{ row: number; column: number; value: number; reason: string; scaleExp?: number }> {
  /** `scaleExp`: the exponent of the scale 2^e the value did not fit (out-of-range values only). */
  constructor(row: number, column: number, value: number, reason: string, scaleExp?: number) {
    super("ERR_VECTOR_VALUE", `vector row ${row}, column ${column}: value ${value} ${reason}`, { row, column, value, reason, ...(scaleExp !== undefined ? { scaleExp } : {}) });
  }
}

/** A binary vector (Hamming Magu) is malformed: a component other than 0/1, or padding bits set. */
export class VectorBitError extends DataError<{ row: number; column: number; value: string; reason: string }> {
  constructor(row: number, column: number, value: string, reason: string) {
    super("ERR_VECTOR_BITS", `binary vector row ${row}, bit ${column}: ${value} ${reason}`, { row, column, value, reason });
  }
}

/** A vector of a cosine Magu has no direction: every component is zero (it cannot be normalised). */
export class VectorZeroError extends DataError<{ row: number }> {
  constructor(row: number) {
    super(
      "ERR_VECTOR_ZERO",
      `vector row ${row} is all zeros: the cosine metric compares directions and a zero vector has none; drop the row or give it a nonzero component`,
      { row },
    );
  }
}

/** A vector has the wrong number of components. */
export class VectorDimensionError extends DataError<{ row: number; expected: number; actual: number }> {
  constructor(row: number, expected: number, actual: number) {
    super("ERR_VECTOR_DIMENSION", `vector row ${row} has ${actual} components, expected ${expected}`, { row, expected, actual });
  }
}

/** A vector id is not a uint64. */
export class VectorIdError extends DataError<{ row: number; id: string }> {
  constructor(row: number, id: bigint | number) {
    super("ERR_VECTOR_ID", `vector row ${row}: id ${id} is not a vector id (an integer in [0, 2^64 - 257]: the top 256 uint64 values are reserved for control records)`, { row, id: String(id) });
  }
}

/** A vector's payload is not a JSON object, or too large. */
export class VectorPayloadError extends DataError<{ row: number; reason: string }> {
  constructor(row: number, reason: string) {
    super("ERR_VECTOR_PAYLOAD", `vector row ${row}: its payload ${reason}`, { row, reason });
  }
}

/** A vector fragment is not a whole number of records. */
export class VectorRecordError extends DataError<{ length: number; recordSize: number }> {
  constructor(length: number, recordSize: number) {
    super("ERR_VECTOR_RECORD", `vector fragment of ${length} bytes is not a whole number of ${recordSize}-byte records`, {
      length,
      recordSize,
    });
  }
}

/** What was wrong with a vector file ({@link VectorFileError}'s `context.kind`). */
export type VectorFileProblem =
  | "empty" // no vectors at all
  | "extension" // unknown file extension / format
  | "truncated" // the file ends inside a row or before the data its header announces
  | "trailing" // bytes after the data the header announces
  | "header" // malformed .npy header or .csv header
  | "dtype" // .npy element type other than float32/float64 little-endian
  | "shape" // .npy not 2-D C-order
  | "ragged" // a row's length differs from the first row's
  | "dimension" // the file's dimension differs from the one asked for
  | "value" // NaN or ±Infinity
  | "bit" // a binary vector's component other than 0/1
  | "padding" // a packed binary vector sets bits past its dimension
  | "payload" // a payload that is not a JSON object, too large, or a payload file that does not match the vectors
  | "syntax" // not a number, not JSON, wrong line form
  | "id" // an id that is not a uint64
  | "duplicate-id"; // an id given twice

/**
 * A vector file cannot be read. The message names the file, where (row, line, column, byte
 * offset), what was wrong and what to do; nothing of the file is returned.
 */
export class VectorFileError extends DataError<{
  path: string;
  kind: VectorFileProblem;
  row?: number;
  line?: number;
  column?: number;
  offset?: number;
}> {
  constructor(
    path: string,
    kind: VectorFileProblem,
    where: { row?: number; line?: number; column?: number; offset?: number },
    problem: string,
    fix: string,
  ) {
    const at = [
      where.line !== undefined ? `line ${where.line}` : where.row !== undefined ? `row ${where.row}` : undefined,
      where.column !== undefined ? `column ${where.column}` : undefined,
      where.offset !== undefined ? `byte ${where.offset}` : undefined,
    ].filter((s) => s !== undefined);
    super("ERR_VECTOR_FILE", `${path}${at.length > 0 ? ` (${at.join(", ")})` : ""}: ${problem}; ${fix}`, { path, kind, ...where });
  }
}

function describe(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
