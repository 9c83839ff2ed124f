/**
 * One node in 30 Magus, 20-block periods, 1-s blocks (interval mining, whatever the load): every
 * challenge of 2 periods is proven by both members, none missed (up to 120 proofs; a third period
 * cost the suite 20 s and checked the same again). The prover reads the Magus concurrently, sends
 * every proof earliest deadline first and awaits the receipts together; one that walked the Magus
 * in id order awaiting each receipt spent a block per Magu and left the high ids unproven every
 * period. A real hardhat node, real stores and Magu indexes.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createTestClient, getAddress, http, type Address, type Hex } from "viem";
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

const MAGUS = 30;
const PERIODS = 2;
/**
 * Shorter than the 30 blocks a prover that awaited each receipt in turn spent per period, long
 * enough for 60 proofs on a loaded machine (10-block periods failed a fresh-clone CI run with other
 * test processes on both cores: a whole period's proofs landed late).
 */
const PERIOD_BLOCKS = 20;
const FRAGMENTS = 2;

describe("prover: 30 Magus on one node, 20-block periods, 1-s blocks", { timeout: 600_000 }, () => {
  let chain: HardhatChain;
  let d: Deployment;
  let pub: MuriPublicClient;
  const magus: bigint[] = [];
  const members: Array<{ address: Address; meta: MetaDb; store: FragmentStore; prover: Prover; log: ReturnType<typeof recordingLogger> }> = [];

  before(async () => {
    chain = await startFreshHardhatNode();
    // No proof grace: a proof must land within its own period's blocks (plus the next period's start).
    d = await deployLocal(chain.rpcUrl, undefined, { periodBlocks: PERIOD_BLOCKS, graceBlocks: 0 });
    pub = signer(chain.rpcUrl, d, chain.keys[0]!).publicClient;
    const tc = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
    const mineTo = async (block: bigint) => {
      const head = await pub.getBlockNumber({ cacheTime: 0 });
      if (block > head) await tc.mine({ blocks: Number(block - head) });
    };
    // minStake free beside a stakePerMember (devnet: 1,000 and 100 MURI) locked per membership.
    for (let i = 1; i <= 2; i++) await registerNode(chain.rpcUrl, d, chain.keys[0]!, chain.keys[i]!, BigInt(1_000 + 100 * MAGUS + 500) * E18);
    const data: Array<{ roots: Buffer[]; fragments: Buffer[]; root: Hex }> = [];
    for (let m = 0; m < MAGUS; m++) {
      const id = await createAndFormMagu(chain.rpcUrl, d, chain.keys[0]!, chain.keys[6]!, { kind: 0, metric: 0, dimension: 0, members: 2, replication: 0, dataShards: 1, parityShards: 1, maxFragments: FRAGMENTS, durationPeriods: 100n, pricePerFragmentPeriod: E18 / 1000n }, mineTo);
      const fragments = Array.from({ length: FRAGMENTS }, () => randomBytes(2048));
      const roots = fragments.map((f) => buildFragmentTree(f).fragmentRoot);
      const root = `0x${maguRoot(roots).toString("hex")}` as Hex;
      await commitRootWithAcks(chain.rpcUrl, d, chain.keys[6]!, chain.keys, id, root, FRAGMENTS);
      magus.push(id);
      data.push({ roots, fragments, root });
    }
    const reader = getMuriContracts(d.contracts, { publicClient: pub });
    for (let i = 1; i <= 2; i++) {
      const s = signer(chain.rpcUrl, d, chain.keys[i]!);
      const address = getAddress(s.account.address);
      const dir = await tempDir("muri-prover-scale-");
      const meta = await openMetaDb(`${dir}/meta`);
      const store = await openFragmentStore({ dir, quotaBytes: 64 * 1024 * 1024, metaDb: meta, sync: "none" });
      const index = createMaguIndex({}, { metaDb: meta });
      for (const [m, id] of magus.entries()) {
        const info = await reader.maguRegistry.read.maguInfo([id]);
        const slot = info.members.findIndex((a) => getAddress(a) === address);
        assert.ok(slot >= 0, `node ${i} is a member of Magu ${id}`);
        const held = fragmentsOfSlot(id, FRAGMENTS, 2, slot, { k: 1, m: 1 });
        for (const f of held) await store.put(fragmentCid(data[m]!.fragments[f]!), data[m]!.fragments[f]!);
        await index.recordFragments(id, data[m]!.root, data[m]!.roots, data[m]!.fragments.map((f) => fragmentCid(f)));
        await index.setHeld(id, held);
      }
      const log = recordingLogger();
      const prover = createProver(
        { member: address, pollMs: 500 },
        { contracts: getMuriContracts(d.contracts, s, { priority: "proof" }), publicClient: s.publicClient, walletClient: s.walletClient, store, index, logger: log },
      );
      members.push({ address, meta, store, prover, log });
    }
  });

  after(async () => {
    for (const m of members) {
      await m.prover.stop();
      await m.store.close();
      await m.meta.close();
    }
  });

  test(`every challenge of ${PERIODS} periods is proven by both members; none is missed`, async () => {
    const tc = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
    const reader = getMuriContracts(d.contracts, { publicClient: pub });
    // Blocks a second before any prover starts (with automine on, each proof would mine a block and
    // hurry its own period past its deadline), and the provers start at a period's first block, so
    // none starts with a period about to close. (viem's setIntervalMining sends the interval
    // hex-encoded, which this node ignores.)
    await pub.request({ method: "evm_setIntervalMining" as never, params: [1000] as never });
    await tc.setAutomine(false);
    try {
      const boundary = await reader.maguRegistry.read.periodStart([(await reader.maguRegistry.read.currentPeriod()) + 1n]);
      const t00 = Date.now();
      while ((await pub.getBlockNumber({ cacheTime: 0 })) < boundary) {
        assert.ok(Date.now() - t00 < 60_000, "the chain mines a block a second");
        await new Promise((r) => setTimeout(r, 200));
      }
      for (const m of members) await m.prover.start();
      // The periods after the one the blocks started coming in: every Magu's data is challenged in them.
      const first = (await reader.maguRegistry.read.currentPeriod()) + 1n;
      for (const id of magus) {
        for (const m of members) assert.ok((await reader.maguRegistry.read.membership([id, m.address])).joinPeriod <= first);
      }
      const last = first + BigInt(PERIODS) - 1n;
      const deadline = await reader.challengeManager.read.proofDeadline([last]);
      const t0 = Date.now();
      while ((await pub.getBlockNumber({ cacheTime: 0 })) <= deadline) {
        assert.ok(Date.now() - t0 < 240_000, "the chain mines a block a second");
        await new Promise((r) => setTimeout(r, 500));
      }
      let proven = 0;
      const unproven: string[] = [];
      for (const id of magus) {
        for (const m of members) {
          for (let p = first; p <= last; p++) {
            const [state, items] = await Promise.all([reader.challengeManager.read.proofState([id, m.address, p]), reader.challengeManager.read.challengeFor([id, m.address, p])]);
            if (state === 1) proven++;
            else if (items.length > 0) unproven.push(`Magu ${id} member ${m.address} period ${p}`);
          }
        }
      }
      assert.deepEqual(unproven, [], "every non-empty challenge proven in time");
      assert.ok(proven >= MAGUS * 2 * PERIODS * 0.5, `most challenges name a held fragment (${proven} proven)`);
      for (const m of members) {
        const failures = m.log.entries.filter((e) => e.level === "error" || e.level === "warn").map((e) => `${e.msg} ${JSON.stringify(e.context)}`);
        assert.equal(m.prover.stats().failed, 0, `member ${m.address}: no failed submission; logged:\n${failures.join("\n")}`);
      }
      console.log(`# ${proven} proofs in ${PERIODS} periods of ${PERIOD_BLOCKS} one-second blocks, ${MAGUS} Magus x 2 members`);
    } finally {
      await pub.request({ method: "evm_setIntervalMining" as never, params: [0] as never });
      await tc.setAutomine(true);
    }
  });
});
