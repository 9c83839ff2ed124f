/** index/: per-Magu vector index (HNSW candidates, exact re-ranking by the canonical distance). */
export * from "./errors.js";
export * from "./constants.js";
export { openVectorIndex, type MetricName, type SearchHit, type SearchOptions, type VectorIndex, type VectorIndexOptions, type VectorIndexStats } from "./vector-index.js";
export { IndexWorker, IndexWorkerError, WorkerVectorIndex } from "./worker-host.js";
