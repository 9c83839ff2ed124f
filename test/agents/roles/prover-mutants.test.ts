/**
 * The prover (prover.ts) in cases `npm run mutate -- roles/prover` showed untested. On a Magu with
 * fewer fragments than members, a member that holds no fragment is drawn no challenge item, proves
 * nothing, sends nothing and leaves the period alone; a member that holds one fragment proves it.
 * Then, for that holder: an index that does not know the Magu, an index that cannot record a proof,
 * a sender the contract refuses in two periods, and a corrupt fragment named by several items.
 * Then the loop `start` runs: started once, a pass as soon as the next challenge is fixed (not a
 * `pollMs` later) and none while the head stands still, a failing pass logged once and retried,
 * stopped; a Magu that cannot be checked logged once.
 * Real hardhat node, LevelDB meta DB and fragment store on disk. Before them, without a chain:
 * `createProver`'s refusal of a bad `pollMs` and the tree cache's LRU.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createTestClient, getAddress, http, type Address, type Hex } from "viem";
import type { CID } from "multiformats/cid";
import { getMuriContracts, type Deployment, type MuriPublicClient } from "../../../agents/chain/index.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { buildFragmentTree, maguRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { blockPath, storePaths } from "../../../agents/store/layout.js";
import { openFragmentStore, type FragmentStore } from "../../../agents/store/fragment-store.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import { createMaguIndex, type MaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { createProver, DEFAULT_BLOCK_POLL_MS, earliestDeadlineFirst, Lru, type MissingReason } from "../../../agents/roles/node/prover.js";
import { createAndFormMagu, E18, cleanup, deployLocal, mineToVacancyWindow, recordingLogger, registerNode, signer, startFreshHardhatNode, tempDir, type HardhatChain } from "../chain/harness.js";
import { waitFor } from "./e2e-helpers.js";
import { commitRootWithAcks } from "./commit-helpers.js";

after(cleanup);

/** Stripes of two (k=1, m=1) over three members: one member holds nothing. */
const K = 1;
const M = 1;
const FRAGMENTS = 2;
const MEMBERS = 3;

interface Member {
  key: Hex;
  address: Address;
  slot: number;
  held: number[];
  dir: string;
  meta: MetaDb;
  store: FragmentStore;
  index: MaguIndex;
}

/** `index`'s methods as a plain object, to replace one of them. */
const wrap = (index: MaguIndex): MaguIndex => ({
  recordFragments: (...a) => index.recordFragments(...a),
  setHeld: (...a) => index.setHeld(...a),
  recordProven: (...a) => index.recordProven(...a),
  get: (...a) => index.get(...a),
  maguIds: () => index.maguIds(),
  remove: (...a) => index.remove(...a),
});

describe("prover without a chain", () => {
  test("createProver refuses a pollMs that is not a positive integer, naming it", () => {
    const components = {} as Parameters<typeof createProver>[1];
    const member = "0x0000000000000000000000000000000000000001" as Address;
    for (const pollMs of [0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assert.throws(() => createProver({ member, pollMs }, components), (err: Error) => err instanceof RangeError && err.message === `pollMs must be a positive integer, got ${pollMs}`, String(pollMs));
    }
    assert.ok(createProver({ member, pollMs: 1 }, components), "1 ms is accepted");
  });

  test("the tree cache's LRU: reads refresh, writes replace and refresh, the least recently used goes past capacity", () => {
    const lru = new Lru<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    assert.deepEqual([lru.get("a"), lru.get("b")], [1, 2], "full at capacity, nothing evicted");
    assert.equal(lru.get("a"), 1, "a read makes a the most recent");
    lru.set("c", 3);
    assert.deepEqual([lru.get("b"), lru.get("a"), lru.get("c")], [undefined, 1, 3], "b, least recently used, evicted");
    lru.set("a", 10);
    lru.set("d", 4);
    assert.deepEqual([lru.get("c"), lru.get("a"), lru.get("d")], [undefined, 10, 4], "rewriting a replaced its value and refreshed it: c went");
    lru.delete("a");
    assert.equal(lru.get("a"), undefined, "deleted");
    lru.set("e", 5);
    assert.deepEqual([lru.get("d"), lru.get("e")], [4, 5], "a deleted entry frees its room");
    const one = new Lru<string, number>(1);
    one.set("x", 1);
    one.set("y", 2);
    assert.deepEqual([one.get("x"), one.get("y")], [undefined, 2]);
  });

  test("proofs go out earliest deadline first, ties in the order read, as a new array", () => {
    const jobs = [
      { id: "current A", deadline: 130n },
      { id: "grace A", deadline: 120n },
      { id: "next", deadline: 2n ** 40n },
      { id: "current B", deadline: 130n },
      { id: "grace B", deadline: 120n },
    ];
    const copy = [...jobs];
    assert.deepEqual(
      earliestDeadlineFirst(jobs).map((j) => j.id),
      ["grace A", "grace B", "current A", "current B", "next"],
    );
    assert.deepEqual(jobs, copy, "the jobs as read are left as they were");
    assert.deepEqual(earliestDeadlineFirst([]), []);
  });
});

describe("prover on a Magu of two fragments and three members (hardhat node)", () => {
  let chain: HardhatChain;
  let d: Deployment;
  let pub: MuriPublicClient;
  let maguId: bigint;
  let period: bigint;
  let root: Hex;
  const fragments: Buffer[] = [];
  const members: Member[] = [];

  const reader = () => getMuriContracts(d.contracts, { publicClient: pub });
  const mineTo = async (block: bigint) => {
    const head = await pub.getBlockNumber({ cacheTime: 0 });
    if (block > head) await createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) }).mine({ blocks: Number(block - head) });
  };
  /** A prover for `m` (by default over its own store and index, sending with its own key). */
  const proverOf = (
    m: Member,
    opts: {
      index?: MaguIndex;
      key?: Hex;
      maguIds?: bigint[];
      pollMs?: number;
      blockPollMs?: number;
      onMissingFragment?: (id: bigint, f: number, cid: CID | undefined, reason: MissingReason) => void;
      /** Called with the name of every MaguRegistry read the prover makes. */
      onRegistryRead?: (name: string) => void;
      /** Called at every head read (`getBlockNumber`) of the prover's own. */
      onHeadRead?: () => void;
      store?: FragmentStore;
    } = {},
  ) => {
    const s = signer(chain.rpcUrl, d, opts.key ?? m.key);
    const onHead = opts.onHeadRead;
    const publicClient: MuriPublicClient =
      onHead === undefined
        ? s.publicClient
        : new Proxy(s.publicClient, { get: (target, name, receiver) => (name === "getBlockNumber" && onHead(), Reflect.get(target, name, receiver)) });
    const logger = recordingLogger();
    const contracts = getMuriContracts(d.contracts, s);
    const onRead = opts.onRegistryRead;
    const watched: typeof contracts =
      onRead === undefined
        ? contracts
        : { ...contracts, maguRegistry: { ...contracts.maguRegistry, read: new Proxy(contracts.maguRegistry.read, { get: (target, name, receiver) => (onRead(String(name)), Reflect.get(target, name, receiver)) }) } };
    const prover = createProver(
      { member: m.address, pollMs: opts.pollMs ?? 100, blockPollMs: opts.blockPollMs, maguIds: opts.maguIds, onMissingFragment: opts.onMissingFragment },
      {
        contracts: watched,
        publicClient,
        walletClient: s.walletClient,
        store: opts.store ?? m.store,
        index: opts.index ?? m.index,
        logger,
      },
    );
    return { prover, logger, notDebug: () => logger.entries.filter((e) => e.level !== "debug").map((e) => ({ level: e.level, msg: e.msg, context: e.context })) };
  };

  before(async () => {
    chain = await startFreshHardhatNode();
    d = await deployLocal(chain.rpcUrl);
    pub = signer(chain.rpcUrl, d, chain.keys[0]!).publicClient;
    for (let i = 1; i <= MEMBERS; i++) await registerNode(chain.rpcUrl, d, chain.keys[0]!, chain.keys[i]!);
    maguId = await createAndFormMagu(
      chain.rpcUrl,
      d,
      chain.keys[0]!,
      chain.keys[6]!,
      { kind: 0, metric: 0, dimension: 0, members: MEMBERS, replication: 0, dataShards: K, parityShards: M, maxFragments: 6, durationPeriods: 50n, pricePerFragmentPeriod: E18 / 1000n },
      mineTo,
    );
    fragments.push(randomBytes(3000), randomBytes(2500));
    const cids = fragments.map((b) => fragmentCid(b));
    const fragmentRoots = fragments.map((b) => buildFragmentTree(b).fragmentRoot);
    root = `0x${maguRoot(fragmentRoots).toString("hex")}` as Hex;
    await commitRootWithAcks(chain.rpcUrl, d, chain.keys[6]!, chain.keys, maguId, root, FRAGMENTS);
    const info = await reader().maguRegistry.read.maguInfo([maguId]);
    period = (await reader().maguRegistry.read.membership([maguId, info.members[0]!])).joinPeriod;
    for (let i = 1; i <= MEMBERS; i++) {
      const key = chain.keys[i]!;
      const address = getAddress(signer(chain.rpcUrl, d, key).account.address);
      const slot = info.members.findIndex((a) => getAddress(a) === address);
      const held = fragmentsOfSlot(maguId, FRAGMENTS, MEMBERS, slot, { k: K, m: M });
      const dir = await tempDir("muri-prover-mutants-");
      const meta = await openMetaDb(join(dir, "meta"));
      const store = await openFragmentStore({ dir, quotaBytes: 16 * 1024 * 1024, metaDb: meta, sync: "none" });
      const index = createMaguIndex({}, { metaDb: meta });
      await index.recordFragments(maguId, root, fragmentRoots, cids);
      await index.setHeld(maguId, held);
      for (const f of held) await store.put(cids[f]!, fragments[f]!);
      members.push({ key, address, slot, held, dir, meta, store, index });
    }
    assert.deepEqual(members.map((m) => m.held.length).sort(), [0, 1, 1], "one member holds nothing");
  });

  after(async () => {
    for (const m of members) {
      await m.store.close();
      await m.meta.close();
    }
  });

  test("a member holding no fragment proves nothing and sends nothing; the holder proves once", async () => {
    await mineTo((await reader().maguRegistry.read.periodStart([period])) + 1n);
    const ctx = { maguId: maguId.toString(), period: period.toString() };

    const idle = members.find((x) => x.held.length === 0)!;
    assert.deepEqual(await reader().challengeManager.read.challengeFor([maguId, idle.address, period]), [], "the draw reaches no fragment of this member");
    const nonce = await pub.getTransactionCount({ address: idle.address });
    const empty = proverOf(idle);
    await empty.prover.runOnce();
    await empty.prover.runOnce();
    assert.deepEqual(empty.notDebug(), [{ level: "info", msg: "nothing to prove this period (no held fragment challenged)", context: ctx }], "said once, not taken for a reorganisation");
    assert.equal(empty.logger.entries.filter((e) => e.msg === "answering challenge").length, 2, "read again while a reorganisation could move the seed");
    assert.deepEqual(empty.prover.stats(), { submitted: 0, failed: 0, blocked: 0, passes: 2, replaced: 0, reproven: 0 });
    assert.equal(await pub.getTransactionCount({ address: idle.address }), nonce, "nothing sent");
    assert.equal(await reader().challengeManager.read.proofState([maguId, idle.address, period]), 0, "the period stays open: nothing to prove, no pay, no miss");

    const holder = members.find((x) => x.held.length === 1)!;
    const items = await reader().challengeManager.read.challengeFor([maguId, holder.address, period]);
    assert.ok(items.length > 0 && items.every((i) => i.fragment === holder.held[0]), "every item names the holder's one fragment");
    const { prover, notDebug } = proverOf(holder);
    await prover.runOnce();
    assert.equal(await reader().challengeManager.read.proofState([maguId, holder.address, period]), 1);
    assert.deepEqual(prover.stats(), { submitted: 1, failed: 0, blocked: 0, passes: 1, replaced: 0, reproven: 0 });
    assert.deepEqual(notDebug(), [{ level: "info", msg: "proof submitted", context: notDebug()[0]!.context }]);
    assert.equal(notDebug()[0]!.context?.fragments, items.length, "one proof per item, the fragment named by each");

    // The next period: proven again by the same prover; the period before (seen proven) is not
    // taken for a reorganisation of this one.
    await mineTo((await reader().maguRegistry.read.periodStart([period + 1n])) + 1n);
    await prover.runOnce();
    assert.equal(await reader().challengeManager.read.proofState([maguId, holder.address, period + 1n]), 1);
    assert.deepEqual(prover.stats(), { submitted: 2, failed: 0, blocked: 0, passes: 2, replaced: 0, reproven: 0 });
    assert.deepEqual(
      notDebug().map((e) => [e.level, e.msg, e.context?.period]),
      [
        ["info", "proof submitted", period.toString()],
        ["info", "proof submitted", (period + 1n).toString()],
      ],
    );
    // The idle member again has nothing to prove, and says so for this period too.
    await empty.prover.runOnce();
    assert.deepEqual(empty.notDebug().map((e) => [e.level, e.msg, e.context?.period]), [
      ["info", "nothing to prove this period (no held fragment challenged)", period.toString()],
      ["info", "nothing to prove this period (no held fragment challenged)", (period + 1n).toString()],
    ]);
    assert.equal(await pub.getTransactionCount({ address: idle.address }), nonce, "nothing sent");
  });

  test("the holder: an index without the Magu, an index that cannot record, a refused sender, a corrupt fragment", async () => {
    const holder = members.find((x) => x.held.length === 1)!;
    const held = holder.held[0]!;
    const p2 = period + 2n;
    const ctx = (p: bigint) => ({ maguId: maguId.toString(), period: p.toString() });
    await mineTo((await reader().maguRegistry.read.periodStart([p2])) + 1n);
    const nonce = await pub.getTransactionCount({ address: holder.address });

    // An index that never recorded this Magu (asked for by id): it cannot prove the committed root
    // and says so once, naming no known root; nothing is sent, nothing is counted.
    const emptyMeta = await openMetaDb(join(await tempDir("muri-prover-mutants-empty-"), "meta"));
    try {
      const unknown = proverOf(holder, { index: createMaguIndex({}, { metaDb: emptyMeta }), maguIds: [maguId] });
      await unknown.prover.runOnce();
      await unknown.prover.runOnce();
      assert.deepEqual(unknown.notDebug(), [
        { level: "warn", msg: "fragment list of the committed root is not known; cannot prove", context: { ...ctx(p2), root, fragmentCount: FRAGMENTS, known: undefined } },
      ]);
      assert.deepEqual(unknown.prover.stats(), { submitted: 0, failed: 0, blocked: 0, passes: 2, replaced: 0, reproven: 0 });
      assert.equal(await pub.getTransactionCount({ address: holder.address }), nonce, "nothing sent");
    } finally {
      await emptyMeta.close();
    }

    // Sent by an account that is not the member: refused, counted and logged for this period.
    const stranger = proverOf(holder, { key: chain.keys[7]! });
    await stranger.prover.runOnce();
    assert.deepEqual(stranger.prover.stats(), { submitted: 0, failed: 1, blocked: 0, passes: 1, replaced: 0, reproven: 0 });
    assert.equal(await reader().challengeManager.read.proofState([maguId, holder.address, p2]), 0);

    // The holder's own index, but recording a proof fails (a full disk): the proof is on chain and
    // counted, the failure is a warning, the index keeps the period before.
    const failing: MaguIndex = { ...wrap(holder.index), recordProven: () => Promise.reject(new Error("disk full")) };
    const cachedReports: [bigint, number, string | undefined, MissingReason][] = [];
    const unrecorded = proverOf(holder, { index: failing, onMissingFragment: (id, f, c, reason) => cachedReports.push([id, f, c?.toString(), reason]) });
    await unrecorded.prover.runOnce();
    assert.equal(await reader().challengeManager.read.proofState([maguId, holder.address, p2]), 1);
    assert.deepEqual(unrecorded.prover.stats(), { submitted: 1, failed: 0, blocked: 0, passes: 1, replaced: 0, reproven: 0 });
    assert.deepEqual(
      unrecorded.notDebug().map((e) => [e.level, e.msg, e.context?.maguId, e.context?.period, e.context?.error]),
      [
        ["warn", "could not record the proof in the Magu index", maguId.toString(), p2.toString(), "disk full"],
        ["info", "proof submitted", maguId.toString(), p2.toString(), undefined],
      ],
    );
    assert.equal((await holder.index.get(maguId))?.lastProvenPeriod, period + 1n, "not recorded");

    // The next period: the stranger is refused again and says so again (once per period).
    const p3 = p2 + 1n;
    await mineTo((await reader().maguRegistry.read.periodStart([p3])) + 1n);
    await stranger.prover.runOnce();
    assert.equal(stranger.prover.stats().failed, 2);
    assert.deepEqual(
      stranger.notDebug().map((e) => [e.level, e.msg, e.context?.period]),
      [
        ["error", "proof submission failed", p2.toString()],
        ["error", "proof submission failed", p3.toString()],
      ],
    );

    // The held fragment rots (same size, other bytes) and the challenge names it several times: it
    // is reported once, as corrupt (not as missing after its quarantine by the first item), and no
    // proof is sent.
    const items = await reader().challengeManager.read.challengeFor([maguId, holder.address, p3]);
    assert.ok(items.length >= 2 && items.every((i) => i.fragment === held), `several items name fragment ${held}: ${items.length}`);
    const cid = fragmentCid(fragments[held]!);
    const before = await pub.getTransactionCount({ address: holder.address });
    // A store that cannot read the file (EIO: neither missing nor corrupt, perhaps passing) fails
    // this pass's check of the Magu, logged with the error; the fragment is not reported lost.
    const eioDir = await tempDir("muri-prover-mutants-eio-");
    const eioMeta = await openMetaDb(join(eioDir, "meta"));
    const eioFile = blockPath(storePaths(eioDir), cid);
    let eio = false;
    const eioStore = await openFragmentStore({
      dir: eioDir,
      quotaBytes: 16 * 1024 * 1024,
      metaDb: eioMeta,
      sync: "none",
      fs: {
        ...fsp,
        open: ((path, flags, mode) =>
          eio && path === eioFile ? Promise.reject(Object.assign(new Error(`EIO: i/o error, open '${eioFile}'`), { code: "EIO" })) : fsp.open(path, flags, mode)) as typeof fsp.open,
      },
    });
    try {
      await eioStore.put(cid, fragments[held]!);
      eio = true;
      const eioReports: MissingReason[] = [];
      const unreadable = proverOf(holder, { store: eioStore, onMissingFragment: (_id, _f, _c, reason) => eioReports.push(reason) });
      await unreadable.prover.runOnce();
      assert.deepEqual(unreadable.notDebug(), [{ level: "warn", msg: "could not check Magu", context: { maguId: maguId.toString(), error: `EIO: i/o error, open '${eioFile}'` } }]);
      assert.deepEqual(eioReports, [], "not reported lost");
      assert.deepEqual(unreadable.prover.stats(), { submitted: 0, failed: 0, blocked: 0, passes: 1, replaced: 0, reproven: 0 });
      assert.equal(await pub.getTransactionCount({ address: holder.address }), before, "nothing sent");
    } finally {
      await eioStore.close();
      await eioMeta.close();
    }
    // First the prover that proved p2, which keeps the fragment's tree: it reads the file without
    // hashing it whole, and the challenged leaf, checked against the kept tree, shows the rot.
    await fsp.writeFile(blockPath(storePaths(holder.dir), cid), randomBytes(fragments[held]!.length));
    await unrecorded.prover.runOnce();
    assert.deepEqual(cachedReports, [[maguId, held, cid.toString(), "corrupt"]], "found through the kept tree: corrupt, not missing after its quarantine");
    assert.deepEqual(unrecorded.prover.stats(), { submitted: 1, failed: 0, blocked: 1, passes: 2, replaced: 0, reproven: 0 });
    assert.equal(await holder.store.has(cid), false, "quarantined");
    // Then a new prover, with no tree kept, over the same rot.
    await holder.store.put(cid, fragments[held]!);
    await fsp.writeFile(blockPath(storePaths(holder.dir), cid), randomBytes(fragments[held]!.length));
    const reports: [bigint, number, string | undefined, MissingReason][] = [];
    const rotten = proverOf(holder, { onMissingFragment: (id, f, c, reason) => reports.push([id, f, c?.toString(), reason]) });
    await rotten.prover.runOnce();
    assert.deepEqual(reports, [[maguId, held, cid.toString(), "corrupt"]]);
    assert.deepEqual(rotten.notDebug(), [
      { level: "error", msg: "challenged fragment missing or corrupt; not submitting a proof", context: { ...ctx(p3), fragment: held, cid: cid.toString(), reason: "corrupt" } },
    ]);
    assert.deepEqual(rotten.prover.stats(), { submitted: 0, failed: 0, blocked: 1, passes: 1, replaced: 0, reproven: 0 });
    assert.equal(await holder.store.has(cid), false, "quarantined");
    assert.equal(await pub.getTransactionCount({ address: holder.address }), before, "no doomed proof sent");
    assert.equal(await reader().challengeManager.read.proofState([maguId, holder.address, p3]), 0);
  });

  test("the loop: started once, a pass as each challenge is fixed and none in between, a failing pass logged once, stopped; a Magu that cannot be checked", async () => {
    const holder = members.find((x) => x.held.length === 1)!;
    const held = holder.held[0]!;
    const cid = fragmentCid(fragments[held]!);
    await holder.store.put(cid, fragments[held]!); // the test before quarantined it
    const p4 = period + 4n;
    const proven = async (p: bigint): Promise<boolean> => (await reader().challengeManager.read.proofState([maguId, holder.address, p])) === 1;
    await mineTo((await reader().maguRegistry.read.periodStart([p4])) + 1n);

    // A pass that fails (the index cannot list its Magus) is logged once, however often it is retried.
    let listed = 0;
    const failing = proverOf(holder, { index: { ...wrap(holder.index), maguIds: () => (listed++, Promise.reject(new Error("index closed"))) }, pollMs: 20 });
    await failing.prover.start();
    try {
      await waitFor("three failed passes", 20_000, async () => listed >= 3 || undefined, 20);
    } finally {
      await failing.prover.stop();
    }
    assert.deepEqual(
      failing.notDebug().filter((e) => e.level !== "info"),
      [{ level: "warn", msg: "prover pass failed; retrying", context: { error: "index closed" } }],
    );
    assert.equal(failing.prover.stats().passes, 0);

    // pollMs of ten minutes: each pass after the first comes when the head reaches the block that
    // fixes the next period's challenge, found by polling the head every 25 ms.
    const loop = proverOf(holder, { pollMs: 600_000, blockPollMs: 25 });
    const p5 = p4 + 1n;
    await loop.prover.start();
    await loop.prover.start();
    try {
      await waitFor(`period ${p4} proven by the first pass`, 30_000, async () => (await proven(p4)) || undefined, 50);
      await waitFor("the first pass ended", 10_000, async () => loop.prover.stats().passes >= 1 || undefined, 25);
      const passes = loop.prover.stats().passes;
      const fixed = (await reader().maguRegistry.read.periodStart([p5])) + 1n;
      await mineTo(fixed - 1n);
      // Polled over 40 times while the head stands before the fixing block: no pass.
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal(loop.prover.stats().passes, passes, "no pass while the head stands still");
      assert.equal(await proven(p5), false);
      await mineTo(fixed);
      await waitFor(`period ${p5} proven as soon as its challenge is fixed`, 30_000, async () => (await proven(p5)) || undefined, 50);
    } finally {
      await loop.prover.stop();
    }
    await loop.prover.stop();
    const stats = loop.prover.stats();
    assert.deepEqual([stats.submitted, stats.failed, stats.blocked], [2, 0, 0]);
    assert.deepEqual(
      loop.notDebug().filter((e) => e.msg === "prover started" || e.msg === "prover stopped"),
      [
        { level: "info", msg: "prover started", context: { member: holder.address, pollMs: 600_000 } },
        { level: "info", msg: "prover stopped", context: { member: holder.address, ...stats } },
        { level: "info", msg: "prover stopped", context: { member: holder.address, ...stats } },
      ],
      "one loop, started once",
    );

    // A loop started in the start block of a period, before its challenge is fixed: the first pass
    // finds nothing to prove yet, and the next comes as soon as the next block fixes the challenge
    // (pollMs ten minutes). By default it reads the head every 250 ms while it waits, no more.
    const p6 = p5 + 1n;
    const start6 = await reader().maguRegistry.read.periodStart([p6]);
    await mineTo(start6);
    let heads = 0;
    const early = proverOf(holder, { pollMs: 600_000, onHeadRead: () => heads++ });
    await early.prover.start();
    try {
      await waitFor("the first pass ended", 10_000, async () => early.prover.stats().passes >= 1 || undefined, 25);
      assert.equal(await proven(p6), false, "not provable in the period's start block");
      const [from, since] = [heads, Date.now()];
      await new Promise((r) => setTimeout(r, 1_000));
      const waited = Date.now() - since;
      assert.ok(heads - from <= Math.ceil(waited / DEFAULT_BLOCK_POLL_MS) + 1, `${heads - from} head reads in ${waited} ms of waiting (one per ${DEFAULT_BLOCK_POLL_MS} ms)`);
      await mineTo(start6 + 1n);
      await waitFor(`period ${p6} proven as soon as its challenge is fixed`, 30_000, async () => (await proven(p6)) || undefined, 50);
    } finally {
      await early.prover.stop();
    }

    // A Magu that cannot be checked (its index entry unreadable) is logged once over two passes, with
    // the error.
    const p7 = p6 + 1n;
    await mineTo((await reader().maguRegistry.read.periodStart([p7])) + 1n);
    const unreadable = proverOf(holder, { index: { ...wrap(holder.index), get: () => Promise.reject(new Error("entry unreadable")) } });
    await unreadable.prover.runOnce();
    await unreadable.prover.runOnce();
    assert.deepEqual(unreadable.notDebug(), [{ level: "warn", msg: "could not check Magu", context: { maguId: maguId.toString(), error: "entry unreadable" } }]);
    assert.deepEqual([unreadable.prover.stats().passes, await proven(p7)], [2, false]);

    // Stopped while its pass reads the first of many Magus: it reads no other and sends nothing for
    // the one it read (stop() is called at the first membership read, the Magu is then proven).
    const nonce = await pub.getTransactionCount({ address: holder.address });
    let memberships = 0;
    let stopping: Promise<void> | undefined;
    const ids = [maguId, ...Array.from({ length: 12 }, (_, i) => 1_000_000n + BigInt(i))];
    const halted = proverOf(holder, {
      pollMs: 600_000,
      maguIds: ids,
      onRegistryRead: (name) => {
        if (name !== "membership") return;
        memberships++;
        stopping ??= halted.prover.stop();
      },
    });
    await halted.prover.start();
    await waitFor("the stop", 10_000, async () => (stopping === undefined ? undefined : true), 25);
    await stopping;
    assert.equal(memberships, 1, "no Magu read after the stop");
    assert.equal(await pub.getTransactionCount({ address: holder.address }), nonce, "nothing sent after the stop");
    assert.deepEqual(halted.prover.stats(), { submitted: 0, failed: 0, blocked: 0, passes: 1, replaced: 0, reproven: 0 });
    assert.equal(await proven(p7), false);

    // An index that knows a fragment more than the period's challenged data (a batch received whose
    // commit is not challenged yet): the proof is built over the challenged fragments' tree.
    const longerDir = await tempDir("muri-prover-mutants-longer-");
    const longerMeta = await openMetaDb(join(longerDir, "meta"));
    try {
      const longer = createMaguIndex({}, { metaDb: longerMeta });
      const all = [...fragments, randomBytes(1800)];
      const roots = all.map((b) => buildFragmentTree(b).fragmentRoot);
      await longer.recordFragments(maguId, maguRoot(roots), roots, all.map((b) => fragmentCid(b)));
      await longer.setHeld(maguId, holder.held);
      const ahead = proverOf(holder, { index: longer });
      await ahead.prover.runOnce();
      assert.equal(await proven(p7), true);
      assert.deepEqual(ahead.prover.stats(), { submitted: 1, failed: 0, blocked: 0, passes: 1, replaced: 0, reproven: 0 });
    } finally {
      await longerMeta.close();
    }
  });

  test("a Magu that cannot be challenged costs no read past its membership: no data, before a member's term, a member that left, before a newcomer's term, past its end, settled", async () => {
    const params = { kind: 0, metric: 0, dimension: 0, members: MEMBERS, replication: 0, dataShards: K, parityShards: M, maxFragments: 6, durationPeriods: 12n, pricePerFragmentPeriod: E18 / 1000n };
    const empty = await createAndFormMagu(chain.rpcUrl, d, chain.keys[0]!, chain.keys[6]!, { ...params, durationPeriods: 50n }, mineTo);
    const short = await createAndFormMagu(chain.rpcUrl, d, chain.keys[0]!, chain.keys[6]!, params, mineTo);
    await commitRootWithAcks(chain.rpcUrl, d, chain.keys[6]!, chain.keys, short, root, FRAGMENTS);
    // A fourth node, registered once both Magus are formed: the only one a vacancy can draw.
    const registered = await registerNode(chain.rpcUrl, d, chain.keys[0]!, chain.keys[MEMBERS + 1]!);
    const registry = reader().maguRegistry;
    const [leaver, stayer] = members;
    const joinPeriod = (await registry.read.membership([short, leaver!.address])).joinPeriod;
    const { endPeriod, startPeriod } = await registry.read.maguInfo([short]);
    const owner = getMuriContracts(d.contracts, signer(chain.rpcUrl, d, chain.keys[6]!));
    /**
     * One pass of `m`'s prover over `id` alone: the MaguRegistry reads it made. Nothing is ever
     * sent and nothing is said above debug; the pass is counted.
     */
    const passOver = async (m: Member, id: bigint, what: string): Promise<string[]> => {
      const reads: string[] = [];
      const nonce = await pub.getTransactionCount({ address: m.address });
      const { prover, notDebug } = proverOf(m, { maguIds: [id], onRegistryRead: (name) => reads.push(name) });
      await prover.runOnce();
      assert.deepEqual(notDebug(), [], `${what}: nothing said`);
      assert.deepEqual(prover.stats(), { submitted: 0, failed: 0, blocked: 0, passes: 1, replaced: 0, reproven: 0 }, what);
      assert.equal(await pub.getTransactionCount({ address: m.address }), nonce, `${what}: nothing sent`);
      return reads;
    };
    /** The per-Magu reads a pass makes when it stops at the membership (the head's period reads come first). */
    const stoppedAtMembership = (reads: string[], what: string): void => {
      assert.ok(reads.includes("membership") && reads.includes("maguInfo"), `${what}: membership read (${reads.join(", ")})`);
      for (const name of ["challengedData", "periodStart"]) assert.equal(reads.slice(reads.indexOf("membership")).filter((r) => r === name).length, 0, `${what}: no ${name} read (${reads.join(", ")})`);
    };

    // Before the member's first challenged period: both periods a pass looks at are before it.
    const current = await registry.read.currentPeriod();
    assert.ok(current < joinPeriod, `the short Magu's members join in period ${joinPeriod}, after the current ${current}`);
    stoppedAtMembership(await passOver(leaver!, short, "before the term"), "before the term");

    // In the term: a member that left answers no more; one that stayed reads its challenged data.
    await mineTo((await registry.read.periodStart([joinPeriod])) + 1n);
    // The fourth node's selection weight counts from two selection epochs after the one it
    // registered in: reached before the slot is vacated, so the vacancy's window can draw it.
    const counts = (await reader().nodeRegistry.read.selectionEpoch([registered])) + 2n;
    while ((await reader().nodeRegistry.read.selectionEpoch([await pub.getBlockNumber({ cacheTime: 0 })])) < counts) await mineTo((await pub.getBlockNumber({ cacheTime: 0 })) + 1n);
    const left = await getMuriContracts(d.contracts, signer(chain.rpcUrl, d, leaver!.key)).maguRegistry.write.leave([short]);
    assert.equal((await pub.waitForTransactionReceipt({ hash: left, pollingInterval: 50 })).status, "success");
    assert.equal((await registry.read.membership([short, leaver!.address])).active, false);
    stoppedAtMembership(await passOver(leaver!, short, "a member that left"), "a member that left");

    // The newcomer drawn into the vacated slot answers from its own first period on, some periods
    // after the Magu's start: before it, nothing is read for it either.
    const newcomer = { ...stayer!, key: chain.keys[MEMBERS + 1]!, address: getAddress(signer(chain.rpcUrl, d, chain.keys[MEMBERS + 1]!).account.address) };
    const { slot } = await registry.read.membership([short, leaver!.address]);
    await mineToVacancyWindow(reader(), short, slot, mineTo);
    assert.equal((await pub.waitForTransactionReceipt({ hash: await owner.maguRegistry.write.fillVacancy([short, slot]), pollingInterval: 50 })).status, "success");
    assert.equal(getAddress((await registry.read.maguInfo([short])).members[slot]!), newcomer.address, "the fourth node was drawn");
    const newcomerJoin = (await registry.read.membership([short, newcomer.address])).joinPeriod;
    const now = await registry.read.currentPeriod();
    assert.ok(now >= startPeriod && now < newcomerJoin, `the newcomer joins in period ${newcomerJoin}, after the current ${now}, in the Magu's term from ${startPeriod}`);
    stoppedAtMembership(await passOver(newcomer, short, "before a newcomer's term"), "before a newcomer's term");
    const stayerReads: string[] = [];
    const staying = proverOf(stayer!, { maguIds: [short], onRegistryRead: (name) => stayerReads.push(name) });
    await staying.prover.runOnce();
    assert.ok(stayerReads.includes("challengedData"), `a member in its term reads its challenged data (${stayerReads.join(", ")})`);

    // A formed Magu nobody committed to, in its members' term.
    const emptyJoin = (await registry.read.membership([empty, stayer!.address])).joinPeriod;
    await mineTo((await registry.read.periodStart([emptyJoin])) + 1n);
    assert.equal((await registry.read.maguInfo([empty])).fragmentCount, 0);
    stoppedAtMembership(await passOver(stayer!, empty, "a Magu with no data"), "a Magu with no data");

    // Past the end: the last period and the one after are both outside the term (still active
    // until settled), then settled.
    await mineTo((await registry.read.periodStart([endPeriod + 1n])) + 1n);
    assert.equal((await registry.read.maguInfo([short])).status, 2, "still active, not settled");
    stoppedAtMembership(await passOver(stayer!, short, "past the end"), "past the end");
    const { settleDelayBlocks } = await registry.read.config();
    await mineTo((await registry.read.periodStart([endPeriod])) + BigInt(settleDelayBlocks) + 1n);
    const settled = await owner.maguRegistry.write.settle([short]);
    assert.equal((await pub.waitForTransactionReceipt({ hash: settled, pollingInterval: 50 })).status, "success");
    stoppedAtMembership(await passOver(stayer!, short, "settled"), "settled");
  });
});
