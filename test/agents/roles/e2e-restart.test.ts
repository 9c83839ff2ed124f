/**
 * End to end: a node restarted mid-run resumes from its cursor, misses no challenge it could still
 * answer, and serves its fragments again.
 *
 * Devnet-like: `hardhat node` with interval mining (a block a second, automine on, as `muri
 * devnet`), the devnet deployment (periods of 10 blocks), five node processes and a client put
 * into a blob Magu of all five (k=3, m=2). Once every member proved a period, one holder is stopped
 * right after proving, twice: with SIGTERM, then with SIGKILL; each time it is restarted at once on
 * the same directory and key. After each restart:
 * - its event followers resumed at the cursors its metadata database holds (read from the database
 *   while the process is down), after the put's events, not from the deployment block, and no old
 *   event was delivered again;
 * - every period whose deadline left its prover time to answer after the restart (computed from
 *   block numbers: ready block, period starts and deadlines) has a proof from the new process
 *   (`proofState` proven, a `ProofSubmitted` event after the old process exited, no `ProofMissed`);
 *   periods whose window closed while it was down may stay open.
 * Finally every shard of its slot, and the manifest, are fetched from the address it registered
 * after the restart, verified by CID and fragment root.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Address } from "viem";
import { DEVNET_DEFAULTS } from "../../../agents/cli/devnet/devnet.js";
import { decodeManifest } from "../../../agents/data/manifest.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { type PutResult, type StorageClient } from "../../../agents/roles/client.js";
import { DEFAULT_PROVER_POLL_MS } from "../../../agents/roles/node-agent.js";
import { Bucket, openMetaDb } from "../../../agents/store/meta-db.js";
import { MemoryFragmentStore } from "../p2p/fixtures.js";
import { logLines, randomFile, startClient, startNetwork, tearDown, waitFor, type Network } from "./e2e-helpers.js";

const NODES = 5;
const K = 3;
const M = 2;
/** Two stripes: each member holds two shards. */
const FILE_BYTES = 3 * 1024 * 1024;
const CLIENT_KEY = NODES + 1;
const BLOCK_MS = DEVNET_DEFAULTS.blockMs;
const PROVEN = 1;
/**
 * Blocks a restarted prover needs before a deadline to be held to it: a pass every
 * DEFAULT_PROVER_POLL_MS (at one block per BLOCK_MS), the block its transaction lands in, and two
 * of margin for the other members' proof transactions, which automine adds between interval blocks.
 */
const ANSWER_BLOCKS = BigInt(Math.ceil(DEFAULT_PROVER_POLL_MS / BLOCK_MS)) + 3n;
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

describe("e2e: a node restarted mid-run resumes and keeps proving", { timeout: 240_000 }, () => {
  let net: Network;
  let client: StorageClient;
  let input: string;
  let stored: PutResult;
  let commitBlock: bigint;
  /** Index (in net.nodes) of the node that is restarted. */
  let vi: number;
  let fetcher: P2PNode | undefined;

  const period = () => net.read.maguRegistry.read.currentPeriod();
  const proofState = (member: Address, p: bigint) => net.read.challengeManager.read.proofState([stored.maguId, member, p]);
  const proved = (member: Address, p: bigint) => async () => (await proofState(member, p)) === PROVEN;

  before(async () => {
    const t0 = performance.now();
    net = await startNetwork({ prefix: "muri-e2e-restart-", nodes: NODES, fund: [CLIENT_KEY], blockMs: BLOCK_MS });
    client = await startClient(net, CLIENT_KEY);
    ({ path: input } = await randomFile(net.dir, "input.bin", FILE_BYTES));
    console.log(`# setup (chain with ${BLOCK_MS} ms blocks, deploy, ${NODES} nodes, client): ${Math.round(performance.now() - t0)} ms`);
  });

  after(async () => {
    await fetcher?.stop();
    await tearDown("restart-node", net?.nodes ?? [], client);
  });

  test("put into a Magu of the five nodes; every member proves a full period", async () => {
    const t0 = performance.now();
    stored = await client.put(input, { k: K, m: M, members: NODES });
    const committed = await net.read.maguRegistry.getEvents.DataCommitted({ magu: stored.maguId }, { fromBlock: net.deployment.deployBlock });
    assert.equal(committed.length, 1);
    commitBlock = committed[0]!.blockNumber;
    vi = net.nodes.findIndex((n) => n.address.toLowerCase() === stored.members[0]!.toLowerCase());
    assert.ok(vi >= 0, "slot 0 is one of the five nodes");
    const p = (await period()) + 1n;
    for (const n of net.nodes) await waitFor(`${n.address} proving period ${p}`, 60_000, proved(n.address, p), 500);
    console.log(`# put ${stored.shards} shards and every member proved period ${p}: ${Math.round(performance.now() - t0)} ms`);
  });

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    test(`stopped with ${signal} right after a proof and restarted: resumes at its cursor and answers every answerable period`, async () => {
      const t0 = performance.now();
      const old = net.nodes[vi]!;
      const member = old.address;
      // Stop it just after it proved the next period, so its downtime runs into the period after.
      const provedBefore = (await period()) + 1n;
      await waitFor(`the node proving period ${provedBefore}`, 60_000, proved(member, provedBefore), 200);
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

      const restarted = await net.startNode(vi);
      const upBlock = await net.head();
      console.log(`# ${signal}: down at block ${exitBlock}, ${MAGU_FOLLOWER} cursor ${cursor}, ready again at block ${upBlock} (${Math.round(performance.now() - t0)} ms)`);
      assert.equal(restarted.address, member);
      assert.equal(restarted.peerId, old.peerId, "same libp2p identity");
      // Every follower resumed right after its stored cursor, not from the deployment block.
      const started = logLines(restarted.stderr(), "event follower started");
      assert.deepEqual(new Set(started.map((l) => l.id)), new Set(cursors.keys()), restarted.stderr());
      for (const l of started) assert.equal(l.resumeFrom, String(cursors.get(l.id as string)! + 1n), `${l.id} resumed after its stored cursor`);
      assert.deepEqual(logLines(restarted.stderr(), "joined magu"), [], "MaguFormed (before the cursor) was not delivered again");

      // Wait for the deadline of the first period that starts after the restart: all of it was answerable.
      const last = (await period()) + 1n;
      const lastDeadline = await net.read.challengeManager.read.proofDeadline([last]);
      await waitFor(`block ${lastDeadline}`, 90_000, async () => (await net.head()) >= lastDeadline, 500);

      const submitted = await net.read.challengeManager.getEvents.ProofSubmitted({ magu: stored.maguId, member }, { fromBlock: exitBlock });
      const missed = await net.read.challengeManager.getEvents.ProofMissed({ magu: stored.maguId, member }, { fromBlock: net.deployment.deployBlock });
      const report: string[] = [];
      let answerable = 0;
      for (let p = provedBefore + 1n; p <= last; p++) {
        const start = await net.read.maguRegistry.read.periodStart([p]);
        const deadline = await net.read.challengeManager.read.proofDeadline([p]);
        const from = upBlock > start + 1n ? upBlock : start + 1n;
        const state = await proofState(member, p);
        if (from + ANSWER_BLOCKS < deadline) {
          answerable++;
          report.push(`${p}: answerable (blocks ${start + 1n}..${deadline - 1n}, up at ${upBlock}) -> ${state === PROVEN ? "proven" : `state ${state}`}`);
          assert.equal(state, PROVEN, `period ${p} was answerable after the restart at block ${upBlock} (deadline ${deadline}) but not proven:\n${restarted.stderr()}`);
          assert.ok(submitted.some((e) => e.args.period === p), `the proof of period ${p} was sent by the restarted process`);
          assert.ok(!missed.some((e) => e.args.period === p), `period ${p} marked missed`);
        } else {
          report.push(`${p}: not required, ${deadline > from ? deadline - from : 0n} blocks left after the restart (blocks ${start + 1n}..${deadline - 1n}, up at ${upBlock}) -> state ${state}`);
        }
      }
      console.log(`# ${signal}: periods after the stop\n${report.map((l) => `#   ${l}`).join("\n")}`);
      assert.ok(answerable >= 1, "at least the first full period after the restart was checked");
      console.log(`# ${signal} round: ${Math.round(performance.now() - t0)} ms`);
    });
  }

  test("the restarted node serves the manifest and every shard of its slot from its newly registered address", async () => {
    const node = net.nodes[vi]!;
    const info = await net.read.nodeRegistry.read.nodeInfo([node.address]);
    assert.deepEqual([...info.multiaddrs], node.multiaddrs, "the registration carries the restarted node's addresses");
    const store = new MemoryFragmentStore();
    fetcher = await createP2PNode({ source: store, sink: store });
    await fetcher.start();
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
