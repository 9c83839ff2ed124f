/**
 * Payloads and deletions on a vector Magu (docs/SEARCH.md, "Payloads" and "Deleting vectors"):
 * three node processes, a Magu of three members with r = 2, 8-dimensional vectors.
 * - Payloads round trip: a .jsonl batch with a JSON payload on some lines and an .npy batch with a
 *   `--payloads` file go in through `muri vectors add`; every hit of a verified search (the API and
 *   `muri search --json`) carries exactly the payload its vector was added with, or null.
 * - Deletion: `muri vectors delete` commits a tombstone batch; no honest member returns a deleted
 *   id (exact and HNSW searches for the deleted vectors themselves), and a later add may not reuse one.
 * - A member that ignores the tombstones (`MURI_TEST_FAULT=ignore-deletions`) is believed without
 *   verification and, verified, rejected by the client, its fragments asked of the other holders;
 *   in an on-chain task it reveals the deleted id and the validator disputes it with the tombstone
 *   (`SearchMarket.disputeDeleted`): it is slashed and the answer holds no deleted id.
 * Blocks come every second (automine off, short task windows, as in e2e-vector.test.ts).
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Address, Hex } from "viem";
import { searchMarketAbi } from "../../../agents/chain/index.js";
import { writeNpy } from "../../../agents/data/vector-files.js";
import { holdersVector } from "../../../agents/data/placement.js";
import { coverPlan, createVectorClient, type VectorClient, type VectorHit } from "../../../agents/roles/client/vector-client.js";
import { muri } from "../cli/run-muri.js";
import { gaussianMixture } from "../index/fixtures.js";
import { disputedSearch, startNetwork, tearDown, waitFor, type Network, type ValidatorProcess } from "./e2e-helpers.js";

const NODES = 3;
const CLIENT = NODES + 1;
const VALIDATOR = NODES + 2;
/** Short search-task windows: a task takes commit + reveal + dispute blocks, ~50 s at a block a second. */
const WINDOWS = { commitBlocks: 16, revealBlocks: 16, disputeBlocks: 16, periodBlocks: 30, graceBlocks: 30, settleDelayBlocks: 60 };
/** Falsehood.Deleted in ISearchMarket. */
const FALSEHOOD_DELETED = 5;
const DIM = 8;
const COUNT = 150;
const EXTRA = 20;
const K = 5;

describe("e2e: payloads and deletions on a vector Magu", { timeout: 600_000 }, () => {
  let net: Network;
  let validator: ValidatorProcess;
  let client: VectorClient;
  let maguId: bigint;
  let chainArgs: string[];
  let cliEnv: string[];
  let data: Float32Array;
  /** Payload by id (undefined: the vector has none). */
  const payloads = new Map<bigint, Record<string, unknown>>();
  /** Ids deleted (chosen in the deletion test: two on the fragments of the member asked first). */
  const deleted: bigint[] = [];
  let liarAddress: Address;
  const vec = (row: number): number[] => Array.from(data.subarray(row * DIM, (row + 1) * DIM));

  const checkPayloads = (hits: readonly VectorHit[], what: string): void => {
    for (const h of hits) assert.deepEqual(h.payload, payloads.get(h.id) ?? null, `${what}: id ${h.id}'s payload`);
  };

  before(async () => {
    net = await startNetwork({ prefix: "muri-e2e-vpayload-", nodes: NODES, fund: [CLIENT, VALIDATOR], blockMs: 1000, automine: false, parameters: WINDOWS });
    validator = await net.startValidator(VALIDATOR, ["--audit-ms", "0"]);
    chainArgs = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[CLIENT]!];
    cliEnv = [...chainArgs, "--client-dir", join(net.dir, "client")];
    client = createVectorClient({ dir: join(net.dir, "client"), deployment: net.deployment, rpcUrl: net.chain.rpcUrl, privateKey: net.chain.keys[CLIENT]! as Hex });
    await client.start();
    data = gaussianMixture({ count: COUNT + EXTRA, dim: DIM, seed: 11 });
  });

  after(async () => {
    await client?.stop();
    await tearDown("vpayload-node", [...(net?.nodes ?? []), validator]);
  });

  test("payloads round trip: added with the vectors, returned proven with each hit", async () => {
    const created = await muri(["magu", "create", "--kind", "vector", "--dim", String(DIM), "--metric", "l2", "--replication", "2", "--members", "3", "--fragments", "64", "--periods", "1000", "--price", "0.000001", "--json", ...chainArgs]);
    assert.equal(created.code, 0, created.stderr);
    maguId = BigInt((JSON.parse(created.stdout) as { id: string }).id);
    // Every third vector has a payload, some long enough to span several chunk records and leaves.
    const lines: string[] = [];
    for (let row = 0; row < COUNT; row++) {
      const payload = row % 3 === 0 ? { doc: `doc-${row}`, row, tags: ["a", String(row % 7)], text: "é".repeat(row * 3) } : undefined;
      if (payload !== undefined) payloads.set(BigInt(row), payload);
      lines.push(JSON.stringify({ id: row, vector: vec(row), ...(payload !== undefined ? { payload } : {}) }));
    }
    const jsonl = join(net.dir, "vectors.jsonl");
    await writeFile(jsonl, lines.join("\n") + "\n");
    const added = await muri(["vectors", "add", "--magu", String(maguId), jsonl, "--fragment-size", "2048", "--json", ...cliEnv], {}, 180_000);
    assert.equal(added.code, 0, added.stderr);
    // A second batch from .npy, its payloads from a --payloads file (line i for row i); ids continue.
    const npy = join(net.dir, "more.npy");
    await writeNpy(npy, data.subarray(COUNT * DIM), DIM);
    const side = join(net.dir, "more-payloads.jsonl");
    await writeFile(side, Array.from({ length: EXTRA }, (_, i) => (i % 2 === 0 ? JSON.stringify({ extra: i }) : "null")).join("\n") + "\n");
    const more = await muri(["vectors", "add", "--magu", String(maguId), npy, "--payloads", side, "--fragment-size", "2048", "--json", ...cliEnv], {}, 180_000);
    assert.equal(more.code, 0, more.stderr);
    const firstRow = BigInt((JSON.parse(more.stdout) as { firstRow: number }).firstRow);
    for (let i = 0; i < EXTRA; i += 2) payloads.set(firstRow + BigInt(i), { extra: i });
    // A payload file that does not match the vectors is refused before anything is sent.
    await writeFile(side, '{"a":1}\n');
    const refused = await muri(["vectors", "add", "--magu", String(maguId), npy, "--payloads", side, ...cliEnv]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /1 payloads for 20 vectors/);

    const all = await waitFor("every fragment indexed on its holders", 120_000, async () => {
      const r = await client.search(maguId, vec(0), COUNT + EXTRA, { exact: true });
      return r.uncovered.length === 0 && r.failed === 0 && r.hits.length === COUNT + EXTRA ? r : undefined;
    }, 500);
    assert.equal(all.verified, true);
    checkPayloads(all.hits, "every vector");
    assert.equal(all.hits.filter((h) => h.payload !== null).length, payloads.size, "each payload came back once");
    // The CLI prints them too, text and --json.
    const run = await muri(["search", "--magu", String(maguId), "--vector", JSON.stringify(vec(9)), "-k", String(K), "--exact", "--json", ...cliEnv]);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { results: Array<{ id: string; payload: unknown }>; rejected: unknown[] };
    assert.equal(out.results[0]!.id, "9");
    assert.deepEqual(out.results[0]!.payload, payloads.get(9n));
    for (const r of out.results) assert.deepEqual(r.payload, payloads.get(BigInt(r.id)) ?? null);
    const text = await muri(["search", "--magu", String(maguId), "--vector", JSON.stringify(vec(9)), "-k", "1", "--exact", ...cliEnv]);
    assert.match(text.stdout, /id 9 {2}distance \S+ {2}\{"doc":"doc-9","row":9,/);
    // Without verification no proof is fetched, so no payload either.
    const fast = await client.search(maguId, vec(9), K, { verify: false });
    assert.equal(fast.hits[0]!.payload, undefined);
  });

  test("deleted vectors are never returned by honest members, and their ids are retired", async () => {
    const info = await net.read.maguRegistry.read.maguInfo([maguId]);
    const holders = Array.from({ length: info.fragmentCount }, (_, f) => holdersVector(maguId, f, info.members.length, info.params.replication).map((s) => info.members[s]!));
    // The member the client asks first (the liar of the next test): its answer is the one used.
    liarAddress = coverPlan(holders, new Set(holders.keys()), new Set())[0]!;
    const where = await client.search(maguId, vec(0), COUNT, { exact: true });
    const onLiar = (h: VectorHit): boolean => holders[h.fragment]!.includes(liarAddress);
    const pick = (want: (h: VectorHit) => boolean): bigint => where.hits.find((h) => h.id < BigInt(COUNT) && want(h) && !deleted.includes(h.id))!.id;
    deleted.push(pick((h) => onLiar(h) && payloads.has(h.id)));
    deleted.push(pick(onLiar));
    deleted.push(pick((h) => !onLiar(h)));
    const run = await muri(["vectors", "delete", "--magu", String(maguId), "--ids", deleted.join(","), "--json", ...cliEnv], {}, 120_000);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { deleted: number; fragments: number };
    assert.deepEqual([out.deleted, out.fragments], [3, 1]);
    // Again: nothing new to commit.
    const again = await muri(["vectors", "delete", "--magu", String(maguId), "--ids", String(deleted[1]), ...cliEnv], {}, 60_000);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to delete/);
    for (const id of deleted) {
      for (const exact of [true, false]) {
        const r = await waitFor(`a search for deleted vector ${id} covers every fragment`, 60_000, async () => {
          const s = await client.search(maguId, vec(Number(id)), K, exact ? { exact: true } : {});
          return s.uncovered.length === 0 && s.failed === 0 ? s : undefined;
        }, 500);
        assert.deepEqual(r.rejected, []);
        assert.equal(r.hits.length, K);
        assert.ok(!r.hits.some((h) => deleted.includes(h.id)), `${exact ? "exact" : "HNSW"}: no deleted id for vector ${id}: ${r.hits.map((h) => h.id).join(",")}`);
        checkPayloads(r.hits, "after the deletion");
      }
    }
    const reuse = join(net.dir, "reuse.jsonl");
    await writeFile(reuse, JSON.stringify({ id: Number(deleted[0]), vector: vec(1) }) + "\n");
    const refused = await muri(["vectors", "add", "--magu", String(maguId), reuse, ...cliEnv]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`id ${deleted[0]} was deleted from Magu \\d+, and a deleted id is retired`));
  });

  test("a member that ignores deletions: believed unverified, rejected verified, disputed and slashed on chain", async () => {
    const liarIndex = net.nodes.findIndex((n) => n.address.toLowerCase() === liarAddress.toLowerCase());
    assert.ok(liarIndex >= 0);
    await net.nodes[liarIndex]!.kill("SIGTERM");
    await net.startNode(liarIndex, { MURI_TEST_FAULT: "ignore-deletions" });
    try {
      const held = async (id: bigint): Promise<boolean> => {
        const r = await client.search(maguId, vec(Number(id)), 1, { exact: true, verify: false });
        return r.hits[0]?.id === id;
      };
      // The attack: unchecked, the deleted vector is the best hit for itself again.
      const target = deleted[0]!;
      await waitFor("the restarted liar answers with a deleted id", 60_000, () => held(target).catch(() => false), 500);
      const checked = await client.search(maguId, vec(Number(target!)), K, { exact: true });
      assert.equal(checked.rejected.length, 1, JSON.stringify(checked.rejected));
      assert.equal(checked.rejected[0]!.member.toLowerCase(), liarAddress.toLowerCase());
      assert.match(checked.rejected[0]!.reason, new RegExp(`returned id ${target}, which the Magu's owner deleted`));
      assert.deepEqual(checked.uncovered, [], "the liar's fragments were asked of their other holders");
      assert.ok(!checked.hits.some((h) => deleted.includes(h.id)), "no deleted id in the verified answer");
      assert.equal(checked.hits.length, K);

      // On chain: the liar reveals the deleted vector as its best entry (a true distance, a true
      // proof); the validator proves it deleted with the tombstone under the task's root.
      const stakeBefore = (await net.read.nodeRegistry.read.nodeInfo([liarAddress])).stake;
      // Every member commits and reveals, the validator's dispute lands; the windows' idle rest is mined.
      const answer = await disputedSearch(net, client, maguId, vec(Number(target)), K, liarAddress);
      const state = await net.read.searchMarket.read.memberTask([answer.task, liarAddress]);
      assert.ok(state.revealed, `the liar revealed:\n${net.nodes[liarIndex]!.stderr().slice(-3000)}`);
      assert.ok(state.disputed, `the liar was disputed:\n${validator.stderr().slice(-3000)}`);
      const logs = await net.publicClient.getContractEvents({ address: net.deployment.contracts.searchMarket!, abi: searchMarketAbi, eventName: "EntryDisputed", args: { task: answer.task }, fromBlock: answer.submitBlock });
      assert.equal(logs.length, 1);
      assert.equal(logs[0]!.args.falsehood, FALSEHOOD_DELETED, "disputed as a deleted vector");
      assert.equal(logs[0]!.args.claimedId, target);
      assert.equal(logs[0]!.args.disputer!.toLowerCase(), validator.address.toLowerCase(), "the validator disputed");
      const stakeAfter = (await net.read.nodeRegistry.read.nodeInfo([liarAddress])).stake;
      assert.ok(stakeAfter < stakeBefore, "the liar was slashed");
      assert.ok(answer.result.length > 0 && !answer.result.some((h) => deleted.includes(h.id)), "no deleted id in the on-chain answer");
    } finally {
      await net.nodes[liarIndex]!.kill("SIGTERM");
      await net.startNode(liarIndex);
    }
  });
});
