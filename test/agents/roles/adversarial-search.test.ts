/**
 * The validator's search checker (search-checker.ts) against lying members: a
 * real chain with the SearchMarket, a vector Magu (r = 2 on two nodes) whose fragments the nodes
 * serve from real stores over libp2p, and a validator running the real checker (vector service
 * in observer mode, LevelDB, its own libp2p node). One member answers honestly; the other is a
 * hostile member that commits and reveals, on chain, an entry naming another id than the record
 * at that position holds (task 1) and an entry past the fragment's last record (task 2). The
 * checker must dispute exactly the lie, the liar lose its dispute slash and earn nothing, and the
 * honest member be paid. Then, on a second Magu where each fragment has one holder (r = 1), a member
 * reveals a true entry copied from the other member's fragment (task 3): disputed as not placed on
 * it, with no data.
 *
 * Also: a wrong distance (e2e-vector.test.ts's lie) is disputed like a wrong id; an entry whose fragment no holder serves, and
 * every entry of a task whose vector document the validator lacks, are counted and logged as not
 * checked, never disputed; the checker counts what it checked, and each task it finalizes is
 * counted, logged and dropped from its store. A later vector document that changes the Magu's
 * quantization scale is refused. Off-chain, a member answers searches (one query or a batch) with
 * binary frames and proves, on a second request, the hits it returned to that peer and only those
 * (the proofs check against the committed roots); a record whose fragment's bytes on its disk lost
 * the committed root is refused with the reason, so the client asks another holder, also when the
 * bytes change after the member kept the fragment's tree (a proof reads only its record's window).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { open } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { getAddress, type Address, type Hex } from "viem";
import { getMuriContracts } from "../../../agents/chain/index.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { checkHitProof } from "../../../agents/data/hit-proof.js";
import { fragmentRoot, leafCount } from "../../../agents/data/merkle.js";
import { encodeVectorManifest } from "../../../agents/data/vector-manifest.js";
import { canonicalDistance, compareHits, encodeHitHex, packRecords, packTombstones, PAYLOAD_ID, recordSize, type HitEntry, type VectorRecord } from "../../../agents/data/vectors.js";
import { createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { openFragmentStore, type FragmentStore } from "../../../agents/store/fragment-store.js";
import { blockPath, storePaths } from "../../../agents/store/layout.js";
import { Bucket, openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import { createMaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { createSearchChecker, type SearchChecker } from "../../../agents/roles/validator/search-checker.js";
import { createSearchTasks, searchCommitment } from "../../../agents/roles/node/search-tasks.js";
import { createVectorService, encodeQuery, type VectorService } from "../../../agents/roles/shared/vector-service.js";
import { decodeProveAnswer, decodeSearchAnswer } from "../../../agents/roles/shared/search-wire.js";
import { createAndFormMagu, E18, cleanup, fund, signer, tempDir } from "../chain/harness.js";
import { startTestChain, startTestNode, testLogger, waitUntil, type TestChain, type TestNode } from "./adversarial-helpers.js";
import { commitWithAcks } from "./commit-helpers.js";

after(cleanup);

const DIM = 8;
const RECORDS_PER_FRAGMENT = 5;
const CLIENT = 5;
const VALIDATOR = 4;
const K = 2;
/** How long to wait for the checker's reaction (a few seconds here); shorter in a mutation run, where a mutant that stops it fails sooner. */
const WAIT_MS = process.env.MURI_MUTATION === "1" ? 20_000 : 60_000;

/** `count` records of dimension 8 with ids from `firstId`: random int16 components shifted right by `shift`. */
function randomRecords(count: number, firstId: bigint, shift: number): VectorRecord[] {
  const raw = randomBytes(count * DIM * 2);
  return Array.from({ length: count }, (_, i) => {
    const values = new Int16Array(DIM);
    for (let j = 0; j < DIM; j++) values[j] = raw.readInt16BE(2 * (i * DIM + j)) >> shift;
    return { id: firstId + BigInt(i), values };
  });
}

describe("the search checker disputes a wrong id and a record past the fragment's end (real chain, stores, libp2p)", { timeout: 300_000 }, () => {
  let t: TestChain;
  const nodes: TestNode[] = [];
  let maguId: bigint;
  const fragments: Buffer[] = [];
  const records: Array<VectorRecord & { fragment: number; position: number }> = [];
  // The validator's parts.
  let vMeta: MetaDb;
  let vStore: FragmentStore;
  let vP2p: P2PNode;
  let vectors: VectorService;
  let checker: SearchChecker;
  const checkerLog = testLogger("checker");

  before(async () => {
    // A reveal window long enough for one task to be answered inside another's (the deletion test).
    t = await startTestChain({ revealBlocks: 32 });
    for (let i = 1; i <= 2; i++) nodes.push(await startTestNode(t, t.chain.keys[i]!));

    // A vector Magu on both nodes (r = 2: each holds every fragment), two fragments of 5 records.
    const c = getMuriContracts(t.d.contracts, signer(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!));
    const clientAddress = getAddress(signer(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!).account.address);
    const price = E18 / 1000n;
    // The escrow (price x stored fragments x periods, replicas included) is well under this.
    const allowance = 10n * E18;
    await fund(t.chain.rpcUrl, t.d, t.chain.keys[0]!, clientAddress, allowance + 100n * E18);
    maguId = await createAndFormMagu(t.chain.rpcUrl, t.d, t.chain.keys[0]!, t.chain.keys[CLIENT]!, { kind: 1, metric: 1, dimension: DIM, members: 2, replication: 2, dataShards: 0, parityShards: 0, maxFragments: 2, durationPeriods: 20n, pricePerFragmentPeriod: price }, (b) => t.mineTo(b));
    await t.wait(await c.token.write.approve([t.d.contracts.maguRegistry, allowance]));
    const all = randomRecords(2 * RECORDS_PER_FRAGMENT, 0n, 2);
    for (const bytes of packRecords(all, DIM, RECORDS_PER_FRAGMENT * recordSize(DIM))) fragments.push(bytes);
    assert.equal(fragments.length, 2);
    all.forEach((r, i) => records.push({ ...r, fragment: Math.floor(i / RECORDS_PER_FRAGMENT), position: i % RECORDS_PER_FRAGMENT }));
    const roots = fragments.map((f) => fragmentRoot(f));
    await commitWithAcks(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!, t.chain.keys, maguId, roots);
    // The members hold and serve both fragments.
    for (const n of nodes) for (const f of fragments) await n.store.put(fragmentCid(f), f);

    // The validator: its vector service takes the client's document (checked against the chain).
    const v = signer(t.chain.rpcUrl, t.d, t.chain.keys[VALIDATOR]!);
    const dir = await tempDir("muri-adversarial-validator-");
    vMeta = await openMetaDb(`${dir}/meta`);
    vStore = await openFragmentStore({ dir, quotaBytes: 16 * 1024 * 1024, metaDb: vMeta, sync: "none" });
    const index = createMaguIndex({}, { metaDb: vMeta });
    vectors = createVectorService({ member: v.account.address, dir, observer: true }, { store: vStore, index, metaDb: vMeta, contracts: t.reader });
    const doc = encodeVectorManifest({
      maguId,
      dim: DIM,
      metric: "l2",
      fragments: fragments.map((f, i) => ({ cid: fragmentCid(f), root: roots[i]!.toString("hex"), size: f.length, count: RECORDS_PER_FRAGMENT })),
    });
    await vectors.acceptDocument(doc.bytes, doc.cid);
    vP2p = await createP2PNode({ source: vStore, sink: { put: () => undefined } });
    await vP2p.start();
    checker = createSearchChecker(
      { address: getAddress(v.account.address), fromBlock: t.d.deployBlock, pollMs: 100 },
      { contracts: getMuriContracts(t.d.contracts, v), publicClient: v.publicClient, vectors, p2p: vP2p, metaDb: vMeta, logger: checkerLog },
    );
    await checker.start();
  });

  after(async () => {
    await checker?.stop();
    await vP2p?.stop();
    await vectors?.close();
    await vStore?.close();
    await vMeta?.close();
    for (const n of nodes) await n.close();
  });

  /**
   * Submits a task for `query`; the two members commit and reveal `lists[i]` (after `beforeReveal`,
   * run once both committed, given the task id); returns the task id and its deadlines.
   */
  const runTask = async (query: Int16Array, lists: readonly (readonly HitEntry[])[], magu = maguId, beforeReveal?: (task: bigint) => Promise<void>, k = K) => {
    const client = signer(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!);
    const c = getMuriContracts(t.d.contracts, client);
    const fee = E18;
    await t.wait(await c.token.write.approve([t.d.contracts.searchMarket!, fee]));
    const submitBlock = await t.wait(await c.searchMarket.write.submit([magu, encodeQuery(query), BigInt(k), fee]));
    const submitted = await t.reader.searchMarket.getEvents.TaskSubmitted({}, { fromBlock: submitBlock, toBlock: submitBlock });
    const task = submitted[0]!.args.task!;
    const cfg = await t.reader.searchMarket.read.config();
    const salts = nodes.map(() => `0x${randomBytes(32).toString("hex")}` as Hex);
    const words = lists.map((list) => list.map((h) => encodeHitHex(h)));
    for (const [i, n] of nodes.entries()) {
      const m = getMuriContracts(t.d.contracts, n.clients);
      await t.wait(await m.searchMarket.write.commit([task, searchCommitment(task, n.address, salts[i]!, words[i]!)]));
    }
    const commitDeadline = submitBlock + BigInt(cfg.commitBlocks);
    await beforeReveal?.(task);
    assert.ok((await t.head()) + BigInt(nodes.length) <= commitDeadline + BigInt(cfg.revealBlocks), "both reveals still fit the reveal window");
    await t.mineTo(commitDeadline);
    for (const [i, n] of nodes.entries()) {
      const m = getMuriContracts(t.d.contracts, n.clients);
      await t.wait(await m.searchMarket.write.reveal([task, words[i]!, salts[i]!]));
    }
    return { task, disputeDeadline: commitDeadline + BigInt(cfg.revealBlocks) + BigInt(cfg.disputeBlocks) };
  };

  const truth = (query: Int16Array): HitEntry[] =>
    records
      .map((r) => ({ distance: canonicalDistance("l2", query, r.values), id: r.id, fragment: r.fragment, position: r.position }))
      .sort(compareHits)
      .slice(0, K);

  /** `n` as a member's vector service over both fragments (its store holds them), the client's document accepted. */
  const memberService = async (n: TestNode, dirPrefix: string): Promise<{ vs: VectorService; roots: Buffer[] }> => {
    const vs = createVectorService({ member: n.address, dir: await tempDir(dirPrefix) }, { store: n.store, index: n.index, metaDb: n.meta, contracts: t.reader });
    const roots = fragments.map((f) => fragmentRoot(f));
    const doc = encodeVectorManifest({
      maguId,
      dim: DIM,
      metric: "l2",
      fragments: fragments.map((f, i) => ({ cid: fragmentCid(f), root: roots[i]!.toString("hex"), size: f.length, count: RECORDS_PER_FRAGMENT })),
    });
    await vs.acceptDocument(doc.bytes, doc.cid);
    return { vs, roots };
  };

  const stake = async (a: Address) => (await t.reader.nodeRegistry.read.nodeInfo([a])).stake;

  /** Another vector Magu of dimension 8 on both members (the client funded, its escrow approved). */
  const newMagu = async (metric: 1 | 2, replication: 1 | 2, maxFragments: number): Promise<bigint> => {
    const client = signer(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!);
    await fund(t.chain.rpcUrl, t.d, t.chain.keys[0]!, getAddress(client.account.address), 20n * E18);
    const id = await createAndFormMagu(t.chain.rpcUrl, t.d, t.chain.keys[0]!, t.chain.keys[CLIENT]!, { kind: 1, metric, dimension: DIM, members: 2, replication, dataShards: 0, parityShards: 0, maxFragments, durationPeriods: 20n, pricePerFragmentPeriod: E18 / 1000n }, (b) => t.mineTo(b));
    await t.wait(await getMuriContracts(t.d.contracts, client).token.write.approve([t.d.contracts.maguRegistry, 10n * E18]));
    return id;
  };

  /** Task ids the validator still keeps as open (its `Bucket.task` entries). */
  const keptTasks = async (): Promise<string[]> => {
    const ids: string[] = [];
    for await (const [, value] of vMeta.bucket(Bucket.task).entries()) ids.push((JSON.parse(Buffer.from(value).toString("utf8")) as { task: string }).task);
    return ids;
  };

  /** Mines past the task's dispute window; the checker finalizes it (counted, logged) and forgets it. */
  const finalized = async (task: bigint, disputeDeadline: bigint): Promise<void> => {
    const before = checker.stats().finalized;
    assert.ok((await keptTasks()).includes(task.toString()), "the open task is kept until finalized");
    await t.mineTo(disputeDeadline + 1n);
    await checkerLog.waitFor((e) => e.msg === "search task finalized" && e.context?.task === task.toString(), WAIT_MS);
    assert.equal((await t.reader.searchMarket.read.task([task])).finalized, true);
    assert.equal(checker.stats().finalized, before + 1);
    await waitUntil("the finalized task forgotten", async () => !(await keptTasks()).includes(task.toString()), 10_000);
  };

  test("a document that changes the Magu's quantization scale is refused; the held one stays", async () => {
    const held = await vectors.manifest(maguId);
    assert.ok(held !== undefined);
    const roots = fragments.map((f) => fragmentRoot(f));
    const rescaled = encodeVectorManifest({
      maguId,
      dim: DIM,
      metric: "l2",
      scaleExp: 7,
      fragments: fragments.map((f, i) => ({ cid: fragmentCid(f), root: roots[i]!.toString("hex"), size: f.length, count: RECORDS_PER_FRAGMENT })),
    });
    await assert.rejects(vectors.acceptDocument(rescaled.bytes, rescaled.cid), /scale 2\^7 differs from the Magu's 2\^14/);
    assert.equal((await vectors.manifest(maguId))!.cid.toString(), held.cid.toString());
  });

  test("an entry whose fragment no holder serves is logged as not checked, never disputed; each holder's failure is logged", async () => {
    // Before any other test: the checker has fetched (and cached) no fragment yet. Both members
    // lose fragment 0; the liar reveals a wrong id on it, the other member the true list.
    const [liar, honest] = nodes as [TestNode, TestNode];
    const cid0 = fragmentCid(fragments[0]!);
    for (const n of nodes) assert.equal(await n.store.delete(cid0), true);
    try {
      const query = records[0]!.values.map((x) => x + 1) as Int16Array;
      const right = truth(query);
      const onFragment0 = records.find((r) => r.fragment === 0 && r.position === 2)!;
      const lying: HitEntry[] = [{ distance: canonicalDistance("l2", query, onFragment0.values), id: 7n, fragment: 0, position: 2 }];
      const entries = [...lying, ...right];
      const missing = entries.filter((h) => h.fragment === 0).length;
      const before = checker.stats();
      const { task, disputeDeadline } = await runTask(query, [lying, right]);

      const forTask = (msg: string) => checkerLog.entries.filter((e) => e.msg === msg && e.context?.task === task.toString());
      await waitUntil("every entry counted", () => checker.stats().checked + checker.stats().unchecked === before.checked + before.unchecked + entries.length, WAIT_MS);
      assert.ok(["syncing", "following", "lagging"].includes(checker.followerStatus()?.state ?? "none"), `the task follower runs (${checker.followerStatus()?.state})`);
      assert.equal(checker.stats().unchecked, before.unchecked + missing, "each entry on fragment 0 not checked");
      assert.equal(checker.stats().checked, before.checked + entries.length - missing, "the others checked");
      assert.deepEqual(
        forTask("search check: fragment unavailable, entry not checked").map((e) => [e.context!.member, e.context!.fragment]).sort(),
        entries.map((h, i) => [i < lying.length ? liar.address : honest.address, h.fragment] as const).filter(([, f]) => f === 0).sort(),
      );
      // Each time fragment 0 was wanted, each of its two holders was asked and refused.
      const refused = checkerLog.entries.filter((e) => e.msg === "search check: holder did not serve the fragment" && e.context?.magu === maguId.toString());
      assert.equal(refused.length, 2 * missing);
      assert.deepEqual(new Set(refused.map((e) => String(e.context!.holder).toLowerCase())), new Set(nodes.map((n) => n.address.toLowerCase())));
      assert.ok(refused.every((e) => e.context!.fragment === 0 && e.context!.error !== undefined));
      assert.equal(forTask("search check: false entry, disputing").length, 0, "nothing disputed without the data");
      assert.equal(checker.stats().disputed, before.disputed);
      assert.equal((await t.reader.searchMarket.read.memberTask([task, liar.address])).disputed, false);
      await finalized(task, disputeDeadline);
    } finally {
      for (const n of nodes) await n.store.put(cid0, fragments[0]!);
    }
  });

  for (const lie of ["wrong id", "past the end", "far past the end", "control id", "wrong distance"] as const) {
    test(`an entry with a ${lie === "past the end" ? "record past the fragment's end" : lie === "far past the end" ? "record leaves past the fragment's end" : lie === "control id" ? "control record's id (disputed without data)" : lie} is disputed; the liar is slashed and unpaid, the honest member paid`, async () => {
      const [liar, honest] = nodes as [TestNode, TestNode];
      const query = records[3]!.values.map((x) => x + 1) as Int16Array;
      const right = truth(query);
      const best = right[0]!;
      const lying: HitEntry[] =
        lie === "wrong id"
          ? // The true best record's distance and place, another id (an id that exists elsewhere).
            [{ ...best, id: best.id === 9n ? 8n : 9n }].sort(compareHits)
          : lie === "wrong distance"
            ? // The true best record's id and place, a distance one less (closer) than its own.
              [{ ...best, distance: best.distance - 1n }]
            : lie === "far past the end"
              ? // A record whose leaf is far past the fragment's only leaf: the proof holds the last leaf.
                [{ distance: 0n, id: 999n, fragment: 1, position: 1000 }]
              : lie === "control id"
                ? // A payload chunk's id (a control record, never a vector) at the best record's place.
                  [{ ...best, id: PAYLOAD_ID }]
                : // A perfect match at the record after the fragment's last.
                  [{ distance: 0n, id: 999n, fragment: 1, position: RECORDS_PER_FRAGMENT }];
      const before = { disputed: checker.stats().disputed, checked: checker.stats().checked, unchecked: checker.stats().unchecked, liar: await stake(liar.address), paidLiar: await t.reader.searchMarket.read.claimable([liar.address]), paidHonest: await t.reader.searchMarket.read.claimable([honest.address]) };
      // By the last lie the checker has fetched both fragments (the earlier lies): it keeps them (up
      // to 32), so it checks this task while no holder serves them, and asks none.
      const hidden = lie === "wrong distance" ? fragments : [];
      for (const n of nodes) for (const f of hidden) assert.equal(await n.store.delete(fragmentCid(f)), true);
      const asked = () => checkerLog.entries.filter((e) => e.msg === "search check: holder did not serve the fragment").length;
      const askedBefore = asked();
      const { task, disputeDeadline } = await runTask(query, [lying, right]);

      await checkerLog.waitFor((e) => e.msg === "search check: dispute accepted" && e.context?.task === task.toString(), WAIT_MS);
      assert.equal((await t.reader.searchMarket.read.memberTask([task, liar.address])).disputed, true, "the liar's list disputed on chain");
      const disputes = checkerLog.entries.filter((e) => e.msg === "search check: false entry, disputing" && e.context!.task === task.toString());
      assert.deepEqual(
        disputes.map((e) => [e.context!.member, e.context!.index]),
        [[liar.address, 0]],
      );
      const expected = {
        "wrong id": `record ${best.position} has id ${best.id}, not ${lying[0]!.id}`,
        "wrong distance": `distance is ${best.distance}, not ${best.distance - 1n}`,
        "past the end": "record past the fragment's end",
        "far past the end": "record past the fragment's end",
        "control id": `id ${PAYLOAD_ID} is a control record's, not a vector's`,
      }[lie];
      assert.equal(disputes[0]!.context!.lie, expected);
      assert.equal(checker.stats().disputed, before.disputed + 1);
      // The liar's one entry and the honest member's list were all checked.
      await waitUntil("both lists checked", () => checker.stats().checked === before.checked + 1 + right.length, WAIT_MS);
      assert.equal(checker.stats().unchecked, before.unchecked);
      assert.equal(asked(), askedBefore, "no holder asked in vain");
      for (const n of nodes) for (const f of hidden) await n.store.put(fragmentCid(f), f);
      assert.equal((await t.reader.searchMarket.read.memberTask([task, honest.address])).disputed, false, "the honest list stands");
      const cfg = await t.reader.searchMarket.read.config();
      assert.equal(await stake(liar.address), before.liar - cfg.disputeSlash, "the liar lost its dispute slash");

      // After the dispute window the checker finalizes: the fee goes to the honest member only.
      await finalized(task, disputeDeadline);
      assert.equal(await t.reader.searchMarket.read.claimable([liar.address]), before.paidLiar, "the liar earned nothing");
      assert.ok((await t.reader.searchMarket.read.claimable([honest.address])) > before.paidHonest, "the honest member was paid");
    });
  }

  test("a true entry copied from a fragment the member is not placed on is disputed without data; the copier is slashed and unpaid", async () => {
    // A second vector Magu over the same records, each fragment on one member (r = 1).
    const single = await newMagu(1, 1, 2);
    const roots = fragments.map((f) => fragmentRoot(f));
    await commitWithAcks(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!, t.chain.keys, single, roots);
    const query = records[3]!.values.map((x) => x + 1) as Int16Array;
    const best = truth(query)[0]!;
    const holderOf = async (f: number) => (await t.reader.maguRegistry.read.holders([single, BigInt(f)])).map((a) => a.toLowerCase());
    const bestHolders = await holderOf(best.fragment);
    assert.equal(bestHolders.length, 1);
    const honest = nodes.find((n) => n.address.toLowerCase() === bestHolders[0])!;
    const copier = nodes.find((n) => n !== honest)!;
    // The honest member answers from its own fragments; the copier reveals the best entry, true
    // but from a fragment it does not hold (what an earlier task's revealed list gives away).
    const own = new Set<number>();
    for (const f of [0, 1]) if ((await holderOf(f)).includes(honest.address.toLowerCase())) own.add(f);
    const honestList = records
      .filter((r) => own.has(r.fragment))
      .map((r) => ({ distance: canonicalDistance("l2", query, r.values), id: r.id, fragment: r.fragment, position: r.position }))
      .sort(compareHits)
      .slice(0, K);
    const lists = nodes.map((n) => (n === honest ? honestList : [best]));
    const cfg = await t.reader.searchMarket.read.config();

    // Before the validator has the Magu's vector document, nothing can be checked: every revealed
    // entry is counted as not checked and logged, none disputed (the copy included).
    const noDoc = checker.stats();
    const early = await runTask(query, lists, single);
    const warned = () => checkerLog.entries.filter((e) => e.msg === "search check: no vector index document covering the task" && e.context?.task === early.task.toString());
    await waitUntil("both lists seen", () => warned().length === 2, WAIT_MS);
    assert.deepEqual(warned().map((e) => e.context!.magu), [single.toString(), single.toString()]);
    assert.equal(checker.stats().unchecked, noDoc.unchecked + honestList.length + 1);
    assert.equal(checker.stats().checked, noDoc.checked);
    assert.equal(checker.stats().disputed, noDoc.disputed);
    assert.equal((await t.reader.searchMarket.read.memberTask([early.task, copier.address])).disputed, false);
    await finalized(early.task, early.disputeDeadline);

    const doc = encodeVectorManifest({
      maguId: single,
      dim: DIM,
      metric: "l2",
      fragments: fragments.map((f, i) => ({ cid: fragmentCid(f), root: roots[i]!.toString("hex"), size: f.length, count: RECORDS_PER_FRAGMENT })),
    });
    await vectors.acceptDocument(doc.bytes, doc.cid);
    const before = { checked: checker.stats().checked, copier: await stake(copier.address), paidCopier: await t.reader.searchMarket.read.claimable([copier.address]), paidHonest: await t.reader.searchMarket.read.claimable([honest.address]) };
    const { task, disputeDeadline } = await runTask(query, lists, single);

    await checkerLog.waitFor((e) => e.msg === "search check: dispute accepted" && e.context?.task === task.toString(), WAIT_MS);
    const disputes = checkerLog.entries.filter((e) => e.msg === "search check: false entry, disputing" && e.context!.task === task.toString());
    assert.deepEqual(
      disputes.map((e) => [e.context!.member, e.context!.index, e.context!.lie]),
      [[copier.address, 0, `fragment ${best.fragment} is not placed on the member (an entry copied, not searched)`]],
    );
    assert.equal((await t.reader.searchMarket.read.memberTask([task, copier.address])).disputed, true);
    // The copied entry counts as checked (disputed without data), as does each honest entry.
    await waitUntil("both lists checked", () => checker.stats().checked === before.checked + 1 + honestList.length, WAIT_MS);
    assert.equal((await t.reader.searchMarket.read.memberTask([task, honest.address])).disputed, false, "the honest list stands");
    assert.equal(await stake(copier.address), before.copier - cfg.disputeSlash, "the copier lost its dispute slash");

    await finalized(task, disputeDeadline);
    assert.equal(await t.reader.searchMarket.read.claimable([copier.address]), before.paidCopier, "the copier earned nothing");
    assert.ok((await t.reader.searchMarket.read.claimable([honest.address])) > before.paidHonest, "the honest member was paid");
  });

  test("on an ip Magu: a deleted id is disputed with its tombstone; a document shorter than the task checks nothing; one longer is cut to the task; lies across leaves are proven", async () => {
    // A third vector Magu (metric ip, both members hold everything). Fragment 0: 130 records of 24
    // bytes, 4 leaves of 1024: record 42 spans leaves 0 and 1, record 127 ends on leaf 2's last
    // byte, record 129 ends the fragment. Fragment 1, committed later: the tombstones of ids
    // 100..189 (45 records of two ids; id 185 in record 42, slot 1, across leaves 0 and 1).
    const ipMagu = await newMagu(2, 2, 2);
    const COUNT = 130;
    const rows = randomRecords(COUNT, 100n, 4);
    rows[COUNT - 1]!.values.fill(8000); // the best inner product for any positive query
    const data = [...packRecords(rows, DIM, COUNT * recordSize(DIM, "ip"), "ip")];
    assert.equal(data.length, 1);
    const deleted = rows.slice(0, 90).map((r) => r.id);
    const tomb = packTombstones(deleted, DIM, "ip");
    assert.equal(tomb.length, 1);
    const [dataFrag, tombFrag] = [data[0]!, tomb[0]!];
    assert.equal(leafCount(dataFrag.length), 4);
    assert.equal(leafCount(tombFrag.length), 2);
    const entry = (f: Buffer, count: number, ids?: bigint[]) => ({ cid: fragmentCid(f), root: fragmentRoot(f).toString("hex"), size: f.length, count, ...(ids ? { deleted: ids } : {}) });
    const v1 = encodeVectorManifest({ maguId: ipMagu, dim: DIM, metric: "ip", fragments: [entry(dataFrag, COUNT)] });
    const v2 = encodeVectorManifest({ maguId: ipMagu, dim: DIM, metric: "ip", fragments: [entry(dataFrag, COUNT), entry(tombFrag, tombFrag.length / recordSize(DIM, "ip"), deleted)] });
    for (const n of nodes) for (const f of [dataFrag, tombFrag]) await n.store.put(fragmentCid(f), f);
    await commitWithAcks(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!, t.chain.keys, ipMagu, [fragmentRoot(dataFrag)]);
    await vectors.acceptDocument(v1.bytes, v1.cid);

    const hitOf = (q: Int16Array, p: number): HitEntry => ({ distance: canonicalDistance("ip", q, rows[p]!.values), id: rows[p]!.id, fragment: 0, position: p });
    const truthOf = (q: Int16Array, gone: ReadonlySet<bigint>): HitEntry[] =>
      rows.map((_, p) => hitOf(q, p)).filter((h) => !gone.has(h.id)).sort(compareHits).slice(0, K);
    const [a, b] = nodes as [TestNode, TestNode];
    const cfg = await t.reader.searchMarket.read.config();
    const before = { checked: checker.stats().checked, unchecked: checker.stats().unchecked, disputed: checker.stats().disputed, a: await stake(a.address), b: await stake(b.address) };
    const disputesOf = (task: bigint) => checkerLog.entries.filter((e) => e.msg === "search check: false entry, disputing" && e.context!.task === task.toString()).map((e) => [e.context!.member, e.context!.index, e.context!.lie]);

    // Task 1 is submitted over fragment 0 alone and revealed after fragment 1 is committed and the
    // validator holds v2: each member lies about one id, on a record across leaves 0-1 (b: an id
    // v2 deletes) and on one ending a leaf (a). The disputes prove against the task's one-fragment
    // root. Inside task 1's window, task 2 is submitted over both fragments while the validator
    // still holds v1: no document covers it, so nothing of it is checked.
    const q1 = new Int16Array(DIM).fill(100);
    const right1 = truthOf(q1, new Set());
    const lies1: HitEntry[][] = [[{ ...hitOf(q1, 127), id: 101n }], [{ ...hitOf(q1, 42), id: 185n }]];
    let task2: { task: bigint; disputeDeadline: bigint } | undefined;
    const task1 = await runTask(q1, lies1, ipMagu, async () => {
      await commitWithAcks(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!, t.chain.keys, ipMagu, [fragmentRoot(dataFrag), fragmentRoot(tombFrag)]);
      const q2 = new Int16Array(DIM).fill(50);
      task2 = await runTask(q2, [truthOf(q2, new Set()), truthOf(q2, new Set())], ipMagu);
      const warned = () => checkerLog.entries.filter((e) => e.msg === "search check: no vector index document covering the task" && e.context?.task === task2!.task.toString());
      await waitUntil("both lists of task 2 seen", () => warned().length === 2, WAIT_MS);
      assert.equal(checker.stats().unchecked, before.unchecked + 2 * K, "task 2's entries not checked");
      assert.equal(checker.stats().checked, before.checked);
      await vectors.acceptDocument(v2.bytes, v2.cid);
    });
    assert.equal((await t.reader.searchMarket.read.task([task1.task])).fragmentCount, 1);
    await waitUntil("both lies of task 1 disputed", async () => (await t.reader.searchMarket.read.memberTask([task1.task, a.address])).disputed && (await t.reader.searchMarket.read.memberTask([task1.task, b.address])).disputed, WAIT_MS);
    assert.deepEqual(disputesOf(task1.task).sort(), [
      [a.address, 0, `record 127 has id ${rows[127]!.id}, not 101`],
      [b.address, 0, `record 42 has id ${rows[42]!.id}, not 185`],
    ].sort());
    assert.equal(await stake(a.address), before.a - cfg.disputeSlash);
    assert.equal(await stake(b.address), before.b - cfg.disputeSlash);
    assert.ok(right1[0]!.position === COUNT - 1, "the last record is the best hit");
    assert.equal((await t.reader.searchMarket.read.memberTask([task2!.task, a.address])).disputed, false);

    // Task 3 over both fragments: a reveals a deleted id (disputed with the tombstone, rebuilt from
    // v2's ids, across the tombstone fragment's two leaves); b reveals the true list, which holds
    // the fragment's last record: checked, not disputed.
    const q3 = new Int16Array(DIM).fill(70);
    const right3 = truthOf(q3, new Set(deleted));
    assert.equal(right3[0]!.position, COUNT - 1);
    const lie3: HitEntry = hitOf(q3, 85); // id 185: deleted
    const mid = { checked: checker.stats().checked, a: await stake(a.address), b: await stake(b.address) };
    const task3 = await runTask(q3, [[lie3], right3], ipMagu);
    await checkerLog.waitFor((e) => e.msg === "search check: dispute accepted" && e.context?.task === task3.task.toString() && e.context?.deleted === true, WAIT_MS);
    await waitUntil("both lists of task 3 checked", () => checker.stats().checked === mid.checked + 1 + right3.length, WAIT_MS);
    assert.deepEqual(disputesOf(task3.task), [[a.address, 0, `id 185 was deleted (tombstone fragment 1)`]]);
    assert.equal((await t.reader.searchMarket.read.memberTask([task3.task, a.address])).disputed, true);
    assert.equal((await t.reader.searchMarket.read.memberTask([task3.task, b.address])).disputed, false, "the true list stands");
    assert.equal(await stake(a.address), mid.a - cfg.disputeSlash, "the liar lost its dispute slash");
    assert.equal(await stake(b.address), mid.b);
    assert.equal(checker.stats().disputed, before.disputed + 3);

    // Tasks 1 and 2 were open together; each is finalized and forgotten on its own.
    await finalized(task1.task, task1.disputeDeadline);
    await finalized(task2!.task, task2!.disputeDeadline);
    await finalized(task3.task, task3.disputeDeadline);
  });

  test("a reveal of a task the checker has no record of (a checker started after the task) is passed over: nothing checked, disputed or failed", async () => {
    const query = records[5]!.values;
    const right = truth(query);
    const before = checker.stats();
    const { task } = await runTask(query, [[{ ...right[0]!, id: 999n }], right], maguId, async (id) => {
      await waitUntil("the task recorded", async () => (await keptTasks()).includes(id.toString()), WAIT_MS);
      const bucket = vMeta.bucket(Bucket.task);
      for await (const [key, value] of bucket.entries()) if ((JSON.parse(Buffer.from(value).toString("utf8")) as { task: string }).task === id.toString()) await bucket.del(key);
      assert.equal((await keptTasks()).includes(id.toString()), false);
    });
    const head = await t.head();
    await waitUntil("the checker past both reveals", () => (checker.followerStatus()?.cursor ?? 0n) >= head, WAIT_MS);
    assert.deepEqual(checker.stats(), before, "nothing counted");
    assert.equal(checkerLog.entries.filter((e) => e.context?.task === task.toString()).length, 0, "nothing logged about it");
    assert.equal((await t.reader.searchMarket.read.memberTask([task, nodes[0]!.address])).disputed, false, "its false entry is not disputed by a checker that cannot check it");
  });

  test("the checker keeps the last 32 fragments it fetched: the 33rd pushes out the oldest, which is fetched again", async () => {
    // A Magu of 34 one-record fragments on both members. Task A: member a reveals the record of
    // fragment f[0], b the 33 records of f[0..32] (all true): the checker fetches 33 fragments, so
    // f[0] leaves its cache and f[1] stays. Then both holders lose f[0] and f[1]; in task B, an entry
    // on f[1] is still checked (from the cache), one on f[0] cannot be (no holder serves it).
    const N = 34;
    const many = await newMagu(1, 2, N);
    const rows = randomRecords(N, 500n, 4);
    const frags = [...packRecords(rows, DIM, recordSize(DIM))];
    assert.equal(frags.length, N);
    for (const n of nodes) for (const f of frags) await n.store.put(fragmentCid(f), f);
    await commitWithAcks(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!, t.chain.keys, many, frags.map((f) => fragmentRoot(f)));
    const doc = encodeVectorManifest({ maguId: many, dim: DIM, metric: "l2", fragments: frags.map((f) => ({ cid: fragmentCid(f), root: fragmentRoot(f).toString("hex"), size: f.length, count: 1 })) });
    await vectors.acceptDocument(doc.bytes, doc.cid);
    const hits = (q: Int16Array): HitEntry[] => rows.map((r, i) => ({ distance: canonicalDistance("l2", q, r.values), id: r.id, fragment: i, position: 0 })).sort(compareHits);

    const qa = rows[0]!.values;
    const top = hits(qa).slice(0, N - 1); // 33 fragments
    const order = top.map((h) => h.fragment); // the order the checker fetches them in
    const a0 = checker.stats();
    const taskA = await runTask(qa, [[top[0]!], top], many, undefined, N - 1);
    await waitUntil("task A's 34 entries checked", () => checker.stats().checked === a0.checked + N, WAIT_MS);
    assert.equal(checker.stats().unchecked, a0.unchecked);
    assert.equal(checker.stats().disputed, a0.disputed);
    await finalized(taskA.task, taskA.disputeDeadline);

    const [oldest, second] = [order[0]!, order[1]!];
    for (const n of nodes) for (const f of [oldest, second]) assert.equal(await n.store.delete(fragmentCid(frags[f]!)), true);
    try {
      const qb = rows[5]!.values;
      const onFragment = (f: number): HitEntry => ({ distance: canonicalDistance("l2", qb, rows[f]!.values), id: rows[f]!.id, fragment: f, position: 0 });
      const b0 = checker.stats();
      const taskB = await runTask(qb, [[onFragment(oldest)], [onFragment(second)]], many, undefined, 1);
      await waitUntil("task B's two entries seen", () => checker.stats().checked + checker.stats().unchecked === b0.checked + b0.unchecked + 2, WAIT_MS);
      assert.equal(checker.stats().checked, b0.checked + 1, `fragment ${second} checked from the cache`);
      assert.equal(checker.stats().unchecked, b0.unchecked + 1, `fragment ${oldest} left the cache: asked for again, served by none`);
      assert.deepEqual(
        checkerLog.entries.filter((e) => e.msg === "search check: fragment unavailable, entry not checked" && e.context?.task === taskB.task.toString()).map((e) => e.context!.fragment),
        [oldest],
      );
      await finalized(taskB.task, taskB.disputeDeadline);
    } finally {
      for (const n of nodes) for (const f of [oldest, second]) await n.store.put(fragmentCid(frags[f]!), frags[f]!);
    }
  });

  test("a task paying less than a node's fee floor is not answered by it", async () => {
    // Node 1's real search-task service (vector service in member mode over its store), with a
    // floor of 2 MURI; the task pays 1.
    const n = nodes[0]!;
    const { vs } = await memberService(n, "muri-fee-floor-");
    const log = testLogger("fee-floor");
    const client = signer(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!);
    const c = getMuriContracts(t.d.contracts, client);
    await t.wait(await c.token.write.approve([t.d.contracts.searchMarket!, E18]));
    const submitBlock = await t.wait(await c.searchMarket.write.submit([maguId, encodeQuery(records[0]!.values), BigInt(K), E18]));
    const task = (await t.reader.searchMarket.getEvents.TaskSubmitted({}, { fromBlock: submitBlock, toBlock: submitBlock }))[0]!.args.task!;
    // Followed from the task's block (earlier tasks of this file are long closed).
    const tasks = createSearchTasks(
      { member: n.address, fromBlock: submitBlock, minFee: 2n * E18, pollMs: 100 },
      { contracts: getMuriContracts(t.d.contracts, n.clients, { priority: "task" }), publicClient: n.clients.publicClient, vectors: vs, metaDb: n.meta, logger: log },
    );
    await tasks.start();
    try {
      await log.waitFor((e) => e.msg === "search task below this node's fee floor: not answered" && e.context?.task === task.toString(), 60_000);
      assert.equal(tasks.stats().belowFee, 1);
      assert.equal(tasks.stats().committed, 0);
      assert.equal((await t.reader.searchMarket.read.memberTask([task, n.address])).commitment, `0x${"0".repeat(64)}`, "no commitment sent");
    } finally {
      await tasks.stop();
      await vs.close();
    }
  });
  test("a member proves the hits it returned to the asker, only those; a record whose stored fragment lost the committed root is refused with the reason", async () => {
    // nodes[1] as a member answering off-chain searches over both fragments (r = 2).
    const n = nodes[1]!;
    const { vs, roots } = await memberService(n, "muri-prove-");
    try {
      const query = records[7]!.values; // a record of fragment 1
      const near = records[2]!.values; // a record of fragment 0
      const search = async (q: typeof query, k: number, peer = "peer"): Promise<{ hits: HitEntry[]; fragments: number[] }> => {
        const answer = await vs.handle({ op: "search", magu: maguId.toString(), query: encodeQuery(q), k, exact: true }, peer);
        assert.ok(answer instanceof Uint8Array, "a search is answered with a binary frame");
        const { hits, fragments } = decodeSearchAnswer(answer, 1, k);
        return { hits: hits[0]!, fragments };
      };
      const prove = async (pairs: Array<[number, number]>, peer = "peer") => {
        const answer = await vs.handle({ op: "prove", magu: maguId.toString(), hits: pairs }, peer);
        assert.ok(answer instanceof Uint8Array, "proofs are a binary frame");
        return decodeProveAnswer(answer, pairs.length);
      };

      // One byte of fragment 1's file flipped on disk (bit rot): its bytes no longer give the committed root.
      const path = blockPath(storePaths(n.dir), fragmentCid(fragments[1]!));
      const fh = await open(path, "r+");
      await fh.write(Uint8Array.of(fragments[1]![10]! ^ 0xff), 0, 1, 10);
      await fh.close();
      const all = await search(query, 2 * RECORDS_PER_FRAGMENT);
      assert.deepEqual(all.fragments, [0, 1], "the index answers for both");
      const proofs = await prove(all.hits.map((h) => [h.fragment, h.position]));
      for (const [i, h] of all.hits.entries()) {
        const item = proofs[i]!;
        if (h.fragment === 0) assert.ok("proof" in item && checkHitProof(h, item.proof, roots[0]!, query, "l2") === undefined, `hit ${h.id} of fragment 0 proves`);
        else assert.match((item as { error: string }).error, /cannot be proven here: .*does not have the committed root/, `hit ${h.id} of fragment 1 is refused`);
      }

      // A batch: one answer per query, in order.
      const batch = await vs.handle({ op: "search", magu: maguId.toString(), queries: [encodeQuery(query), encodeQuery(records[0]!.values)], k: 1, exact: true }, "peer");
      const both = decodeSearchAnswer(batch as Uint8Array, 2, 1);
      assert.deepEqual(both.hits.map((h) => h[0]!.id), [records[7]!.id, records[0]!.id]);

      // Nothing is proven to a peer that was not given it as a hit: search rights do not read records.
      assert.match(((await prove([[0, 3]], "fresh-peer"))[0] as { error: string }).error, /no hit this node returned to you/, "before any search");
      const one = await search(near, 1, "fresh-peer");
      assert.deepEqual([one.hits[0]!.fragment, one.hits[0]!.position], [0, 2]);
      const [item] = await prove([[0, 2]], "fresh-peer");
      assert.ok(item !== undefined && "proof" in item && checkHitProof(one.hits[0]!, item.proof, roots[0]!, near, "l2") === undefined, "its hit proves");
      assert.match(((await prove([[0, 3]], "fresh-peer"))[0] as { error: string }).error, /no hit this node returned to you/, "a record never returned");
      assert.match(((await prove([[0, 2]], "another-peer"))[0] as { error: string }).error, /no hit this node returned to you/, "returned to another peer");
      // One query with the proof of its best hit inline; asking more inline proofs than hits is refused.
      const inline = decodeSearchAnswer((await vs.handle({ op: "search", magu: maguId.toString(), query: encodeQuery(near), k: 2, exact: true, prove: 1 }, "peer")) as Uint8Array, 1, 2, 1);
      assert.equal(inline.proofs.length, 1);
      const best = inline.hits[0]![0]!;
      assert.deepEqual([inline.proofs[0]!.fragment, inline.proofs[0]!.position, best.fragment, best.position], [0, 2, 0, 2]);
      assert.equal(checkHitProof(best, inline.proofs[0]!.proof, roots[0]!, near, "l2"), undefined, "the inline proof checks");
      await assert.rejects(vs.handle({ op: "search", magu: maguId.toString(), query: encodeQuery(near), k: 2, prove: 3 }, "peer"), /prove must be an integer in \[0, k\]/);
      await assert.rejects(vs.handle({ op: "prove", magu: maguId.toString(), hits: [[0, -1]] }, "peer"), /hits\[0\] must be \[fragment, position\]/);
      await assert.rejects(vs.handle({ op: "prove", magu: maguId.toString(), hits: "0,1" }, "peer"), /hits must be an array of 1 to 512/);
      await assert.rejects(vs.handle({ op: "search", magu: maguId.toString(), queries: [encodeQuery(query), "0x12"], k: 1 }, "peer"), /queries\[1\]: query/);

      // A proof reads only its record's window, checked against the tree kept from the whole
      // fragment: a byte of record 2 flipped on disk since is caught by its leaf, the tree dropped,
      // and the next proof reads the whole fragment again, whose root check refuses it.
      const path0 = blockPath(storePaths(n.dir), fragmentCid(fragments[0]!));
      const at = 2 * recordSize(DIM) + 8;
      const fh0 = await open(path0, "r+");
      await fh0.write(Uint8Array.of(fragments[0]![at]! ^ 0xff), 0, 1, at);
      await fh0.close();
      assert.match(((await prove([[0, 2]]))[0] as { error: string }).error, /cannot be proven here: stored fragment 0 changed on disk \(leaf 0 no longer matches its tree\)/);
      assert.match(((await prove([[0, 2]]))[0] as { error: string }).error, /cannot be proven here: .*does not have the committed root/, "the whole fragment is read again");
    } finally {
      await vs.close();
    }
  });

  test("the checker logged no failure over the whole file: every check, dispute and finalize went through", () => {
    const failures = checkerLog.entries.filter((e) => ["search check failed", "search check: dispute failed", "search task finalize failed; retrying next pass", "search finalize pass failed"].includes(e.msg));
    assert.deepEqual(failures.map((e) => [e.msg, e.context?.error]), []);
  });
});
