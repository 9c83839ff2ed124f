/**
 * Commits for tests of what happens after a batch is committed (push acceptance, proofs, audits,
 * searches): every member's EIP-712 acknowledgement is signed with its test key, as if each had
 * taken the batch. The delivery protocol itself (proposal, pushes, acknowledgements from the
 * agents) is exercised by the client's put and the e2e tests.
 */
import { getAddress, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ackTypedData, batchDomain, getMuriContracts, type Deployment } from "../../../agents/chain/index.js";
import { appendProof, maguRoot } from "../../../agents/data/merkle.js";
import { signer } from "../chain/harness.js";

/** Commits `roots` (every fragment root of the Magu after this batch) from `ownerKey`'s account. */
export async function commitWithAcks(
  rpcUrl: string,
  d: Deployment,
  ownerKey: Hex,
  keys: readonly Hex[],
  maguId: bigint,
  roots: readonly Uint8Array[],
): Promise<Hex> {
  const info = await getMuriContracts(d.contracts, signer(rpcUrl, d, ownerKey)).maguRegistry.read.maguInfo([maguId]);
  const extension = appendProof(roots, info.fragmentCount).map((b) => `0x${b.toString("hex")}` as Hex);
  return commitRootWithAcks(rpcUrl, d, ownerKey, keys, maguId, `0x${maguRoot(roots).toString("hex")}`, roots.length, extension);
}

/** Commits `root` over `count` fragments with the given append proof (none for a first batch). */
export async function commitRootWithAcks(
  rpcUrl: string,
  d: Deployment,
  ownerKey: Hex,
  keys: readonly Hex[],
  maguId: bigint,
  root: Hex,
  count: number,
  extension: readonly Hex[] = [],
): Promise<Hex> {
  const owner = signer(rpcUrl, d, ownerKey);
  const k = getMuriContracts(d.contracts, owner);
  const info = await k.maguRegistry.read.maguInfo([maguId]);
  const domain = batchDomain(d.chainId, d.contracts.maguRegistry);
  const accounts = new Map(keys.map((key) => [getAddress(privateKeyToAccount(key).address), privateKeyToAccount(key)]));
  const acks = await Promise.all(
    info.members.map(async (member) => {
      const account = accounts.get(getAddress(member));
      if (account === undefined) return "0x" as Hex;
      return account.signTypedData(ackTypedData(domain, { magu: maguId, batch: info.batches, root, fragmentCount: count, member: getAddress(member) }));
    }),
  );
  const hash = await k.maguRegistry.write.commitData([maguId, root, count, "0x", extension, acks]);
  const receipt = await owner.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  if (receipt.status !== "success") throw new Error(`commitData of Magu ${maguId} reverted (tx ${hash})`);
  return hash;
}
