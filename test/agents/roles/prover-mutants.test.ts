/**
 * The prover (prover.ts) on a Magu with fewer fragments than members, a case `npm run mutate --
 * roles/prover` showed untested: a member that holds no fragment is drawn no challenge item, proves
 * nothing, sends nothing and leaves the period alone; a member that holds one fragment proves it. Real hardhat node, LevelDB meta DB and fragment store on disk.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createTestClient, getAddress, http, type Address, type Hex } from "viem";
import { getMuriContracts, type Deployment, type MuriPublicClient } from "../../../agents/chain/index.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { buildFragmentTree, maguRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { openFragmentStore, type FragmentStore } from "../../../agents/store/fragment-store.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import { createMaguIndex, type MaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { createProver } from "../../../agents/roles/node/prover.js";
import { createAndFormMagu, E18, cleanup, deployLocal, freePort, recordingLogger, registerNode, signer, startHardhatNode, tempDir, type HardhatChain } from "../chain/harness.js";
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
  meta: MetaDb;
  store: FragmentStore;
  index: MaguIndex;
}

describe("prover on a Magu of two fragments and three members (hardhat node)", () => {
  let chain: HardhatChain;
  let d: Deployment;
  let pub: MuriPublicClient;
  let maguId: bigint;
  let period: bigint;
  const members: Member[] = [];

  const reader = () => getMuriContracts(d.contracts, { publicClient: pub });
  const mineTo = async (block: bigint) => {
    const head = await pub.getBlockNumber({ cacheTime: 0 });
    if (block > head) await createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) }).mine({ blocks: Number(block - head) });
  };
  const proverOf = (m: Member) => {
    const s = signer(chain.rpcUrl, d, m.key);
    const logger = recordingLogger();
    const prover = createProver(
      { member: m.address, pollMs: 100 },
      { contracts: getMuriContracts(d.contracts, s), publicClient: s.publicClient, walletClient: s.walletClient, store: m.store, index: m.index, logger },
    );
    return { prover, logger, notDebug: () => logger.entries.filter((e) => e.level !== "debug").map((e) => ({ level: e.level, msg: e.msg, context: e.context })) };
  };

  before(async () => {
    chain = await startHardhatNode(await freePort());
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
    const fragments = [randomBytes(3000), randomBytes(2500)];
    const cids = fragments.map((b) => fragmentCid(b));
    const fragmentRoots = fragments.map((b) => buildFragmentTree(b).fragmentRoot);
    const root = `0x${maguRoot(fragmentRoots).toString("hex")}` as Hex;
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
      members.push({ key, address, slot, held, meta, store, index });
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
});
