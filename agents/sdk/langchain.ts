/**
 * A LangChain.js `VectorStore` backed by a vector Magu, through the HTTP API (MuriClient): the
 * vectors are the Magu's, and each document's text and metadata are kept as the vector's payload
 * (`{ pageContent, metadata }`, a JSON object of at most 4096 bytes, proven with every hit).
 *
 * - `addVectors` / `addDocuments` add rows; without `ids` the Magu numbers them (its next rows), and
 *   the ids are returned as decimal strings.
 * - `similaritySearchVectorWithScore` answers the top k with the Magu's distance as the score, in
 *   the units of the floats: squared L2, negated inner product, or cosine similarity; for l2 and ip a
 *   smaller score is nearer. No filters: a Magu searches all its vectors.
 * - `delete({ ids })` deletes by id (tombstones: a deleted id is retired for good).
 * - `fromTexts` / `fromDocuments` embed with the given Embeddings and add to `maguId`, or create a
 *   vector Magu of the embeddings' dimension first (`create` holds POST /v1/magus's other options).
 *
 * A search right after an add may not see it yet: each member indexes a batch once it is committed.
 */
import { Document, type DocumentInterface } from "@langchain/core/documents";
import type { EmbeddingsInterface } from "@langchain/core/embeddings";
import { VectorStore } from "@langchain/core/vectorstores";
import { MuriClient, type JsonBody } from "./client.js";

export interface MuriVectorStoreArgs {
  client: MuriClient;
  /** The vector Magu (created by fromTexts/fromDocuments when absent). */
  maguId?: string;
  /** Options of the Magu fromTexts/fromDocuments create when there is no maguId (its kind and dim are set). */
  create?: Omit<JsonBody<"/v1/magus", "post">, "kind" | "dim">;
  /** Search options: exact (brute force on the members), ef (HNSW effort), verify (default true). */
  exact?: boolean;
  ef?: number;
  verify?: boolean;
}

/** A vector's payload as this store writes it. */
interface DocumentPayload {
  pageContent: string;
  metadata: Record<string, unknown>;
}

export class MuriVectorStore extends VectorStore {
  declare FilterType: never;
  readonly client: MuriClient;
  maguId: string | undefined;
  private readonly args: MuriVectorStoreArgs;

  _vectorstoreType(): string {
    return "muri";
  }

  constructor(embeddings: EmbeddingsInterface, args: MuriVectorStoreArgs) {
    super(embeddings, args);
    this.client = args.client;
    this.maguId = args.maguId;
    this.args = args;
  }

  /** The Magu, created for vectors of `dim` when this store has none yet. */
  async ensureMagu(dim: number): Promise<string> {
    if (this.maguId === undefined) this.maguId = (await this.client.createMagu({ ...this.args.create, kind: "vector", dim })).id;
    return this.maguId;
  }

  async addVectors(vectors: number[][], documents: DocumentInterface[], options: { ids?: Array<string | number> } = {}): Promise<string[]> {
    if (vectors.length !== documents.length) throw new RangeError(`addVectors: ${vectors.length} vectors for ${documents.length} documents: give one vector per document`);
    if (vectors.length === 0) return [];
    const ids = options.ids;
    if (ids !== undefined && ids.length !== vectors.length) throw new RangeError(`addVectors: ${ids.length} ids for ${vectors.length} vectors: give one id per vector, or none`);
    for (const id of ids ?? []) {
      if (!/^[0-9]+$/.test(String(id))) throw new RangeError(`addVectors: id "${id}" is not a vector id (a non-negative integer, or its decimal string)`);
    }
    const maguId = await this.ensureMagu(vectors[0]!.length);
    const rows = vectors.map((vector, i) => {
      const payload: DocumentPayload = { pageContent: documents[i]!.pageContent, metadata: documents[i]!.metadata ?? {} };
      return { ...(ids === undefined ? {} : { id: String(ids[i]) }), vector, payload: payload as unknown as Record<string, unknown> };
    });
    const added = await this.client.addVectors(maguId, { vectors: rows });
    return ids !== undefined ? ids.map(String) : Array.from({ length: added.vectors }, (_, i) => String(added.firstRow + i));
  }

  async addDocuments(documents: DocumentInterface[], options: { ids?: Array<string | number> } = {}): Promise<string[]> {
    return this.addVectors(await this.embeddings.embedDocuments(documents.map((d) => d.pageContent)), documents, options);
  }

  async similaritySearchVectorWithScore(query: number[], k: number, filter?: this["FilterType"]): Promise<[DocumentInterface, number][]> {
    if (filter !== undefined) throw new TypeError("MuriVectorStore: filters are not supported (a Magu searches all its vectors)");
    if (this.maguId === undefined) throw new Error("MuriVectorStore: no Magu yet: add documents first, or give maguId");
    const answer = await this.client.search(this.maguId, {
      vector: query,
      k,
      ...(this.args.exact === undefined ? {} : { exact: this.args.exact }),
      ...(this.args.ef === undefined ? {} : { ef: this.args.ef }),
      ...(this.args.verify === undefined ? {} : { verify: this.args.verify }),
    });
    return answer.results.map((hit) => {
      const payload = (hit.payload ?? undefined) as Partial<DocumentPayload> | undefined;
      const doc = new Document({ pageContent: typeof payload?.pageContent === "string" ? payload.pageContent : "", metadata: payload?.metadata ?? {}, id: hit.id });
      return [doc, hit.distance];
    });
  }

  async delete(params: { ids: Array<string | number> }): Promise<void> {
    if (this.maguId === undefined) throw new Error("MuriVectorStore: no Magu: nothing to delete");
    await this.client.deleteVectors(this.maguId, params.ids);
  }

  static async fromTexts(texts: string[], metadatas: object[] | object, embeddings: EmbeddingsInterface, args: MuriVectorStoreArgs): Promise<MuriVectorStore> {
    const docs = texts.map((pageContent, i) => new Document({ pageContent, metadata: (Array.isArray(metadatas) ? metadatas[i] : metadatas) as Record<string, unknown> }));
    return MuriVectorStore.fromDocuments(docs, embeddings, args);
  }

  static async fromDocuments(docs: DocumentInterface[], embeddings: EmbeddingsInterface, args: MuriVectorStoreArgs): Promise<MuriVectorStore> {
    const store = new MuriVectorStore(embeddings, args);
    await store.addDocuments(docs);
    return store;
  }
}
