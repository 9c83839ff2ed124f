import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
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
import { createMaguIndex, MaguRootMismatchError, type MaguIndex } from "../../../agents/roles/shared/magu-index.js";
import type { Logger } from "../../../agents/store/logger.js";
import { createProver, type MissingReason, type Prover } from "../../../agents/roles/node/prover.js";
import { createAndFormMagu, E18, cleanup, deployLocal, recordingLogger, registerNode, signer, startFreshHardhatNode, tempDir, type HardhatChain, type LogEntry } from "../chain/harness.js";
import { commitRootWithAcks } from "./commit-helpers.js";

after(cleanup);

const K = 3;
const M = 2;
const MEMBERS = 5;
const FRAGMENTS = 10;
/**
 * Bound on a wait for the provers (a failure only: the chain moves only when the test mines or a
 * prover sends). Under `npm run mutate` (MURI_MUTATION=1) 20 s: a mutant that stops proving fails sooner.
 */
const WAIT_MS = process.env.MURI_MUTATION ? 20_000 : 60_000;

interface Node {
  address: Address;
  slot: number;
  dir: string;
  meta: MetaDb;
  store: FragmentStore;
  index: MaguIndex;
  prover: Prover;
  /** What the prover logged (also printed with MURI_TEST_LOG=1). */
  log: LogEntry[];
  held: number[];
  missing: { maguId: bigint; fragment: number; cid?: CID; reason: MissingReason }[];
}

/** Polls `check` (a chain read) until it holds; the chain only moves when the test mines or a prover sends. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("prover against a hardhat node (blob Magu k=3, m=2, five members)", () => {
  let chain: HardhatChain;
  let d: Deployment;
  let pub: MuriPublicClient;
  let maguId: bigint;
  let startPeriod: bigint;
  const nodes: Node[] = [];
  const fragments: Uint8Array[] = [];
  const cids: CID[] = [];
  const fragmentRoots: Buffer[] = [];

  const reader = () => getMuriContracts(d.contracts, { publicClient: pub });
  const mineTo = async (block: bigint) => {
    const head = await pub.getBlockNumber({ cacheTime: 0 });
    if (block > head) {
      await createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) }).mine({ blocks: Number(block - head) });
    }
  };
  /** Mines to the block after `period`'s start (its seed is then fixed). */
  const enterPeriod = async (period: bigint) => {
    const start = await reader().maguRegistry.read.periodStart([period]);
    if (process.env.MURI_TEST_LOG) console.error(`entering period ${period} (start ${start}) at head ${await pub.getBlockNumber({ cacheTime: 0 })}`);
    await mineTo(start + 1n);
  };
  const state = (member: Address, period: bigint) => reader().challengeManager.read.proofState([maguId, member, period]);

  before(async () => {
    chain = await startFreshHardhatNode();
    d = await deployLocal(chain.rpcUrl);
    pub = signer(chain.rpcUrl, d, chain.keys[0]!).publicClient;
    for (let i = 1; i <= MEMBERS; i++) await registerNode(chain.rpcUrl, d, chain.keys[0]!, chain.keys[i]!);

    // The client (account 6) creates and forms the Magu, then commits ten fragments.
    const price = E18 / 1000n;
    const duration = 50n;
    maguId = await createAndFormMagu(chain.rpcUrl, d, chain.keys[0]!, chain.keys[6]!, { kind: 0, metric: 0, dimension: 0, members: MEMBERS, replication: 0, dataShards: K, parityShards: M, maxFragments: FRAGMENTS, durationPeriods: duration, pricePerFragmentPeriod: price }, mineTo);

    for (let f = 0; f < FRAGMENTS; f++) {
      const bytes = randomBytes(2048 + Math.floor(Math.random() * 4096));
      fragments.push(bytes);
      cids.push(fragmentCid(bytes));
      fragmentRoots.push(buildFragmentTree(bytes).fragmentRoot);
    }
    const root = `0x${maguRoot(fragmentRoots).toString("hex")}` as Hex;
    await commitRootWithAcks(chain.rpcUrl, d, chain.keys[6]!, chain.keys, maguId, root, FRAGMENTS);

    const info = await reader().maguRegistry.read.maguInfo([maguId]);
    // The first challenged period, from the chain: the period after the commit, startPeriod at the earliest.
    startPeriod = (await reader().maguRegistry.read.membership([maguId, info.members[0]!])).joinPeriod;
    assert.ok(startPeriod >= info.startPeriod);
    assert.equal(info.members.length, MEMBERS);

    for (let i = 1; i <= MEMBERS; i++) {
      const s = signer(chain.rpcUrl, d, chain.keys[i]!);
      const address = getAddress(s.account.address);
      const slot = info.members.findIndex((a) => getAddress(a) === address);
      assert.ok(slot >= 0, `account ${i} is a member`);
      const dir = await tempDir("muri-prover-test-");
      const meta = await openMetaDb(`${dir}/meta`);
      const store = await openFragmentStore({ dir, quotaBytes: 64 * 1024 * 1024, metaDb: meta, sync: "none" });
      const index = createMaguIndex({}, { metaDb: meta });
      const held = fragmentsOfSlot(maguId, FRAGMENTS, MEMBERS, slot, { k: K, m: M });
      for (const f of held) await store.put(cids[f]!, fragments[f]!);
      await index.recordFragments(maguId, root, fragmentRoots, cids);
      await index.setHeld(maguId, held);
      const logger = recordingLogger();
      const node = { address, slot, dir, meta, store, index, held, missing: [], log: logger.entries } as unknown as Node;
      node.prover = createProver(
        {
          member: address,
          pollMs: 100,
          onMissingFragment: (id, fragment, cid, reason) => {
            node.missing.push({ maguId: id, fragment, cid, reason });
          },
        },
        {
          contracts: getMuriContracts(d.contracts, s),
          publicClient: s.publicClient,
          walletClient: s.walletClient,
          store,
          index,
          logger: process.env.MURI_TEST_LOG ? consoleLogger(`node${i}`, logger) : logger,
        },
      );
      nodes.push(node);
    }
    assert.equal(nodes.reduce((n, x) => n + x.held.length, 0), FRAGMENTS, "placement covers every fragment once");
  });

  after(async () => {
    for (const n of nodes) {
      await n.prover.stop();
      await n.store.close();
      await n.meta.close();
    }
  });

  test("the Magu index checks the root and survives a restart", async () => {
    const n = nodes[0]!;
    const wrong = [...fragmentRoots].reverse();
    await assert.rejects(n.index.recordFragments(maguId, maguRoot(fragmentRoots), wrong, cids), MaguRootMismatchError);
    const fresh = createMaguIndex({}, { metaDb: n.meta });
    const rec = await fresh.get(maguId);
    assert.ok(rec);
    assert.equal(rec.fragmentCount, FRAGMENTS);
    assert.deepEqual(rec.held, n.held);
    assert.deepEqual(rec.cids.map(String), cids.map(String));
    assert.ok(rec.fragmentRoots.every((r, i) => r.equals(fragmentRoots[i]!)));
    assert.deepEqual(await fresh.maguIds(), [maguId]);
  });

  test("every member proves two consecutive periods", async () => {
    for (const n of nodes) await n.prover.start();
    for (const period of [startPeriod, startPeriod + 1n]) {
      await enterPeriod(period);
      await until(`all proofs of period ${period}`, async () => (await Promise.all(nodes.map((n) => state(n.address, period)))).every((s) => s === 1));
    }
    // The receipt is on chain a moment before the prover has recorded it.
    await until("every prover recorded its two proofs", async () => nodes.every((n) => n.prover.stats().submitted >= 2));
    for (const n of nodes) {
      assert.equal(n.prover.stats().submitted, 2, `member ${n.slot} submitted exactly twice`);
      assert.equal(n.prover.stats().failed, 0);
      assert.equal((await n.index.get(maguId))?.lastProvenPeriod, startPeriod + 1n);
      const proofs = n.log.filter((e) => e.msg === "proof submitted");
      assert.deepEqual(
        proofs.map((e) => [e.level, e.context?.maguId, e.context?.period, e.context?.fragments, typeof e.context?.tx, typeof e.context?.block]),
        await Promise.all(
          [startPeriod, startPeriod + 1n].map(async (p) => ["info", maguId.toString(), p.toString(), (await reader().challengeManager.read.challengeFor([maguId, n.address, p])).length, "string", "string"]),
        ),
      );
    }
  });

  test("a restarted prover does not submit again for a proven period", async () => {
    const n = nodes[0]!;
    await n.prover.stop();
    const nonce = await pub.getTransactionCount({ address: n.address });
    const again = createProver({ member: n.address, pollMs: 100 }, {
      contracts: getMuriContracts(d.contracts, signer(chain.rpcUrl, d, chain.keys[1 + nodes.indexOf(n)]!)),
      publicClient: pub,
      walletClient: signer(chain.rpcUrl, d, chain.keys[1 + nodes.indexOf(n)]!).walletClient,
      store: n.store,
      index: n.index,
    });
    await again.runOnce();
    assert.equal(await pub.getTransactionCount({ address: n.address }), nonce);
    assert.equal(again.stats().submitted, 0);
    await n.prover.start();
  });

  /** The victim of the corrupt-fragment test and the period whose challenge named its lost fragment. */
  let loss: { victim: Node; period: bigint } | undefined;

  test("a corrupt fragment is reported and never proven with; the others keep proving", async () => {
    const victim = nodes.find((n) => n.held.length >= 2) ?? nodes[0]!;
    const lost = victim.held[0]!;
    // Same size, other bytes: only the content check can notice.
    await writeFile(blockPath(storePaths(victim.dir), cids[lost]!), randomBytes(fragments[lost]!.length));
    const others = nodes.filter((n) => n !== victim);

    let named = false;
    for (let period = startPeriod + 2n; period < startPeriod + 10n && !named; period++) {
      const reportsBefore = victim.missing.length;
      const nonce = await pub.getTransactionCount({ address: victim.address });
      await enterPeriod(period);
      const items = await reader().challengeManager.read.challengeFor([maguId, victim.address, period]);
      named = items.some((i) => i.fragment === lost);
      await until(`the others' proofs of period ${period}`, async () => (await Promise.all(others.map((n) => state(n.address, period)))).every((s) => s === 1));
      if (!named) {
        // The challenge missed the lost fragment: the victim proves as usual.
        await until(`the victim's proof of period ${period}`, async () => (await state(victim.address, period)) === 1);
        continue;
      }
      await until("the victim's report of the lost fragment", async () => victim.missing.length > reportsBefore);
      const report = victim.missing.at(-1)!;
      assert.equal(report.maguId, maguId);
      assert.equal(report.fragment, lost);
      assert.equal(report.cid?.toString(), cids[lost]!.toString());
      assert.ok(report.reason === "corrupt" || report.reason === "not-found" || report.reason === "root-mismatch", report.reason);
      // Let the victim's prover run a few more passes in this period: still nothing sent.
      const passes = victim.prover.stats().passes;
      await until("three more victim passes", async () => victim.prover.stats().passes >= passes + 3);
      assert.equal(await state(victim.address, period), 0);
      assert.equal(await pub.getTransactionCount({ address: victim.address }), nonce, "no doomed proof sent");
      assert.equal(victim.prover.stats().failed, 0, "no doomed proof even tried");
      assert.equal(victim.missing.filter((m) => m.fragment === lost).length, 1, "reported once per period");
      assert.equal(await victim.store.has(cids[lost]!), false, "the corrupt file was quarantined");
      assert.ok(victim.prover.stats().blocked >= 1, "the blocked period is counted");
      loss = { victim, period };
    }
    assert.ok(named, "some challenge named the lost fragment");
    for (const n of others) assert.equal(n.prover.stats().blocked, 0);
  });

  test("a prover without the data reports each challenged fragment once, outlives a throwing callback and stops at the deadline", async () => {
    assert.ok(loss, "the corrupt-fragment test ran");
    const { victim, period } = loss;
    await victim.prover.stop();
    const s = signer(chain.rpcUrl, d, chain.keys[1 + nodes.indexOf(victim)]!);
    const dir = await tempDir("muri-prover-probe-");
    const meta = await openMetaDb(`${dir}/meta`);
    const store = await openFragmentStore({ dir, quotaBytes: 64 * 1024 * 1024, metaDb: meta, sync: "none" });
    /** Another prover for the victim's address, over `store` (empty at first) and `index`. */
    const probe = (index: MaguIndex, onMissingFragment?: (id: bigint, fragment: number, cid: CID | undefined, reason: MissingReason) => void) => {
      const logger = recordingLogger();
      const prover = createProver(
        { member: victim.address, pollMs: 100, onMissingFragment },
        { contracts: getMuriContracts(d.contracts, s), publicClient: s.publicClient, walletClient: s.walletClient, store, index, logger },
      );
      return { prover, logger, errors: () => logger.entries.filter((e) => e.level === "error"), warnings: () => logger.entries.filter((e) => e.level === "warn") };
    };
    try {
      const nonce = await pub.getTransactionCount({ address: victim.address });
      // The distinct fragments the period's challenge names, in challenge order.
      const named = [...new Set((await reader().challengeManager.read.challengeFor([maguId, victim.address, period])).map((i) => i.fragment))];
      const missingLog = (reason: MissingReason) =>
        named.map((f) => ({ msg: "challenged fragment missing or corrupt; not submitting a proof", context: { maguId: maguId.toString(), period: period.toString(), fragment: f, cid: cids[f]!.toString(), reason } }));

      // Nothing in the store: every named fragment is reported once, with its CID; the callback's
      // error is logged and the pass goes on; the blocked period counts once per pass.
      const calls: { id: bigint; fragment: number; cid?: string; reason: MissingReason }[] = [];
      const a = probe(victim.index, (id, fragment, cid, reason) => {
        calls.push({ id, fragment, cid: cid?.toString(), reason });
        throw new Error("repair is down");
      });
      await a.prover.runOnce();
      assert.deepEqual(calls, named.map((f) => ({ id: maguId, fragment: f, cid: cids[f]!.toString(), reason: "not-found" })));
      assert.deepEqual(a.errors().map(({ msg, context }) => ({ msg, context })), missingLog("not-found"));
      assert.deepEqual(a.warnings().map((e) => e.msg), named.map(() => "onMissingFragment callback threw"));
      assert.ok(a.warnings().every((e) => e.context?.error === "repair is down" && e.context?.reason === "not-found"), JSON.stringify(a.warnings()));
      assert.deepEqual(a.prover.stats(), { submitted: 0, failed: 0, blocked: 1, passes: 1, replaced: 0, reproven: 0 });
      await a.prover.runOnce();
      assert.equal(calls.length, named.length, "not reported again in the same period");
      assert.equal(a.errors().length, named.length);
      assert.deepEqual(a.prover.stats(), { submitted: 0, failed: 0, blocked: 2, passes: 2, replaced: 0, reproven: 0 });

      // No callback: the same report, nothing else logged.
      const b = probe(victim.index);
      await b.prover.runOnce();
      assert.deepEqual(b.errors().map(({ msg, context }) => ({ msg, context })), missingLog("not-found"));
      assert.equal(b.warnings().length, 0);

      // Each CID in the store, but the index pairs it with the next fragment's root: the bytes
      // match their CID and not the recorded root, so the index is wrong ("root-mismatch").
      const shifted = cids.map((_, i) => cids[(i + 1) % FRAGMENTS]!);
      for (const f of named) await store.put(cids[(f + 1) % FRAGMENTS]!, fragments[(f + 1) % FRAGMENTS]!);
      const wrongIndex = createMaguIndex({}, { metaDb: meta });
      await wrongIndex.recordFragments(maguId, maguRoot(fragmentRoots), fragmentRoots, shifted);
      const c = probe(wrongIndex);
      await c.prover.runOnce();
      assert.deepEqual(
        c.errors().map(({ msg, context }) => ({ msg, context })),
        missingLog("root-mismatch").map((e) => ({ ...e, context: { ...e.context, cid: shifted[e.context.fragment]!.toString() } })),
      );
      for (const f of named) assert.equal(await store.has(cids[(f + 1) % FRAGMENTS]!), true, "a valid file is not quarantined");

      // The deadline: two blocks before it a pass still tries; one block before it a transaction
      // could not land in time, so the period is left alone.
      const deadline = await reader().challengeManager.read.proofDeadline([period]);
      assert.ok((await pub.getBlockNumber({ cacheTime: 0 })) < deadline - 2n, "the test reached the period early enough");
      await mineTo(deadline - 2n);
      const early = probe(victim.index);
      await early.prover.runOnce();
      assert.equal(early.prover.stats().blocked, 1);
      await mineTo(deadline - 1n);
      const late = probe(victim.index);
      await late.prover.runOnce();
      assert.deepEqual(late.prover.stats(), { submitted: 0, failed: 0, blocked: 0, passes: 1, replaced: 0, reproven: 0 });
      assert.deepEqual(late.logger.entries.filter((e) => e.level !== "debug"), []);
      assert.equal(await pub.getTransactionCount({ address: victim.address }), nonce, "no proof sent");
    } finally {
      await store.close();
      await meta.close();
    }
  });

  test("a fresh prover waits for the seed, counts a refused submission, proves once, and a fresh index learns the proof from the chain", async () => {
    assert.ok(loss, "the corrupt-fragment test ran");
    const { victim, period: lossPeriod } = loss;
    await victim.prover.stop(); // (stopped already by the test before)
    const period = lossPeriod + 1n;
    const key = chain.keys[1 + nodes.indexOf(victim)]!;
    const s = signer(chain.rpcUrl, d, key);
    // The victim's fragments again, the lost one included, in a store of its own.
    const dir = await tempDir("muri-prover-fresh-");
    const meta = await openMetaDb(`${dir}/meta`);
    const store = await openFragmentStore({ dir, quotaBytes: 64 * 1024 * 1024, metaDb: meta, sync: "none" });
    const index = createMaguIndex({}, { metaDb: meta });
    await index.recordFragments(maguId, maguRoot(fragmentRoots), fragmentRoots, cids);
    for (const f of victim.held) await store.put(cids[f]!, fragments[f]!);
    const proverWith = (index: MaguIndex, wallet = s) => {
      const logger = recordingLogger();
      const prover = createProver(
        { member: victim.address, pollMs: 100 },
        { contracts: getMuriContracts(d.contracts, wallet), publicClient: wallet.publicClient, walletClient: wallet.walletClient, store, index, logger },
      );
      return { prover, logger, notDebug: () => logger.entries.filter((e) => e.level !== "debug") };
    };
    try {
      const fresh = proverWith(index);
      // The period's first block: its seed (that block's hash) is not fixed yet, nothing is tried.
      await mineTo(await reader().maguRegistry.read.periodStart([period]));
      const nonce = await pub.getTransactionCount({ address: victim.address });
      await fresh.prover.runOnce();
      assert.deepEqual(fresh.prover.stats(), { submitted: 0, failed: 0, blocked: 0, passes: 1, replaced: 0, reproven: 0 });
      assert.equal(fresh.logger.entries.length, 0, "no challenge read before the seed is fixed");
      await enterPeriod(period);

      // Sent from an account that is not a member, the proof is refused: counted and logged once
      // per period and message, and the period stays open (tried again on the next pass).
      const stranger = signer(chain.rpcUrl, d, chain.keys[7]!);
      const refused = proverWith(index, stranger);
      await refused.prover.runOnce();
      await refused.prover.runOnce();
      assert.deepEqual(refused.prover.stats(), { submitted: 0, failed: 2, blocked: 0, passes: 2, replaced: 0, reproven: 0 });
      const failures = refused.notDebug();
      assert.deepEqual(failures.map((e) => [e.level, e.msg, e.context?.maguId, e.context?.period]), [["error", "proof submission failed", maguId.toString(), period.toString()]]);
      assert.match(String(failures[0]!.context?.error), /\S/);
      assert.equal(await state(victim.address, period), 0);

      // The member's own prover proves it once; later passes leave it alone.
      await fresh.prover.runOnce();
      assert.equal(await state(victim.address, period), 1);
      await fresh.prover.runOnce();
      assert.equal(await pub.getTransactionCount({ address: victim.address }), nonce + 1, "one proof transaction");
      assert.deepEqual(fresh.prover.stats(), { submitted: 1, failed: 0, blocked: 0, passes: 3, replaced: 0, reproven: 0 });
      assert.equal((await index.get(maguId))?.lastProvenPeriod, period);
      const items = (await reader().challengeManager.read.challengeFor([maguId, victim.address, period])).length;
      assert.deepEqual(
        fresh.notDebug().map((e) => [e.level, e.msg, e.context?.maguId, e.context?.period, e.context?.fragments]),
        [["info", "proof submitted", maguId.toString(), period.toString(), items]],
      );
      const answering = fresh.logger.entries.filter((e) => e.msg === "answering challenge");
      assert.equal(answering.length, 1, "the challenge is read once");
      assert.deepEqual(answering[0]!.context?.items, items);

      // A prover over a new index learns the proof from the chain (no transaction) and records it.
      const otherMeta = await openMetaDb(`${await tempDir("muri-prover-index-")}/meta`);
      try {
        const newIndex = createMaguIndex({}, { metaDb: otherMeta });
        await newIndex.recordFragments(maguId, maguRoot(fragmentRoots), fragmentRoots, cids);
        const restarted = proverWith(newIndex);
        await restarted.prover.runOnce();
        assert.equal((await newIndex.get(maguId))?.lastProvenPeriod, period);
        assert.equal(restarted.prover.stats().submitted, 0);
        assert.equal(await pub.getTransactionCount({ address: victim.address }), nonce + 1);

        // An index that only knows an older, shorter fragment list cannot prove the committed root: it says so, once.
        const shortMeta = await openMetaDb(`${await tempDir("muri-prover-short-")}/meta`);
        try {
          const shortIndex = createMaguIndex({}, { metaDb: shortMeta });
          await shortIndex.recordFragments(maguId, maguRoot(fragmentRoots.slice(0, 5)), fragmentRoots.slice(0, 5), cids.slice(0, 5));
          await mineTo((await reader().maguRegistry.read.periodStart([period + 1n])) + 1n);
          const short = proverWith(shortIndex, stranger);
          await short.prover.runOnce();
          await short.prover.runOnce();
          assert.deepEqual(
            short.notDebug().map((e) => ({ level: e.level, msg: e.msg, context: e.context })),
            [
              {
                level: "warn",
                msg: "fragment list of the committed root is not known; cannot prove",
                context: { maguId: maguId.toString(), period: (period + 1n).toString(), root: `0x${maguRoot(fragmentRoots).toString("hex")}`, fragmentCount: FRAGMENTS, known: `0x${maguRoot(fragmentRoots.slice(0, 5)).toString("hex")}` },
              },
            ],
          );
          assert.deepEqual(short.prover.stats(), { submitted: 0, failed: 0, blocked: 0, passes: 2, replaced: 0, reproven: 0 });
        } finally {
          await shortMeta.close();
        }
      } finally {
        await otherMeta.close();
      }

      // A reorganisation drops the block that held a proof: the next pass finds the period open
      // again and proves it again (a prover that trusted its memory of the receipt let it be missed).
      // The other members' provers stop first: their proofs and re-proofs would mine blocks of
      // their own and, on a loaded machine, carry the head past the period's deadline.
      await Promise.all(nodes.map((n) => n.prover.stop()));
      const later = period + 2n;
      await enterPeriod(later);
      const snapshot = (await pub.request({ method: "evm_snapshot" as never })) as Hex;
      const reorged = proverWith(index);
      await reorged.prover.runOnce();
      assert.equal(await state(victim.address, later), 1);
      await pub.request({ method: "evm_revert" as never, params: [snapshot] as never });
      await createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) }).mine({ blocks: 2 }); // another chain, without the proof
      assert.equal(await state(victim.address, later), 0, "the proof went with the reorganisation");
      await reorged.prover.runOnce();
      assert.equal(await state(victim.address, later), 1, "proven again");
      assert.deepEqual(reorged.prover.stats(), { submitted: 2, failed: 0, blocked: 0, passes: 2, replaced: 0, reproven: 1 });
      assert.equal(reorged.notDebug().filter((e) => e.msg === "a reorganisation undid this period's proof: proving it again").length, 1);
    } finally {
      await store.close();
      await meta.close();
    }
  });
});

/** Prints each entry and passes it on to `inner`. */
function consoleLogger(name: string, inner: Logger): Logger {
  const out = (level: keyof Logger) => (msg: string, ctx?: Record<string, unknown>) => {
    console.error(name, level, msg, JSON.stringify(ctx, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
    inner[level](msg, ctx);
  };
  return { debug: out("debug"), info: out("info"), warn: out("warn"), error: out("error") };
}
