// Measures the gas of the hot contract calls on the in-process Hardhat network and writes
// snapshots/gas.json ({"Contract.function": gas}), so a regression shows up as a diff.
// Run: npm run gas. The proof case is a vector Magu of 1024 fragments of 1 MiB = 2^20 leaves; the
// search case a task with k = 10 on a vector Magu of 5 members (r = 2, dim 128), each member
// revealing its 10 best hits (replicas make the lists overlap).
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { id as ethersId, type ContractTransactionResponse } from "ethers";
import type { Hex } from "viem";
import { extendReads, GRANT_TYPES, NO_READS, READ_VOUCHER_TYPES, VOUCHER_TYPES } from "../agents/chain/access.js";
import { leafIndexFor } from "../agents/data/challenge.js";
import { appendProof, buildFragmentTree, buildMaguTree, fragmentLeafProof, maguProof } from "../agents/data/merkle.js";
import { deployAll, E18 } from "../test/contracts/helpers/fixture.js";
import { acksFor, commitFirst, enterPeriod, hex, mineForNextTxAt, mineToWindow, registerNodes, settleBlock, settleWeights } from "../test/contracts/helpers/scenario.js";
import {
  buildVectorData,
  commitmentOf,
  decodeWord,
  disputeProof,
  encodeQuery,
  entryWord,
  memberList,
  METRIC_L2,
  pseudoVector,
  referenceAnswer,
  wordHex,
} from "../test/contracts/helpers/search.js";

const gas: Record<string, number> = {};
async function measure(name: string, tx: Promise<ContractTransactionResponse>) {
  const receipt = await (await tx).wait();
  gas[name] = Number(receipt!.gasUsed);
}

// Search windows of 8 blocks: five members commit (and reveal) one transaction, one block, each.
const d = await deployAll({ commitBlocks: 8n, revealBlocks: 8n, disputeBlocks: 8n });
const s = d.signers;

/**
 * Mines until every queued stake change is due and applies them all, so the next measured stake
 * call pays for none: a stake call applies the changes that fell due (NodeRegistry._applyDue), and
 * how many did would otherwise depend on how many blocks the deployment and the set-up took.
 */
async function applyDueWeights() {
  const [queued, , settledFrom] = await d.nodeRegistry.pendingWeightChanges();
  if (queued === 0n) return;
  await mineForNextTxAt(d, settledFrom);
  await (await d.nodeRegistry.applyWeightChanges(queued)).wait();
}

const nodes = s.slice(1, 7);
await registerNodes(d, nodes.slice(1));
await applyDueWeights();
// The first registration is measured on its own.
await (await d.token.transfer(nodes[0]!.address, 2_000n * E18)).wait();
await (await d.token.connect(nodes[0]!).approve(await d.nodeRegistry.getAddress(), 2_000n * E18)).wait();
await measure(
  "NodeRegistry.register",
  d.nodeRegistry.connect(nodes[0]!).register(2_000n * E18, 1, 1n << 40n, hex(randomBytes(34)), ["/ip4/127.0.0.1/tcp/4001"]),
);
const validators = [s[7]!, s[8]!, s[9]!];
await registerNodes(d, validators, 3_000n * E18, 2);

// Stake changes on a node that is not in the Magu.
const spare = s[12]!;
await registerNodes(d, [spare], 2_000n * E18, 2);
await (await d.token.transfer(spare.address, 500n * E18)).wait();
await (await d.token.connect(spare).approve(await d.nodeRegistry.getAddress(), 500n * E18)).wait();
await applyDueWeights();
await measure("NodeRegistry.addStake", d.nodeRegistry.connect(spare).addStake(500n * E18));
await measure("NodeRegistry.requestUnstake", d.nodeRegistry.connect(spare).requestUnstake(500n * E18));
await d.networkHelpers.mine(20);
await measure("NodeRegistry.withdraw", d.nodeRegistry.connect(spare).withdraw());

// A vector Magu: 5 members, r = 2, 1024 fragments of 1 MiB (2^10 x 2^10 = 2^20 leaves).
const client = s[10]!;
const escrowFor = 1024n * 2n * 12n * E18 + (await d.maguRegistry.config()).formationDeposit;
await (await d.token.transfer(client.address, escrowFor)).wait();
await (await d.token.connect(client).approve(await d.maguRegistry.getAddress(), escrowFor)).wait();
const params = {
  kind: 1, metric: 1, dimension: 128, members: 5, replication: 2, dataShards: 0, parityShards: 0,
  maxFragments: 1024, durationPeriods: 12, pricePerFragmentPeriod: E18,
};
await settleWeights(d);
await measure("MaguRegistry.createMagu", d.maguRegistry.connect(client).createMagu(params));
const id = await d.maguRegistry.maguCount();
await mineToWindow(d, (await d.maguRegistry.maguInfo(id)).requestBlock);
await measure("MaguRegistry.formMagu", d.maguRegistry.formMagu(id));

const fragment = randomBytes(1 << 20);
const tree = buildFragmentTree(fragment);
// Two batches of 512 fragments: the first commit, then an append with its proof; five members
// acknowledge each (EIP-712 signatures checked on chain).
const roots = Array.from({ length: 1024 }, () => tree.fragmentRoot);
const trees = new Map([512, 1024].map((n) => [n, buildMaguTree(roots.slice(0, n))]));
await measure("MaguRegistry.commitData(first batch, 5 acks)", d.maguRegistry.connect(client).commitData(id, trees.get(512)!.root, 512, "0x", [], await acksFor(d, id, trees.get(512)!.root, 512)));
const extension = appendProof(roots, 512).map(hex);
await measure("MaguRegistry.commitData(append, 5 acks)", d.maguRegistry.connect(client).commitData(id, trees.get(1024)!.root, 1024, "0x", extension, await acksFor(d, id, trees.get(1024)!.root, 1024)));

const info = await d.maguRegistry.maguInfo(id);
const period = info.startPeriod;
await enterPeriod(d, period);
async function proofsFor(member: string, p: bigint) {
  const items = await d.challengeManager.challengeFor(id, member, p);
  const [, count] = await d.maguRegistry.challengedData(id, member, p);
  const maguTree = trees.get(Number(count))!;
  return items.map((item) => {
    const leaf = fragmentLeafProof(fragment, leafIndexFor(item.leafSeed, fragment.length), tree);
    return {
      fragment: item.fragment,
      size: fragment.length,
      leaf: hex(leaf.chunk),
      leafProof: leaf.siblings.map(hex),
      fragmentProof: maguProof(maguTree, Number(item.fragment)).map(hex),
    };
  });
}
const members = info.members;
const lazy = members[4]!;
// Period p: every member's first proof (cold storage: seed, proof-state word, counters).
// Period p+1: the steady state, what a member pays every period after its first.
for (const [round, p] of [period, period + 1n].entries()) {
  if (round > 0) await enterPeriod(d, p);
  for (const [i, member] of members.entries()) {
    if (member === lazy && round > 0) continue;
    const proofs = await proofsFor(member, p);
    if (proofs.length !== 4) throw new Error(`expected a challenge of 4 fragments, got ${proofs.length}`);
    const signer = await d.ethers.getSigner(member);
    const name = round === 0 ? "ChallengeManager.submitProof(first of member)" : i === 0 ? "ChallengeManager.submitProof(first of period)" : "ChallengeManager.submitProof";
    await measure(name, d.challengeManager.connect(signer).submitProof(id, p, proofs));
  }
}
gas["ChallengeManager.submitProof.perFragment"] = Math.ceil(gas["ChallengeManager.submitProof"]! / 4);

// Misses: the lazy member is slashed twice, then evicted on the third.
const marker = s[11]!;
for (let k = 1n; k <= 3n; k++) {
  await enterPeriod(d, period + k + 1n);
  await measure(k < 3n ? "ChallengeManager.markMissed" : "ChallengeManager.markMissed(evicting)",
    d.challengeManager.connect(marker).markMissed(id, lazy, period + k));
}
await mineToWindow(d, BigInt(await d.ethers.provider.getBlockNumber()));
const slot = members.indexOf(lazy);
await measure("MaguRegistry.fillVacancy", d.maguRegistry.fillVacancy(id, slot));

// Rewards: three validators weight six nodes; the epoch is finalised; a node claims.
const nodeAddrs = nodes.map((n) => n.address).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
const epoch = await d.rewards.currentEpoch();
for (const [i, v] of validators.entries()) {
  await measure("Rewards.submitWeights", d.rewards.connect(v).submitWeights(epoch, nodeAddrs, nodeAddrs.map((_, j) => BigInt(1 + ((i + j) % 3)))));
}
await d.networkHelpers.mine(40);
await measure("Rewards.finalizeEpoch", d.rewards.finalizeEpoch(epoch));
await measure("Rewards.claim", d.rewards.connect(nodes[0]!).claim());

// Settlement (once the last period's mark window closed) and a member's claim.
await enterPeriod(d, info.endPeriod + 1n);
await mineForNextTxAt(d, await settleBlock(d, info.endPeriod));
await measure("MaguRegistry.settle", d.maguRegistry.settle(id));
await measure("MaguRegistry.claim", d.maguRegistry.connect(await d.ethers.getSigner(members[0]!)).claim());

// Search: a vector Magu of 5 members, r = 2, dim 128 (L2), 20 fragments of 24 records.
const searchClient = s[13]!;
const searchParams = { ...params, maxFragments: 20, durationPeriods: 20 };
const searchEscrow = 20n * 2n * 20n * E18 + (await d.maguRegistry.config()).formationDeposit;
const fees = 3_000n * E18;
await (await d.token.transfer(searchClient.address, searchEscrow + fees)).wait();
await (await d.token.connect(searchClient).approve(await d.maguRegistry.getAddress(), searchEscrow)).wait();
await (await d.token.connect(searchClient).approve(await d.searchMarket.getAddress(), fees)).wait();
await settleWeights(d);
await (await d.maguRegistry.connect(searchClient).createMagu(searchParams)).wait();
const searchMagu = await d.maguRegistry.maguCount();
await mineToWindow(d, (await d.maguRegistry.maguInfo(searchMagu)).requestBlock);
await (await d.maguRegistry.formMagu(searchMagu)).wait();
const searchMembers = [...(await d.maguRegistry.maguInfo(searchMagu)).members];
const records = Array.from({ length: 480 }, (_, i) => ({ id: BigInt(1 + i), values: pseudoVector(`gas-record-${i}`, 128) }));
const vectorData = buildVectorData(records, 128, 24);
await (await commitFirst(d, searchClient, searchMagu, vectorData)).wait();
const held = new Map<string, number[]>();
for (let f = 0; f < vectorData.fragments.length; f++) {
  for (const h of await d.maguRegistry.holders(searchMagu, f)) held.set(h, [...(held.get(h) ?? []), f]);
}

/** One task through submit, commit and reveal; `liar` (if any) shifts its best distance by one. */
async function runTask(label: string, measured: { submit?: string; commitReveal?: boolean }, liar?: string) {
  const q = pseudoVector(`gas-query-${label}`, 128);
  const query = encodeQuery(q);
  const tx = d.searchMarket.connect(searchClient).submit(searchMagu, query, 10, 1_000n * E18);
  if (measured.submit) await measure(measured.submit, tx);
  else await (await tx).wait();
  const task = await d.searchMarket.taskCount();
  const lists: bigint[][] = [];
  for (const [i, m] of searchMembers.entries()) {
    const list = memberList(vectorData, METRIC_L2, q, held.get(m) ?? [], 10);
    if (list.length !== 10) throw new Error(`member ${m} has ${list.length} hits, expected 10`);
    if (m === liar) list[0] = entryWord({ ...decodeWord(list[0]!), distance: decodeWord(list[0]!).distance - 1n });
    lists.push(list);
    const signer = await d.ethers.getSigner(m);
    const c = d.searchMarket.connect(signer).commit(task, commitmentOf(task, m, wordHex(BigInt(i + 1)), list.map(wordHex)));
    if (measured.commitReveal && i === 0) await measure("SearchMarket.commit", c);
    else await (await c).wait();
  }
  const info = await d.searchMarket.task(task);
  await d.networkHelpers.mine(Number(info.commitDeadline) - (await d.ethers.provider.getBlockNumber()));
  for (const [i, m] of searchMembers.entries()) {
    const signer = await d.ethers.getSigner(m);
    const r = d.searchMarket.connect(signer).reveal(task, lists[i]!.map(wordHex), wordHex(BigInt(i + 1)));
    if (measured.commitReveal && i === 0) await measure("SearchMarket.reveal(k=10)", r);
    else await (await r).wait();
  }
  return { task, query, lists, info };
}

async function finalizeTask(t: Awaited<ReturnType<typeof runTask>>, name: string) {
  await d.networkHelpers.mine(Number(t.info.disputeDeadline) - (await d.ethers.provider.getBlockNumber()));
  await measure(name, d.searchMarket.finalize(t.task, t.lists.map((l) => l.map(wordHex))));
}

// Task 1: everyone honest; finalize merges 5 lists of 10 and credits members whose claimable
// slots are still empty (the dearest case). Task 2: the same once those slots hold credit.
const first = await runTask("first", { submit: "SearchMarket.submit(first task)", commitReveal: true });
await finalizeTask(first, "SearchMarket.finalize(k=10, 5 members, first credits)");
const second = await runTask("second", { submit: "SearchMarket.submit" });
await finalizeTask(second, "SearchMarket.finalize(k=10, 5 members)");
const overlap = new Set(second.lists.flat().map((w) => w >> 128n)).size;
const reference = referenceAnswer(second.lists, 10);
await measure("SearchMarket.claim", d.searchMarket.connect(await d.ethers.getSigner(searchMembers[0]!)).claim());

// Task 3: one member lies about a distance and is disputed (a record of 264 bytes: 1 or 2 leaves).
const liar = searchMembers[2]!;
const lying = await runTask("lying", {}, liar);
const proof = disputeProof(vectorData, lying.query, lying.lists[searchMembers.indexOf(liar)]!, 0);
await measure("SearchMarket.dispute", d.searchMarket.connect(s[11]!).dispute(lying.task, liar, proof));

// MaguAccess on the search Magu: a payer deposits (its first deposit in the Magu, then another), a
// member settles the payer's vouchers (its first from that payer, then a later cumulative one: the
// steady state, any number of searches per transaction), and checkGrant as a member's node asks it.
const access = d.maguAccess;
const accessAddress = await access.getAddress();
const payer = s[14]!;
await (await d.token.transfer(payer.address, 200n * E18)).wait();
await (await d.token.connect(payer).approve(accessAddress, 200n * E18)).wait();
await measure("MaguAccess.deposit(first)", access.connect(payer).deposit(searchMagu, 100n * E18));
await measure("MaguAccess.deposit", access.connect(payer).deposit(searchMagu, 100n * E18));
/** The agents' EIP-712 types (readonly) as ethers' signTypedData takes them. */
const mutableTypes = (types: Record<string, readonly { name: string; type: string }[]>) => Object.fromEntries(Object.entries(types).map(([k, v]) => [k, [...v]]));
const accessDomain = { name: "MuriData Access", version: "1", chainId: (await d.ethers.provider.getNetwork()).chainId, verifyingContract: accessAddress };
const paidMember = await d.ethers.getSigner(searchMembers[0]!);
for (const [name, searches] of [["MaguAccess.settle(first of member)", 10n], ["MaguAccess.settle", 25n]] as const) {
  const voucher = { magu: searchMagu, member: paidMember.address, searches, total: searches * E18 };
  const signature = await payer.signTypedData(accessDomain, mutableTypes(VOUCHER_TYPES), voucher);
  await measure(name, access.connect(paidMember).settle(voucher, payer.address, signature));
}
// Paid reads on the same Magu and deposit: the member redeems a reader's read vouchers (its first
// from that reader, then later cumulative ones), each listing the fragments served since the last
// settlement, whose demand it records per (placement group, member slot): the cost grows by a
// fixed amount per fragment listed, "settleRead(per fragment)" = (25 listed - 1 listed) / 24.
await (await access.connect(searchClient).setReadPrice(searchMagu, E18 / 10n)).wait();
const readCount = Number((await d.maguRegistry.maguInfo(searchMagu)).fragmentCount);
let readsSoFar = 0;
let readsChain: Hex = NO_READS;
for (const [name, listed] of [["MaguAccess.settleRead(first of member)", 10], ["MaguAccess.settleRead(1 fragment)", 1], ["MaguAccess.settleRead", 25]] as const) {
  const served = Array.from({ length: listed }, (_, i) => (readsSoFar + i) % readCount);
  readsSoFar += listed;
  readsChain = extendReads(readsChain, served);
  const fragments = BigInt(readsSoFar);
  const voucher = { magu: searchMagu, member: paidMember.address, fragments, reads: readsChain, total: (fragments * E18) / 10n, maxUnitPrice: E18 / 5n };
  const signature = await payer.signTypedData(accessDomain, mutableTypes(READ_VOUCHER_TYPES), voucher);
  await measure(name, access.connect(paidMember).settleRead(voucher, payer.address, signature, served));
}
gas["MaguAccess.settleRead(per fragment)"] = Math.round((gas["MaguAccess.settleRead"]! - gas["MaguAccess.settleRead(1 fragment)"]!) / 24);
const expires = BigInt((await d.ethers.provider.getBlock("latest"))!.timestamp + 3600);
const grant = { magu: searchMagu, grantee: ethersId("gas-grantee-peer"), rights: 3, expires, nonce: 0n };
const grantSignature = await searchClient.signTypedData(accessDomain, mutableTypes(GRANT_TYPES), grant);
if ((await access.checkGrant(grant, grantSignature)) !== 0n) throw new Error("the gas snapshot's grant should be Valid");
// A view: what eth_estimateGas says a call costs, the 21000 base and the calldata included.
gas["MaguAccess.checkGrant(estimateGas)"] = Number(await access.checkGrant.estimateGas(grant, grantSignature));

// Rewards at the bound, on a deployment of its own (so the figures above do not move): the devnet's
// maxValidatorsPerEpoch (16) validators of maxWeights (32) weights each, the most an epoch counts.
// Epoch 1, agreement: the 16 validators (equal stake) each name 32 of 56 nodes, in a cycle, so every
// node is named by 9 or 10 of them and every one is credited (a node needs more than half the stake
// behind it, so fewer than 2 x maxWeights nodes can be), with all 16 validators: the most credits.
// Epoch 2, flood: each names 32 nodes nobody else names (512 entries over 512 nodes: the most
// nodes and merge work); then a validator with more stake than the other 15 together displaces the
// smallest and names 32 more nodes, and finalizeEpoch pays its nodes and it.
const b = await deployAll({ maxNodes: 1024n });
const rcfg = await b.rewards.config();
const V = Number(rcfg.maxValidatorsPerEpoch);
const W = Number(rcfg.maxWeights);
async function accounts(count: number, from: number) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const address = `0x${(0x10000 + from + i).toString(16).padStart(40, "0")}`;
    await b.networkHelpers.impersonateAccount(address);
    await b.networkHelpers.setBalance(address, 10n ** 20n);
    out.push(await b.ethers.getSigner(address));
  }
  return out;
}
const minStake = (await b.nodeRegistry.config()).minStake;
const boundNodes = await accounts((V + 1) * W, 0);
await registerNodes(b, boundNodes, minStake, 1);
const boundValidators = await accounts(V, 10_000);
await registerNodes(b, boundValidators, minStake, 2);
const [big] = await accounts(1, 20_000);
await registerNodes(b, [big!], minStake * BigInt(V), 2);
const byAddress = (list: string[]) => [...list].sort((a, c) => (BigInt(a) < BigInt(c) ? -1 : 1));
async function nextEpoch() {
  const e = (await b.rewards.currentEpoch()) + 1n;
  await b.networkHelpers.mineUpTo(rcfg.genesisBlock + e * rcfg.epochBlocks);
  return e;
}
const ones = Array.from({ length: W }, () => 1n);
const cycle = 56;
let boundEpoch = await nextEpoch();
for (const [i, v] of boundValidators.entries()) {
  const named = byAddress(Array.from({ length: W }, (_, k) => boundNodes[(i * W + k) % cycle]!.address));
  const tx = b.rewards.connect(v).submitWeights(boundEpoch, named, ones);
  if (i === 0) await measure(`Rewards.submitWeights(${W} weights)`, tx);
  else await (await tx).wait();
}
await nextEpoch();
const agreement = `Rewards.finalizeEpoch(at the bound: ${V} validators x ${W} weights, ${cycle} nodes credited)`;
await measure(agreement, b.rewards.finalizeEpoch(boundEpoch));
const credited = (await b.rewards.queryFilter(b.rewards.filters.RewardCredited(boundEpoch))).length;
if (credited !== cycle + V) throw new Error(`expected ${cycle + V} credits at the bound, got ${credited}`);
boundEpoch = await b.rewards.currentEpoch();
for (const [i, v] of boundValidators.entries()) {
  const named = byAddress(boundNodes.slice(i * W, (i + 1) * W).map((n) => n.address));
  await (await b.rewards.connect(v).submitWeights(boundEpoch, named, ones)).wait();
}
const own = byAddress(boundNodes.slice(V * W).map((n) => n.address));
await measure(`Rewards.submitWeights(displacing the smallest, ${W} weights)`, b.rewards.connect(big!).submitWeights(boundEpoch, own, ones));
await nextEpoch();
const flood = `Rewards.finalizeEpoch(at the bound: ${V} validators x ${W} weights, ${V * W} nodes)`;
await measure(flood, b.rewards.finalizeEpoch(boundEpoch));
await b.connection.close();

const sorted = Object.fromEntries(Object.entries(gas).sort(([a], [b]) => a.localeCompare(b)));
await writeFile(new URL("../snapshots/gas.json", import.meta.url), JSON.stringify(sorted, null, 2) + "\n");
console.table(Object.entries(sorted).map(([call, g]) => ({ call, gas: g })));
console.log(`submitProof: ${gas["ChallengeManager.submitProof.perFragment"]} gas per proven fragment (goal <= 80000; Codex ~340000 per proof)`);
console.log(
  `finalize: ${gas["SearchMarket.finalize(k=10, 5 members, first credits)"]} gas with first credits, ${gas["SearchMarket.finalize(k=10, 5 members)"]} after, ` +
    `for k = 10 over 5 lists of 10 (${overlap} distinct hits, ${reference.total} credits; goal <= 300000)`,
);
console.log(`Rewards.finalizeEpoch at the bound (${V} x ${W}): ${gas[agreement]} gas (${cycle} nodes credited), ${gas[flood]} gas (${V * W} nodes named); block limit 30000000`);
console.log("wrote snapshots/gas.json");
await d.connection.close();
