/**
 * End to end: one client directory serving two networks side by side (issue 23).
 *
 * Two `hardhat node`s with the same chain id (31337), deployed by the same key, so the contracts
 * have the same addresses on both: only the hash of the deployment block tells them apart. Each
 * gets two storage node processes (k = 1, m = 1 Magus of two members). The real `bin/muri.js` runs
 * every client step with HOME pointed at a temporary directory, so it uses the default client
 * directory `~/.muri/client`, as in the report:
 * - a put on each chain (both get Magu 1; the second used to fail with "record of Magu 1 ends at
 *   fragment N, cannot add a file at 0"), and a two-file Magu on the second chain whose second
 *   file sits at an offset only the record knows;
 * - every file comes back from its own chain byte for byte;
 * - a get of the first chain's CID against the second fails with ERR_OTHER_NETWORK naming both;
 * - `muri status --json` names each network (chain id, MaguRegistry, deployment block and hash);
 * - a client directory in the old flat layout: its record is not used on the other chain, and is
 *   adopted (moved under its network) on first use against its own chain.
 * The rest of client-record.ts (network.json compared on use, no-clobber adoption) is
 * test/agents/roles/client-record.test.ts.
 */
import assert from "node:assert/strict";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { networkKey, type NetworkIdentity } from "../../../agents/chain/index.js";
import { cleanup, tempDir } from "../chain/harness.js";
import { muri as runMuri, type CliRun } from "../cli/run-muri.js";
import { killAllNodes, randomFile, saveLogs, sha256File, startNetwork, type Network } from "./e2e-helpers.js";

/** Accounts: nodes 1 and 2 on each chain, the client 3. */
const CLIENT_KEY = 3;
const NODES = 2;
/** Blob parameters of every Magu here: one data and one parity shard per stripe, two members. */
const SHAPE = ["--data-shards", "1", "--parity-shards", "1", "--members", "2"];
const CLI_TIMEOUT_MS = 90_000;

type Json = Record<string, unknown>;

describe("e2e: one client directory, two networks with the same chain id and addresses", { timeout: 300_000 }, () => {
  let a: Network;
  let b: Network;
  let home: string;
  let work: string;
  const files: Record<string, { path: string; sha256: string; cid?: string; magu?: string; offset?: number }> = {};

  /** `muri ...args --json` against `net`, signing as the client, with HOME = `homeDir` (default client directory). */
  const muri = (net: Network, args: string[], homeDir = home): Promise<CliRun> =>
    runMuri([...args, "--deployment", net.deploymentFile, "--rpc", net.chain.rpcUrl, "--key", net.chain.keys[CLIENT_KEY]!, "--json"], { HOME: homeDir }, CLI_TIMEOUT_MS);
  const ok = (run: CliRun, what: string): Json => {
    assert.equal(run.code, 0, `${what} failed: ${run.stderr}`);
    return JSON.parse(run.stdout) as Json;
  };
  const failed = (run: CliRun, what: string): { code: string; message: string } => {
    assert.equal(run.code, 1, `${what}: exit code (stdout ${run.stdout}, stderr ${run.stderr})`);
    return (JSON.parse(run.stdout) as { error: { code: string; message: string } }).error;
  };
  /** The network identity of `net`, read here independently of the client. */
  const identityOf = async (net: Network): Promise<NetworkIdentity> => ({
    chainId: net.deployment.chainId,
    maguRegistry: net.deployment.contracts.maguRegistry,
    deployBlock: net.deployment.deployBlock,
    deployBlockHash: (await net.publicClient.getBlock({ blockNumber: net.deployment.deployBlock })).hash,
  });
  const clientDir = (homeDir = home): string => join(homeDir, ".muri", "client");
  const put = async (net: Network, name: string, into?: string): Promise<Json> => {
    const t0 = performance.now();
    const out = ok(await muri(net, ["put", files[name]!.path, ...(into === undefined ? SHAPE : ["--magu", into])]), `put ${name}`);
    console.log(`# muri put ${name}${into ? ` --magu ${into}` : ""}: ${Math.round(performance.now() - t0)} ms, Magu ${out.maguId} at ${out.offset}`);
    Object.assign(files[name]!, { cid: out.manifestCid as string, magu: String(out.maguId), offset: out.offset as number });
    return out;
  };
  const getBack = async (net: Network, name: string, homeDir = home): Promise<void> => {
    const out = join(work, `out-${name}-${Math.random().toString(36).slice(2)}.bin`);
    ok(await muri(net, ["get", files[name]!.cid!, "--magu", files[name]!.magu!, "-o", out], homeDir), `get ${name}`);
    assert.equal(await sha256File(out), files[name]!.sha256, `${name} comes back byte for byte`);
  };

  before(async () => {
    const t0 = performance.now();
    // One after the other: the second chain's deployment blocks are mined seconds later, so their
    // hashes differ (asserted below) although ids and addresses are equal.
    a = await startNetwork({ prefix: "muri-e2e-net-a-", nodes: NODES, fund: [CLIENT_KEY] });
    b = await startNetwork({ prefix: "muri-e2e-net-b-", nodes: NODES, fund: [CLIENT_KEY] });
    work = await tempDir("muri-e2e-networks-");
    home = join(work, "home");
    await mkdir(home);
    // 1.5 MiB and 2.5 MiB: 2 and 3 stripes of k=1, m=1 -> 4 and 6 shards.
    files.a1 = await randomFile(work, "a1.bin", 1.5 * 2 ** 20);
    files.b1 = await randomFile(work, "b1.bin", 2.5 * 2 ** 20);
    files.b2 = await randomFile(work, "b2.bin", 1.5 * 2 ** 20);
    files.b3 = await randomFile(work, "b3.bin", 1.5 * 2 ** 20);
    console.log(`# setup (two chains, two deployments, ${2 * NODES} nodes): ${Math.round(performance.now() - t0)} ms`);
  });

  after(async () => {
    await saveLogs("networks-a-node", a?.nodes ?? []);
    await saveLogs("networks-b-node", b?.nodes ?? []);
    await killAllNodes();
    await cleanup();
  });

  test("the two chains differ only in their deployment block hashes", async () => {
    const [ia, ib] = await Promise.all([identityOf(a), identityOf(b)]);
    assert.equal(ia.chainId, ib.chainId);
    assert.deepEqual(a.deployment.contracts, b.deployment.contracts);
    assert.notEqual(ia.deployBlockHash, ib.deployBlockHash);
  });

  test("puts on both chains from one client directory, each file back from its own chain", async () => {
    assert.equal((await put(a, "a1")).maguId, "1");
    // The report: this put used to fail with "record of Magu 1 ends at fragment 4, cannot add a file at 0".
    assert.equal((await put(b, "b1")).maguId, "1");
    // A two-file Magu on b: b3 starts at fragment 4, which only b's record of Magu 2 says.
    const created = ok(await muri(b, ["magu", "create", "--kind", "blob", ...SHAPE, "--fragments", "12", "--periods", "40", "--price", "0.001"]), "magu create");
    assert.equal(created.id, "2");
    await put(b, "b2", "2");
    assert.equal((await put(b, "b3", "2")).offset, 4);

    const t0 = performance.now();
    await getBack(a, "a1");
    await getBack(b, "b1");
    await getBack(b, "b3");
    console.log(`# three gets: ${Math.round(performance.now() - t0)} ms`);

    // Each network has its own directory and records.
    const [ia, ib] = await Promise.all([identityOf(a), identityOf(b)]);
    const recordA = JSON.parse(await readFile(join(clientDir(), "networks", networkKey(ia), "magus", "1.json"), "utf8")) as { files: { manifest: string }[] };
    const recordB = JSON.parse(await readFile(join(clientDir(), "networks", networkKey(ib), "magus", "1.json"), "utf8")) as { files: { manifest: string }[] };
    assert.deepEqual(recordA.files.map((f) => f.manifest), [files.a1!.cid]);
    assert.deepEqual(recordB.files.map((f) => f.manifest), [files.b1!.cid]);
    assert.equal(existsSync(join(clientDir(), "magus")), false, "nothing in the old flat layout");
  });

  test("a get of one chain's CID against the other fails with ERR_OTHER_NETWORK naming both networks", async () => {
    const [ia, ib] = await Promise.all([identityOf(a), identityOf(b)]);
    const error = failed(await muri(b, ["get", files.a1!.cid!, "--magu", "1", "-o", join(work, "wrong.bin")]), "get of a's file on b");
    assert.equal(error.code, "ERR_OTHER_NETWORK");
    assert.ok(error.message.includes(ia.deployBlockHash.slice(0, 14)), error.message);
    assert.ok(error.message.includes(ib.deployBlockHash.slice(0, 14)), error.message);
    assert.match(error.message, /run muri get against the network it was put on/);
    assert.equal(existsSync(join(work, "wrong.bin")), false);
  });

  test("muri status --json names the network and the client directory's part for it", async () => {
    for (const [net, magus] of [
      [a, ["1"]],
      [b, ["1", "2"]],
    ] as const) {
      const id = await identityOf(net);
      const status = ok(await muri(net, ["status"]), "status") as { network: Json; client: Json };
      assert.deepEqual(status.network, {
        chainId: id.chainId,
        maguRegistry: id.maguRegistry,
        deployBlock: id.deployBlock.toString(),
        deployBlockHash: id.deployBlockHash,
      });
      assert.equal(status.client.networkDir, join(clientDir(), "networks", networkKey(id)));
      assert.deepEqual(status.client.magus, magus);
      assert.equal((status.client.otherNetworks as unknown[]).length, 1);
    }
  });

  test("an old flat-layout record is not used on another network and is adopted by its own", async () => {
    // The layout before this change: <dir>/magus/<id>.json, beside the same secret.
    const oldHome = join(work, "old-home");
    const oldDir = clientDir(oldHome);
    await mkdir(join(oldDir, "magus"), { recursive: true });
    await copyFile(join(clientDir(), "secret.key"), join(oldDir, "secret.key"));
    const [ia, ib] = await Promise.all([identityOf(a), identityOf(b)]);
    const legacy = join(oldDir, "magus", "1.json");
    await copyFile(join(clientDir(), "networks", networkKey(ia), "magus", "1.json"), legacy);

    // On b, Magu 1 is another Magu: the old record is neither used nor moved.
    const error = failed(await muri(b, ["get", files.a1!.cid!, "--magu", "1", "-o", join(work, "wrong.bin")], oldHome), "get of a's file on b (old layout)");
    assert.equal(error.code, "ERR_OTHER_NETWORK");
    assert.ok(error.message.includes(legacy), error.message);
    assert.equal(existsSync(legacy), true, "the old record stays where it is");
    assert.equal(existsSync(join(oldDir, "networks", networkKey(ib), "magus", "1.json")), false);

    // On a its manifests fold to Magu 1's root: it moves under a's network, once.
    await getBack(a, "a1", oldHome);
    assert.equal(existsSync(legacy), false, "adopted: moved out of the old layout");
    const adopted = JSON.parse(await readFile(join(oldDir, "networks", networkKey(ia), "magus", "1.json"), "utf8")) as { files: { manifest: string }[] };
    assert.deepEqual(adopted.files.map((f) => f.manifest), [files.a1!.cid]);
  });
});
