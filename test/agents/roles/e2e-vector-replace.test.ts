/**
 * A vector Magu's replacement rebuilds its replicas (docs/ARCHITECTURE.md, "Deliver, acknowledge,
 * commit"): four node processes, a vector Magu of three members with r = 2, vectors added in two
 * batches. A member leaves and is killed; the spare node is drafted into its slot, fetches the Magu's
 * index document by the CID of the last commit, then each replica of its slot by CID from the other
 * holder, indexes them and proves once its grace ends. Exact searches equal brute force before,
 * while the slot is empty, and after. The chain moves only when the test mines.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getAddress, type Address, type Hex } from "viem";
import { getMuriContracts } from "../../../agents/chain/index.js";
import { writeNpy } from "../../../agents/data/vector-files.js";
import { canonicalDistance, compareHits, type HitEntry } from "../../../agents/data/vectors.js";
import { createVectorClient, type VectorClient } from "../../../agents/roles/client/vector-client.js";
import { mineToVacancyWindow, signer } from "../chain/harness.js";
import { muri } from "../cli/run-muri.js";
import { gaussianMixture, quantizeRows } from "../index/fixtures.js";
import { logLines, tearDown, startNetwork, waitFor, waitProven, type Network } from "./e2e-helpers.js";

const NODES = 4;
const CLIENT = NODES + 1;
const DIM = 16;
const COUNT = 3_000;
const K = 10;

describe("e2e: a vector Magu's replacement fetches its replicas and proves", { timeout: 600_000 }, () => {
  let net: Network;
  let client: VectorClient;
  let maguId: bigint;
  let queries: Float32Array;
  let truth: HitEntry[][];

  const search = async (what: string): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      const r = await client.search(maguId, queries.subarray(i * DIM, (i + 1) * DIM), K, { exact: true });
      assert.equal(r.uncovered.length, 0, `${what}: every fragment covered`);
      assert.deepEqual(
        r.hits.map((h) => [h.id, h.distance]),
        truth[i]!.map((h) => [h.id, h.distance]),
        `${what}: query ${i} equals brute force`,
      );
    }
  };

  before(async () => {
    net = await startNetwork({ prefix: "muri-e2e-vreplace-", nodes: NODES, fund: [CLIENT] });
    client = createVectorClient({ dir: join(net.dir, "client"), deployment: net.deployment, rpcUrl: net.chain.rpcUrl, privateKey: net.chain.keys[CLIENT]! as Hex });
    await client.start();
    const data = gaussianMixture({ count: COUNT, dim: DIM, seed: 7 });
    await writeNpy(join(net.dir, "vectors.npy"), data, DIM);
    const rows = quantizeRows(data, DIM);
    queries = gaussianMixture({ count: 5, dim: DIM, seed: 7 }, 2);
    truth = quantizeRows(queries, DIM).map((q) =>
      rows
        .map((v, id) => ({ id: BigInt(id), distance: canonicalDistance("l2", q, v), fragment: 0, position: 0 }))
        .sort(compareHits)
        .slice(0, K),
    );
  });

  after(async () => {
    await client?.stop();
    await tearDown("vreplace-node", net?.nodes ?? []);
  });

  test("vectors added in two batches to three of the four nodes", async () => {
    const chainArgs = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[CLIENT]!];
    const created = await muri(["magu", "create", "--kind", "vector", "--dim", String(DIM), "--metric", "l2", "--replication", "2", "--members", "3", "--fragments", "64", "--periods", "1000", "--price", "0.000001", "--json", ...chainArgs]);
    assert.equal(created.code, 0, created.stderr);
    maguId = BigInt((JSON.parse(created.stdout) as { id: string }).id);
    // 8 KiB fragments: ~15 of them, so two batches of at most 8.
    const added = await client.add(maguId, join(net.dir, "vectors.npy"), { fragmentSize: 8192 });
    assert.ok(added.fragments > 8, `two batches (${added.fragments} fragments)`);
    assert.deepEqual(added.missing, [], "every member took both batches");
    await waitFor("every fragment indexed on its holders", 120_000, async () => {
      const r = await client.search(maguId, queries.subarray(0, DIM), K, { exact: true });
      return r.uncovered.length === 0 && r.failed === 0 ? r : undefined;
    }, 500);
    await search("before");
  });

  test("a member leaves; the spare node takes its slot, fetches its replicas and proves after its grace", async () => {
    const info = await net.read.maguRegistry.read.maguInfo([maguId]);
    const members = info.members.map((a) => getAddress(a));
    const spareIndex = net.nodes.findIndex((n) => !members.includes(getAddress(n.address)));
    assert.ok(spareIndex >= 0, "one node is not a member");
    const spare = net.nodes[spareIndex]!;
    const leaverIndex = net.nodes.findIndex((n) => getAddress(n.address) === members[0]);
    const leaver = net.nodes[leaverIndex]!;
    const leaverKey = net.nodeKey(leaverIndex);
    const k = getMuriContracts(net.deployment.contracts, signer(net.chain.rpcUrl, net.deployment, leaverKey));
    const wait = async (hash: Hex) => assert.equal((await net.publicClient.waitForTransactionReceipt({ hash })).status, "success");
    await wait(await k.maguRegistry.write.leave([maguId]));
    await leaver.kill("SIGTERM");
    await search("with the slot empty (the other replica answers)");

    await mineToVacancyWindow(net.read, maguId, 0, (b) => net.mineTo(b));
    const filler = getMuriContracts(net.deployment.contracts, signer(net.chain.rpcUrl, net.deployment, net.chain.keys[0]!));
    await wait(await filler.maguRegistry.write.fillVacancy([maguId, 0]));
    const after = (await net.read.maguRegistry.read.maguInfo([maguId])).members.map((a) => getAddress(a));
    assert.equal(after[0], getAddress(spare.address), "the spare node took slot 0");

    let fetched: Record<string, unknown> | undefined;
    await waitFor("the replacement to fetch every replica of its slot", 120_000, async () => {
      fetched ??= logLines(spare.stderr(), "vector replicas fetched").find((l) => l.magu === maguId.toString());
      return fetched;
    }, 200);
    assert.equal(fetched!.missing, 0, `nothing missing: ${JSON.stringify(fetched)}`);
    assert.ok(Number(fetched!.held) > 0, "it holds replicas");

    const join = (await net.read.maguRegistry.read.membership([maguId, spare.address])).joinPeriod;
    const now = await net.read.maguRegistry.read.currentPeriod();
    assert.ok(join > now, "challenged only after its grace");
    await net.mineTo((await net.read.maguRegistry.read.periodStart([join])) + 1n);
    await waitProven(net, maguId, spare.address as Address, join, 120_000, spare);
    await search("after the replacement");
  });
});
