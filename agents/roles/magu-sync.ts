/**
 * How a node learns what to store: the Magu index document, the push acceptance policy, and the
 * sink that records what was accepted.
 *
 * A client that uploads a file to a blob Magu pushes, in this order, to every member:
 * 1. the file's manifest (DAG-JSON, data/manifest.ts: shard CIDs and fragment roots);
 * 2. the Magu index document (DAG-JSON, below): `{"magu":"<id>","manifest":{"/":"<cid>"},"type":"muri/magu-index","version":1}`;
 * then each shard to the member that placement names (docs/ENCODING.md § Placement).
 *
 * Acceptance rule (`acceptPush`):
 * - DAG-JSON documents up to `MAX_DOCUMENT_BYTES` from any peer; the sink then requires a manifest
 *   that validates against its CID, or an index document whose manifest this node already has,
 *   whose fragment roots fold to the Magu root committed on chain (same fragment count), and whose
 *   Magu has this node as an active member. Anything else is refused (the push fails).
 * - raw fragments only when their CID is one this node is assigned by a verified index document
 *   (placement of the member's slot). Everything else is refused before a byte is read.
 * Limitation: any peer can still fill the quota with valid manifests (no owner check yet).
 *
 * A verified index document is recorded in the Magu index (`recordFragments` + `setHeld`), which
 * is what the prover and a restart read; the assigned set is rebuilt from it at `load()`.
 */
import type { Address, Hex } from "viem";
import { CID } from "multiformats/cid";
import { RAW_CODEC } from "../data/constants.js";
import { DAG_JSON_CODEC, MANIFEST_TYPE, decodeManifest, manifestCidOf, type Manifest } from "../data/manifest.js";
import { maguRoot } from "../data/merkle.js";
import { fragmentsOfSlot } from "../data/placement.js";
import type { MuriContracts, MuriPublicClient } from "../chain/index.js";
import type { FragmentStore } from "../store/fragment-store.js";
import { silentLogger, type Logger } from "../store/logger.js";
import type { FragmentSink, IncomingPush, PushPolicy } from "../p2p/types.js";
import type { MaguIndex } from "./magu-index.js";

/** `type` of a Magu index document. */
export const MAGU_INDEX_TYPE = "muri/magu-index";
/** Version of the index document. */
export const MAGU_INDEX_VERSION = 1;
/** Largest DAG-JSON document (manifest or index) a node accepts by push. */
export const MAX_DOCUMENT_BYTES = 1 << 20;
/** MaguRegistry `Kind.Blob`. */
const KIND_BLOB = 0;
/** MaguRegistry `Status.Active`. */
const STATUS_ACTIVE = 2;

/** A Magu index document: which manifest a Magu's committed fragments belong to. */
export interface MaguIndexDocument {
  readonly maguId: bigint;
  readonly manifestCid: CID;
}

/** A document refused by the sink (wrong type, unknown manifest, root mismatch, not a member). */
export class MaguDocumentError extends Error {
  static readonly code = "ERR_MAGU_DOCUMENT";
  readonly code = MaguDocumentError.code;
  readonly context: { cid: string; reason: string };
  constructor(cid: string, reason: string) {
    super(`document ${cid} refused: ${reason}`);
    this.name = "MaguDocumentError";
    this.context = { cid, reason };
  }
}

/** Canonical DAG-JSON bytes and CID of an index document. */
export function encodeMaguIndexDocument(doc: MaguIndexDocument): { bytes: Buffer; cid: CID } {
  // Keys in byte order, no whitespace: the canonical DAG-JSON form.
  const text = `{"magu":${JSON.stringify(doc.maguId.toString())},"manifest":{"/":${JSON.stringify(doc.manifestCid.toString())}},"type":${JSON.stringify(MAGU_INDEX_TYPE)},"version":${MAGU_INDEX_VERSION}}`;
  const bytes = Buffer.from(text, "utf8");
  return { bytes, cid: manifestCidOf(bytes) };
}

/** Parses an index document; throws MaguDocumentError unless the bytes are exactly canonical. */
export function decodeMaguIndexDocument(bytes: Uint8Array, cid: CID): MaguIndexDocument {
  let parsed: { magu?: unknown; manifest?: { "/"?: unknown }; type?: unknown; version?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new MaguDocumentError(cid.toString(), "not JSON");
  }
  if (parsed.type !== MAGU_INDEX_TYPE || parsed.version !== MAGU_INDEX_VERSION) throw new MaguDocumentError(cid.toString(), "not a Magu index document");
  if (typeof parsed.magu !== "string" || !/^[1-9][0-9]{0,76}$/.test(parsed.magu)) throw new MaguDocumentError(cid.toString(), "bad magu id");
  if (typeof parsed.manifest?.["/"] !== "string") throw new MaguDocumentError(cid.toString(), "bad manifest link");
  let manifestCid: CID;
  try {
    manifestCid = CID.parse(parsed.manifest["/"]);
  } catch {
    throw new MaguDocumentError(cid.toString(), "manifest link does not parse");
  }
  const doc = { maguId: BigInt(parsed.magu), manifestCid };
  if (!Buffer.from(encodeMaguIndexDocument(doc).bytes).equals(Buffer.from(bytes))) throw new MaguDocumentError(cid.toString(), "not canonical");
  return doc;
}

export interface MaguSyncInit {
  /** This node's address. */
  member: Address;
}

export interface MaguSyncComponents {
  store: FragmentStore;
  index: MaguIndex;
  /** Read-only contract handles (chain reads of the Magu being indexed). */
  contracts: MuriContracts<MuriPublicClient>;
  logger?: Logger;
}

export interface MaguSync {
  /** Rebuilds the assigned-CID set from the Magu index (call before serving pushes). */
  load(): Promise<void>;
  /** The p2p push policy (see the module comment). */
  readonly acceptPush: PushPolicy;
  /** The p2p sink: validates documents, records verified index documents, stores the bytes. */
  readonly sink: FragmentSink;
  /** Whether this node is assigned fragment `cid`. */
  isAssigned(cid: CID): boolean;
  /** Magus with a verified index, id -> number of fragments held here. */
  held(): ReadonlyMap<bigint, number>;
}

export function createMaguSync(init: MaguSyncInit, components: MaguSyncComponents): MaguSync {
  const log = components.logger ?? silentLogger;
  const { store, index } = components;
  const registry = components.contracts.maguRegistry;
  const me = init.member.toLowerCase();
  /** CID string -> Magu id. */
  const assigned = new Map<string, bigint>();
  const heldCount = new Map<bigint, number>();

  const assign = (maguId: bigint, cids: readonly CID[], held: readonly number[]): void => {
    for (const f of held) assigned.set(cids[f]!.toString(), maguId);
    heldCount.set(maguId, held.length);
  };

  const verifyIndex = async (doc: MaguIndexDocument, docCid: CID): Promise<void> => {
    const reject = (reason: string): never => {
      throw new MaguDocumentError(docCid.toString(), reason);
    };
    if (!(await store.has(doc.manifestCid))) reject(`manifest ${doc.manifestCid} not here: push it first`);
    let manifest: Manifest;
    try {
      manifest = decodeManifest(await store.get(doc.manifestCid), doc.manifestCid);
    } catch (err) {
      return reject(`manifest unreadable (${(err as Error).message})`);
    }
    const info = await registry.read.maguInfo([doc.maguId]);
    if (info.params.kind !== KIND_BLOB) reject("not a blob Magu");
    if (info.status !== STATUS_ACTIVE) reject(`Magu status ${info.status}, not active`);
    const slot = info.members.findIndex((a) => a.toLowerCase() === me);
    if (slot < 0) reject("this node is not a member");
    const { k, m } = manifest.erasure;
    if (k !== info.params.dataShards || m !== info.params.parityShards) reject(`manifest k=${k} m=${m}, Magu k=${info.params.dataShards} m=${info.params.parityShards}`);
    const roots = manifest.roots.map((r) => Buffer.from(r, "hex"));
    const root = `0x${maguRoot(roots).toString("hex")}` as Hex;
    if (info.fragmentCount !== roots.length || root.toLowerCase() !== info.root.toLowerCase()) {
      reject(`manifest folds to ${root} over ${roots.length} fragments; chain has ${info.root} over ${info.fragmentCount}`);
    }
    const held = fragmentsOfSlot(doc.maguId, roots.length, info.params.members, slot, { k, m });
    await index.recordFragments(doc.maguId, info.root, roots, manifest.shards);
    await index.setHeld(doc.maguId, held);
    assign(doc.maguId, manifest.shards, held);
    log.info("magu index recorded", { magu: doc.maguId.toString(), slot, fragments: roots.length, held: held.length });
  };

  const acceptPush: PushPolicy = (push: IncomingPush) => {
    if (push.cid.code === DAG_JSON_CODEC) return push.length <= MAX_DOCUMENT_BYTES;
    if (push.cid.code === RAW_CODEC) return assigned.has(push.cid.toString());
    return false;
  };

  const sink: FragmentSink = {
    async put(cid: CID, bytes: Uint8Array) {
      if (cid.code === RAW_CODEC) {
        if (!assigned.has(cid.toString())) throw new MaguDocumentError(cid.toString(), "fragment not assigned to this node");
        await store.put(cid, bytes);
        return;
      }
      if (cid.code !== DAG_JSON_CODEC) throw new MaguDocumentError(cid.toString(), "unsupported codec");
      let type: unknown;
      try {
        type = (JSON.parse(Buffer.from(bytes).toString("utf8")) as { type?: unknown }).type;
      } catch {
        throw new MaguDocumentError(cid.toString(), "not JSON");
      }
      if (type === MANIFEST_TYPE) {
        decodeManifest(bytes, cid);
        await store.put(cid, bytes);
      } else if (type === MAGU_INDEX_TYPE) {
        const doc = decodeMaguIndexDocument(bytes, cid);
        await verifyIndex(doc, cid);
        await store.put(cid, bytes);
      } else {
        throw new MaguDocumentError(cid.toString(), `unknown document type ${JSON.stringify(type)}`);
      }
    },
  };

  return {
    async load() {
      assigned.clear();
      heldCount.clear();
      for (const id of await index.maguIds()) {
        const rec = await index.get(id);
        if (rec !== undefined) assign(id, rec.cids, rec.held);
      }
      log.info("magu index loaded", { magus: heldCount.size, assigned: assigned.size });
    },
    acceptPush,
    sink,
    isAssigned: (cid) => assigned.has(cid.toString()),
    held: () => heldCount,
  };
}
