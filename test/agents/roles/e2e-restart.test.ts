/**
 * End to end: a node restarted mid-run resumes from its cursor, answers the challenge issued while
 * it was down, and serves its fragments again.
 *
 * `hardhat node` with the devnet deployment (periods of 10 blocks), five node processes and a client
 * put into a blob Magu of all five (k=3, m=2). The test moves the chain itself (`hardhat_mine`, as
 * e2e-repair does; every transaction also mines a block): it enters a period only once the proofs it
 * waits for are on chain, so a slow machine makes the test slower, never wrong. Once every member
 * proved its first challenged period (read from the chain: `membership().joinPeriod`), one holder
 * is stopped right after proving a period, twice: with SIGTERM, then with SIGKILL. While it is down
 * the next period begins (its challenge is fixed, the four others prove it); then it is restarted on
 * the same directory and key. After each restart:
 * - its event followers resumed at the cursors its metadata database holds (read from the database
 *   while the process is down), after the put's events, not from the deployment block, and no old
 *   event was delivered again;
 * - it proves the period whose challenge was issued while it was down (before that period's
 *   deadline, which only the agents' own transactions can bring closer meanwhile) and the next one,
 *   with `ProofSubmitted` events after the old process exited and never a `ProofMissed`.
 * Finally every shard of its slot, and the manifest, are fetched from the address it registered
 * after the restart, verified by CID and fragment root.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Hex } from "viem";
import { after, before, describe, test } from "node:test";
import { decodeManifest } from "../../../agents/data/manifest.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { type PutResult, type StorageClient } from "../../../agents/roles/client/client.js";
import { ClientAccess } from "../../../agents/roles/client/access.js";
import { registeredPeer } from "../../../agents/roles/shared/peers.js";
import { signer } from "../chain/harness.js";
import { chainTime } from "../../../agents/chain/index.js";
import { Bucket, openMetaDb } from "../../../agents/store/meta-db.js";
import { MemoryFragmentStore } from "../p2p/fixtures.js";
import { firstChallengedPeriod, logLines, randomFile, startClient, startNetwork, tearDown, waitFor, waitProven, type Network } from "./e2e-helpers.js";

const NODES = 5;
const K = 3;
const M = 2;
/** Two stripes: each member holds two shards. */
const FILE_BYTES = 3 * 1024 * 1024;
const CLIENT_KEY = NODES + 1;
/**
 * Bound on one wait for a proof, ms. Only a failure takes this long: the chain does not move on its
 * own, so a slow prover cannot miss its deadline; a proof normally lands within about a second.
 */
const PROOF_WAIT_MS = 90_000;
/**
 * Blocks per period. The chain moves only by transactions here, but every transaction mines a block:
 * the four other members' proofs and the restarted node's start-up transactions ate 9 of the default
 * 10 blocks of the period it must answer after a restart on a loaded CI machine (ready at block 84,
 * deadline 85). Entering a period costs no time (`hardhat_mine`), so a long period is free.
 */
const PERIOD_BLOCKS = 40;
/** The id of the node agent's follower of MaguRegistry events (node-agent.ts). */
const MAGU_FOLLOWER = "node-agent";

/**
 * The event-follower cursors (last processed block, by follower id) in a stopped node's metadata
 * database: `Bucket.chainCursor` keys `c/<id>` -> block (8 bytes big-endian) + hash (chain/README.md).
 */
async function storedCursors(nodeDir: string): Promise<Map<string, bigint>> {
  const db = await openMetaDb(join(nodeDir, "meta"));
  try {
    const cursors = new Map<string, bigint>();
    for await (const [key, value] of db.bucket(Bucket.chainCursor).entries()) {
      const name = Buffer.from(key).toString("utf8");
      if (name.startsWith("c/")) cursors.set(name.slice(2), new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0));
    }
    return cursors;
  } finally {
    await db.close();
  }
}

describe("e2e: a node restarted mid-run resumes and keeps proving", { timeout: 900_000 }, () => {
  let net: Network;
  let client: StorageClient;
  let input: string;
  let stored: PutResult;
  let commitBlock: bigint;
  /** Index (in net.nodes) of the node that is restarted. */
  let vi: number;
  let fetcher: P2PNode | undefined;

  const period = () => net.read.maguRegistry.read.currentPeriod();
  /** Mines to the block after `p`'s start: its challenge is fixed and the provers answer it. */
  const enter = async (p: bigint) => net.mineTo((await net.read.maguRegistry.read.periodStart([p])) + 1n);
  const proven = (i: number, p: bigint) => waitProven(net, stored.maguId, net.nodes[i]!.address, p, PROOF_WAIT_MS, net.nodes[i]);

  before(async () => {
    const t0 = performance.now();
    // No interval mining: the test moves the chain (every transaction also mines a block).
    net = await startNetwork({ prefix: "muri-e2e-restart-", nodes: NODES, fund: [CLIENT_KEY], parameters: { periodBlocks: PERIOD_BLOCKS, epochBlocks: 4 * PERIOD_BLOCKS } });
    client = await startClient(net, CLIENT_KEY);
    ({ path: input } = await randomFile(net.dir, "input.bin", FILE_BYTES));
    console.log(`# setup (chain, deploy, ${NODES} nodes, client): ${Math.round(performance.now() - t0)} ms`);
  });

  after(async () => {
    await fetcher?.stop();
    await tearDown("restart-node", net?.nodes ?? [], client);
  });

  test("put into a Magu of the five nodes; every member proves its first challenged period", async () => {
    const t0 = performance.now();
    stored = await client.put(input, { k: K, m: M, members: NODES });
    const committed = await net.read.maguRegistry.getEvents.DataCommitted({ magu: stored.maguId }, { fromBlock: net.deployment.deployBlock });
    assert.equal(committed.length, 1);
    commitBlock = committed[0]!.blockNumber;
    // Every node's Magu follower has handled the commit (the put returns once it is mined; the
    // followers poll): the cursors checked below are past it only from then on.
    const seen = new Set<number>();
    await waitFor("every node's follower to handle the put's commit", 60_000, async () => {
      net.nodes.forEach((n, i) => {
        if (logLines(n.stderr(), "batch committed").length > 0) seen.add(i);
      });
      return seen.size === NODES || undefined;
    }, 100);
    vi = net.nodes.findIndex((n) => n.address.toLowerCase() === stored.members[0]!.toLowerCase());
    assert.ok(vi >= 0, "slot 0 is one of the five nodes");
    // From the chain, not from the period of the put: a batch is challenged from the period after
    // its commit (MaguRegistry, "Deliver, acknowledge, commit").
    const first = await firstChallengedPeriod(net.read, stored.maguId, stored.members);
    await enter(first);
    for (let i = 0; i < NODES; i++) await proven(i, first);
    console.log(`# put ${stored.shards} shards (commit block ${commitBlock}) and every member proved period ${first}: ${Math.round(performance.now() - t0)} ms`);
  });

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    test(`stopped with ${signal} right after a proof and restarted: resumes at its cursor and answers the challenge issued while it was down`, async () => {
      const t0 = performance.now();
      const old = net.nodes[vi]!;
      const member = old.address;
      const others = net.nodes.map((_, i) => i).filter((i) => i !== vi);
      // Stop it just after it proved the next period.
      const provedBefore = (await period()) + 1n;
      await enter(provedBefore);
      await proven(vi, provedBefore);
      await old.kill(signal);
      const exitBlock = await net.head();
      assert.ok(!old.alive());

      // The cursors it left behind (one per follower): the Magu follower's past the put's events; none beyond the chain.
      const cursors = await storedCursors(net.nodeDir(vi));
      const cursor = cursors.get(MAGU_FOLLOWER);
      assert.ok(cursor !== undefined && cursor >= commitBlock, `${MAGU_FOLLOWER} cursor ${cursor} at or after the put's commit (block ${commitBlock})`);
      for (const [id, c] of cursors) assert.ok(c > net.deployment.deployBlock && c <= exitBlock, `${id} cursor ${c} in (${net.deployment.deployBlock}, ${exitBlock}]`);
      if (signal === "SIGTERM") {
        const stopped = logLines(old.stderr(), "event follower stopped");
        assert.deepEqual(new Set(stopped.map((l) => l.id)), new Set(cursors.keys()), old.stderr());
        for (const l of stopped) assert.equal(l.cursor, String(cursors.get(l.id as string)), `the clean stop of ${l.id} saved the cursor it reported`);
      }

      // While it is down the next period begins: its challenge is fixed and the four others prove it.
      const whileDown = provedBefore + 1n;
      await enter(whileDown);
      for (const i of others) await proven(i, whileDown);
      assert.equal(await net.read.challengeManager.read.proofState([stored.maguId, member, whileDown]), 0, `period ${whileDown} still open for the stopped node`);

      const restarted = await net.startNode(vi);
      const upBlock = await net.head();
      console.log(`# ${signal}: down at block ${exitBlock}, ${MAGU_FOLLOWER} cursor ${cursor}, period ${whileDown} began at block ${await net.read.maguRegistry.read.periodStart([whileDown])}, ready again at block ${upBlock} (${Math.round(performance.now() - t0)} ms)`);
      assert.equal(restarted.address, member);
      assert.equal(restarted.peerId, old.peerId, "same libp2p identity");
      // Every follower resumed right after its stored cursor, not from the deployment block.
      const started = logLines(restarted.stderr(), "event follower started");
      assert.deepEqual(new Set(started.map((l) => l.id)), new Set(cursors.keys()), restarted.stderr());
      for (const l of started) assert.equal(l.resumeFrom, String(cursors.get(l.id as string)! + 1n), `${l.id} resumed after its stored cursor`);
      assert.deepEqual(logLines(restarted.stderr(), "joined magu"), [], "MaguFormed (before the cursor) was not delivered again");

      // The challenge issued while it was down, then the next period, like everyone else.
      await proven(vi, whileDown);
      await enter(whileDown + 1n);
      for (let i = 0; i < NODES; i++) await proven(i, whileDown + 1n);

      const submitted = await net.read.challengeManager.getEvents.ProofSubmitted({ magu: stored.maguId, member }, { fromBlock: exitBlock + 1n });
      for (const p of [whileDown, whileDown + 1n]) assert.ok(submitted.some((e) => e.args.period === p), `the proof of period ${p} was sent by the restarted process`);
      const missed = await net.read.challengeManager.getEvents.ProofMissed({ magu: stored.maguId }, { fromBlock: net.deployment.deployBlock });
      assert.deepEqual(missed, [], "no proof was ever missed");
      console.log(`# ${signal} round: proved periods ${whileDown} and ${whileDown + 1n} after the restart, ${Math.round(performance.now() - t0)} ms`);
    });
  }

  test("the restarted node serves the manifest and every shard of its slot from its newly registered address", async () => {
    const node = net.nodes[vi]!;
    const info = await net.read.nodeRegistry.read.nodeInfo([node.address]);
    assert.deepEqual([...info.multiaddrs], node.multiaddrs, "the registration carries the restarted node's addresses");
    const store = new MemoryFragmentStore();
    fetcher = await createP2PNode({ source: store, sink: store });
    await fetcher.start();
    // The Magu is private: the fetcher presents its owner's session grant first (client/access.ts).
    const owner = signer(net.chain.rpcUrl, net.deployment, net.chain.keys[CLIENT_KEY]! as Hex);
    const access = new ClientAccess(
      { deployment: net.deployment, account: owner.account.address, sign: (typed) => owner.walletClient.signTypedData({ account: owner.account, ...typed } as never) },
      { contracts: net.read, p2p: fetcher, chainNow: () => chainTime(net.publicClient) },
    );
    await access.ensure(await registeredPeer(net.read, fetcher, node.address), stored.maguId);
    const target = info.multiaddrs[0]!;
    const manifest = decodeManifest(await fetcher.fetchFragment(target, stored.manifestCid), stored.manifestCid);
    const slot = stored.members.findIndex((a) => a.toLowerCase() === node.address.toLowerCase());
    const held = fragmentsOfSlot(stored.maguId, stored.shards, NODES, slot, { k: K, m: M });
    assert.equal(held.length, stored.shards / NODES);
    for (const f of held) {
      // fetchFragment verifies the bytes against the CID; the root ties them to the committed Magu root.
      const bytes = await fetcher.fetchFragment(target, manifest.shards[f]!);
      assert.equal(fragmentRoot(bytes).toString("hex"), manifest.roots[f], `fragment ${f}`);
    }
  });
});
