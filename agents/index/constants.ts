/** Defaults of the vector index (agents/index/README.md explains how they were chosen). */

/** HNSW graph degree (links per node per layer; 2·M on the base layer). */
export const DEFAULT_M = 16;
/** Candidate list size while inserting (graph quality vs build time). */
export const DEFAULT_EF_CONSTRUCTION = 100;
/**
 * Candidate list size while searching: HNSW returns max(k, ef) candidates, re-ranked exactly.
 * Measured recall@10 (bench/vector-index.ts) is in the README.
 */
export const DEFAULT_EF_SEARCH = 64;
/** Graph capacity allocated at creation; it grows (×1.5 at least) as fragments arrive. */
export const DEFAULT_INITIAL_CAPACITY = 1024;
/** The HNSW level generator's seed: the same fragments added in the same order give the same graph. */
export const HNSW_RANDOM_SEED = 100;
/** Points inserted between two yields to the event loop while adding a fragment. */
export const INSERT_YIELD_EVERY = 256;

/** The sidecar (records, fragments, checksums): the commit point of a save. */
export const SIDECAR_FILE = "index.meta";
/** HNSW graph files are `graph-<generation>.hnsw`; the sidecar names the current one. */
export const GRAPH_FILE_PREFIX = "graph-";
export const GRAPH_FILE_SUFFIX = ".hnsw";
/** Sidecar format version. */
export const SIDECAR_VERSION = 1;
