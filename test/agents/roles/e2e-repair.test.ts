/**
 * End to end: a member that lost its fragments is evicted and its replacement rebuilds them.
 *
 * `hardhat node` + deployment, five storage node processes (the Magu members) and a client put of
 * a 6 MiB file (three stripes) (k=3, m=2). A sixth node (the spare) registers after the Magu formed. Then every
 * fragment file of member node-1 is deleted (it runs with MURI_NO_SELF_REPAIR=1 so it cannot heal
 * itself); the test drives periods by mining and marks node-1's unanswered challenges missed until
 * it is evicted (the four others keep proving), fills the vacancy (node-1, stopped, first sets its
 * capacity to 0 so the draw can only pick the spare), and checks that the spare receives the Magu
 * documents from the remaining members, rebuilds its slot's shards from them (erasure decoding),
 * proves its first challenge by its own prover. Then a healthy member (node-4, self-repair on)
 * loses its files too and heals itself when its prover trips over them, proving the same period.
 * Finally a get returns identical bytes, also with two old members down (every stripe then needs
 * both rebuilt shard sets: the spare's and node-4's).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Hex } from "viem";
import { getMuriContracts, type Deployment, type MuriContracts, type MuriPublicClient, type MuriWalletClient } from "../../../agents/chain/index.js";
import { type PutResult, type StorageClient } from "../../../agents/roles/client/client.js";
import { mineToVacancyWindow, signer, type HardhatChain } from "../chain/harness.js";
import { deleteFiles, firstChallengedPeriod, randomFile, sha256File, spawnNode, startClient, startNetwork, tearDown, waitFor, waitProven, type Network, type NodeProcess } from "./e2e-helpers.js";

const MEMBERS = 5;
const FILE_BYTES = 6 * 1024 * 1024;
const K = 3;
const M = 2;
/** Account indices: nodes 1..5, client 6, spare 7, marker (anyone settling challenges) 10. */
const CLIENT_KEY = 6;
const SPARE_KEY = 7;
const MARKER_KEY = 10;
/**
 * Bound on one wait for an agent, ms. Only a failure takes this long: the chain moves only when the
 * test mines (or an agent sends a transaction), so no deadline passes while an agent is slow; a
 * proof normally lands within a second, a repair within a few.
 */
const WAIT_MS = 120_000;

describe("e2e: an evicted member is replaced and its fragments rebuilt", { timeout: 900_000 }, () => {
  let net: Network;
  let chain: HardhatChain;
  let deployment: Deployment;
  let client: StorageClient;
  let dir: string;
  let deploymentFile: string;
  let input: string;
  let inputHash: string;
  let stored: PutResult;
  let marker: ReturnType<typeof signer>;
  let read: MuriContracts<MuriPublicClient>;
  let write: MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
  const nodes: NodeProcess[] = [];
  let spare: NodeProcess;
  let bad: NodeProcess;
  let badSlot: number;

  const mineTo = async (block: bigint): Promise<void> => {
    const head = await marker.publicClient.getBlockNumber({ cacheTime: 0 });
    if (head < block) await marker.publicClient.request({ method: "hardhat_mine" as never, params: [`0x${(block - head).toString(16)}`] as never });
  };
  const send = async (what: string, hash: Promise<Hex>): Promise<void> => {
    const receipt = await marker.publicClient.waitForTransactionReceipt({ hash: await hash, pollingInterval: 50, timeout: 30_000 });
    assert.equal(receipt.status, "success", `${what} reverted`);
  };
  const proven = (n: NodeProcess, period: bigint) => waitProven(net, stored.maguId, n.address, period, WAIT_MS, n);

  before(async () => {
    const t0 = performance.now();
    // node-1 cannot heal itself.
    net = await startNetwork({ prefix: "muri-e2e-repair-", nodes: MEMBERS, fund: [CLIENT_KEY, SPARE_KEY], nodeEnv: (i) => (i === 0 ? { MURI_NO_SELF_REPAIR: "1" } : undefined) });
    ({ chain, deployment, deploymentFile, dir } = net);
    nodes.push(...net.nodes);
    bad = nodes[0]!;
    marker = signer(chain.rpcUrl, deployment, chain.keys[MARKER_KEY]!);
    read = net.read;
    write = getMuriContracts(deployment.contracts, marker);
    client = await startClient(net, CLIENT_KEY);
    ({ path: input, sha256: inputHash } = await randomFile(dir, "input.bin", FILE_BYTES));
    console.log(`# setup (chain, deploy, ${MEMBERS} nodes, client): ${Math.round(performance.now() - t0)} ms`);
  });

  after(() => tearDown("repair-node", [...nodes, spare], client));

  test("put into a Magu of the five nodes; a spare registers afterwards", async () => {
    const t0 = performance.now();
    stored = await client.put(input, { k: K, m: M, members: MEMBERS });
    console.log(`# put 6 MiB: ${Math.round(performance.now() - t0)} ms, ${stored.shards} shards, magu ${stored.maguId}`);
    assert.deepEqual(
      [...stored.members].map((a) => a.toLowerCase()).sort(),
      nodes.map((n) => n.address.toLowerCase()).sort(),
    );
    badSlot = stored.members.findIndex((a) => a.toLowerCase() === bad.address.toLowerCase());
    assert.ok(badSlot >= 0);
    spare = await spawnNode({ deploymentFile, rpcUrl: chain.rpcUrl, key: chain.keys[SPARE_KEY]!, dir: join(dir, "spare") });
  });

  test("a member whose fragment files are deleted misses its challenges, is slashed and evicted", async () => {
    const t0 = performance.now();
    const deleted = await deleteFiles(join(dir, "node-1", "blocks"));
    assert.ok(deleted >= stored.shards / MEMBERS, `deleted ${deleted} files`);
    const honest = nodes.filter((n) => n !== bad);
    const stakeBefore = (await read.nodeRegistry.read.nodeInfo([bad.address])).stake;
    let misses = 0;
    // From the Magu's first challenged period (read from the chain: a commit in a later period than
    // formMagu is challenged from one period further), then the next period each round.
    let period = await firstChallengedPeriod(read, stored.maguId, stored.members);
    for (let round = 0; round < 8; round++, period++) {
      const membership = await read.maguRegistry.read.membership([stored.maguId, bad.address]);
      if (!membership.active) break;
      const current = await read.maguRegistry.read.currentPeriod();
      if (period <= current) period = current + 1n;
      await mineTo((await read.maguRegistry.read.periodStart([period])) + 1n);
      // The four others answer their challenge.
      for (const n of honest) await proven(n, period);
      await mineTo(await read.challengeManager.read.proofDeadline([period]));
      assert.equal(await read.challengeManager.read.proofState([stored.maguId, bad.address, period]), 0, "node-1 could not prove");
      await send("markMissed", write.challengeManager.write.markMissed([stored.maguId, bad.address, period]));
      misses++;
    }
    const info = await read.maguRegistry.read.maguInfo([stored.maguId]);
    assert.match(info.members[badSlot]!, /^0x0{40}$/i, "the slot is vacant");
    assert.equal((await read.maguRegistry.read.membership([stored.maguId, bad.address])).active, false);
    assert.equal(misses, 3);
    assert.ok((await read.nodeRegistry.read.nodeInfo([bad.address])).stake < stakeBefore, "slashed");
    assert.match(bad.stderr(), /self-repair disabled/);
    console.log(`# eviction after ${misses} missed periods: ${Math.round(performance.now() - t0)} ms`);
  });

  test("the spare is drafted, rebuilds the slot's fragments and passes its next challenge", async () => {
    const t0 = performance.now();
    // The evicted node stops and takes itself out of the draw, so the spare is the only candidate.
    await bad.kill("SIGTERM");
    const badClients = signer(chain.rpcUrl, deployment, chain.keys[1]!);
    const badInfo = await read.nodeRegistry.read.nodeInfo([bad.address]);
    const hash = getMuriContracts(deployment.contracts, badClients).nodeRegistry.write.updateNode([0n, badInfo.peerId, [...badInfo.multiaddrs]]);
    await send("updateNode", hash);

    for (let attempt = 0; attempt < 5; attempt++) {
      await mineToVacancyWindow(read, stored.maguId, badSlot, (b) => mineTo(b));
      await send("fillVacancy", write.maguRegistry.write.fillVacancy([stored.maguId, badSlot]));
      const info = await read.maguRegistry.read.maguInfo([stored.maguId]);
      if (!/^0x0{40}$/i.test(info.members[badSlot]!)) break;
    }
    const info = await read.maguRegistry.read.maguInfo([stored.maguId]);
    assert.equal(info.members[badSlot]!.toLowerCase(), spare.address.toLowerCase(), "the spare took the slot");
    const membership = await read.maguRegistry.read.membership([stored.maguId, spare.address]);
    assert.ok(membership.active);

    await waitFor("the spare's repair", WAIT_MS, async () => /"msg":"repair complete"/.test(spare.stderr()), 500);
    const repairLine = spare.stderr().split("\n").find((l) => l.includes('"msg":"repair complete"'))!;
    const report = JSON.parse(repairLine) as { repaired: number; assigned: number };
    assert.ok(report.repaired > 0 && report.repaired === report.assigned, repairLine);
    console.log(`# drafted and repaired ${report.repaired} fragments: ${Math.round(performance.now() - t0)} ms`);

    const period = membership.joinPeriod;
    await mineTo((await read.maguRegistry.read.periodStart([period])) + 1n);
    await proven(spare, period);
    for (const n of nodes.slice(1)) await proven(n, period);
    // The prover logs the proof once it has the receipt (it polls for it every second): after the chain shows it.
    await waitFor("the spare logging its proof", WAIT_MS, async () => /"msg":"proof submitted"/.test(spare.stderr()), 200);
    console.log(`# spare proved period ${period}: ${Math.round(performance.now() - t0)} ms`);
  });

  test("a member that loses its files while self-repair is on heals itself and keeps proving", async () => {
    const t0 = performance.now();
    const healer = nodes[3]!;
    // Raw shards only (DAG-JSON documents start "bagu"): the node keeps its manifest.
    const deleted = await deleteFiles(join(dir, "node-4", "blocks"), (name) => !name.startsWith("bagu"));
    assert.ok(deleted > 0);
    const period = (await read.maguRegistry.read.currentPeriod()) + 1n;
    await mineTo((await read.maguRegistry.read.periodStart([period])) + 1n);
    await proven(healer, period);
    // Logged before the proof was sent; the line still has to cross the agent's stderr pipe.
    const line = await waitFor("the healer's repair report", WAIT_MS, async () => healer.stderr().split("\n").find((l) => l.includes('"msg":"repair complete"')), 200);
    assert.match(healer.stderr(), /"msg":"rebuilding a lost fragment \(self-repair\)"/);
    const report = JSON.parse(line) as { repaired: number; assigned: number };
    assert.equal(report.repaired, deleted, line);
    console.log(`# self-repair of ${report.repaired} fragments and proof of period ${period}: ${Math.round(performance.now() - t0)} ms`);
  });

  test("a get still returns identical bytes, also when it needs the rebuilt shards", async () => {
    const out1 = join(dir, "out-1.bin");
    const r1 = await client.get(stored, out1);
    assert.equal(await sha256File(out1), inputHash);
    // Down to k holders: the spare and two old members; every stripe needs the spare's shard.
    for (const n of nodes.slice(1, 3)) await n.kill("SIGKILL");
    const out2 = join(dir, "out-2.bin");
    const r2 = await client.get(stored, out2);
    assert.equal(await sha256File(out2), inputHash);
    assert.ok(!r2.unreachable.some((a) => a.toLowerCase() === spare.address.toLowerCase()), spare.stderr());
    console.log(`# get: all up fetched ${r1.fetched}; with 2 down fetched ${r2.fetched}, failed ${r2.failed}`);
  });
});
