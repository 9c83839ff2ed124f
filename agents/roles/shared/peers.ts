/**
 * Reaching a registered node: its libp2p peer id and multiaddrs as NodeRegistry holds them, put in
 * the p2p node's peer store so fetches, pushes and searches can dial it by peer id.
 */
import type { PeerId } from "@libp2p/interface";
import { peerIdFromMultihash } from "@libp2p/peer-id";
import type { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import type { Address } from "viem";
import type { MuriContracts, MuriPublicClient, MuriWalletClient } from "../../chain/index.js";
import { join } from "node:path";
import { createP2PNode, loadOrCreatePrivateKey, type P2PNode } from "../../p2p/index.js";

type AnyContracts = MuriContracts<MuriPublicClient> | MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;

/** The registered peer id of `address`, its addresses added to `p2p`'s peer store. */
export async function registeredPeer(contracts: AnyContracts, p2p: Pick<P2PNode, "addPeers">, address: Address): Promise<PeerId> {
  const info = await contracts.nodeRegistry.read.nodeInfo([address]);
  const peerId = peerIdFromMultihash(Digest.decode(Buffer.from(info.peerId.slice(2), "hex")));
  const addrs = info.multiaddrs.map((a) => (a.includes("/p2p/") ? a : `${a}/p2p/${peerId.toString()}`));
  if (addrs.length > 0) await p2p.addPeers(addrs);
  return peerId;
}

/** NodeRegistry's role bit of a validator. */
const ROLE_VALIDATOR = 2;

/** Every registered, active validator (clients tell them about new Magu documents). */
export async function activeValidators(contracts: AnyContracts): Promise<Address[]> {
  const registry = contracts.nodeRegistry;
  const n = await registry.read.nodeCount();
  const out: Address[] = [];
  for (let i = 0n; i < n; i++) {
    const address = await registry.read.nodeAt([i]);
    if (await registry.read.isActive([address, ROLE_VALIDATOR])) out.push(address);
  }
  return out;
}

/**
 * Pushes Magu documents (in order) to every active validator, best effort: a validator that is
 * down only misses the chance to audit this data; the upload does not fail for it.
 */
export async function pushToValidators(
  contracts: AnyContracts,
  p2p: Pick<P2PNode, "addPeers" | "pushFragment">,
  documents: ReadonlyArray<{ cid: CID; bytes: Uint8Array }>,
  options: { timeoutMs: number; onError?: (validator: Address, err: unknown) => void },
): Promise<number> {
  let told = 0;
  for (const validator of await activeValidators(contracts)) {
    try {
      const peerId = await registeredPeer(contracts, p2p, validator);
      for (const doc of documents) await p2p.pushFragment(peerId, doc.cid, doc.bytes, { timeoutMs: options.timeoutMs });
      told++;
    } catch (err) {
      options.onError?.(validator, err);
    }
  }
  return told;
}

/**
 * A client's libp2p node (not started): it dials members and validators, serves nothing, takes no
 * pushes and listens nowhere; its identity is kept in `<dir>/peer.key`.
 */
export async function createClientNode(dir: string): Promise<P2PNode> {
  return createP2PNode({
    privateKey: await loadOrCreatePrivateKey(join(dir, "peer.key")),
    listen: [],
    source: { has: () => false, get: () => Promise.reject(new Error("the client serves no fragments")) },
    sink: { put: () => Promise.reject(new Error("the client takes no pushes")) },
    acceptPush: () => false,
    dht: { clientMode: true },
  });
}
