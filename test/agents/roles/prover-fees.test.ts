/**
 * The prover on a chain whose base fee jumps: its proof transaction, priced for the block it was
 * built in, sits in the mempool under a fee cap the new base fee passed; after `replaceAfterBlocks`
 * blocks the prover sends it again with the same nonce and higher fees, and the period is proven
 * before its deadline. A real hardhat node with automine off (blocks mined by the test),
 * `hardhat_setNextBlockBaseFeePerGas` for the jump, a real store and Magu index.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { createTestClient, getAddress, http, type Hex } from "viem";
import { getMuriContracts, type Deployment, type MuriPublicClient } from "../../../agents/chain/index.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { buildFragmentTree, maguRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { openFragmentStore, type FragmentStore } from "../../../agents/store/fragment-store.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import { createMaguIndex, type MaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { createProver, MAX_REPLACEMENTS, type Prover } from "../../../agents/roles/node/prover.js";
import { createAndFormMagu, E18, cleanup, deployLocal, recordingLogger, registerNode, signer, startFreshHardhatNode, startRpcProxy, tempDir, type HardhatChain } from "../chain/harness.js";
import { within } from "../within.js";
import { commitRootWithAcks } from "./commit-helpers.js";

after(cleanup);

const FRAGMENTS = 4;

describe("prover: a proof stuck under a risen base fee is replaced (hardhat node, automine off)", { timeout: 300_000 }, () => {
  let chain: HardhatChain;
  let d: Deployment;
  let pub: MuriPublicClient;
  let meta: MetaDb;
  let store: FragmentStore;
  let prover: Prover;
  const log = recordingLogger();
  /** Mines up to `block` (nothing when the head is there already). */
  const mineTo = async (block: bigint) => {
    const head = await pub.getBlockNumber({ cacheTime: 0 });
    if (block > head) await createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) }).mine({ blocks: Number(block - head) });
  };
  let maguId: bigint;
  let period: bigint;
  let member: Hex;
  let index: MaguIndex;
  /** The member's transaction waiting in the mempool, if any. */
  const pendingTx = async () => {
    const block = (await pub.request({ method: "eth_getBlockByNumber", params: ["pending", true] } as never)) as { transactions: Array<{ hash: Hex; from: string; nonce: Hex; maxFeePerGas: Hex; maxPriorityFeePerGas: Hex }> };
    return block.transactions.find((t) => getAddress(t.from) === member);
  };
  /** Polls until the member's proof transaction is in the mempool (at most 10 s). */
  const waitPending = async () => {
    for (let i = 0; i < 200; i++) {
      const tx = await pendingTx();
      if (tx !== undefined) return tx;
      await sleep(50);
    }
    throw new Error("the prover sent no proof transaction within 10 s");
  };

  before(async () => {
    chain = await startFreshHardhatNode();
    d = await deployLocal(chain.rpcUrl, undefined, { periodBlocks: 20, graceBlocks: 10, settleDelayBlocks: 60 });
    pub = signer(chain.rpcUrl, d, chain.keys[0]!).publicClient;
    for (let i = 1; i <= 2; i++) await registerNode(chain.rpcUrl, d, chain.keys[0]!, chain.keys[i]!);
    maguId = await createAndFormMagu(chain.rpcUrl, d, chain.keys[0]!, chain.keys[6]!, { kind: 0, metric: 0, dimension: 0, members: 2, replication: 0, dataShards: 1, parityShards: 1, maxFragments: FRAGMENTS, durationPeriods: 20n, pricePerFragmentPeriod: E18 / 1000n }, mineTo);
    const fragments = Array.from({ length: FRAGMENTS }, () => randomBytes(4096));
    const roots = fragments.map((f) => buildFragmentTree(f).fragmentRoot);
    const root = `0x${maguRoot(roots).toString("hex")}` as Hex;
    await commitRootWithAcks(chain.rpcUrl, d, chain.keys[6]!, chain.keys, maguId, root, FRAGMENTS);

    const s = signer(chain.rpcUrl, d, chain.keys[1]!);
    member = getAddress(s.account.address);
    const reader = getMuriContracts(d.contracts, { publicClient: pub });
    const info = await reader.maguRegistry.read.maguInfo([maguId]);
    const slot = info.members.findIndex((a) => getAddress(a) === member);
    period = (await reader.maguRegistry.read.membership([maguId, member])).joinPeriod;
    const dir = await tempDir("muri-prover-fees-");
    meta = await openMetaDb(`${dir}/meta`);
    store = await openFragmentStore({ dir, quotaBytes: 16 * 1024 * 1024, metaDb: meta, sync: "none" });
    index = createMaguIndex({}, { metaDb: meta });
    const held = fragmentsOfSlot(maguId, FRAGMENTS, 2, slot, { k: 1, m: 1 });
    for (const f of held) await store.put(fragmentCid(fragments[f]!), fragments[f]!);
    await index.recordFragments(maguId, root, roots, fragments.map((f) => fragmentCid(f)));
    await index.setHeld(maguId, held);
    prover = createProver(
      { member, pollMs: 100, replaceAfterBlocks: 3 },
      { contracts: getMuriContracts(d.contracts, s, { priority: "proof" }), publicClient: s.publicClient, walletClient: s.walletClient, store, index, logger: log },
    );
  });

  after(async () => {
    await prover?.stop();
    await store?.close();
    await meta?.close();
  });

  test("the proof is sent again with the same nonce and higher fees, and lands before the deadline", async () => {
    const test = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
    const reader = getMuriContracts(d.contracts, { publicClient: pub });
    const start = await reader.maguRegistry.read.periodStart([period]);
    const deadline = await reader.challengeManager.read.proofDeadline([period]);
    await test.setAutomine(false);
    const head = await pub.getBlockNumber({ cacheTime: 0 });
    if (start + 1n > head) await test.mine({ blocks: Number(start + 1n - head) });
    const nonce = await pub.getTransactionCount({ address: member, blockTag: "latest" });
    await prover.start();

    // The proof waits in the mempool (nothing is mined until the test mines).
    const first = await waitPending();
    assert.equal(BigInt(first.nonce), BigInt(nonce));
    const cap = BigInt(first.maxFeePerGas);

    // The base fee jumps past the proof's fee cap: blocks come, the proof stays out of them.
    await test.setNextBlockBaseFeePerGas({ baseFeePerGas: cap * 4n });
    await test.mine({ blocks: 1 });
    assert.equal(await reader.challengeManager.read.proofState([maguId, member, period]), 0, "not mined under the risen base fee");
    for (let b = 0; b < 12 && (await reader.challengeManager.read.proofState([maguId, member, period])) === 0; b++) {
      // One block at a time, leaving the prover a moment to look (it polls every 100 ms).
      await new Promise((r) => setTimeout(r, 400));
      await test.mine({ blocks: 1 });
    }
    assert.equal(await reader.challengeManager.read.proofState([maguId, member, period]), 1, "proven");
    assert.ok((await pub.getBlockNumber({ cacheTime: 0 })) < deadline, "before the deadline");
    assert.ok(prover.stats().replaced >= 1, "replaced");
    const proven = await reader.challengeManager.getEvents.ProofSubmitted({ magu: maguId }, { fromBlock: start });
    const landed = await pub.getTransaction({ hash: proven.at(-1)!.transactionHash });
    assert.notEqual(landed.hash, first.hash, "a replacement landed, not the first transaction");
    assert.equal(landed.nonce, nonce, "with the same nonce");
    assert.ok(landed.maxFeePerGas! > cap, `a higher fee cap (${landed.maxFeePerGas} > ${cap})`);
    await assert.rejects(pub.getTransactionReceipt({ hash: first.hash }), "the first transaction was never mined");
    // The replacement's fees, by the policy the prover states: the tip and the fee cap 30 % + 1 wei
    // above the replaced transaction's, and the cap at least twice the base fee plus the tip. The
    // base fee it read is that of a block mined since the transaction was sent.
    const replaced = log.entries.find((e) => e.msg === "proof transaction not mined: replaced with higher fees" && e.context?.tx === first.hash);
    assert.ok(replaced, "the replacement of the first transaction is logged");
    const second = await pub.getTransaction({ hash: replaced.context!.replacement as Hex });
    const bump = (x: bigint): bigint => x + (x * 3n) / 10n + 1n;
    const base = BigInt(replaced.context!.baseFee as string);
    const fees: bigint[] = [];
    for (let b = await pub.getBlockNumber({ cacheTime: 0 }); b >= start; b--) fees.push((await pub.getBlock({ blockNumber: b })).baseFeePerGas!);
    assert.ok(fees.includes(base) && base > 0n, `the base fee read (${base}) is a mined block's (${fees.join(", ")})`);
    assert.equal(second.nonce, nonce);
    assert.equal(second.maxPriorityFeePerGas, bump(BigInt(first.maxPriorityFeePerGas)), "the tip, 30 % + 1 above");
    const twice = 2n * base + second.maxPriorityFeePerGas!;
    const want = bump(cap) > twice ? bump(cap) : twice;
    assert.equal(second.maxFeePerGas, want, `the fee cap: the larger of ${bump(cap)} (30 % + 1 above ${cap}) and ${twice} (twice the base fee, plus the tip)`);
    assert.equal(replaced.context!.maxFeePerGas, `${cap} -> ${want}`, "logged as old -> new");
    assert.equal(prover.stats().failed, 0);
    await test.setAutomine(true);
  });

  test("a pass in the grace of a period left unproven proves it as well as the current one, the earlier deadline first", async () => {
    const reader = getMuriContracts(d.contracts, { publicClient: pub });
    await prover.stop();
    // A period that starts after the loop stopped: nobody proves it while it is current.
    const late = (await reader.maguRegistry.read.currentPeriod()) + 1n;
    await mineTo((await reader.maguRegistry.read.periodStart([late + 1n])) + 1n);
    const deadline = await reader.challengeManager.read.proofDeadline([late]);
    assert.ok((await pub.getBlockNumber({ cacheTime: 0 })) + 1n < deadline, "still inside the period's grace");
    assert.deepEqual(await Promise.all([late, late + 1n].map((p) => reader.challengeManager.read.proofState([maguId, member, p]))), [0, 0]);
    const before = prover.stats().submitted;
    await prover.runOnce();
    assert.deepEqual(await Promise.all([late, late + 1n].map((p) => reader.challengeManager.read.proofState([maguId, member, p]))), [1, 1], "the period in its grace and the current one, in one pass");
    assert.equal(prover.stats().submitted - before, 2);
    // Earliest deadline first: the period in its grace took the lower nonce, so it is mined first.
    const nonceOf = async (p: bigint): Promise<number> => {
      const [event] = await reader.challengeManager.getEvents.ProofSubmitted({ magu: maguId, member, period: p }, { fromBlock: 0n });
      return (await pub.getTransaction({ hash: event!.transactionHash })).nonce;
    };
    assert.ok((await nonceOf(late)) < (await nonceOf(late + 1n)), "the earlier deadline was sent first");
  });

  describe("a node that loses or refuses the prover's transactions (its RPC through a proxy)", () => {
    /** Makes the proxy fail every eth_sendRawTransaction (it records every call in `proxy.calls`). */
    let refuseSends = false;
    let proxied: Prover;
    const plog = recordingLogger();
    let proxy: Awaited<ReturnType<typeof startRpcProxy>>;
    const testClient = () => createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
    const state = (p: bigint) => getMuriContracts(d.contracts, { publicClient: pub }).challengeManager.read.proofState([maguId, member, p]);
    /** The next period, its start block mined (automine on), then automine off: the test mines. */
    const nextPeriod = async (): Promise<{ p: bigint; deadline: bigint }> => {
      const reader = getMuriContracts(d.contracts, { publicClient: pub });
      const p = (await reader.maguRegistry.read.currentPeriod()) + 1n;
      await mineTo((await reader.maguRegistry.read.periodStart([p])) + 1n);
      await testClient().setAutomine(false);
      return { p, deadline: await reader.challengeManager.read.proofDeadline([p]) };
    };
    /** A pass of the proxied prover over the next period, started; its proof seen in the mempool. */
    const startPass = async () => {
      const { p, deadline } = await nextPeriod();
      const before = proxied.stats();
      const pass = proxied.runOnce();
      return { p, deadline, before, pass, first: await waitPending() };
    };
    /** The member's prover with its RPC through the proxy, giving up on a receipt after `receiptTimeoutMs`. */
    const onProxy = (receiptTimeoutMs: number): Prover => {
      const s = signer(proxy.url, d, chain.keys[1]!);
      return createProver(
        { member, pollMs: 100, replaceAfterBlocks: 3, receiptTimeoutMs },
        { contracts: getMuriContracts(d.contracts, s, { priority: "proof" }), publicClient: s.publicClient, walletClient: s.walletClient, store, index, logger: plog },
      );
    };
    /** Waits until the prover read `hash` back from the node (it learns its nonce so). */
    const readBack = async (hash: Hex) => {
      for (let i = 0; i < 400; i++) {
        if (proxy.calls.some((c) => c.method === "eth_getTransactionByHash" && (c.params as unknown[])[0] === hash)) return;
        await sleep(25);
      }
      throw new Error(`the prover never read ${hash} back`);
    };

    before(async () => {
      proxy = await startRpcProxy(chain.rpcUrl, undefined, (call) => {
        if (refuseSends && call.method === "eth_sendRawTransaction") throw new Error("refused by the test's proxy");
      });
      // Only the chain ends these passes (a wall-clock bound far beyond any test's).
      proxied = onProxy(600_000);
    });

    after(async () => {
      await testClient().setAutomine(true);
      await proxy?.close();
    });

    test("a proof transaction the node drops is sent again with its nonce and lands before the deadline", async () => {
      const { p, deadline, before, pass, first } = await startPass();
      await readBack(first.hash);
      await testClient().dropTransaction({ hash: first.hash });
      assert.equal(await pendingTx(), undefined, "the node forgot it");
      for (let b = 0; b < 12 && (await state(p)) === 0; b++) {
        await sleep(400);
        await testClient().mine({ blocks: 1 });
      }
      await pass;
      assert.equal(await state(p), 1, "proven");
      assert.ok((await pub.getBlockNumber({ cacheTime: 0 })) < deadline, "before the deadline");
      const [event] = await getMuriContracts(d.contracts, { publicClient: pub }).challengeManager.getEvents.ProofSubmitted({ magu: maguId, member, period: p }, { fromBlock: 0n });
      const landed = await pub.getTransaction({ hash: event!.transactionHash });
      assert.notEqual(landed.hash, first.hash);
      assert.equal(landed.nonce, Number(BigInt(first.nonce)), "sent again with the dropped transaction's nonce");
      const after = proxied.stats();
      assert.deepEqual([after.submitted - before.submitted, after.replaced - before.replaced, after.failed - before.failed], [1, 1, 0]);
      assert.ok(plog.entries.some((e) => e.msg === "proof transaction dropped by the node: sent again" && e.context?.tx === first.hash));
    });

    test("a replacement the node refuses is reported once; the first transaction lands once the base fee falls back", async () => {
      const { p, deadline, before, pass, first } = await startPass();
      const cap = BigInt(first.maxFeePerGas);
      refuseSends = true;
      try {
        await testClient().setNextBlockBaseFeePerGas({ baseFeePerGas: cap * 4n });
        const sends = () => proxy.calls.filter((c) => c.method === "eth_sendRawTransaction").length;
        const sendsAtJump = sends();
        // Blocks under the risen base fee: past replaceAfterBlocks the prover tries to replace its
        // proof, and every try is refused. Mined one at a time until it tried twice.
        for (let b = 0; b < 20 && sends() < sendsAtJump + 2; b++) {
          await testClient().mine({ blocks: 1 });
          await sleep(400);
        }
        assert.ok(sends() >= sendsAtJump + 2, "the prover tried to replace its proof (twice)");
        assert.equal(await state(p), 0, "not mined under the risen base fee");
        // The base fee falls back under the first transaction's cap: it is mined as it was (the
        // node still refuses every other send until the pass ends).
        await testClient().setNextBlockBaseFeePerGas({ baseFeePerGas: cap / 2n });
        await testClient().mine({ blocks: 1 });
        await pass;
      } finally {
        refuseSends = false;
      }
      assert.equal(await state(p), 1, "proven");
      assert.ok((await pub.getBlockNumber({ cacheTime: 0 })) < deadline);
      const [event] = await getMuriContracts(d.contracts, { publicClient: pub }).challengeManager.getEvents.ProofSubmitted({ magu: maguId, member, period: p }, { fromBlock: 0n });
      assert.equal(event!.transactionHash, first.hash, "the first transaction landed");
      const after = proxied.stats();
      assert.deepEqual([after.submitted - before.submitted, after.replaced - before.replaced, after.failed - before.failed], [1, 0, 0]);
      const refused = plog.entries.filter((e) => e.msg === "could not replace a proof transaction" && e.context?.tx === first.hash);
      assert.equal(refused.length, 1, `reported once, however many tries: ${JSON.stringify(refused)}`);
      assert.match(String(refused[0]!.context?.error), /HTTP 502/, "the node's refusal");
      const landed = plog.entries.find((e) => e.msg === "proof submitted" && e.context?.tx === first.hash);
      assert.equal(landed?.context?.replacements, 0, "no replacement was sent");
    });

    test("a proof that never lands is reported failed at its deadline, and is not counted as submitted", async () => {
      const { p, deadline, before, pass, first } = await startPass();
      await readBack(first.hash);
      // The node loses the transaction and refuses every one sent after it.
      refuseSends = true;
      try {
        await testClient().dropTransaction({ hash: first.hash });
        // Up to the deadline's last block and no further: the prover gives up there by itself.
        for (let head = await pub.getBlockNumber({ cacheTime: 0 }); head < deadline - 1n; head++) {
          await testClient().mine({ blocks: 1 });
          await sleep(100);
        }
        assert.notEqual(await within(pass, 60_000), "timeout", "the pass gave up at the deadline's last block");
      } finally {
        refuseSends = false;
      }
      assert.equal(await state(p), 0, "never proven");
      const after = proxied.stats();
      assert.deepEqual([after.submitted - before.submitted, after.replaced - before.replaced, after.failed - before.failed], [0, 0, 1]);
      const failed = plog.entries.filter((e) => e.msg === "proof submission failed" && e.context?.period === p.toString());
      assert.equal(failed.length, 1, JSON.stringify(failed));
      // Given up once the next block is the deadline: the contract takes proofs in blocks before it.
      assert.equal(String(failed[0]!.context?.error), `proof transaction ${first.hash} not mined by block ${deadline - 1n} (deadline ${deadline}, 0 replacements)`);
      // Every resend the node refused is reported once. The test mines faster than a loaded prover
      // polls, so a resend estimated after the last block it may land in is refused by the contract
      // instead (a different error, reported once too); nothing else may go wrong.
      const unsent = plog.entries.filter((e) => e.msg === "could not send a dropped proof transaction again" && e.context?.period === p.toString());
      const errors = unsent.map((e) => String(e.context?.error));
      assert.equal(errors.filter((e) => /HTTP 502/.test(e)).length, 1, `its resends were refused, reported once: ${JSON.stringify(unsent)}`);
      assert.ok(errors.every((e) => /HTTP 502|ChallengeWrongPeriod/.test(e)), JSON.stringify(unsent));
      assert.equal(new Set(errors).size, errors.length, "each error reported once");
    });

    test("with no block coming, a pass gives up when its receipt timeout passes, long before the deadline", async () => {
      const quick = onProxy(1_500);
      const { p, deadline } = await nextPeriod();
      // Past the grace of the period before (the never-landing proof's), so that only p is proven.
      const reader = getMuriContracts(d.contracts, { publicClient: pub });
      const previous = await reader.challengeManager.read.proofDeadline([p - 1n]);
      const now = await pub.getBlockNumber({ cacheTime: 0 });
      if (previous > now) await testClient().mine({ blocks: Number(previous - now) });
      const pass = quick.runOnce();
      const first = await waitPending();
      const head = await pub.getBlockNumber({ cacheTime: 0 });
      // Nothing is mined: only the wall clock can end the pass.
      assert.notEqual(await within(pass, 30_000), "timeout", "the pass gave up after its 1.5 s receipt timeout");
      assert.equal(await pub.getBlockNumber({ cacheTime: 0 }), head, "no block was mined meanwhile");
      assert.deepEqual([quick.stats().submitted, quick.stats().failed], [0, 1]);
      const failed = plog.entries.filter((e) => e.msg === "proof submission failed" && e.context?.period === p.toString());
      assert.equal(failed.at(-1)?.context?.error, `proof transaction ${first.hash} not mined by block ${head} (deadline ${deadline}, 0 replacements)`);
      await testClient().mine({ blocks: 1 }); // it lands after all: the next pass finds the period proven
      assert.equal(await state(p), 1);
    });

    test(`a proof that no fee gets mined is replaced ${MAX_REPLACEMENTS} times and no more, and the last replacement lands`, async () => {
      const { p, deadline, before, pass, first } = await startPass();
      const replacedSince = () => proxied.stats().replaced - before.replaced;
      // Before every block the base fee is set just above the pending proof's fee cap: nothing the
      // prover sends fits, each replacement doubles the cap. Mined until four blocks before the
      // deadline, time for a replacement past the limit (one every 3 blocks) to show.
      for (let head = await pub.getBlockNumber({ cacheTime: 0 }); head < deadline - 4n; head++) {
        const pending = await pendingTx();
        assert.ok(pending, "the proof is still waiting");
        await testClient().setNextBlockBaseFeePerGas({ baseFeePerGas: BigInt(pending.maxFeePerGas) + 1n });
        await testClient().mine({ blocks: 1 });
        await sleep(400);
      }
      assert.equal(await state(p), 0, "nothing landed under those base fees");
      assert.equal(replacedSince(), MAX_REPLACEMENTS, `replaced ${MAX_REPLACEMENTS} times, not more`);
      const last = (await pendingTx())!;
      await testClient().setNextBlockBaseFeePerGas({ baseFeePerGas: 1n });
      await testClient().mine({ blocks: 1 });
      assert.notEqual(await within(pass, 60_000), "timeout", "the pass ended once the last replacement landed");
      assert.equal(await state(p), 1, "proven");
      const [event] = await getMuriContracts(d.contracts, { publicClient: pub }).challengeManager.getEvents.ProofSubmitted({ magu: maguId, member, period: p }, { fromBlock: 0n });
      assert.equal(event!.transactionHash, last.hash, "the last replacement landed");
      assert.notEqual(last.hash, first.hash);
      assert.deepEqual([proxied.stats().submitted - before.submitted, replacedSince(), proxied.stats().failed - before.failed], [1, MAX_REPLACEMENTS, 0]);
    });

    test("stop() while a proof waits for its receipt returns at once, without counting a failure", async () => {
      const { p } = await nextPeriod();
      const before = proxied.stats();
      await proxied.start();
      await waitPending();
      assert.notEqual(await within(proxied.stop(), 10_000), "timeout", "stop() returned while the proof was unmined");
      assert.deepEqual([proxied.stats().submitted - before.submitted, proxied.stats().failed - before.failed], [0, 0]);
      await testClient().mine({ blocks: 1 }); // the proof sent lands; nobody waits for it any more
      assert.equal(await state(p), 1);
    });

    test("a proof that reverts in its block is a failure, not a proof: counted failed, the period still open", async () => {
      const { p, before, pass, first } = await startPass();
      // Between the estimate and the block the contract's state changes so that the proof reverts
      // (played by setting ChallengeManager's reentrancy guard, OpenZeppelin's ERC-7201 slot, to
      // "entered"; any change that makes submitProof revert is the same to the prover).
      const guard = "0x9b779b17422d0df92223018b32b4d1fa46e071723d6817e2486d003becc55f00";
      const word = (v: number): Hex => `0x${v.toString(16).padStart(64, "0")}`;
      const cm = d.contracts.challengeManager;
      await testClient().setStorageAt({ address: cm, index: guard, value: word(2) });
      try {
        await testClient().mine({ blocks: 1 });
      } finally {
        await testClient().setStorageAt({ address: cm, index: guard, value: word(1) });
      }
      const receipt = await pub.getTransactionReceipt({ hash: first.hash });
      assert.equal(receipt.status, "reverted", "the proof was mined and reverted");
      assert.notEqual(await within(pass, 60_000), "timeout", "the pass ended");
      assert.equal(await state(p), 0, "the period is still open");
      assert.deepEqual([proxied.stats().submitted - before.submitted, proxied.stats().failed - before.failed], [0, 1]);
      const failed = plog.entries.filter((e) => e.msg === "proof submission failed" && e.context?.period === p.toString());
      assert.equal(failed.at(-1)?.context?.error, `proof transaction ${first.hash} reverted in block ${receipt.blockNumber}`);
      // The next pass proves it.
      await testClient().setAutomine(true);
      await proxied.runOnce();
      assert.equal(await state(p), 1, "proven by the next pass");
    });
  });
});
