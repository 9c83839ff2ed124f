/**
 * Disk a node no longer owes: once it left a Magu (dropped, evicted, replaced) or the Magu settled,
 * no challenge can name its fragments again, so their files, the Magu's record in the Magu index,
 * its search index and its assignment are collected. A fragment another Magu's record still holds
 * (the same bytes stored twice) stays.
 */
import type { CID } from "multiformats/cid";
import type { FragmentStore } from "../../store/fragment-store.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { heldCids, type MaguIndex } from "../shared/magu-index.js";
import type { MaguSync } from "../shared/magu-sync.js";

export interface CollectComponents {
  store: FragmentStore;
  index: MaguIndex;
  sync: Pick<MaguSync, "forget">;
  /** The vector service's rollBack (`keep` 0 drops the Magu's document and search index). */
  vectors?: { maguIds(): readonly bigint[]; rollBack(maguId: bigint, keep: number): Promise<unknown> };
  logger?: Logger;
}

/** What collecting one Magu freed. */
export interface Collected {
  fragments: number;
  bytes: number;
  /** Fragments kept because another Magu holds them too. */
  shared: number;
}

/** Collects `maguId`'s data from this node (idempotent: a Magu not recorded here frees nothing). */
export async function collectMagu(maguId: bigint, reason: string, c: CollectComponents): Promise<Collected> {
  const log = c.logger ?? silentLogger;
  const out: Collected = { fragments: 0, bytes: 0, shared: 0 };
  c.sync.forget(maguId);
  if (c.vectors?.maguIds().includes(maguId)) await c.vectors.rollBack(maguId, 0);
  const record = await c.index.get(maguId);
  if (record === undefined) return out;
  const mine = record.held.map((f) => record.cids[f]).filter((cid): cid is CID => cid !== undefined);
  const elsewhere = await heldCids(c.index, maguId);
  for (const cid of mine) {
    if (elsewhere.has(cid.toString())) {
      out.shared++;
      continue;
    }
    const before = c.store.stats().usedBytes;
    if (await c.store.delete(cid)) {
      out.fragments++;
      out.bytes += before - c.store.stats().usedBytes;
    }
  }
  await c.index.remove(maguId);
  log.info("magu collected: this node no longer answers for it", { magu: maguId.toString(), reason, ...out });
  return out;
}
