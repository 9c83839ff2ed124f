/**
 * End to end, vector Magus (issue 5): `hardhat node` with 1-second blocks, five node processes and
 * one validator process, the real `muri` CLI and the vector client in the test process.
 *
 * - `muri magu create --kind vector --dim 64 --replication 2` on five members, `muri vectors add`
 *   of 20 000 seeded Gaussian-mixture vectors (.npy); bad files (wrong dimension, NaN, Infinity,
 *   empty, unknown format) fail with one line and commit nothing;
 * - 50 off-chain searches with the exact effort equal the brute-force top-10 (ids and canonical
 *   distances); at the nodes' default effort the recall@10 reaches the documented figure;
 * - 10 on-chain tasks finalize to exactly the brute-force top-10, and `muri search --json` gives
 *   the same answer as the API; they are submitted together with one task on each of the other
 *   three Magus below (one ~50-block task window for all, answered while the off-chain checks run);
 * - a node restarted to lie (a distance lowered by one) is disputed by the validator and slashed,
 *   and the answer is still the brute-force top-10;
 * - off-chain, a member that lies the same way is believed by a search with `verify: false` and
 *   rejected by a verified one (each hit's proof checked against the root on chain), whose answer is
 *   still the brute-force top-10;
 * - a node killed during a task: the task still finalizes with the others, exactly;
 * - a cosine Magu (issue 20): 400 vectors of norms 1e-2..1e2 added by `muri vectors add` (a row of
 *   zeros refused first); exact off-chain searches, an on-chain task and `muri search --json` equal
 *   brute-force cosine; the default effort's recall@10 is printed and asserted;
 * - a Hamming Magu (issue 20): 2,000 clustered 256-bit vectors added by `muri vectors add` from a
 *   .npy of uint8 packed bits (a .bits file with a bad character refused first); exact off-chain
 *   searches, an on-chain task and `muri search --json` (a bit-string query, integer distances)
 *   equal brute-force popcount; the default effort's recall@10 is printed and asserted;
 * - quantization scales (issue 20): the 20k Magu keeps 2^14 and refuses the issue's ±15 vectors
 *   before sending anything; a second Magu of ±300 vectors gets 2^6 from its first batch, an
 *   append keeps it, and off-chain and on-chain searches quantize at it (exact answers, distances
 *   in the floats' units in `muri search --json`).
 *
 * Blocks come every second whatever the load (interval mining, automine off), so the windows counted
 * in blocks are deployed with room for agents slowed down by a loaded machine (`WINDOWS`): the search
 * windows are twice the devnet's (a commit normally lands two blocks after the task, a reveal one
 * block into its window, a dispute two blocks after the reveal), and a proof may be sent for two
 * periods of 30 blocks (a proof grace of a whole period), so a node restarted here (twice) is never
 * down for a whole proof window and never comes near eviction (three misses). The liar's and the
 * killed node's tasks do not sit out those windows: once the members the test waits for have
 * committed (revealed; the dispute landed) the test mines the window's idle rest (`hurryTask`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { parseEventLogs, type Hex } from "viem";
import { nodeRegistryAbi, searchMarketAbi } from "../../../agents/chain/index.js";
import { writeBitNpy, writeNpy } from "../../../agents/data/vector-files.js";
import { holdersVector } from "../../../agents/data/placement.js";
import { canonicalDistance, chooseScaleExp, compareHits, hammingDistance, normalizeVector, quantize, unpackBits, type HitEntry } from "../../../agents/data/vectors.js";
import { DEFAULT_EF_SEARCH } from "../../../agents/index/constants.js";
import { coverPlan, createVectorClient, type OnChainSearchResult, type VectorClient } from "../../../agents/roles/client/vector-client.js";
import { cleanup } from "../chain/harness.js";
import { muri, type CliRun } from "../cli/run-muri.js";
import { bitMixture, gaussianMixture, prng, quantizeRows } from "../index/fixtures.js";
import { disputedSearch, hurryTask, killAllNodes, saveLogs, startNetwork, waitFor, type Network, type ValidatorProcess } from "./e2e-helpers.js";

const NODES = 5;
const CLIENT = NODES + 1;
const VALIDATOR = NODES + 2;
const DIM = 64;
const COUNT = 20_000;
const K = 10;
const SEED = 5;
/** recall@10 the nodes' default effort must reach on this data (agents/index/README.md). */
const DOCUMENTED_RECALL = 0.95;
/** Deployment parameters (see the file comment). A task takes commit + reveal + dispute blocks: ~50 s. */
const WINDOWS = { commitBlocks: 16, revealBlocks: 16, disputeBlocks: 16, periodBlocks: 30, graceBlocks: 30, settleDelayBlocks: 60 };

describe("e2e: vector Magu on five node processes and a validator", { timeout: 1_800_000 }, () => {
  let net: Network;
  let validator: ValidatorProcess;
  let client: VectorClient;
  let maguId: bigint;
  let queries: Float32Array;
  let qRows: Int16Array[];
  let rows: Int16Array[];
  let data: Float32Array;
  let truth: HitEntry[][];
  let chainArgs: string[];
  let cliEnv: string[];

  const truthFor = (q: Int16Array, rows: Int16Array[]): HitEntry[] =>
    rows
      .map((v, id) => ({ id: BigInt(id), distance: canonicalDistance("l2", q, v), fragment: 0, position: 0 }))
      .sort(compareHits)
      .slice(0, K);
  const same = (got: readonly HitEntry[], want: readonly HitEntry[], what: string): void =>
    assert.deepEqual(
      got.map((h) => [h.id, h.distance]),
      want.map((h) => [h.id, h.distance]),
      what,
    );

  // The ±300 Magu (quantization scales): the mixture's components are within ±1.99; the first batch
  // is scaled by 150 with one component at 299.5 (2^6 holds |x| < 511.99, 2^7 < 256), the append by
  // 100 (alone it would get 2^7).
  const wide = (() => {
    const dim = 16;
    const data = gaussianMixture({ count: 3000, dim, seed: 6 }).map((x, i) => x * (i < 2000 * dim ? 150 : 100));
    data[5] = 299.5;
    const queries = gaussianMixture({ count: 4, dim, seed: 6 }, 2).map((x) => x * 150);
    const scale = 2 ** 6;
    const rows = Array.from({ length: 3000 }, (_, r) => quantize(data.subarray(r * dim, (r + 1) * dim), dim, r, scale));
    const query = (i: number): Float32Array => queries.subarray(i * dim, (i + 1) * dim);
    return { id: 0n, dim, data, query, truth: (i: number): HitEntry[] => truthFor(quantize(query(i), dim, 0, scale), rows) };
  })();
  // The cosine Magu: mixture directions, each row and query scaled by a norm in 1e-2..1e2 (the raw
  // inner product would rank by norm, cosine ignores it). Its ground truth is the canonical answer
  // over the unit vectors quantized at 2^14; the float64 cosine ranking of the original float32
  // values names the same ids on this data (the closest cosines among a query's top 11 are 1.4e-4
  // apart, the typical quantization error 2e-5).
  const cos = (() => {
    const dim = 32;
    const count = 400;
    const rand = prng(71);
    const spread = (v: Float32Array): Float32Array => {
      for (let r = 0; r < v.length / dim; r++) {
        const norm = 10 ** (4 * rand() - 2);
        for (let i = r * dim; i < (r + 1) * dim; i++) v[i] = v[i]! * norm;
      }
      return v;
    };
    const data = spread(gaussianMixture({ count, dim, seed: 7, clusters: 16 }));
    const queries = spread(gaussianMixture({ count: 21, dim, seed: 7, clusters: 16 }, 2));
    const row = (v: Float32Array, r: number): Float32Array => v.subarray(r * dim, (r + 1) * dim);
    const unit = (v: Float32Array): Int16Array => quantize(normalizeVector(v), dim, 0, 2 ** 14);
    const rows = Array.from({ length: count }, (_, r) => unit(row(data, r)));
    const query = (i: number): Float32Array => row(queries, i);
    const truth = (i: number): HitEntry[] => {
      const q = unit(query(i));
      return rows.map((v, id) => ({ id: BigInt(id), distance: canonicalDistance("cosine", q, v), fragment: 0, position: 0 })).sort(compareHits).slice(0, K);
    };
    return { id: 0n, dim, count, data, row, query, truth };
  })();
  // The Hamming Magu: 32 clusters of 256-bit vectors, 10% of the bits flipped around each centre;
  // the last 21 rows are the queries.
  const ham = (() => {
    const dim = 256;
    const width = dim / 8;
    const count = 2000;
    const packed = bitMixture({ count: count + 21, dim, seed: 91, clusters: 32, flip: 0.1 });
    const data = packed.subarray(0, count * width);
    const row = (v: Uint8Array, r: number): Uint8Array => v.subarray(r * width, (r + 1) * width);
    const query = (i: number): Uint8Array => row(packed, count + i);
    const bits = (q: Uint8Array): number[] => Array.from(unpackBits(q, dim));
    const truth = (i: number): HitEntry[] =>
      Array.from({ length: count }, (_, id) => ({ id: BigInt(id), distance: BigInt(hammingDistance(query(i), row(data, id))), fragment: 0, position: 0 }))
        .sort(compareHits)
        .slice(0, K);
    return { id: 0n, dim, width, count, data, row, query, bits, truth };
  })();
  /** The on-chain tasks submitted together (see "on-chain tasks on every Magu at once"). */
  let tasks: { l2: Array<Promise<OnChainSearchResult>>; wide: Promise<OnChainSearchResult>; cos: Promise<OnChainSearchResult>; ham: Promise<OnChainSearchResult>; t0: number };
  /** Waits until an exact search of `magu` covers every fragment: every holder indexed its replicas. */
  const indexed = (what: string, magu: bigint, query: ArrayLike<number>) =>
    waitFor(`every fragment of the ${what} indexed`, 120_000, async () => {
      const r = await client.search(magu, query, K, { exact: true });
      return r.uncovered.length === 0 && r.failed === 0 ? r : undefined;
    }, 1000);

  before(async () => {
    const t0 = performance.now();
    net = await startNetwork({ prefix: "muri-e2e-vector-", nodes: NODES, fund: [CLIENT, VALIDATOR], blockMs: 1000, automine: false, parameters: WINDOWS });
    validator = await net.startValidator(VALIDATOR, ["--audit-ms", "0"]);
    chainArgs = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[CLIENT]!];
    cliEnv = [...chainArgs, "--client-dir", join(net.dir, "client")];
    client = createVectorClient({ dir: join(net.dir, "client"), deployment: net.deployment, rpcUrl: net.chain.rpcUrl, privateKey: net.chain.keys[CLIENT]! as Hex });
    await client.start();
    data = gaussianMixture({ count: COUNT, dim: DIM, seed: SEED });
    await writeNpy(join(net.dir, "vectors.npy"), data, DIM);
    rows = quantizeRows(data, DIM);
    queries = gaussianMixture({ count: 70, dim: DIM, seed: SEED }, 2);
    qRows = quantizeRows(queries, DIM);
    truth = qRows.map((q) => truthFor(q, rows));
    console.log(`# setup (chain, 5 nodes, validator, data, ground truth): ${Math.round(performance.now() - t0)} ms`);
  });

  after(async () => {
    await saveLogs("node", net?.nodes ?? []);
    await saveLogs("validator", [validator]);
    await client?.stop();
    await killAllNodes();
    await cleanup();
  });

  test("muri magu create --kind vector and muri vectors add of 20k x 64 vectors", async () => {
    const created = await muri(["magu", "create", "--kind", "vector", "--dim", String(DIM), "--metric", "l2", "--replication", "2", "--members", String(NODES), "--fragments", "64", "--periods", "10000", "--price", "0.000001", "--json", ...chainArgs]);
    assert.equal(created.code, 0, created.stderr);
    maguId = BigInt((JSON.parse(created.stdout) as { id: string }).id);
    const t0 = performance.now();
    const added = await muri(["vectors", "add", "--magu", String(maguId), join(net.dir, "vectors.npy"), "--json", ...cliEnv], {}, 180_000);
    assert.equal(added.code, 0, added.stderr);
    const result = JSON.parse(added.stdout) as { vectors: number; fragments: number; fragmentCount: number; firstRow: number; scaleExp: number };
    console.log(`# vectors add 20k x 64: ${Math.round(performance.now() - t0)} ms, ${result.fragments} fragments`);
    assert.equal(result.vectors, COUNT);
    assert.equal(result.firstRow, 0);
    // The mixture's largest |x| is in [1, 2): the scale every Magu had before it was chosen.
    assert.equal(result.scaleExp, 14);
    const info = await net.read.maguRegistry.read.maguInfo([maguId]);
    assert.equal(info.fragmentCount, result.fragmentCount);
    // The validator took the vector index document (it checks answers against it and audits).
    await waitFor("the validator recorded the vector index document", 60_000, async () => validator.stderr().includes('"msg":"vector index document recorded"') || undefined, 500);
    // Every member indexed its replicas: wait until an exact search sees every fragment.
    await waitFor("every fragment indexed on its holders", 120_000, async () => {
      const r = await client.search(maguId, queries.subarray(0, DIM), K, { exact: true });
      return r.uncovered.length === 0 && r.failed === 0 ? r : undefined;
    }, 1000);
  });

  test("bad vector files fail with one line and commit nothing", async () => {
    const before = await net.read.maguRegistry.read.maguInfo([maguId]);
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ["wrong-dim.jsonl", `${JSON.stringify(Array(DIM - 1).fill(0.1))}\n`, /dimension|63|64/i],
      ["nan.csv", `${Array(DIM).fill("0.1").map((v, i) => (i === 3 ? "NaN" : v)).join(",")}\n`, /NaN/],
      ["inf.jsonl", `${JSON.stringify(Array(DIM).fill(0.1)).replace("0.1", "1e999")}\n`, /infinit|finite/i],
      ["empty.fvecs", Buffer.alloc(0), /empty/i],
      ["vectors.txt", "0.1 0.2\n", /format|extension|\.txt/i],
      // The vectors: outside the Magu's scale 2^14, refused before anything is sent.
      ["wide.jsonl", `${JSON.stringify(Array.from({ length: DIM }, (_, i) => (i === 5 ? -15 : 0.1)))}\n`, /row 0, column 5: value -15 does not fit Magu \d+'s quantization scale 2\^14 .*below 1\.99997.*new vector Magu/],
    ];
    // Each is refused before anything is sent, so they run three at a time.
    const runs: CliRun[] = [];
    for (let i = 0; i < cases.length; i += 3) {
      runs.push(
        ...(await Promise.all(
          cases.slice(i, i + 3).map(async ([name, content]) => {
            const path = join(net.dir, name);
            await writeFile(path, content);
            return muri(["vectors", "add", "--magu", String(maguId), path, ...cliEnv]);
          }),
        )),
      );
    }
    for (const [i, [name, , pattern]] of cases.entries()) {
      const run = runs[i]!;
      assert.notEqual(run.code, 0, `${name}: must fail`);
      const lines = run.stderr.trim().split("\n");
      assert.equal(lines.length, 1, `${name}: one line on stderr, got:\n${run.stderr}`);
      assert.match(lines[0]!, pattern, `${name}: ${lines[0]}`);
      assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
    }
    const afterInfo = await net.read.maguRegistry.read.maguInfo([maguId]);
    assert.equal(afterInfo.fragmentCount, before.fragmentCount, "nothing committed");
    assert.equal(afterInfo.root, before.root);
  });

  test("a Magu of ±300 vectors: the first batch picks 2^6, an append keeps it, a value beyond it is refused", async () => {
    const { dim, data } = wide;
    const created = await muri(["magu", "create", "--kind", "vector", "--dim", String(dim), "--metric", "l2", "--replication", "2", "--members", String(NODES), "--fragments", "16", "--periods", "10000", "--price", "0.000001", "--json", ...chainArgs]);
    assert.equal(created.code, 0, created.stderr);
    wide.id = BigInt((JSON.parse(created.stdout) as { id: string }).id);
    assert.equal(chooseScaleExp(data.subarray(2000 * dim), dim), 7, "the append's own scale would differ");
    const first = join(net.dir, "wide-1.npy");
    const second = join(net.dir, "wide-2.npy");
    await writeNpy(first, data.subarray(0, 2000 * dim), dim);
    await writeNpy(second, data.subarray(2000 * dim), dim);
    const added: Array<{ scaleExp: number; firstRow: number }> = [];
    for (const file of [first, second]) {
      const run = await muri(["vectors", "add", "--magu", String(wide.id), file, "--fragment-size", "16384", "--json", ...cliEnv], {}, 120_000);
      assert.equal(run.code, 0, run.stderr);
      added.push(JSON.parse(run.stdout) as { scaleExp: number; firstRow: number });
    }
    assert.deepEqual(added.map((a) => [a.scaleExp, a.firstRow]), [[6, 0], [6, 2000]], "2^6 from the first batch; the append keeps it");
    // A value beyond what 2^6 holds: refused before anything is sent, the chain unchanged.
    const before = await net.read.maguRegistry.read.maguInfo([wide.id]);
    const far = join(net.dir, "wide-far.jsonl");
    await writeFile(far, `${JSON.stringify(Array(dim).fill(1))}\n${JSON.stringify(Array.from({ length: dim }, (_, i) => (i === 2 ? 600 : 1)))}\n`);
    const refused = await muri(["vectors", "add", "--magu", String(wide.id), far, ...cliEnv]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr.trim(), /^.*row 1, column 2: value 600 does not fit Magu \d+'s quantization scale 2\^6 .*below 511\.992.*new vector Magu/);
    assert.equal((await net.read.maguRegistry.read.maguInfo([wide.id])).root, before.root, "nothing committed");
  });

  test("a cosine Magu: a row of zeros is refused; 400 vectors of norms 1e-2..1e2 are added at the scale 2^14", async () => {
    const { dim, count, data, row } = cos;
    const created = await muri(["magu", "create", "--kind", "vector", "--dim", String(dim), "--metric", "cosine", "--replication", "2", "--members", String(NODES), "--fragments", "16", "--periods", "10000", "--price", "0.000001", "--json", ...chainArgs]);
    assert.equal(created.code, 0, created.stderr);
    cos.id = BigInt((JSON.parse(created.stdout) as { id: string }).id);
    assert.equal((await net.read.maguRegistry.read.maguInfo([cos.id])).params.metric, 3, "Metric.Cosine on chain");
    // A row of zeros has no direction: refused, naming the row, before anything is committed.
    const zero = join(net.dir, "cosine-zero.jsonl");
    await writeFile(zero, `${JSON.stringify(Array.from(row(data, 0)))}\n${JSON.stringify(Array(dim).fill(0))}\n`);
    const refused = await muri(["vectors", "add", "--magu", String(cos.id), zero, ...cliEnv]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr.trim(), /^.*vector row 1: every component is zero, and Magu \d+ uses the cosine metric.*nothing was sent.*nonzero component/);
    assert.equal((await net.read.maguRegistry.read.maguInfo([cos.id])).fragmentCount, 0, "nothing committed");

    const file = join(net.dir, "cosine.npy");
    await writeNpy(file, data, dim);
    const run = await muri(["vectors", "add", "--magu", String(cos.id), file, "--fragment-size", "4096", "--json", ...cliEnv], {}, 120_000);
    assert.equal(run.code, 0, run.stderr);
    const added = JSON.parse(run.stdout) as { vectors: number; fragments: number; scaleExp: number };
    assert.equal(added.vectors, count);
    assert.equal(added.scaleExp, 14, "a cosine Magu's scale holds every unit vector");
  });

  test("a Hamming Magu: a bad .bits file is refused; 2,000 x 256-bit vectors are added from a .npy of packed bits", async () => {
    const { dim, width, count, data, row, bits } = ham;
    const created = await muri(["magu", "create", "--kind", "vector", "--dim", String(dim), "--metric", "hamming", "--replication", "2", "--members", String(NODES), "--fragments", "16", "--periods", "10000", "--price", "0.000001", "--json", ...chainArgs]);
    assert.equal(created.code, 0, created.stderr);
    ham.id = BigInt((JSON.parse(created.stdout) as { id: string }).id);
    assert.equal((await net.read.maguRegistry.read.maguInfo([ham.id])).params.metric, 4, "Metric.Hamming on chain");
    // A .bits file with a character other than 0/1: refused, naming the line and bit, nothing committed.
    const bad = join(net.dir, "hamming-bad.bits");
    await writeFile(bad, `${bits(row(data, 0)).join("")}\n${bits(row(data, 1)).map((b, i) => (i === 5 ? "x" : b)).join("")}\n`);
    const refused = await muri(["vectors", "add", "--magu", String(ham.id), bad, ...cliEnv]);
    assert.notEqual(refused.code, 0);
    const lines = refused.stderr.trim().split("\n");
    assert.equal(lines.length, 1, refused.stderr);
    assert.match(lines[0]!, /hamming-bad\.bits \(line 2, column 5\): bit 5 is "x", not 0 or 1; write each vector as a line of 0 and 1 characters only/);
    assert.equal((await net.read.maguRegistry.read.maguInfo([ham.id])).fragmentCount, 0, "nothing committed");

    const file = join(net.dir, "hamming.npy");
    await writeBitNpy(file, data, dim);
    const run = await muri(["vectors", "add", "--magu", String(ham.id), file, "--fragment-size", "8192", "--json", ...cliEnv], {}, 120_000);
    assert.equal(run.code, 0, run.stderr);
    const added = JSON.parse(run.stdout) as { vectors: number; fragments: number; scaleExp: number | null };
    assert.equal(added.vectors, count);
    assert.equal(added.fragments, Math.ceil(count / Math.floor(8192 / (8 + width))), "40-byte records, 204 to a fragment");
    assert.equal(added.scaleExp, null, "bits have no quantization scale");
  });


  test("50 off-chain searches equal brute force at high effort; default effort reaches the documented recall", async () => {
    let found = 0;
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const q = queries.subarray(i * DIM, (i + 1) * DIM);
      const exact = await client.search(maguId, q, K, { ef: COUNT });
      same(exact.hits, truth[i]!, `query ${i} at ef=${COUNT}`);
      const fast = await client.search(maguId, q, K);
      times.push(fast.ms);
      const want = new Set(truth[i]!.map((h) => h.id));
      found += fast.hits.filter((h) => want.has(h.id)).length;
    }
    const recall = found / (50 * K);
    times.sort((a, b) => a - b);
    console.log(`# off-chain default ef=${DEFAULT_EF_SEARCH}: recall@10 ${recall.toFixed(4)}, p50 ${times[25]!.toFixed(1)} ms, max ${times[49]!.toFixed(1)} ms`);
    assert.ok(recall >= DOCUMENTED_RECALL, `recall@10 ${recall} below the documented ${DOCUMENTED_RECALL}`);
  });

  test("on-chain tasks on every Magu at once: ten on the 20k Magu, one on each of the ±300, cosine and Hamming Magus", async () => {
    // Every holder indexed its replicas first (a member answers a task from its index).
    await indexed("±300 Magu", wide.id, wide.query(0));
    await indexed("cosine Magu", cos.id, cos.query(0));
    await indexed("Hamming Magu", ham.id, ham.bits(ham.query(0)));
    const before = await net.read.searchMarket.read.taskCount();
    // Submitted now, answered while the next tests search off-chain, checked by "... finalize to
    // the brute-force answers". (Each task takes ~50 blocks whatever the load; one window for all
    // of them instead of one each.) The client sends its submissions one at a time.
    const submit = (magu: bigint, query: ArrayLike<number>): Promise<OnChainSearchResult> => {
      const answer = client.searchOnChain(magu, query, K, 10n ** 18n);
      answer.catch(() => undefined); // awaited (and its failure reported) by the later test
      return answer;
    };
    tasks = {
      l2: Array.from({ length: 10 }, (_, j) => submit(maguId, queries.subarray((50 + j) * DIM, (51 + j) * DIM))),
      wide: submit(wide.id, wide.query(3)),
      cos: submit(cos.id, cos.query(20)),
      ham: submit(ham.id, ham.bits(ham.query(20))),
      t0: performance.now(),
    };
    await waitFor("the first task on chain", 60_000, async () => ((await net.read.searchMarket.read.taskCount()) > before ? true : undefined), 200);
  });

  test("the ±300 Magu: off-chain searches and muri search quantize at 2^6", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await client.search(wide.id, wide.query(i), K, { exact: true });
      assert.equal(r.scaleExp, 6);
      same(r.hits, wide.truth(i), `±300 query ${i}`);
    }
    const run = await muri(["search", "--magu", String(wide.id), "--vector", JSON.stringify(Array.from(wide.query(1))), "-k", String(K), "--exact", "--json", ...cliEnv]);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { scaleExp: number; results: Array<{ id: string; canonical: string; distance: number }> };
    assert.equal(out.scaleExp, 6);
    assert.deepEqual(out.results.map((r) => [BigInt(r.id), BigInt(r.canonical)]), wide.truth(1).map((h) => [h.id, h.distance]));
    for (const r of out.results) assert.equal(r.distance, Number(r.canonical) / 2 ** 12, "squared L2 in the floats' units");
    // A query beyond the Magu's range is refused, naming the scale.
    await assert.rejects(client.search(wide.id, Array.from({ length: wide.dim }, (_, i) => (i === 0 ? 1000 : 0)), K), (err: Error & { code?: string }) => err.code === "ERR_BAD_QUERY" && /scale 2\^6/.test(err.message));
  });

  test("the cosine Magu: exact searches and muri search equal brute-force cosine; the default effort's recall", async () => {
    const { dim, count, data, row, query } = cos;
    const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
    const floatCosine = (a: Float32Array, b: Float32Array): number => dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
    const floatTop = (i: number): bigint[] =>
      Array.from({ length: count }, (_, id) => ({ id, c: floatCosine(query(i), row(data, id)) }))
        .sort((a, b) => b.c - a.c || a.id - b.id)
        .slice(0, K)
        .map((x) => BigInt(x.id));
    const ipTop = (i: number): bigint[] =>
      Array.from({ length: count }, (_, id) => ({ id, s: dot(query(i), row(data, id)) }))
        .sort((a, b) => b.s - a.s || a.id - b.id)
        .slice(0, K)
        .map((x) => BigInt(x.id));
    let found = 0;
    let ipDiffers = 0;
    for (let i = 0; i < 20; i++) {
      const want = cos.truth(i);
      assert.deepEqual(want.map((h) => h.id), floatTop(i), `query ${i}: the canonical answer is the float cosine ranking`);
      if (ipTop(i).join() !== floatTop(i).join()) ipDiffers++;
      const exact = await client.search(cos.id, query(i), K, { exact: true });
      assert.equal(exact.scaleExp, 14);
      same(exact.hits, want, `cosine query ${i}, exact`);
      const fast = await client.search(cos.id, query(i), K);
      const ids = new Set(want.map((h) => h.id));
      found += fast.hits.filter((h) => ids.has(h.id)).length;
    }
    const recall = found / (20 * K);
    console.log(`# cosine Magu (${count} x ${dim}, norms 1e-2..1e2): default ef=${DEFAULT_EF_SEARCH} recall@10 ${recall.toFixed(4)}; raw ip ranks ${ipDiffers}/20 queries otherwise`);
    assert.ok(recall >= DOCUMENTED_RECALL, `cosine recall@10 ${recall} below ${DOCUMENTED_RECALL}`);
    assert.equal(ipDiffers, 20, "the norms change the raw inner product's top 10 of every query");

    // muri search prints the negated cosine similarity (canonical / 2^28).
    const cli = await muri(["search", "--magu", String(cos.id), "--vector", JSON.stringify(Array.from(query(1))), "-k", String(K), "--exact", "--json", ...cliEnv]);
    assert.equal(cli.code, 0, cli.stderr);
    const out = JSON.parse(cli.stdout) as { scaleExp: number; results: Array<{ id: string; canonical: string; distance: number }> };
    assert.deepEqual(out.results.map((r) => [BigInt(r.id), BigInt(r.canonical)]), cos.truth(1).map((h) => [h.id, h.distance]));
    const bound = 2 * (Math.sqrt(dim) * 2 ** -15 + 2 ** -24) + (Math.sqrt(dim) * 2 ** -15 + 2 ** -24) ** 2;
    for (const r of out.results) assert.ok(Math.abs(-r.distance - floatCosine(query(1), row(data, Number(r.id)))) <= bound, `id ${r.id}: -distance is the cosine`);
    // A zero query has no direction either.
    await assert.rejects(client.search(cos.id, Array(dim).fill(0), K), (err: Error & { code?: string }) => err.code === "ERR_BAD_QUERY" && /every component is zero.*cosine/.test(err.message));
  });

  test("the Hamming Magu: exact searches and muri search (a bit-string query) equal brute-force popcount; the default effort's recall", async () => {
    const { dim, count, query, bits } = ham;
    let found = 0;
    for (let i = 0; i < 20; i++) {
      const want = ham.truth(i);
      const exact = await client.search(ham.id, bits(query(i)), K, { exact: true });
      assert.equal(exact.scaleExp, null);
      assert.equal(exact.verified, true);
      same(exact.hits, want, `Hamming query ${i}, exact`);
      // Tie-aware: a hit within the true 10th distance is a right answer (ids tie often in bits).
      const fast = await client.search(ham.id, bits(query(i)), K);
      found += fast.hits.filter((h) => h.distance <= want[K - 1]!.distance).length;
    }
    const recall = found / (20 * K);
    console.log(`# Hamming Magu (${count} x ${dim} bits, 32 clusters): default ef=${DEFAULT_EF_SEARCH} recall@10 ${recall.toFixed(4)}`);
    assert.ok(recall >= DOCUMENTED_RECALL, `Hamming recall@10 ${recall} below ${DOCUMENTED_RECALL}`);

    // muri search takes the query as a string of 0/1 characters and prints the integer distance.
    const cli = await muri(["search", "--magu", String(ham.id), "--vector", bits(query(1)).join(""), "-k", String(K), "--exact", "--json", ...cliEnv]);
    assert.equal(cli.code, 0, cli.stderr);
    const out = JSON.parse(cli.stdout) as { scaleExp: number | null; results: Array<{ id: string; canonical: string; distance: number }> };
    assert.equal(out.scaleExp, null);
    assert.deepEqual(out.results.map((r) => [BigInt(r.id), BigInt(r.canonical)]), ham.truth(1).map((h) => [h.id, h.distance]));
    for (const r of out.results) assert.equal(r.distance, Number(r.canonical), "the distance is the number of differing bits");
    // A query component that is not a bit is named.
    await assert.rejects(client.search(ham.id, bits(query(2)).map((b, i) => (i === 7 ? 2 : b)), K), (err: Error & { code?: string }) => err.code === "ERR_BAD_QUERY" && /bit 7 is 2, not 0 or 1/.test(err.message));
  });

  test("the on-chain tasks finalize to the brute-force answers on every Magu; muri search --json agrees", async () => {
    const answers = await Promise.all(tasks.l2);
    console.log(`# 13 on-chain tasks at once: ${Math.round(performance.now() - tasks.t0)} ms, blocks submit->final of the ten on the 20k Magu ${answers.map((a) => a.block - a.submitBlock).join(",")}`);
    answers.forEach((a, j) => {
      same(a.result, truth[50 + j]!, `task ${a.task}`);
      assert.ok(a.credits > 0n, "members were credited");
    });
    const run = await muri(["search", "--magu", String(maguId), "--vector", JSON.stringify(Array.from(queries.subarray(60 * DIM, 61 * DIM))), "-k", String(K), "--exact", "--json", ...cliEnv]);
    assert.equal(run.code, 0, run.stderr);
    const out = JSON.parse(run.stdout) as { results: Array<{ id: string; canonical: string }>; verified: boolean; rejected: unknown[] };
    assert.equal(out.verified, true, "the CLI checks every hit by default");
    assert.deepEqual(out.rejected, []);
    assert.deepEqual(
      out.results.map((r) => [BigInt(r.id), BigInt(r.canonical)]),
      truth[60]!.map((h) => [h.id, h.distance]),
    );

    const onWide = await tasks.wide;
    assert.equal(onWide.scaleExp, 6);
    same(onWide.result, wide.truth(3), "the on-chain task on the ±300 Magu");
    same((await tasks.cos).result, cos.truth(20), "the on-chain task on the cosine Magu");
    const onHam = await tasks.ham;
    same(onHam.result, ham.truth(20), "the on-chain task on the Hamming Magu");
    assert.equal(onHam.scaleExp, null);
    // The validator checked the revealed entries, by popcount on the Hamming Magu (no lie has been told yet).
    assert.doesNotMatch(validator.stderr(), /search check: false entry/, "the validator found no false entry in honest answers");
  });


  test("a node that reveals a false distance is disputed by the validator and slashed; the answer is unaffected", async () => {
    const liarIndex = 0;
    const liar = net.nodes[liarIndex]!;
    await liar.kill("SIGTERM");
    await net.startNode(liarIndex, { MURI_TEST_FAULT: "false-distance" });
    const stakeBefore = (await net.read.nodeRegistry.read.nodeInfo([liar.address])).stake;
    // Every member commits and reveals, the validator's dispute lands; the windows' idle rest is mined.
    const answer = await disputedSearch(net, client, maguId, queries.subarray(61 * DIM, 62 * DIM), K, liar.address);
    same(answer.result, truth[61]!, "answer with a liar");
    const state = await net.read.searchMarket.read.memberTask([answer.task, liar.address]);
    assert.ok(state.revealed, `the liar revealed:\n${net.nodes[liarIndex]!.stderr().slice(-3000)}`);
    assert.ok(state.disputed, `the liar was disputed:\n${validator.stderr().slice(-3000)}`);
    const stakeAfter = (await net.read.nodeRegistry.read.nodeInfo([liar.address])).stake;
    assert.ok(stakeAfter < stakeBefore, "the liar was slashed");
    const logs = await net.publicClient.getContractEvents({ address: net.deployment.contracts.searchMarket!, abi: searchMarketAbi, eventName: "EntryDisputed", args: { task: answer.task }, fromBlock: answer.submitBlock });
    assert.equal(logs.length, 1);
    assert.equal(logs[0]!.args.disputer!.toLowerCase(), validator.address.toLowerCase(), "the validator disputed");
    // Back to honest: with r = 2, a liar's dropped list and a killed node could hide a fragment.
    await net.nodes[liarIndex]!.kill("SIGTERM");
    await net.startNode(liarIndex);
  });

  test("off-chain, a member's false distance is believed without verification and rejected with it", async () => {
    // The member the client asks first (the one holding the most fragments), so its answer is used.
    const info = await net.read.maguRegistry.read.maguInfo([maguId]);
    const holders = Array.from({ length: info.fragmentCount }, (_, f) => holdersVector(maguId, f, info.members.length, info.params.replication).map((s) => info.members[s]!));
    const liarAddress = coverPlan(holders, new Set(holders.keys()), new Set())[0]!;
    const liarIndex = net.nodes.findIndex((n) => n.address.toLowerCase() === liarAddress.toLowerCase());
    assert.ok(liarIndex >= 0);
    // A stored vector on a fragment the liar holds: its best hit is that record, at distance 0.
    let row = -1;
    for (let r = 0; r < COUNT && row < 0; r += 997) {
      const top = await client.search(maguId, data.subarray(r * DIM, (r + 1) * DIM), 1, { exact: true });
      if (top.hits[0]!.id === BigInt(r) && holders[top.hits[0]!.fragment]!.includes(liarAddress)) row = r;
    }
    assert.ok(row >= 0, "a record on one of the liar's fragments");
    const query = data.subarray(row * DIM, (row + 1) * DIM);
    const want = truthFor(rows[row]!, rows);
    assert.equal(want[0]!.distance, 0n);

    await net.nodes[liarIndex]!.kill("SIGTERM");
    await net.startNode(liarIndex, { MURI_TEST_FAULT: "false-distance" });
    try {
      // The attack: unchecked, the lie wins the merge (a squared distance of -1). Once the restarted
      // liar answers at all (a new connection, its index reopened).
      const believed = await waitFor("every member answers", 60_000, async () => {
        const r = await client.search(maguId, query, K, { exact: true, verify: false });
        return r.failed === 0 ? r : undefined;
      }, 500);
      assert.equal(believed.verified, false);
      assert.deepEqual([believed.hits[0]!.id, believed.hits[0]!.distance], [BigInt(row), -1n], `the lie is in the unverified answer (${believed.asked} asked); the liar's log:\n${net.nodes[liarIndex]!.stderr().slice(-2000)}`);
      // Checked: the liar's answer is dropped and reported, the others give the true top-10.
      const checked = await client.search(maguId, query, K, { exact: true });
      assert.equal(checked.verified, true);
      same(checked.hits, want, "the verified answer");
      assert.equal(checked.rejected.length, 1, JSON.stringify(checked.rejected));
      assert.equal(checked.rejected[0]!.member.toLowerCase(), liarAddress.toLowerCase());
      assert.match(checked.rejected[0]!.reason, new RegExp(`id ${row} is at distance 0, not -1`));
      assert.deepEqual(checked.uncovered, [], "the liar's fragments were asked of their other holders");
      const cli = await muri(["search", "--magu", String(maguId), "--vector", JSON.stringify(Array.from(query)), "-k", String(K), "--exact", ...cliEnv]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, new RegExp(`rejected ${liarAddress}: id ${row} is at distance 0, not -1`, "i"));
    } finally {
      await net.nodes[liarIndex]!.kill("SIGTERM");
      await net.startNode(liarIndex);
    }
  });

  test("a node killed during a task: the task still finalizes with the others", async () => {
    const victim = net.nodes[1]!;
    const tasksBefore = await net.read.searchMarket.read.taskCount();
    const pending = client.searchOnChain(maguId, queries.subarray(62 * DIM, 63 * DIM), K, 10n ** 18n);
    pending.catch(() => undefined); // awaited below
    // kill it as soon as the task is on chain, before it can commit or reveal everything
    await waitFor("the task submitted", 60_000, async () => ((await net.read.searchMarket.read.taskCount()) > tasksBefore ? true : undefined), 100);
    await victim.kill("SIGKILL");
    // The others commit and reveal; the windows' idle rest is mined (nothing is disputed here).
    const task = await net.read.searchMarket.read.taskCount();
    const others = (await net.read.maguRegistry.read.maguInfo([maguId])).members.filter((m) => m.toLowerCase() !== victim.address.toLowerCase());
    await hurryTask(net, task, others, async () => true);
    const answer = await pending;
    assert.equal(answer.task, task);
    same(answer.result, truth[62]!, "answer without the killed node");
    const receiptLogs = await net.publicClient.getContractEvents({ address: net.deployment.contracts.searchMarket!, abi: searchMarketAbi, eventName: "TaskFinalized", args: { task: answer.task }, fromBlock: answer.submitBlock });
    assert.equal(parseEventLogs({ abi: searchMarketAbi, logs: receiptLogs }).length, 1);

    // The victim really missed the task: a member of the Magu that revealed nothing, so the answer
    // came from the others alone.
    const market = net.deployment.contracts.searchMarket!;
    const range = { fromBlock: answer.submitBlock, toBlock: receiptLogs[0]!.blockNumber };
    const members = (await net.read.maguRegistry.read.maguInfo([maguId])).members.map((a) => a.toLowerCase());
    assert.ok(members.includes(victim.address.toLowerCase()), "the victim is a member: it was due to answer");
    const revealed = await net.publicClient.getContractEvents({ address: market, abi: searchMarketAbi, eventName: "ResultRevealed", args: { task: answer.task }, ...range });
    assert.ok(!revealed.some((e) => e.args.member!.toLowerCase() === victim.address.toLowerCase()), "the victim revealed nothing");
    assert.equal((await net.read.searchMarket.read.memberTask([answer.task, victim.address])).revealed, false);
    assert.ok(revealed.length >= 1, "the others revealed");
    // It was killed as soon as the task was on chain; its commit can only have beaten the kill if
    // it was already sent. Either way the chain says which: no commit at all, or a commit that
    // was never revealed, for which finalize took the reveal penalty from its reputation.
    const committed = await net.publicClient.getContractEvents({ address: market, abi: searchMarketAbi, eventName: "ResultCommitted", args: { task: answer.task, member: victim.address }, ...range });
    const penalties = await net.publicClient.getContractEvents({ address: net.deployment.contracts.nodeRegistry, abi: nodeRegistryAbi, eventName: "ReputationChanged", args: { node: victim.address }, blockHash: receiptLogs[0]!.blockHash! });
    const penalisedInFinalize = penalties.filter((e) => e.transactionHash === receiptLogs[0]!.transactionHash);
    if (committed.length === 0) {
      assert.equal((await net.read.searchMarket.read.memberTask([answer.task, victim.address])).commitment, `0x${"0".repeat(64)}`, "no commitment");
      assert.equal(penalisedInFinalize.length, 0, "not a committer: no reveal penalty");
    } else {
      assert.equal(committed.length, 1);
      assert.equal(penalisedInFinalize.length, 1, "a silent committer loses the reveal penalty");
      assert.ok(penalisedInFinalize[0]!.args.delta! < 0n);
    }
    console.log(`# killed node: ${committed.length === 0 ? "never committed" : "committed before the kill, never revealed"}; ${revealed.length} others revealed`);
  });
});
