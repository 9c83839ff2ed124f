/**
 * File manifests pushed to a node but not yet named by a verified Magu index: kept in memory,
 * bounded in all and per pushing peer, oldest dropped first, and written to disk only when an
 * index document that lists them is verified (its manifests fold to the Magu's committed or
 * proposed root, within the fragments its owner paid for). A manifest is valid by its CID alone,
 * so before this any peer could fill a node's or a validator's quota with made-up ones (issue 12).
 */
import type { CID } from "multiformats/cid";

/** Bytes of staged manifests kept at once, all peers together. */
export const STAGED_MANIFEST_BYTES = 64 * 1024 * 1024;
/** Bytes of staged manifests kept for one peer; its oldest go first past this. */
export const STAGED_MANIFEST_BYTES_PER_PEER = 16 * 1024 * 1024;

export interface StagedManifestsInit {
  maxBytes?: number;
  maxBytesPerPeer?: number;
}

/** Manifests waiting for their index, by CID (insertion order = age). */
export class StagedManifests {
  private readonly entries = new Map<string, { bytes: Uint8Array; peer: string }>();
  private readonly byPeer = new Map<string, number>();
  private total = 0;
  private readonly maxBytes: number;
  private readonly maxBytesPerPeer: number;

  constructor(init: StagedManifestsInit = {}) {
    this.maxBytes = init.maxBytes ?? STAGED_MANIFEST_BYTES;
    this.maxBytesPerPeer = init.maxBytesPerPeer ?? STAGED_MANIFEST_BYTES_PER_PEER;
  }

  /** Keeps `bytes` (a decoded, valid manifest) from `peer` until an index names it or it ages out. */
  add(cid: CID, bytes: Uint8Array, peer: string): void {
    const key = cid.toString();
    if (this.entries.has(key)) return;
    this.entries.set(key, { bytes, peer });
    this.total += bytes.length;
    this.byPeer.set(peer, (this.byPeer.get(peer) ?? 0) + bytes.length);
    for (const [k, e] of this.entries) {
      if ((this.byPeer.get(peer) ?? 0) <= this.maxBytesPerPeer) break;
      if (e.peer === peer && k !== key) this.drop(k);
    }
    for (const k of this.entries.keys()) {
      if (this.total <= this.maxBytes) break;
      if (k !== key) this.drop(k);
    }
  }

  /** The staged bytes of `cid`, if any. */
  get(cid: CID): Uint8Array | undefined {
    return this.entries.get(cid.toString())?.bytes;
  }

  /** Forgets `cid` (it was written to disk, or dropped). */
  drop(key: string): void {
    const e = this.entries.get(key);
    if (e === undefined) return;
    this.entries.delete(key);
    this.total -= e.bytes.length;
    const left = (this.byPeer.get(e.peer) ?? 0) - e.bytes.length;
    if (left > 0) this.byPeer.set(e.peer, left);
    else this.byPeer.delete(e.peer);
  }

  /** Bytes staged now. */
  get bytes(): number {
    return this.total;
  }

  /** Manifests staged now. */
  get size(): number {
    return this.entries.size;
  }
}
