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
import { createProver, type MissingReason, type Prover } from "../../../agents/roles/node/prover.js";
import { createAndFormMagu, E18, cleanup, deployLocal, freePort, recordingLogger, registerNode, signer, startHardhatNode, tempDir, type HardhatChain } from "../chain/harness.js";
import { commitRootWithAcks } from "./commit-helpers.js";

after(cleanup);

const K = 3;
const M = 2;
const MEMBERS = 5;
const FRAGMENTS = 10;
/** Bound on a wait for the provers (a failure only: the chain moves only when the test mines or a prover sends). */
const WAIT_MS = 60_000;

interface Node {
  address: Address;
  slot: number;
  dir: string;
  meta: MetaDb;
  store: FragmentStore;
  index: MaguIndex;
  prover: Prover;
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
    chain = await startHardhatNode(await freePort());
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
      const node = { address, slot, dir, meta, store, index, held, missing: [] } as unknown as Node;
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
          logger: process.env.MURI_TEST_LOG ? consoleLogger(`node${i}`) : recordingLogger(),
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
      assert.equal(victim.missing.filter((m) => m.fragment === lost).length, 1, "reported once per period");
      assert.equal(await victim.store.has(cids[lost]!), false, "the corrupt file was quarantined");
    }
    assert.ok(named, "some challenge named the lost fragment");
  });
});

function consoleLogger(name: string) {
  const out = (level: string) => (msg: string, ctx?: Record<string, unknown>) =>
    console.error(name, level, msg, JSON.stringify(ctx, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
  return { debug: out("debug"), info: out("info"), warn: out("warn"), error: out("error") };
}
