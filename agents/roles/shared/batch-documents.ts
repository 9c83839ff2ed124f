/**
 * A batch's documents by the CID `DataCommitted` names: how a node that missed a batch, and a
 * validator that joined after an upload, learn a Magu's index without anyone pushing it to them.
 * The index document (and, for a blob Magu, the manifests it lists that are not stored here yet) is
 * fetched from the first member that serves it; each is handed to `take` (the Magu sink, which
 * checks the roots against the chain), manifests first.
 */
import type { CID } from "multiformats/cid";
import type { Address } from "viem";
import { describeError, type MuriContracts, type MuriPublicClient } from "../../chain/index.js";
import type { P2PNode } from "../../p2p/index.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { decodeMaguIndexList } from "./magu-sync.js";
import { registeredPeer } from "./peers.js";

const KIND_BLOB = 0;
const ZERO = /^0x0{40}$/i;

export interface BatchDocumentDeps {
  p2p: Pick<P2PNode, "fetchFragment" | "addPeers">;
  contracts: MuriContracts<MuriPublicClient>;
  store: { has(cid: CID): Promise<boolean> };
  /** This agent's address (not asked). */
  self: Address;
  logger?: Logger;
  signal?: AbortSignal;
  /** Deadline of one fetch, ms (default 5 s). */
  timeoutMs?: number;
}

/**
 * Fetches the documents of `maguId`'s batch whose index document is `indexCid` from its members.
 * Returns the member that served them, or undefined when none did.
 */
export async function fetchBatchDocuments(
  deps: BatchDocumentDeps,
  maguId: bigint,
  indexCid: CID,
  take: (cid: CID, bytes: Uint8Array) => Promise<void>,
): Promise<Address | undefined> {
  const log = deps.logger ?? silentLogger;
  const options = { timeoutMs: deps.timeoutMs ?? 5_000, signal: deps.signal };
  const info = await deps.contracts.maguRegistry.read.maguInfo([maguId]);
  for (const member of info.members) {
    if (ZERO.test(member) || member.toLowerCase() === deps.self.toLowerCase()) continue;
    try {
      const peer = await registeredPeer(deps.contracts, deps.p2p, member);
      const bytes = await deps.p2p.fetchFragment(peer, indexCid, options);
      if (info.params.kind === KIND_BLOB) {
        for (const manifestCid of decodeMaguIndexList(bytes, indexCid).manifestCids) {
          if (!(await deps.store.has(manifestCid))) await take(manifestCid, await deps.p2p.fetchFragment(peer, manifestCid, options));
        }
      }
      await take(indexCid, bytes);
      return member;
    } catch (err) {
      if (deps.signal?.aborted === true) throw err;
      log.debug("member did not serve the batch documents", { magu: maguId.toString(), index: indexCid.toString(), member, error: describeError(err) });
    }
  }
  return undefined;
}
