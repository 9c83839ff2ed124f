/**
 * Errors of the store layer: one class per condition, each with a stable `code` and a structured
 * `context` (the Lodestar `LodestarError` / libp2p named-error habit). Callers branch on `code`
 * (or `instanceof`), never on the message.
 */
import { MuriError } from "../data/muri-error.js";

/** Base class of every store error. */
export class StoreError<Context extends object = Record<string, unknown>> extends MuriError<Context> {}

/** A write would take the store past its configured quota. Nothing was written. */
export class StoreFullError extends StoreError<{ needed: number; free: number; quota: number }> {
  static readonly code = "ERR_STORE_FULL";
  constructor(context: { needed: number; free: number; quota: number }) {
    super(
      StoreFullError.code,
      `store full: fragment needs ${context.needed} bytes, ${context.free} of the ${context.quota}-byte quota free`,
      context,
    );
  }
}

/**
 * The capacity an operator asked for does not fit the node's disk (or is below one fragment). Thrown
 * at start, before anything is registered; the message names the numbers (capacity.ts).
 */
export class CapacityError extends StoreError<{ asked: string; dir: string; freeBytes: number; storedBytes: number }> {
  static readonly code = "ERR_CAPACITY";
  constructor(context: { asked: string; dir: string; freeBytes: number; storedBytes: number }, message: string) {
    super(CapacityError.code, message, context);
  }
}

/** The disk itself ran out of space (ENOSPC/EDQUOT) during a write. The partial write was removed. */
export class DiskFullError extends StoreError<{ cid: string; needed: number; path: string; syscall?: string }> {
  static readonly code = "ERR_DISK_FULL";
  constructor(context: { cid: string; needed: number; path: string; syscall?: string }, cause?: unknown) {
    super(
      DiskFullError.code,
      `disk full while writing fragment ${context.cid} (${context.needed} bytes) under ${context.path}; ` +
        `the partial write was removed: free disk space or lower the store quota`,
      context,
      { cause },
    );
  }
}

/** The bytes offered for a CID do not hash to it. Nothing was stored. */
export class CidMismatchError extends StoreError<{ cid: string; actual: string; size: number }> {
  static readonly code = "ERR_CID_MISMATCH";
  constructor(context: { cid: string; actual: string; size: number }) {
    super(
      CidMismatchError.code,
      `bytes do not match CID ${context.cid}: ${context.size} bytes hash to ${context.actual}`,
      context,
    );
  }
}

/** The CID uses a hash the store cannot verify (only sha2-256 and fragment roots are supported). */
export class UnsupportedCidError extends StoreError<{ cid: string; hashCode: number }> {
  static readonly code = "ERR_UNSUPPORTED_CID";
  constructor(context: { cid: string; hashCode: number }) {
    super(
      UnsupportedCidError.code,
      `CID ${context.cid} uses multihash 0x${context.hashCode.toString(16)}; the store verifies sha2-256 (0x12) and fragment-root CIDs only`,
      context,
    );
  }
}

/** The fragment is larger than the store accepts. Nothing was stored. */
export class FragmentTooLargeError extends StoreError<{ cid: string; size: number; max: number }> {
  static readonly code = "ERR_FRAGMENT_TOO_LARGE";
  constructor(context: { cid: string; size: number; max: number }) {
    super(
      FragmentTooLargeError.code,
      `fragment ${context.cid} is ${context.size} bytes, more than the ${context.max}-byte maximum`,
      context,
    );
  }
}

/** No fragment with this CID is stored. */
export class FragmentNotFoundError extends StoreError<{ cid: string }> {
  static readonly code = "ERR_FRAGMENT_NOT_FOUND";
  constructor(context: { cid: string }) {
    super(FragmentNotFoundError.code, `fragment ${context.cid} is not in the store`, context);
  }
}

/**
 * The stored file no longer matches its CID (bit rot, truncation after a power loss, tampering).
 * The entry has been removed from the store and the file moved to `quarantinedTo`, so it is never
 * served again; the fragment must be fetched again from another holder.
 */
export class CorruptFragmentError extends StoreError<{
  cid: string;
  reason: "hash" | "size";
  expectedSize: number;
  actualSize: number;
  quarantinedTo?: string;
}> {
  static readonly code = "ERR_FRAGMENT_CORRUPT";
  constructor(context: {
    cid: string;
    reason: "hash" | "size";
    expectedSize: number;
    actualSize: number;
    quarantinedTo?: string;
  }) {
    super(
      CorruptFragmentError.code,
      `stored fragment ${context.cid} is corrupt (${
        context.reason === "hash"
          ? "content does not hash to its CID"
          : `size ${context.actualSize}, expected ${context.expectedSize}`
      }); it was removed from the store${context.quarantinedTo ? ` and moved to ${context.quarantinedTo}` : ""}`,
      context,
    );
  }
}

/** A streamed put delivered a different number of bytes than it announced. Nothing was stored. */
export class StreamLengthError extends StoreError<{ cid: string; expected: number; received: number }> {
  static readonly code = "ERR_STREAM_LENGTH";
  constructor(context: { cid: string; expected: number; received: number }) {
    super(
      StreamLengthError.code,
      `stream for fragment ${context.cid} announced ${context.expected} bytes but delivered ${
        context.received > context.expected ? "more than that" : context.received
      }`,
      context,
    );
  }
}

/** The store (or metadata database) was used after `close()`. */
export class StoreClosedError extends StoreError<{ dir: string }> {
  static readonly code = "ERR_STORE_CLOSED";
  constructor(context: { dir: string }) {
    super(StoreClosedError.code, `fragment store at ${context.dir} is closed`, context);
  }
}

/** An option passed to the store is invalid. */
export class InvalidStoreOptionError extends StoreError<{ option: string; value: unknown }> {
  static readonly code = "ERR_INVALID_STORE_OPTION";
  constructor(context: { option: string; value: unknown }, detail: string) {
    super(InvalidStoreOptionError.code, `invalid store option ${context.option}=${String(context.value)}: ${detail}`, context);
  }
}

/** Another process (or another instance in this one) holds the LevelDB lock on this directory. */
export class DatabaseLockedError extends StoreError<{ path: string }> {
  static readonly code = "ERR_DB_LOCKED";
  constructor(context: { path: string }, cause?: unknown) {
    super(
      DatabaseLockedError.code,
      `metadata database ${context.path} is locked by another process: ` +
        `is another muri node already running with this data directory? Stop it or use another --data-dir`,
      context,
      { cause },
    );
  }
}

/** The metadata database was written by another schema version of this software. */
export class SchemaVersionMismatchError extends StoreError<{ path: string; found: number; expected: number }> {
  static readonly code = "ERR_SCHEMA_VERSION_MISMATCH";
  constructor(context: { path: string; found: number; expected: number }) {
    super(
      SchemaVersionMismatchError.code,
      `metadata database ${context.path} has schema version ${context.found}, this software expects ${context.expected}: ` +
        (context.found > context.expected
          ? "it was written by a newer version; upgrade muri"
          : "it needs a migration (or move the directory aside and resync)"),
      context,
    );
  }
}

/** The metadata database could not be opened for a reason other than the lock (corruption, permissions). */
export class DatabaseOpenError extends StoreError<{ path: string; causeCode?: string }> {
  static readonly code = "ERR_DB_OPEN";
  constructor(context: { path: string; causeCode?: string }, cause?: unknown) {
    super(
      DatabaseOpenError.code,
      `cannot open metadata database ${context.path}: ${innermostMessage(cause)}`,
      context,
      { cause },
    );
  }
}

/** The message of the deepest `cause` (LevelDB wraps the useful one in "Database failed to open"). */
function innermostMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e?.cause !== undefined && e.cause !== null) e = e.cause as { message?: string; cause?: unknown };
  return e?.message ?? "unknown error";
}
