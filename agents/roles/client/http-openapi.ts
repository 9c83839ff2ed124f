/**
 * The OpenAPI 3.1 description of the vector routes (http-vectors.ts) and of operations
 * (`Prefer: respond-async`, operations.ts); http-api.ts merges it into the document at /v1/api.
 */
import { CLIENT_DEFAULTS } from "./defaults.js";
import { MAX_BATCH_QUERIES, VECTOR_FILE_TYPES } from "./http-vectors.js";
import { DEFAULT_BLOB_STRIPES, DEFAULT_VECTOR_FRAGMENTS } from "./magu-create.js";

const problem = { $ref: "#/components/responses/Problem" };
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ "application/json": { schema } });
const decimal = { type: "string", pattern: "^[0-9]+$", description: "a decimal integer (uint256 and uint64 values do not fit a JSON number)" };
const idish = { oneOf: [{ type: "integer", minimum: 0 }, decimal] };
const vector = { type: "array", items: { type: "number" }, description: "the Magu's dimension of numbers (Hamming: of 0/1)" };

/** `Prefer: respond-async`: 202 and an operation instead of waiting. */
export const preferParam = { name: "Prefer", in: "header", required: false, description: "respond-async: answer 202 with an operation (Location: /v1/operations/{id}) at once", schema: { type: "string", example: "respond-async" } };
/** The 202 answer of a request that asked for an operation. */
export const accepted = {
  description: "accepted (Prefer: respond-async): poll the operation",
  headers: { Location: { description: "/v1/operations/{id}", schema: { type: "string" } } },
  content: json(ref("Operation")),
};
const maguId = { name: "id", in: "path", required: true, description: "the Magu id (POST /v1/magus answers it)", schema: decimal };

const hit = {
  type: "object",
  required: ["id", "distance", "canonical", "fragment", "position"],
  properties: {
    id: decimal,
    distance: { type: "number", description: "in the units of the floats (squared L2, negated inner product or cosine similarity); Hamming: differing bits" },
    canonical: { ...decimal, pattern: "^-?[0-9]+$", description: "the exact integer distance at the Magu's scale" },
    fragment: { type: "integer" },
    position: { type: "integer" },
    payload: { type: ["object", "null"], description: "the vector's payload, proven with the hit (absent when verify is false)" },
  },
};

/** Schemas of the vector routes and of operations. */
export function vectorSchemas(): Record<string, unknown> {
  return {
    Operation: {
      type: "object",
      required: ["id", "kind", "state", "created", "updated", "progress"],
      properties: {
        id: { type: "string" },
        kind: { type: "string", enum: ["put", "add", "delete", "create", "task"] },
        state: { type: "string", enum: ["running", "done", "failed"] },
        created: { type: "string", format: "date-time" },
        updated: { type: "string", format: "date-time" },
        progress: {
          type: "object",
          required: ["phase"],
          description: "what the work reported last: every counter only grows while it runs (the same events muri put's progress line reads)",
          properties: {
            phase: { type: "string", description: "what it does now, in words" },
            bytesReceived: { type: "integer", description: "bytes of the request body" },
            vectors: { type: "integer", description: "an add: vectors in the body" },
            bytesTotal: { type: "integer", description: "a put: bytes to encode; an add: bytes of the packed fragments" },
            bytesEncoded: { type: "integer", description: "of bytesTotal, read into the encoder" },
            fragmentsTotal: { type: "integer", description: "fragment pushes to make (a put: one per shard; an add: one per fragment and holder)" },
            fragmentsPushed: { type: "integer", description: "of fragmentsTotal, taken by their member" },
            acksTotal: { type: "integer", description: "members asked to acknowledge the batch" },
            acksReceived: { type: "integer", description: "of acksTotal, acknowledged" },
          },
        },
        result: { description: "when done: what the request answers without Prefer: respond-async" },
        problem: { type: "object", description: "when failed: an RFC 9457 problem", required: ["type", "title", "status", "detail", "code"] },
      },
    },
    MaguCreate: {
      type: "object",
      required: ["kind"],
      description: "the options of muri magu create, with its defaults",
      properties: {
        kind: { type: "string", enum: ["blob", "vector"] },
        dim: { type: "integer", minimum: 0, description: "vector: the dimension (Hamming: bits); required" },
        metric: { type: "string", enum: ["l2", "ip", "cosine", "hamming"], default: "l2" },
        replication: { type: "integer", minimum: 0, maximum: 255, default: 1 },
        members: { type: "integer", minimum: 0, maximum: 255, description: "default K + M (blob), R (vector)" },
        dataShards: { type: "integer", minimum: 0, maximum: 255, default: 1 },
        parityShards: { type: "integer", minimum: 0, maximum: 255, default: 1 },
        fragments: { type: "integer", minimum: 1, description: `fragments paid for (default: blob ${DEFAULT_BLOB_STRIPES} stripes of K + M, vector ${DEFAULT_VECTOR_FRAGMENTS})` },
        size: { type: "integer", minimum: 1, description: "the data you will store, in bytes: sets fragments (not with fragments)" },
        periods: { type: "integer", minimum: 1, default: Number(CLIENT_DEFAULTS.durationPeriods) },
        price: { type: "string", description: "MURI per fragment per period (decimal)" },
        public: { type: "boolean", default: false },
      },
    },
    MaguCreated: {
      type: "object",
      required: ["id", "owner", "kind", "escrow", "formationDeposit", "params", "visibility", "status", "members", "startPeriod", "endPeriod", "txs"],
      properties: {
        id: decimal,
        owner: { type: "string" },
        kind: { type: "string" },
        escrow: decimal,
        formationDeposit: decimal,
        params: { type: "object" },
        defaulted: { type: "array", items: { type: "string" } },
        visibility: { type: "string", enum: ["public", "private"] },
        status: { type: "string" },
        members: { type: "array", items: { type: "string" } },
        startPeriod: decimal,
        endPeriod: decimal,
        txs: { type: "object" },
      },
    },
    VectorRows: {
      type: "object",
      required: ["vectors"],
      properties: {
        vectors: {
          type: "array",
          minItems: 1,
          items: { type: "object", required: ["vector"], properties: { id: idish, vector, payload: { type: ["object", "null"], description: "a JSON object of at most 4096 bytes, returned with each hit" } } },
        },
      },
    },
    AddResult: {
      type: "object",
      required: ["maguId", "vectors", "firstRow", "fragments", "fragmentCount", "manifestCid"],
      properties: { maguId: decimal, vectors: { type: "integer" }, firstRow: { type: "integer" }, fragments: { type: "integer" }, fragmentCount: { type: "integer" }, manifestCid: { type: "string" }, scaleExp: { type: ["integer", "null"] }, missing: { type: "array" } },
    },
    DeleteResult: {
      type: "object",
      required: ["maguId", "deleted", "alreadyDeleted", "fragments", "fragmentCount", "manifestCid"],
      properties: { maguId: decimal, deleted: { type: "integer" }, alreadyDeleted: { type: "integer" }, fragments: { type: "integer" }, fragmentCount: { type: "integer" }, manifestCid: { type: "string" } },
    },
    Search: {
      type: "object",
      description: "exactly one of vector and vectors",
      properties: {
        vector,
        vectors: { type: "array", items: vector, maxItems: MAX_BATCH_QUERIES },
        k: { type: "integer", minimum: 1, maximum: 1000, default: 10 },
        ef: { type: "integer", minimum: 1, maximum: 100000, description: "HNSW effort on the nodes (not with exact)" },
        exact: { type: "boolean", default: false },
        verify: { type: "boolean", default: true, description: "check every hit's proof against the root on chain" },
      },
    },
    SearchResult: {
      type: "object",
      required: ["maguId", "k", "results", "verified", "asked", "failed", "complete", "uncovered"],
      properties: {
        maguId: decimal,
        k: { type: "integer" },
        scaleExp: { type: ["integer", "null"] },
        results: { type: "array", items: hit },
        verified: { type: "boolean" },
        rejected: { type: "array", items: { type: "object", properties: { member: { type: "string" }, reason: { type: "string" } } } },
        unproven: { type: "integer" },
        asked: { type: "integer" },
        failed: { type: "integer" },
        complete: { type: "boolean" },
        uncovered: { type: "array", items: { type: "integer" } },
        ms: { type: "number" },
      },
    },
    SearchBatchResult: { type: "object", required: ["maguId", "k", "queries"], properties: { maguId: decimal, k: { type: "integer" }, queries: { type: "array", items: ref("SearchResult") } } },
    Task: { type: "object", required: ["vector"], properties: { vector, k: { type: "integer", minimum: 1, maximum: 1000, default: 10 }, fee: { type: "string", default: "1", description: "MURI, split among the members that answered" } } },
  };
}

/** Paths of the vector routes and of operations. */
export function vectorPaths(): Record<string, unknown> {
  const jsonBody = (name: string) => ({ required: true, content: json(ref(name)) });
  return {
    "/v1/operations/{id}": {
      get: {
        summary: "a long request's state, progress and result (or problem); the last few hundred are kept",
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
        responses: { "200": { description: "the operation", content: json(ref("Operation")) }, "401": problem, "404": problem },
      },
    },
    "/v1/magus": {
      post: {
        summary: "create and form a Magu (muri magu create): a vector Magu needs dim",
        parameters: [preferParam],
        requestBody: jsonBody("MaguCreate"),
        responses: { "201": { description: "formed", content: json(ref("MaguCreated")) }, "202": accepted, "400": problem, "401": problem, "402": problem, "415": problem, "503": problem },
      },
    },
    "/v1/magus/{id}/vectors": {
      post: {
        summary: "add vectors (muri vectors add): JSON rows, or a .npy / .fvecs file's bytes",
        parameters: [maguId, preferParam, { name: "fragmentSize", in: "query", required: false, description: "bytes per fragment, whole records (default 262144)", schema: { type: "integer", minimum: 1024, maximum: 1048576 } }],
        requestBody: {
          required: true,
          content: {
            ...json(ref("VectorRows")),
            ...Object.fromEntries(Object.entries(VECTOR_FILE_TYPES).map(([type, ext]) => [type, { schema: { type: "string", format: "binary", description: `a ${ext} file` } }])),
          },
        },
        responses: { "201": { description: "committed and pushed", content: json(ref("AddResult")) }, "202": accepted, "400": problem, "401": problem, "403": problem, "404": problem, "409": problem, "413": problem, "415": problem, "507": problem },
      },
    },
    "/v1/magus/{id}/vectors/delete": {
      post: {
        summary: "delete vectors by id (muri vectors delete): a tombstone batch",
        parameters: [maguId, preferParam],
        requestBody: { required: true, content: json({ type: "object", required: ["ids"], properties: { ids: { type: "array", minItems: 1, items: idish } } }) },
        responses: { "200": { description: "committed", content: json(ref("DeleteResult")) }, "202": accepted, "400": problem, "401": problem, "403": problem, "404": problem, "409": problem },
      },
    },
    "/v1/magus/{id}/search": {
      post: {
        summary: "top-k search (muri search): one query (vector) or a batch (vectors)",
        parameters: [maguId],
        requestBody: jsonBody("Search"),
        responses: {
          "200": { description: "the hits in rank order, each proven unless verify is false", content: json({ oneOf: [ref("SearchResult"), ref("SearchBatchResult")] }) },
          "400": problem,
          "401": problem,
          "402": problem,
          "403": problem,
          "404": problem,
          "409": problem,
        },
      },
    },
    "/v1/magus/{id}/tasks": {
      post: {
        summary: "submit an on-chain search task (muri search --onchain); poll its operation for the finalized answer",
        parameters: [maguId],
        requestBody: jsonBody("Task"),
        responses: { "202": accepted, "400": problem, "401": problem, "404": problem, "409": problem },
      },
    },
  };
}
