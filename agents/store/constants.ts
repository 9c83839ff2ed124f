/** Defaults of the store layer, in one place. */
import { FRAGMENT_SIZE } from "../data/constants.js";

/**
 * Schema version of the metadata database (all buckets, all layers). Bump it when any layer
 * changes the encoding of a bucket it owns; `openMetaDb` refuses a database with another version.
 */
export const META_SCHEMA_VERSION = 1;

/** Largest fragment the store accepts (guards memory against a peer announcing a huge fragment). */
export const MAX_FRAGMENT_BYTES = 4 * FRAGMENT_SIZE;

/** Default durability policy of fragment writes (see `SyncPolicy`). */
export const DEFAULT_SYNC_POLICY = "batch" as const;

/** With `sync: "batch"`: flush (fsync) once this many bytes were written since the last flush. */
export const DEFAULT_BATCH_SYNC_BYTES = 64 * FRAGMENT_SIZE;

/** With `sync: "batch"`: flush at least this often while writes are pending (ms). */
export const DEFAULT_BATCH_SYNC_INTERVAL_MS = 1000;

/** How many files a flush or a reconcile touches in parallel. */
export const IO_PARALLELISM = 4;

/** Sub-directories of a store directory. */
export const STORE_DIRS = {
  /** LevelDB metadata (when the store opens its own). */
  meta: "meta",
  /** Fragment files, `blocks/<2 hex>/<2 hex>/<cid>` sharded by the first digest bytes. */
  blocks: "blocks",
  /** Temporary files of writes in progress; emptied at open. Same filesystem as `blocks/`. */
  tmp: "tmp",
  /** Corrupt files moved out of `blocks/` for inspection; never served. */
  quarantine: "quarantine",
} as const;
