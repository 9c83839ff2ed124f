/**
 * Named errors of the vector index layer (index/), under {@link MuriError} like every layer's: a
 * stable `code` and a typed `context`; branch on `instanceof` or `code`, never on message text.
 */
import { MuriError } from "../data/muri-error.js";

/** Base class of every index-layer error. */
export class IndexError<C extends Record<string, unknown> = Record<string, unknown>> extends MuriError<C> {}

/**
 * The saved index cannot be used: the sidecar or the HNSW file is missing, truncated, fails its
 * checksum or disagrees with the other. Nothing was loaded. The fix is always the same: delete the
 * directory and rebuild the index from the Magu's fragments (addFragment for each one held).
 */
export class IndexCorruptError extends IndexError<{ dir: string; file: string; reason: string }> {
  constructor(dir: string, file: string, reason: string, cause?: unknown) {
    super(
      "ERR_INDEX_CORRUPT",
      `vector index in ${dir} is unusable (${file}: ${reason}); delete the directory and rebuild the index from the Magu's fragments`,
      { dir, file, reason },
      { cause },
    );
  }
}

/** The saved index was built for another dimension or metric than the one asked for. */
export class IndexMismatchError extends IndexError<{ dir: string; field: "dim" | "metric"; stored: string; requested: string }> {
  constructor(dir: string, field: "dim" | "metric", stored: string | number, requested: string | number) {
    super(
      "ERR_INDEX_MISMATCH",
      `vector index in ${dir} holds ${field} ${stored} vectors, ${field} ${requested} was asked for; open it with the Magu's ${field}, or use another directory (or delete this one) to build a new index`,
      { dir, field, stored: String(stored), requested: String(requested) },
    );
  }
}

/** An option or argument the index does not accept. */
export class IndexOptionError extends IndexError<{ name: string; value: string; reason: string }> {
  constructor(name: string, value: unknown, reason: string) {
    super("ERR_INDEX_OPTION", `invalid ${name} (${String(value)}): ${reason}`, { name, value: String(value), reason });
  }
}

/** The index was closed; open it again. */
export class IndexClosedError extends IndexError<{ dir: string }> {
  constructor(dir: string) {
    super("ERR_INDEX_CLOSED", `vector index in ${dir} is closed`, { dir });
  }
}
