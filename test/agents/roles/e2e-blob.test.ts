/**
 * End to end on a local chain: `hardhat node` + deployment, five storage node processes
 * (agents/roles/node/run-node.ts, each with its own directory, key and stake) and a client in the test
 * process. The client puts a 20 MiB random file into a blob Magu (k=3, m=2, five members), gets it
 * back byte for byte, then two holders are killed with SIGKILL and the file still comes back
 * identical (every stripe is rebuilt from the three shards left); one of them is restarted from its
 * directory (same identity, new port, registration updated) and, with only k nodes up, serves its
 * shards again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { type PutResult, type StorageClient } from "../../../agents/roles/client/client.js";
import { randomFile, sha256File, startClient, startNetwork, tearDown, type Network, type NodeProcess } from "./e2e-helpers.js";

const NODES = 5;
const FILE_BYTES = 20 * 1024 * 1024;
const K = 3;
const M = 2;

describe("e2e: blob put/get across five node processes", { timeout: 300_000 }, () => {
  let net: Network;
  let client: StorageClient;
  let nodes: NodeProcess[];
  let dir: string;
  let input: string;
  let inputHash: string;
  let stored: PutResult;
  let victims: NodeProcess[] = [];

  before(async () => {
    const t0 = performance.now();
    // Nodes are accounts 1..5, the client account 6.
    net = await startNetwork({ prefix: "muri-e2e-", nodes: NODES, fund: [NODES + 1] });
    ({ nodes, dir } = net);
    client = await startClient(net, NODES + 1);
    ({ path: input, sha256: inputHash } = await randomFile(dir, "input.bin", FILE_BYTES));
    console.log(`# setup (chain, deploy, ${NODES} nodes, client): ${Math.round(performance.now() - t0)} ms`);
  });

  // MURI_E2E_LOGS=<dir>: keep each node's last log lines there.
  after(() => tearDown("node", nodes ?? [], client));

  test("put stores the shards on the members placement names", async () => {
    const t0 = performance.now();
    stored = await client.put(input, { k: K, m: M, members: NODES });
    console.log(`# put 20 MiB: ${Math.round(performance.now() - t0)} ms, ${stored.shards} shards, magu ${stored.maguId}`);
    assert.equal(stored.fileSize, FILE_BYTES);
    assert.equal(stored.shards % (K + M), 0);
    const info = await net.read.maguRegistry.read.maguInfo([stored.maguId]);
    assert.equal(info.fragmentCount, stored.shards);
    assert.deepEqual(
      [...stored.members].map((a) => a.toLowerCase()).sort(),
      nodes.map((n) => n.address.toLowerCase()).sort(),
      "all five nodes are members",
    );
  });

  test("get returns the same bytes", async () => {
    const out = join(dir, "out-1.bin");
    const t0 = performance.now();
    const result = await client.get(stored, out);
    console.log(`# get (all up): ${Math.round(performance.now() - t0)} ms, fetched ${result.fetched}, failed ${result.failed}`);
    assert.equal(result.failed, 0);
    assert.equal(await sha256File(out), inputHash);
  });

  test("get still returns the same bytes after two holders are killed with SIGKILL", async () => {
    // Two members holding shards (with k+m = members every member holds one shard per stripe).
    victims = stored.members
      .map((address, slot) => ({ address, held: fragmentsOfSlot(stored.maguId, stored.shards, NODES, slot, { k: K, m: M }).length }))
      .filter((v) => v.held > 0)
      .slice(0, M)
      .map((v) => nodes.find((n) => n.address.toLowerCase() === v.address.toLowerCase())!);
    assert.equal(victims.length, M);
    for (const victim of victims) await victim.kill("SIGKILL");
    assert.ok(victims.every((v) => !v.alive()));

    const out = join(dir, "out-2.bin");
    const t0 = performance.now();
    const result = await client.get(stored, out);
    console.log(`# get (2 holders killed): ${Math.round(performance.now() - t0)} ms, fetched ${result.fetched}, failed ${result.failed}`);
    assert.equal(await sha256File(out), inputHash);
    const killed = new Set(victims.map((v) => v.address.toLowerCase()));
    assert.ok(result.unreachable.length > 0, "the killed holders were tried");
    assert.ok(result.unreachable.every((a) => killed.has(a.toLowerCase())), "only killed holders were skipped");
  });

  test("a holder restarted from its directory serves its shards again", async () => {
    const [restartee, stillDown] = victims;
    assert.ok(restartee !== undefined && stillDown !== undefined);
    const index = nodes.indexOf(restartee);
    const restarted = await net.startNode(index);
    assert.equal(restarted.address, restartee.address);
    assert.equal(restarted.peerId, restartee.peerId, "same libp2p identity after the restart");
    // Leave exactly k nodes up: the restarted one and two others. Every stripe then needs the
    // restarted node's shard, so the file only comes back if it serves what it stored before.
    const others = nodes.filter((n) => n.alive() && n !== restarted);
    assert.equal(others.length, 3);
    await others[0]!.kill("SIGKILL");
    const out = join(dir, "out-3.bin");
    const t0 = performance.now();
    const result = await client.get(stored, out);
    console.log(`# get (restarted node + 2 others up): ${Math.round(performance.now() - t0)} ms, fetched ${result.fetched}, failed ${result.failed}`);
    assert.equal(await sha256File(out), inputHash);
    assert.ok(!result.unreachable.some((a) => a.toLowerCase() === restarted.address.toLowerCase()), restarted.stderr());
  });
});
