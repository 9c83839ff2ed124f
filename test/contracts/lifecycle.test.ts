import { expect } from "chai";
import { anyUint } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
import { leafIndexFor } from "../../agents/data/challenge.js";
import { fragmentLeafProof, maguProof } from "../../agents/data/merkle.js";
import { holderBlob } from "../../agents/data/placement.js";
import { deployAll, E18, type Deployment } from "./helpers/fixture.js";
import {
  buildData,
  buildProofs,
  commitFirst,
  createAndForm,
  enterPeriod,
  hex,
  mineForNextTxAt,
  mineToWindow,
  settleBlock,
  randomFragments,
  registerNodes,
  tokenBooks,
  type MaguData,
} from "./helpers/scenario.js";

/**
 * The whole on-chain life of a blob Magu on the in-process Hardhat network, with proofs built by the
 * agents' TypeScript Merkle code: formation, commits, proofs, a node that stops proving (slashed,
 * evicted, replaced, the replacement earns the repair bounty), an epoch of rewards, settlement, claims,
 * and the token books balancing at every step.
 */
describe("Magu life cycle (blob, 5 members, k=3 m=2)", function () {
  this.timeout(120_000);

  let d: Deployment;
  let data: MaguData;
  let maguId: bigint;

  const everyone = () => d.signers.slice(0, 12).map((s) => s.address);
  async function checkBooks() {
    const { held, owed } = await tokenBooks(d);
    expect(held).to.equal(owed, "contract balances must equal stakes + escrows + claimables + pool");
    let sum = 0n;
    for (const a of [...everyone(), await d.nodeRegistry.getAddress(), await d.maguRegistry.getAddress(), await d.rewards.getAddress()]) {
      sum += await d.token.balanceOf(a);
    }
    expect(sum).to.equal(await d.token.totalSupply(), "every token is somewhere");
  }

  async function proveAll(period: bigint, skip: string[] = []) {
    await enterPeriod(d, period);
    const info = await d.maguRegistry.maguInfo(maguId);
    for (const member of info.members) {
      if (member === "0x0000000000000000000000000000000000000000" || skip.includes(member)) continue;
      const signer = await d.ethers.getSigner(member);
      const proofs = await buildProofs(d, maguId, member, period, data);
      await (await d.challengeManager.connect(signer).submitProof(maguId, period, proofs)).wait();
      expect(await d.challengeManager.proofState(maguId, member, period)).to.equal(1n);
    }
  }

  before(async () => {
    d = await deployAll();
    await registerNodes(d, d.signers.slice(1, 7)); // six nodes: five members and one spare
    await registerNodes(d, [d.signers[7]!, d.signers[8]!, d.signers[11]!], 3_000n * E18, 2); // three validators
  });

  it("forms a Magu with five distinct stake-weighted members and locks their stake", async () => {
    const client = d.signers[9]!;
    const r = await createAndForm(d, client, { kind: 0, members: 5, dataShards: 3, parityShards: 2, maxFragments: 10, durationPeriods: 10 });
    maguId = r.id;
    await expect(r.formTx).to.emit(d.maguRegistry, "MaguFormed");
    expect(new Set(r.info.members).size).to.equal(5);
    for (const m of r.info.members) {
      expect((await d.nodeRegistry.nodeInfo(m)).locked).to.equal(100n * E18);
    }
    // Stake that backs the membership cannot be unstaked, nor minStake beside it.
    const member = await d.ethers.getSigner(r.info.members[0]!);
    await expect(d.nodeRegistry.connect(member).requestUnstake(2_000n * E18))
      .to.be.revertedWithCustomError(d.nodeRegistry, "RegistryStakeLocked")
      .withArgs(member.address, 2_000n * E18, 900n * E18);
    await checkBooks();
  });

  it("commits the data root and places each stripe's five shards on five different members", async () => {
    data = buildData(randomFragments([1024, 5000, 4096, 1, 8192, 3000, 2048, 700, 1025, 6000]));
    const period = await d.maguRegistry.currentPeriod();
    await expect(commitFirst(d, d.signers[9]!, maguId, data))
      .to.emit(d.maguRegistry, "DataCommitted")
      .withArgs(maguId, 0, "0x" + data.tree.root.toString("hex"), 10, anyUint, anyUint, 0b11111, "0x");
    const from = await d.maguRegistry.currentPeriod();
    expect(from === period || from === period + 1n, "committed in the same or the next block's period").to.equal(true);
    const info = await d.maguRegistry.maguInfo(maguId);
    for (let stripe = 0; stripe < 2; stripe++) {
      const holders = new Set<string>();
      for (let shard = 0; shard < 5; shard++) {
        const f = stripe * 5 + shard;
        const [onChain] = await d.maguRegistry.holders(maguId, f);
        expect(onChain).to.equal(info.members[holderBlob(maguId, f, 5, 3, 2)], "TypeScript placement agrees with the contract");
        holders.add(onChain!);
      }
      expect(holders.size).to.equal(5);
    }
  });

  it("accepts every member's proof for the first period and refuses a replay or a wrong fragment", async () => {
    const info = await d.maguRegistry.maguInfo(maguId);
    const period = info.startPeriod;
    await enterPeriod(d, period);
    const member = await d.ethers.getSigner(info.members[0]!);
    const proofs = await buildProofs(d, maguId, member.address, period, data);
    const challenged = proofs[0]!.fragment;

    // A valid proof, but of another fragment than the one challenged.
    const other = (challenged + 1) % data.fragments.length;
    const bytes = data.fragments[other]!;
    const items = await d.challengeManager.challengeFor(maguId, member.address, period);
    const leaf = fragmentLeafProof(bytes, leafIndexFor(items[0]!.leafSeed, bytes.length), data.trees[other]!);
    const otherFragment = {
      fragment: other,
      size: bytes.length,
      leaf: hex(leaf.chunk),
      leafProof: leaf.siblings.map(hex),
      fragmentProof: maguProof(data.tree, other).map(hex),
    };
    await expect(d.challengeManager.connect(member).submitProof(maguId, period, [otherFragment, ...proofs.slice(1)]))
      .to.be.revertedWithCustomError(d.challengeManager, "ChallengeWrongFragment")
      .withArgs(0n, BigInt(challenged), BigInt(other));

    // The challenged fragment with one byte of its leaf changed.
    const wrongLeaf = Buffer.from(proofs[0]!.leaf.slice(2), "hex");
    wrongLeaf[0]! ^= 0xff;
    await expect(
      d.challengeManager.connect(member).submitProof(maguId, period, [{ ...proofs[0]!, leaf: hex(wrongLeaf) }, ...proofs.slice(1)]),
    )
      .to.be.revertedWithCustomError(d.challengeManager, "ChallengeInvalidProof")
      .withArgs(0n);
    expect(await d.challengeManager.proofState(maguId, member.address, period)).to.equal(0n, "refused proofs settle nothing");

    await proveAll(period);
    await expect(d.challengeManager.connect(member).submitProof(maguId, period, proofs))
      .to.be.revertedWithCustomError(d.challengeManager, "ChallengeAlreadySettled")
      .withArgs(maguId, member.address, period);
    await checkBooks();
  });

  it("slashes a member that stops proving, pays the marker, evicts it after three misses", async () => {
    const info = await d.maguRegistry.maguInfo(maguId);
    const lazy = info.members[2]!;
    const marker = d.signers[10]!;
    const stakeBefore = await d.nodeRegistry.stakeOf(lazy);
    const markerBefore = await d.token.balanceOf(marker.address);
    const poolBefore = await d.rewards.pool();
    for (let k = 1n; k <= 3n; k++) {
      const period = info.startPeriod + k;
      await proveAll(period, [lazy]);
      await expect(d.challengeManager.connect(marker).markMissed(maguId, lazy, period))
        .to.be.revertedWithCustomError(d.challengeManager, "ChallengeDeadlineNotPassed");
      await enterPeriod(d, period + 1n);
      const tx = d.challengeManager.connect(marker).markMissed(maguId, lazy, period);
      await expect(tx).to.emit(d.challengeManager, "ProofMissed");
      if (k === 3n) await expect(tx).to.emit(d.maguRegistry, "MemberLeft");
    }
    expect(await d.nodeRegistry.stakeOf(lazy)).to.be.lessThan(stakeBefore);
    expect(await d.token.balanceOf(marker.address)).to.be.greaterThan(markerBefore);
    expect(await d.rewards.pool()).to.be.greaterThan(poolBefore);
    expect((await d.nodeRegistry.nodeInfo(lazy)).reputation).to.be.lessThan(0n);
    const after = await d.maguRegistry.maguInfo(maguId);
    expect(after.members[2]).to.equal("0x0000000000000000000000000000000000000000");
    await checkBooks();
  });

  it("fills the vacancy; only the vacated slot's fragments change holder; the newcomer earns the repair bounty", async () => {
    await expect(d.maguRegistry.settle(maguId)).to.be.revertedWithCustomError(d.maguRegistry, "MaguNotExpired");
    const before = await Promise.all([...Array(10).keys()].map((f) => d.maguRegistry.holders(maguId, f)));
    // The vacancy was requested in the block of the eviction: draw in its selection window.
    const [left] = await d.maguRegistry.queryFilter(d.maguRegistry.filters.MemberLeft(maguId));
    await mineToWindow(d, BigInt(left!.blockNumber));
    await expect(d.maguRegistry.fillVacancy(maguId, 2)).to.emit(d.maguRegistry, "MemberJoined");
    const info = await d.maguRegistry.maguInfo(maguId);
    const newcomer = info.members[2]!;
    expect(info.members.filter((m) => m === newcomer)).to.have.length(1);
    for (let f = 0; f < 10; f++) {
      const [now] = await d.maguRegistry.holders(maguId, f);
      if (now === newcomer) expect(before[f]![0]).to.equal("0x0000000000000000000000000000000000000000");
      else expect(now).to.equal(before[f]![0]);
    }
    const joinPeriod = (await d.maguRegistry.membership(maguId, newcomer)).joinPeriod;
    const claimBefore = await d.maguRegistry.claimable(newcomer);
    await enterPeriod(d, joinPeriod);
    const proofs = await buildProofs(d, maguId, newcomer, joinPeriod, data);
    await expect(d.challengeManager.connect(await d.ethers.getSigner(newcomer)).submitProof(maguId, joinPeriod, proofs))
      .to.emit(d.maguRegistry, "RepairRewarded")
      .withArgs(maguId, newcomer, 50n * E18);
    expect(await d.maguRegistry.claimable(newcomer)).to.equal(claimBefore + 50n * E18);
    await checkBooks();
  });

  it("splits an epoch's emission by clipped validator weights and lets each account claim once", async () => {
    const nodes = d.signers.slice(1, 7).map((s) => s.address).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    const epoch = await d.rewards.currentEpoch();
    const [v1, v2, v3] = [d.signers[7]!, d.signers[8]!, d.signers[11]!];
    await (await d.rewards.connect(v1).submitWeights(epoch, nodes, nodes.map(() => 1n))).wait();
    await (await d.rewards.connect(v3).submitWeights(epoch, nodes, nodes.map(() => 1n))).wait();
    // The second validator pours all weight on one node: clipping to the median limits it.
    await (await d.rewards.connect(v2).submitWeights(epoch, nodes, nodes.map((_, i) => (i === 0 ? 100n : 0n)))).wait();
    await d.networkHelpers.mine(40);
    const supplyBefore = await d.token.totalSupply();
    await expect(d.rewards.finalizeEpoch(epoch)).to.emit(d.rewards, "EpochFinalized");
    expect(await d.token.totalSupply()).to.equal(supplyBefore + 10_000n * E18);
    await expect(d.rewards.finalizeEpoch(epoch)).to.be.revertedWithCustomError(d.rewards, "RewardsAlreadyFinalized");
    const favoured = await d.rewards.claimable(nodes[0]!);
    const other = await d.rewards.claimable(nodes[1]!);
    expect(favoured).to.be.greaterThan(0n);
    expect(other).to.be.greaterThan(0n);
    // Unclipped, the outlier would make the favoured node earn 4x the others; clipped to the
    // median (1/6) it earns 1.5x: the full weight of all three validators against two of them.
    // Each score is then scaled by (400 + r) / 400, r its reputation clamped to +-100 (issue
    // 15.2): which nodes were drafted, proved and were slashed above depends on the draw, so the
    // two compared nodes' reputations may differ (read after finalize; a fade step between is 1 in 400).
    const clamp = (r: bigint): bigint => (r > 100n ? 100n : r < -100n ? -100n : r);
    const [r0, r1] = await Promise.all([nodes[0]!, nodes[1]!].map(async (n) => clamp(BigInt(await d.nodeRegistry.reputationOf(n)))));
    const want = other * 3n * (400n + r0!);
    expect(favoured * 2n * (400n + r1!)).to.be.closeTo(want, want / 100n);
    expect(await d.rewards.claimable(v1.address)).to.be.greaterThan(await d.rewards.claimable(v2.address), "agreement pays");
    const node = await d.ethers.getSigner(nodes[1]!);
    const balance = await d.token.balanceOf(node.address);
    await (await d.rewards.connect(node).claim()).wait();
    expect(await d.token.balanceOf(node.address)).to.equal(balance + other);
    await expect(d.rewards.connect(node).claim()).to.be.revertedWithCustomError(d.rewards, "RewardsNothingToClaim");
    await checkBooks();
  });

  it("settles at expiry: members paid for proven periods, the owner refunded the rest, stake unlocked", async () => {
    const info = await d.maguRegistry.maguInfo(maguId);
    await enterPeriod(d, info.endPeriod + 1n);
    // Not before the last period's misses can no longer be marked.
    const ready = await settleBlock(d, info.endPeriod);
    await expect(d.maguRegistry.settle(maguId)).to.be.revertedWithCustomError(d.maguRegistry, "MaguNotExpired").withArgs(maguId, ready);
    await mineForNextTxAt(d, ready);
    await expect(d.maguRegistry.settle(maguId)).to.emit(d.maguRegistry, "MaguSettled");
    const pay = info.payPerSlotPeriod;
    const honest = info.members[0]!;
    expect(await d.maguRegistry.claimable(honest)).to.equal(pay * 4n, "four proven periods");
    expect((await d.nodeRegistry.nodeInfo(honest)).locked).to.equal(0n);
    const client = d.signers[9]!;
    const refund = await d.maguRegistry.claimable(client.address);
    expect(refund).to.be.greaterThan(0n);
    for (const a of [honest, client.address]) {
      const signer = await d.ethers.getSigner(a);
      await (await d.maguRegistry.connect(signer).claim()).wait();
      await expect(d.maguRegistry.connect(signer).claim()).to.be.revertedWithCustomError(d.maguRegistry, "MaguNothingToClaim");
    }
    await checkBooks();
  });
});
