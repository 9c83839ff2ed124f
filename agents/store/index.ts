/** store/: content-addressed fragment store (files + LevelDB metadata) and the shared metadata DB. */
export * from "./errors.js";
export * from "./constants.js";
export * from "./capacity.js";
export type { Logger } from "./logger.js";
export { silentLogger } from "./logger.js";
export {
  Bucket,
  MetaKey,
  bucketKey,
  decodeUint32,
  encodeUint32,
  openMetaDb,
  type BucketView,
  type MetaBatchOp,
  type MetaDb,
  type MetaKeyInput,
  type OpenMetaDbOptions,
  type WriteOptions,
} from "./meta-db.js";
export {
  openFragmentStore,
  servingView,
  type FragmentReadStream,
  type FragmentStore,
  type FragmentStoreInit,
  type FragmentStoreStats,
  type FsckReport,
  type GetOptions,
  type PutOptions,
  type StoreFs,
  type SyncPolicy,
} from "./fragment-store.js";
