import { expect } from "chai";
import { randomBytes } from "node:crypto";
import type { VectorRecord } from "../../agents/data/vectors.js";
import { deployAll, E18, type Deployment } from "./helpers/fixture.js";
import { commitFirst, createAndForm, hex, registerNodes } from "./helpers/scenario.js";
import {
  allHits,
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
  type VectorData,
} from "./helpers/search.js";

/**
 * One whole search task on the in-process Hardhat network against the Ignition deployment, with
 * the records packed by agents/data/vectors.ts, the trees and proofs built by agents/data/merkle.ts
 * and the entry words, commitments and merge written in TypeScript from docs/SEARCH.md: five
 * members answer, one lies and is disputed, the answer is the true top-k and the fee is split by
 * credits. The contract recomputing the same distances and roots as the TypeScript is what makes
 * the honest dispute fail and the false one succeed.
 */
describe("SearchMarket task (vector Magu, 5 members, r = 2, dim 100, L2)", function () {
  this.timeout(180_000);

  const K = 10;
  const DIM = 100; // records of 208 bytes: they straddle the 1024-byte leaves
  const FEE = 1_000n * E18;
  let d: Deployment;
  let data: VectorData;
  let maguId: bigint;
  let members: string[];
  let taskId: bigint;
  let query: Int16Array;
  const lists = new Map<string, bigint[]>();
  const salts = new Map<string, string>();

  before(async () => {
    d = await deployAll({ commitBlocks: 8n, revealBlocks: 8n, disputeBlocks: 8n });
    await registerNodes(d, d.signers.slice(1, 7));
    const client = d.signers[9]!;
    const r = await createAndForm(d, client, { kind: 1, members: 5, replication: 2, maxFragments: 16, durationPeriods: 20, dimension: DIM, metric: METRIC_L2 });
    maguId = r.id;
    members = [...r.info.members];
    // 120 records, ids shuffled; records i and i + 60 share their vector (exact ties, broken by id).
    const records: VectorRecord[] = Array.from({ length: 120 }, (_, i) => ({
      id: BigInt(5_000 + ((i * 37) % 120)),
      values: pseudoVector(`record-${i % 60}`, DIM, 3),
    }));
    data = buildVectorData(records, DIM, 12); // 10 fragments of 2496 bytes (3 leaves)
    await (await commitFirst(d, client, maguId, data)).wait();
    query = pseudoVector("query", DIM, 3);
  });

  it("takes the task and escrows the fee", async () => {
    const client = d.signers[9]!;
    const market = await d.searchMarket.getAddress();
    await (await d.token.transfer(client.address, FEE)).wait();
    await (await d.token.connect(client).approve(market, FEE)).wait();
    await expect(d.searchMarket.connect(client).submit(maguId, encodeQuery(query), K, FEE)).to.emit(d.searchMarket, "TaskSubmitted");
    taskId = await d.searchMarket.taskCount();
    const info = await d.searchMarket.task(taskId);
    expect(info.root).to.equal(hex(data.tree.root));
    expect(info.fragmentCount).to.equal(BigInt(data.fragments.length));
    expect(await d.token.balanceOf(market)).to.equal(FEE);
    expect(await d.searchMarket.totalHeld()).to.equal(FEE);
  });

  it("every member commits to its top-k over the fragments it holds; one lies about a distance", async () => {
    for (const [slot, member] of members.entries()) {
      const held: number[] = [];
      for (let f = 0; f < data.fragments.length; f++) if ((await d.maguRegistry.holders(maguId, f)).includes(member)) held.push(f);
      const list = memberList(data, METRIC_L2, query, held, K);
      expect(list).to.have.length(K);
      if (slot === 3) {
        const h = decodeWord(list[0]!);
        list[0] = entryWord({ ...h, distance: h.distance - 1n }); // still the smallest word
      }
      lists.set(member, list);
      salts.set(member, hex(randomBytes(32)));
      const signer = await d.ethers.getSigner(member);
      const c = commitmentOf(taskId, member, salts.get(member)!, list.map(wordHex));
      await expect(d.searchMarket.connect(signer).commit(taskId, c)).to.emit(d.searchMarket, "ResultCommitted").withArgs(taskId, member, c);
    }
    expect(await d.searchMarket.committers(taskId)).to.deep.equal(members);
  });

  it("reveals open after the commit deadline; the contract stores each list's hash", async () => {
    const info = await d.searchMarket.task(taskId);
    const now = BigInt(await d.ethers.provider.getBlockNumber());
    await d.networkHelpers.mine(Number(info.commitDeadline - now));
    for (const member of members) {
      const signer = await d.ethers.getSigner(member);
      const entries = lists.get(member)!.map(wordHex);
      await expect(d.searchMarket.connect(signer).reveal(taskId, entries, salts.get(member)!))
        .to.emit(d.searchMarket, "ResultRevealed")
        .withArgs(taskId, member, entries);
      expect((await d.searchMarket.memberTask(taskId, member)).revealed).to.equal(true);
    }
  });

  it("rejects a dispute of a true entry: the contract finds the distance the TypeScript computed", async () => {
    const honest = members[0]!;
    for (const index of [0, K - 1]) {
      const proof = disputeProof(data, encodeQuery(query), lists.get(honest)!, index);
      await expect(d.searchMarket.connect(d.signers[8]!).dispute(taskId, honest, proof))
        .to.be.revertedWithCustomError(d.searchMarket, "SearchDisputeRejected")
        .withArgs(taskId, honest, index);
    }
  });

  it("slashes the liar, half to the disputer and half to the reward pool, with the claimed and the actual distance", async () => {
    const liar = members[3]!;
    const disputer = d.signers[8]!;
    const word = lists.get(liar)![0]!;
    const claimed = decodeWord(word);
    const before = await d.token.balanceOf(disputer.address);
    const pool = await d.token.balanceOf(await d.rewards.getAddress());
    const stake = await d.nodeRegistry.stakeOf(liar);
    const proof = disputeProof(data, encodeQuery(query), lists.get(liar)!, 0);
    await expect(d.searchMarket.connect(disputer).dispute(taskId, liar, proof))
      .to.emit(d.searchMarket, "EntryDisputed")
      .withArgs(taskId, liar, disputer.address, 0, 2, claimed.id, claimed.id, claimed.distance, claimed.distance + 1n, 50n * E18);
    expect(await d.token.balanceOf(disputer.address)).to.equal(before + 25n * E18);
    expect(await d.token.balanceOf(await d.rewards.getAddress())).to.equal(pool + 25n * E18);
    expect(await d.nodeRegistry.stakeOf(liar)).to.equal(stake - 50n * E18);
    expect((await d.searchMarket.memberTask(taskId, liar)).disputed).to.equal(true);
  });

  it("finalizes to the true top-k and splits the fee over the credits", async () => {
    const info = await d.searchMarket.task(taskId);
    const now = BigInt(await d.ethers.provider.getBlockNumber());
    await d.networkHelpers.mine(Number(info.disputeDeadline - now));
    const liar = members[3]!;
    const given = members.map((m) => (m === liar ? [] : lists.get(m)!));
    const expected = referenceAnswer(given, K);
    // Every fragment has an honest holder, so the answer is the global top-k, one word per id.
    const truth = referenceAnswer([allHits(data, METRIC_L2, query)], K).result;
    expect(expected.result).to.deep.equal(truth);
    const per = FEE / BigInt(expected.total);
    const tx = d.searchMarket.finalize(taskId, given.map((l) => l.map(wordHex)));
    await expect(tx)
      .to.emit(d.searchMarket, "TaskFinalized")
      .withArgs(taskId, truth.map(wordHex), expected.total, per, FEE - per * BigInt(expected.total));
    for (const [i, m] of members.entries()) {
      expect(await d.searchMarket.claimable(m)).to.equal(per * BigInt(expected.credits[i]!), `member ${i}`);
    }
    expect(await d.searchMarket.claimable(d.signers[9]!.address)).to.equal(FEE - per * BigInt(expected.total));
    expect((await d.searchMarket.task(taskId)).finalized).to.equal(true);
    await expect(d.searchMarket.finalize(taskId, given.map((l) => l.map(wordHex)))).to.be.revertedWithCustomError(d.searchMarket, "SearchAlreadyFinalized");
  });

  it("pays the credits out by claim and keeps its books", async () => {
    const market = await d.searchMarket.getAddress();
    for (const m of members) {
      const owed = await d.searchMarket.claimable(m);
      if (owed === 0n) continue;
      const signer = await d.ethers.getSigner(m);
      const before = await d.token.balanceOf(m);
      await expect(d.searchMarket.connect(signer).claim()).to.emit(d.searchMarket, "Claimed").withArgs(m, owed);
      expect(await d.token.balanceOf(m)).to.equal(before + owed);
      await expect(d.searchMarket.connect(signer).claim()).to.be.revertedWithCustomError(d.searchMarket, "SearchNothingToClaim");
    }
    expect(await d.token.balanceOf(market)).to.equal(await d.searchMarket.totalHeld());
    expect(await d.searchMarket.totalHeld()).to.equal(await d.searchMarket.claimable(d.signers[9]!.address));
  });
});
