/**
 * End to end on a local chain: `hardhat node` + deployment, five storage node processes
 * (agents/roles/node/run-node.ts, each with its own directory, key and stake) and a client in the test
 * process. The client puts a 20 MiB random file into a blob Magu (k=3, m=2, five members), gets it
 * back byte for byte, then two holders are killed with SIGKILL and the file still comes back
 * identical (every stripe is rebuilt from the three shards left); one of them is restarted from its
 * directory (same identity, new port, registration updated) and, with only k nodes up, serves its
 * shards again.
 *
 * Before the kills, directories: a tree with nested and empty folders, empty files, modes, a
 * symlink and 100 small files is put as one pack in one Magu; the real `muri ls` lists it; a get
 * restores it byte for byte with modes (and refuses to write into it again without force); a
 * `path` get fetches one file with only its fragment; compression round-trips a directory (auto,
 * per file) and a single zstd-compressed file.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { type PutResult, type StorageClient } from "../../../agents/roles/client/client.js";
import { muri as runMuri } from "../cli/run-muri.js";
import { randomFile, sha256File, snapshotTree, startClient, startNetwork, tearDown, type Network, type NodeProcess } from "./e2e-helpers.js";

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

  test("directories: put DIR, muri ls, get -o DIR, get --path, compressed round trips", async () => {
    let t0 = performance.now();
    const tree = join(dir, "tree");
    await mkdir(join(tree, "a/b/c"), { recursive: true });
    await mkdir(join(tree, "empty-dir"));
    await mkdir(join(tree, "small"));
    await writeFile(join(tree, "empty.txt"), "");
    await writeFile(join(tree, "a/b/c/empty"), "");
    await writeFile(join(tree, "a/random.bin"), randomBytes(1 << 20));
    await writeFile(join(tree, "a/b/app.log"), "GET /muri 200 12ms\n".repeat(50_000));
    await writeFile(join(tree, "run.sh"), "#!/bin/sh\necho muri\n", { mode: 0o750 });
    await chmod(join(tree, "a/random.bin"), 0o600);
    for (let i = 0; i < 100; i++) await writeFile(join(tree, "small", `f${String(i).padStart(3, "0")}.txt`), `small file ${i}\n`.repeat(1 + i));
    await symlink("a/b/app.log", join(tree, "log"));
    const want = await snapshotTree(tree);

    const put = await client.putDirectory(tree, { k: K, m: M, members: NODES });
    assert.deepEqual([put.directory.files, put.directory.directories, put.directory.symlinks, put.directory.compressed], [105, 5, 1, 0]);
    // 105 files in one Magu, one stripe: not a Magu or a stripe per file.
    assert.equal(put.shards, K + M);
    console.log(`# put DIR (105 files, ${put.directory.bytes} bytes): ${Math.round(performance.now() - t0)} ms, ${put.shards} shards`);

    // The real `muri ls`, from another client directory holding the same secret (the CLI may not
    // open this client's directory while it runs).
    t0 = performance.now();
    const cliDir = join(dir, "cli-client");
    await mkdir(cliDir, { mode: 0o700 });
    await copyFile(join(dir, `client-${NODES + 1}`, "secret.key"), join(cliDir, "secret.key"));
    await chmod(join(cliDir, "secret.key"), 0o600);
    const ls = await runMuri(["ls", put.manifestCid.toString(), "--magu", put.maguId.toString(), "--json", "--deployment", net.deploymentFile, "--rpc", net.chain.rpcUrl, "--key", net.chain.keys[NODES + 1]!, "--client-dir", cliDir], {}, 120_000);
    assert.equal(ls.code, 0, ls.stderr);
    const listed = (JSON.parse(ls.stdout) as { entries: { path: string; kind: string; size?: number; mode?: string; target?: string }[] }).entries;
    assert.deepEqual(listed.map((e) => e.path).sort(), Object.keys(want).sort());
    for (const e of listed) {
      const local = want[e.path]!.split(" ");
      assert.equal(e.kind === "symlink" ? "link" : e.kind, local[0], e.path);
      if (e.kind === "file") assert.deepEqual([e.mode, e.size], [`0${local[1]}`, Number(local[2])], e.path);
      if (e.kind === "symlink") assert.equal(e.target, local[1]);
    }
    console.log(`# muri ls: ${Math.round(performance.now() - t0)} ms`);

    t0 = performance.now();
    const out = join(dir, "tree-out");
    const got = await client.get(put, out);
    assert.deepEqual([got.kind, got.failed], ["directory", 0]);
    assert.deepEqual(await snapshotTree(out), want);
    await assert.rejects(client.get(put, out), /is not empty: pass --force/);
    assert.equal((await client.get(put, out, { force: true })).kind, "directory");
    const one = await client.get(put, join(dir, "f042.txt"), { path: "small/f042.txt" });
    assert.deepEqual(await readFile(join(dir, "f042.txt")), await readFile(join(tree, "small/f042.txt")));
    assert.ok(one.fetched < K, `one small file (with the trailer and nodes) took ${one.fetched} shards`);
    await assert.rejects(client.get(put, join(dir, "x"), { path: "no/such" }), /has no entry no\/such \(muri ls/);
    console.log(`# get -o DIR (twice), get --path: ${Math.round(performance.now() - t0)} ms`);

    // Compressed: a directory (auto, per file) and a single zstd file.
    t0 = performance.now();
    const zipped = await client.putDirectory(tree, { k: K, m: M, members: NODES, compress: "auto" });
    assert.ok(zipped.directory.compressed >= 2, "the log and the small text files are compressed");
    assert.ok(zipped.directory.packSize < zipped.directory.bytes * 0.7, `pack ${zipped.directory.packSize} of ${zipped.directory.bytes}`);
    const zout = join(dir, "tree-zstd");
    await client.get(zipped, zout);
    assert.deepEqual(await snapshotTree(zout), want);
    const log = join(tree, "a/b/app.log");
    const file = await client.put(log, { k: K, m: M, members: NODES, compress: "zstd" });
    assert.equal(file.compression, "zstd");
    assert.ok(file.fileSize < 100_000, `the log stored as ${file.fileSize} bytes`);
    const fileOut = join(dir, "app.log");
    const fileGot = await client.get(file, fileOut);
    assert.deepEqual([fileGot.kind, fileGot.fileSize], ["file", 50_000 * 19]);
    assert.equal(await sha256File(fileOut), await sha256File(log));
    console.log(`# compressed directory and file, put and get: ${Math.round(performance.now() - t0)} ms`);
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
