import { randomBytes } from "node:crypto";
import type { Signer } from "ethers";
import { leafIndexFor } from "../../../agents/data/challenge.js";
import { buildFragmentTree, buildMaguTree, fragmentLeafProof, maguProof, type FragmentTree, type MaguTree } from "../../../agents/data/merkle.js";
import { ACK_TYPES } from "../../../agents/chain/batches.js";
import type { Deployment } from "./fixture.js";
import { E18 } from "./fixture.js";

/** The committed data of a Magu as its client (or a member holding it) keeps it. */
export interface MaguData {
  fragments: Uint8Array[];
  trees: FragmentTree[];
  tree: MaguTree;
}

export const hex = (b: Uint8Array) => "0x" + Buffer.from(b).toString("hex");

/** Sends MURI from the deployer to each account. */
export async function fund(d: Deployment, accounts: Signer[], amount: bigint) {
  for (const a of accounts) await (await d.token.transfer(await a.getAddress(), amount)).wait();
}

/** Funds and registers `accounts` with `stake` each (roles: 1 node, 2 validator). */
export async function registerNodes(d: Deployment, accounts: Signer[], stake = 2_000n * E18, roles = 1, capacity = 1n << 40n) {
  const registry = await d.nodeRegistry.getAddress();
  await fund(d, accounts, stake);
  for (const [i, a] of accounts.entries()) {
    await (await d.token.connect(a).approve(registry, stake)).wait();
    await (await d.nodeRegistry.connect(a).register(stake, roles, capacity, hex(randomBytes(34)), [`/ip4/127.0.0.1/tcp/${4000 + i}`])).wait();
  }
}

export interface MaguRequest {
  kind: 0 | 1; // 0 blob, 1 vector
  members: number;
  replication?: number;
  dataShards?: number;
  parityShards?: number;
  maxFragments: number;
  durationPeriods: number;
  price?: bigint;
  dimension?: number;
  metric?: number;
}

export function maguParams(r: MaguRequest) {
  const vector = r.kind === 1;
  return {
    kind: r.kind,
    metric: vector ? (r.metric ?? 1) : 0,
    dimension: vector ? (r.dimension ?? 64) : 0,
    members: r.members,
    replication: vector ? (r.replication ?? 2) : 0,
    dataShards: vector ? 0 : (r.dataShards ?? 3),
    parityShards: vector ? 0 : (r.parityShards ?? 2),
    maxFragments: r.maxFragments,
    durationPeriods: r.durationPeriods,
    pricePerFragmentPeriod: r.price ?? E18,
  };
}

/** Mines until a selection requested now sees every stake change queued so far. */
export async function settleWeights(d: Deployment) {
  const [queued, , settledFrom] = await d.nodeRegistry.pendingWeightChanges();
  if (queued === 0n) return;
  const from = settledFrom - (await d.nodeRegistry.config()).selectionEpochBlocks;
  const now = BigInt(await d.ethers.provider.getBlockNumber());
  if (now < from) await d.networkHelpers.mine(Number(from - now));
}

/** Mines so that the next transaction lands in `block` (or later, if the chain is past it). */
export async function mineForNextTxAt(d: Deployment, block: bigint) {
  const now = BigInt(await d.ethers.provider.getBlockNumber());
  if (now + 1n < block) await d.networkHelpers.mine(Number(block - now - 1n));
}

/** Mines to the first block of the selection window of a request made at `requestBlock`. */
export async function mineToWindow(d: Deployment, requestBlock: bigint) {
  const [opens] = await d.maguRegistry.selectionWindow(requestBlock);
  await mineForNextTxAt(d, opens);
}

/** The first block a Magu ending at `endPeriod` may be settled in: after its last mark window. */
export async function settleBlock(d: Deployment, endPeriod: bigint): Promise<bigint> {
  return (await d.challengeManager.markDeadline(endPeriod - 1n)) + 1n;
}

/**
 * Creates a Magu as `client` (funded for its escrow and formation deposit) once recent stake
 * changes weigh in, mines to its selection window and forms it.
 */
export async function createAndForm(d: Deployment, client: Signer, request: MaguRequest) {
  const params = maguParams(request);
  const stored = BigInt(request.kind === 1 ? params.maxFragments * params.replication : params.maxFragments);
  const escrow = params.pricePerFragmentPeriod * stored * BigInt(params.durationPeriods);
  const { formationDeposit } = await d.maguRegistry.config();
  await fund(d, [client], escrow + formationDeposit);
  await (await d.token.connect(client).approve(await d.maguRegistry.getAddress(), escrow + formationDeposit)).wait();
  await settleWeights(d);
  await (await d.maguRegistry.connect(client).createMagu(params)).wait();
  const id = await d.maguRegistry.maguCount();
  await mineToWindow(d, (await d.maguRegistry.maguInfo(id)).requestBlock);
  const formTx = await d.maguRegistry.formMagu(id);
  const info = await d.maguRegistry.maguInfo(id);
  return { id, info, escrow, formTx };
}

/** Builds fragment trees and the Magu tree over `fragments`. */
export function buildData(fragments: Uint8Array[]): MaguData {
  const trees = fragments.map((f) => buildFragmentTree(f));
  return { fragments, trees, tree: buildMaguTree(trees.map((t) => t.fragmentRoot)) };
}

/** Random fragments of the given sizes. */
export function randomFragments(sizes: number[]): Uint8Array[] {
  return sizes.map((s) => randomBytes(s));
}

/** Mines until the current block is the first block after `period` starts (its seed is then known). */
export async function enterPeriod(d: Deployment, period: bigint) {
  const start = await d.maguRegistry.periodStart(period);
  const now = BigInt(await d.ethers.provider.getBlockNumber());
  if (now < start + 1n) await d.networkHelpers.mine(Number(start + 1n - now));
}

/** The proofs answering `member`'s challenge of `period`, built from the data like an agent would. */
export async function buildProofs(d: Deployment, maguId: bigint, member: string, period: bigint, data: MaguData) {
  const items = await d.challengeManager.challengeFor(maguId, member, period);
  return items.map((item) => {
    const f = Number(item.fragment);
    const bytes = data.fragments[f]!;
    const leaf = fragmentLeafProof(bytes, leafIndexFor(item.leafSeed, bytes.length), data.trees[f]);
    return {
      fragment: f,
      size: bytes.length,
      leaf: hex(leaf.chunk),
      leafProof: leaf.siblings.map(hex),
      fragmentProof: maguProof(data.tree, f).map(hex),
    };
  });
}

export { tokenBooks } from "./books.js";

/** Each slot's EIP-712 acknowledgement of the next batch of `maguId` (`root` over `count`), signed by its member. */
export async function acksFor(d: Deployment, maguId: bigint, root: Uint8Array, count: number): Promise<string[]> {
  const info = await d.maguRegistry.maguInfo(maguId);
  const network = await d.ethers.provider.getNetwork();
  const domain = { name: "MuriData", version: "1", chainId: network.chainId, verifyingContract: await d.maguRegistry.getAddress() };
  const types = { Ack: [...ACK_TYPES.Ack] };
  return Promise.all(
    info.members.map(async (member) => {
      const account = await d.ethers.getSigner(member);
      return account.signTypedData(domain, types, { magu: maguId, batch: info.batches, root: hex(root), fragmentCount: count, member });
    }),
  );
}

/** Commits `data` as the first batch of `maguId` from `client`, every member acknowledging. */
export async function commitFirst(d: Deployment, client: Signer, maguId: bigint, data: MaguData) {
  const acks = await acksFor(d, maguId, data.tree.root, data.fragments.length);
  return d.maguRegistry.connect(client).commitData(maguId, data.tree.root, data.fragments.length, "0x", [], acks);
}
