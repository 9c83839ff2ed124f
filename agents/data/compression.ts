/**
 * Optional compression before encryption (`muri put --compress`), over node:zlib only.
 *
 * - `zstd` (RFC 8878, level 3) when this Node's zlib has it (Node >= 22.15: `zlib.createZstdCompress`),
 *   `gzip` (RFC 1952, level 6) otherwise or on request. Both stream: nothing holds a whole file.
 * - `auto` decides per file by measurement: it compresses a sample (the first {@link SAMPLE_BYTES})
 *   and keeps compression only if the sample shrank by at least {@link AUTO_MIN_SAVING}; so
 *   incompressible data (media, archives, ciphertext) is stored as it is, at no cost but the
 *   sample's compression.
 * - Explicit `zstd` or `gzip` always compress; on incompressible data both fall back to stored
 *   blocks, which add a few bytes per block (measured in the unit test: < 0.1 %).
 *
 * What was chosen is recorded where only the secret's holder reads it: a file's content code in its
 * sealed size (crypto.ts `CONTENT_*`), a directory's files in its encrypted directory nodes.
 */
import { Transform, type TransformCallback } from "node:stream";
import * as zlib from "node:zlib";
import { CONTENT_GZIP, CONTENT_RAW, CONTENT_ZSTD } from "./crypto.js";
import { DataError, InvalidParameterError } from "./errors.js";

/** A compression algorithm a manifest or directory node can name. */
export type Compression = "gzip" | "zstd";
/** What `--compress` accepts: an algorithm, `auto` (by measurement), or `none`. */
export type CompressionChoice = Compression | "auto" | "none";
export const COMPRESSION_CHOICES: readonly CompressionChoice[] = ["auto", "zstd", "gzip", "none"];

/** True when this Node's zlib has zstd (Node >= 22.15 / 23.8). */
export const ZSTD_AVAILABLE = typeof (zlib as { createZstdCompress?: unknown }).createZstdCompress === "function";
/** Bytes of a file `auto` compresses to decide. */
export const SAMPLE_BYTES = 256 * 1024;
/** Least fraction of the sample `auto` wants saved to keep compression. */
export const AUTO_MIN_SAVING = 0.1;
const ZSTD_LEVEL = 3;
const GZIP_LEVEL = 6;

/** zstd is asked for (or needed to decompress) and this Node's zlib lacks it. */
export class CompressionUnavailableError extends DataError<{ compression: string }> {
  constructor(compression: string) {
    super("ERR_COMPRESSION_UNAVAILABLE", `${compression} is not in this Node's zlib (${process.version}; zstd needs Node >= 22.15): use --compress=gzip, or a newer Node to read it`, {
      compression,
    });
  }
}

/** Decompressed data ran past the size recorded for it (a damaged or crafted entry: a decompression bomb). */
export class DecompressedSizeError extends DataError<{ expected: number; actual: number }> {
  constructor(expected: number, actual: number) {
    super("ERR_DECOMPRESSED_SIZE", `decompressed ${actual} bytes, ${expected} recorded`, { expected, actual });
  }
}

/** Parses `--compress` (a bare `--compress` is `auto`). */
export function parseCompressionChoice(value: string): CompressionChoice {
  if ((COMPRESSION_CHOICES as readonly string[]).includes(value)) return value as CompressionChoice;
  throw new InvalidParameterError("compress", value, `must be one of ${COMPRESSION_CHOICES.join(", ")}`);
}

/** The algorithm `auto` measures with and uses: zstd where available, else gzip. */
export function preferredCompression(): Compression {
  return ZSTD_AVAILABLE ? "zstd" : "gzip";
}

/**
 * Throws {@link CompressionUnavailableError} when `compression` is zstd and this Node lacks it
 * (`zstdAvailable`: whether it has it; given by tests, which run on a Node that always has it).
 */
export function requireAvailable(compression: Compression, zstdAvailable = ZSTD_AVAILABLE): void {
  if (compression === "zstd" && !zstdAvailable) throw new CompressionUnavailableError(compression);
}

/** A streaming compressor. */
export function compressor(compression: Compression): Transform {
  requireAvailable(compression);
  if (compression === "gzip") return zlib.createGzip({ level: GZIP_LEVEL });
  const z = zlib as unknown as { createZstdCompress(o: object): Transform; constants: Record<string, number> };
  return z.createZstdCompress({ params: { [z.constants.ZSTD_c_compressionLevel!]: ZSTD_LEVEL } });
}

/** A streaming decompressor (put {@link sizeLimit} after it: a crafted stream may expand without bound). */
export function decompressor(compression: Compression): Transform {
  requireAvailable(compression);
  if (compression === "gzip") return zlib.createGunzip();
  return (zlib as unknown as { createZstdDecompress(): Transform }).createZstdDecompress();
}

/** Passes bytes through and fails with {@link DecompressedSizeError} once more than `limit` went by. */
export function sizeLimit(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      seen += chunk.length;
      if (seen > limit) done(new DecompressedSizeError(limit, seen));
      else done(null, chunk);
    },
  });
}

/** Compresses `bytes` at once (the sample `auto` measures, tests). */
export function compressSync(compression: Compression, bytes: Uint8Array): Buffer {
  requireAvailable(compression);
  if (compression === "gzip") return zlib.gzipSync(bytes, { level: GZIP_LEVEL });
  const z = zlib as unknown as { zstdCompressSync(b: Uint8Array, o: object): Buffer; constants: Record<string, number> };
  return z.zstdCompressSync(bytes, { params: { [z.constants.ZSTD_c_compressionLevel!]: ZSTD_LEVEL } });
}

/** What {@link chooseCompression} decided, and the sample ratio it measured (stored / sample). */
export interface CompressionDecision {
  readonly compression: Compression | undefined;
  readonly ratio: number;
}

/**
 * The compression to store a file with, given its first bytes: `none` -> none; `zstd` / `gzip` ->
 * that one; `auto` -> the preferred one only if it saves at least {@link AUTO_MIN_SAVING} of the
 * sample (an empty sample: none).
 */
export function chooseCompression(choice: CompressionChoice, sample: Uint8Array): CompressionDecision {
  if (choice === "none") return { compression: undefined, ratio: 1 };
  if (choice !== "auto") {
    requireAvailable(choice);
    return { compression: choice, ratio: Number.NaN };
  }
  if (sample.length === 0) return { compression: undefined, ratio: 1 };
  const compression = preferredCompression();
  const ratio = compressSync(compression, sample.subarray(0, SAMPLE_BYTES)).length / Math.min(sample.length, SAMPLE_BYTES);
  return { compression: ratio <= 1 - AUTO_MIN_SAVING ? compression : undefined, ratio };
}

/** The content code (crypto.ts) of a file stored with `compression`. */
export function contentOf(compression: Compression | undefined): number {
  return compression === undefined ? CONTENT_RAW : compression === "gzip" ? CONTENT_GZIP : CONTENT_ZSTD;
}

/** The compression a file's content code says, or undefined for raw bytes (other codes: not a file). */
export function compressionOfContent(content: number): Compression | undefined {
  return content === CONTENT_GZIP ? "gzip" : content === CONTENT_ZSTD ? "zstd" : undefined;
}
