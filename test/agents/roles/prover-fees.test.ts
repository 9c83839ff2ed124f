/**
 * The prover on a chain whose base fee jumps: its proof transaction, priced for the block it was
 * built in, sits in the mempool under a fee cap the new base fee passed; after `replaceAfterBlocks`
 * blocks the prover sends it again with the same nonce and higher fees, and the period is proven
 * before its deadline. A real hardhat node with automine off (blocks mined by the test),
 * `hardhat_setNextBlockBaseFeePerGas` for the jump, a real store and Magu index.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createTestClient, getAddress, http, type Hex } from "viem";
import { getMuriContracts, type Deployment, type MuriPublicClient } from "../../../agents/chain/index.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { buildFragmentTree, maguRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { openFragmentStore, type FragmentStore } from "../../../agents/store/fragment-store.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import { createMaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { createProver, type Prover } from "../../../agents/roles/node/prover.js";
import { createAndFormMagu, E18, cleanup, deployLocal, recordingLogger, registerNode, signer, startFreshHardhatNode, tempDir, type HardhatChain } from "../chain/harness.js";
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
    const index = createMaguIndex({}, { metaDb: meta });
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
    const pendingTx = async () => {
      const block = (await pub.request({ method: "eth_getBlockByNumber", params: ["pending", true] } as never)) as { transactions: Array<{ hash: Hex; from: string; nonce: Hex; maxFeePerGas: Hex }> };
      return block.transactions.find((t) => getAddress(t.from) === member);
    };
    let first: Awaited<ReturnType<typeof pendingTx>>;
    for (let i = 0; i < 200 && first === undefined; i++) {
      first = await pendingTx();
      if (first === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(first, "the prover sent its proof");
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
    assert.ok(log.entries.some((e) => e.msg === "proof transaction not mined: replaced with higher fees"));
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
});
