/**
 * The client directory's per-network records (agents/roles/client/client-record.ts), on the file system
 * alone: networks with the same chain id and MaguRegistry kept apart by the deployment block hash,
 * network.json compared on every open, old-layout records adopted without overwriting, and the
 * lookups `muri get` and `muri status` use. The same flows against two real chains:
 * e2e-networks.test.ts.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";
import type { Hex } from "viem";
import { networkKey, type NetworkIdentity } from "../../../agents/chain/index.js";
import {
  adoptLegacyRecord,
  appendMaguRecord,
  findMagusRecording,
  findRecordsElsewhere,
  legacyRecordPath,
  lockMaguRecord,
  MaguBusyError,
  MaguRecordError,
  NetworkMismatchError,
  openNetworkRecords,
  readLegacyRecord,
  readMaguRecord,
  summarizeClientDir,
  addSpareMagu,
  listSpareMagus,
  takeSpareMagu,
} from "../../../agents/roles/client/client-record.js";
import { cleanup, tempDir } from "../chain/harness.js";

const REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
const network = (hash: string): NetworkIdentity => ({ chainId: 31337, maguRegistry: REGISTRY, deployBlock: 23n, deployBlockHash: `0x${hash.padEnd(64, "0")}` as Hex });
/** Two fresh chains: same id, same addresses, same deployment block, different hashes. */
const A = network("aa");
const B = network("bb");
const cid = (n: number): CID => CID.createV1(0x55, createDigest(0x12, new Uint8Array(32).fill(n)));
const file = (n: number, shards = 4) => ({ manifestCid: cid(n), shards, fileSize: 1000 * n });

after(cleanup);

describe("client records per network", () => {
  test("findMagusRecording: the Magus of this network whose record lists a manifest (muri get CID)", async () => {
    const root = await tempDir("muri-client-record-");
    const a = await openNetworkRecords(root, A);
    const b = await openNetworkRecords(root, B);
    await appendMaguRecord(a, 3n, file(1), 0);
    await appendMaguRecord(a, 3n, file(2), 4);
    await appendMaguRecord(a, 7n, file(2), 0);
    await appendMaguRecord(b, 5n, file(9), 0);
    assert.deepEqual(await findMagusRecording(a, cid(1)), [3n], "one Magu");
    assert.deepEqual(await findMagusRecording(a, cid(2)), [3n, 7n], "two: the caller must choose");
    assert.deepEqual(await findMagusRecording(a, cid(9)), [], "another network's record does not count");
    assert.deepEqual(await findMagusRecording(b, cid(9)), [5n]);
    await writeFile(join(a.dir, "magus", "8.json"), "{not json");
    assert.deepEqual(await findMagusRecording(a, cid(1)), [3n], "an unreadable record is skipped");
  });

  test("Magu 1 of two networks with the same id and addresses are two records", async () => {
    const root = await tempDir("muri-client-record-");
    const a = await openNetworkRecords(root, A, { rpcUrl: "http://127.0.0.1:8545" });
    const b = await openNetworkRecords(root, B);
    assert.notEqual(a.dir, b.dir);
    assert.equal(a.dir, join(root, "networks", networkKey(A)));
    await appendMaguRecord(a, 1n, file(1), 0);
    // The report: with one record per Magu id this append failed ("ends at fragment 4, cannot add a file at 0").
    await appendMaguRecord(b, 1n, file(2, 6), 0);
    assert.deepEqual((await readMaguRecord(a, 1n)).map((f) => f.manifestCid.toString()), [cid(1).toString()]);
    assert.deepEqual((await readMaguRecord(b, 1n)).map((f) => f.manifestCid.toString()), [cid(2).toString()]);
    await assert.rejects(appendMaguRecord(a, 1n, file(3), 0), (err: unknown) => err instanceof MaguRecordError && /ends at fragment 4, cannot add a file at 0/.test(err.message));
    const stored = JSON.parse(await readFile(join(a.dir, "network.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(stored, { version: 1, chainId: 31337, maguRegistry: REGISTRY, deployBlock: "23", deployBlockHash: A.deployBlockHash, rpcUrl: "http://127.0.0.1:8545" });
    // Opening again compares and accepts.
    await openNetworkRecords(root, A);
  });

  test("a network.json that names another network is refused with both networks in the message", async () => {
    const root = await tempDir("muri-client-record-");
    await openNetworkRecords(root, A);
    // Same key (the first 12 hex digits of the hash), different hash: only network.json can tell.
    const twin: NetworkIdentity = { ...A, deployBlockHash: `0x${"aa".padEnd(62, "0")}ff` as Hex };
    assert.equal(networkKey(twin), networkKey(A));
    await assert.rejects(openNetworkRecords(root, twin), (err: unknown) => {
      assert.ok(err instanceof NetworkMismatchError);
      assert.equal(err.code, "ERR_NETWORK_MISMATCH");
      assert.ok(err.message.includes(A.deployBlockHash.slice(0, 14)) && err.message.includes("deployed at block 23"), err.message);
      assert.match(err.message, /move .* aside .* or pass another --client-dir/);
      return true;
    });
    await writeFile(join(root, "networks", networkKey(A), "network.json"), "{not json");
    await assert.rejects(openNetworkRecords(root, A), (err: unknown) => err instanceof NetworkMismatchError && /cannot be read/.test(err.message));
  });

  test("locks are per network", async () => {
    const root = await tempDir("muri-client-record-");
    const a = await openNetworkRecords(root, A);
    const b = await openNetworkRecords(root, B);
    const release = await lockMaguRecord(a, 1n);
    await assert.rejects(lockMaguRecord(a, 1n), MaguBusyError);
    const other = await lockMaguRecord(b, 1n);
    other();
    release();
    (await lockMaguRecord(a, 1n))();
  });

  test("old-layout records: read apart, adopted by a move that never overwrites", async () => {
    const root = await tempDir("muri-client-record-");
    const a = await openNetworkRecords(root, A);
    const b = await openNetworkRecords(root, B);
    await mkdir(join(root, "magus"));
    const legacy = JSON.stringify({ magu: "1", files: [{ manifest: cid(7).toString(), offset: 0, shards: 4, fileSize: 7000 }] });
    await writeFile(legacyRecordPath(root, 1n), legacy);
    await writeFile(legacyRecordPath(root, 2n), legacy); // names Magu 1: malformed as a record of 2
    await writeFile(legacyRecordPath(root, 3n), legacy.replace('"1"', '"3"'));

    assert.deepEqual(await readMaguRecord(a, 1n), [], "an old record is not this network's until adopted");
    assert.equal((await readLegacyRecord(root, 1n))?.files[0]?.manifestCid.toString(), cid(7).toString());
    await assert.rejects(readLegacyRecord(root, 2n), MaguRecordError);
    assert.equal(await readLegacyRecord(root, 4n), undefined);

    // b already has its own Magu 3: the old record is not moved over it.
    await appendMaguRecord(b, 3n, file(9), 0);
    assert.equal(await adoptLegacyRecord(b, 3n), false);
    assert.equal((await readMaguRecord(b, 3n))[0]?.manifestCid.toString(), cid(9).toString());
    assert.ok(existsSync(legacyRecordPath(root, 3n)));

    assert.equal(await adoptLegacyRecord(a, 1n), true);
    assert.equal(existsSync(legacyRecordPath(root, 1n)), false);
    assert.equal((await readMaguRecord(a, 1n))[0]?.manifestCid.toString(), cid(7).toString());
    assert.equal(await adoptLegacyRecord(b, 1n), false, "once: it is gone from the old layout");
  });

  test("findRecordsElsewhere and summarizeClientDir see the other networks and the old layout", async () => {
    const root = await tempDir("muri-client-record-");
    const a = await openNetworkRecords(root, A, { rpcUrl: "http://127.0.0.1:8545" });
    const b = await openNetworkRecords(root, B);
    await appendMaguRecord(a, 1n, file(1), 0);
    await appendMaguRecord(a, 1n, file(2), 4);
    await appendMaguRecord(b, 1n, file(3), 0);
    await mkdir(join(root, "magus"));
    await writeFile(legacyRecordPath(root, 5n), JSON.stringify({ magu: "5", files: [{ manifest: cid(2).toString(), offset: 0, shards: 4, fileSize: 1 }] }));

    const seen = await findRecordsElsewhere(b, cid(2));
    assert.deepEqual(
      seen.map((s) => ({ magu: s.maguId, hash: s.network?.deployBlockHash, rpcUrl: s.network?.rpcUrl })),
      [
        { magu: 1n, hash: A.deployBlockHash, rpcUrl: "http://127.0.0.1:8545" },
        { magu: 5n, hash: undefined, rpcUrl: undefined },
      ],
    );
    assert.deepEqual(await findRecordsElsewhere(b, cid(3)), [], "its own network's record is not 'elsewhere'");

    const summary = await summarizeClientDir(root, B);
    assert.equal(summary.networkDir, b.dir);
    assert.deepEqual(summary.magus, [1n]);
    assert.deepEqual(summary.legacyMagus, [5n]);
    assert.deepEqual(summary.otherNetworks.map((n) => n.deployBlockHash), [A.deployBlockHash]);
    const fresh = await summarizeClientDir(await tempDir("muri-client-record-"), A);
    assert.deepEqual([fresh.magus, fresh.legacyMagus, fresh.otherNetworks], [[], [], []]);
  });

  test("spare Magus: taken only by a put of their exact shape, each by one taker, kept per network", async () => {
    const root = await tempDir("muri-client-record-");
    const a = await openNetworkRecords(root, A);
    const b = await openNetworkRecords(root, B);
    const shape = { k: 2, m: 1, members: 3, durationPeriods: "100", price: "1000", shards: 9 };
    assert.deepEqual(await listSpareMagus(a), { spares: [], unreadable: [] }, "none before any is kept");
    assert.equal(await takeSpareMagu(a, shape), undefined);
    await addSpareMagu(a, { maguId: "12", ...shape });
    await addSpareMagu(a, { maguId: "4", ...shape });
    await addSpareMagu(a, { maguId: "30", ...shape, shards: 12 });
    await assert.rejects(addSpareMagu(a, { maguId: "0x4", ...shape }), /spare Magu id "0x4" is not a Magu id/);
    await writeFile(join(a.dir, "spares", "77.json"), "{not json");
    await writeFile(join(a.dir, "spares", "78.json"), JSON.stringify({ maguId: "79", ...shape }));
    const listed = await listSpareMagus(a);
    assert.deepEqual(listed.spares.map((s) => s.maguId), ["4", "12", "30"], "lowest id first, by value");
    assert.deepEqual(listed.unreadable.map((f) => f.slice(a.dir.length)).sort(), ["/spares/77.json", "/spares/78.json"], "a broken file and one named for another Magu");
    // Every field of the shape must match: a put of another shape pays for its own Magu.
    for (const [field, value] of [["k", 3], ["m", 2], ["members", 4], ["durationPeriods", "101"], ["price", "999"], ["shards", 10]] as const) {
      assert.equal(await takeSpareMagu(a, { ...shape, [field]: value }), undefined, `another ${field}`);
    }
    assert.equal(await takeSpareMagu(b, shape), undefined, "another network's spares are not this one's");
    // Two takers at once get two different spares, then there are none of that shape left.
    const [one, two, three] = await Promise.all([takeSpareMagu(a, shape), takeSpareMagu(a, shape), takeSpareMagu(a, shape)]);
    assert.deepEqual([one?.maguId, two?.maguId, three?.maguId].sort(), ["12", "4", undefined].sort());
    assert.deepEqual(await takeSpareMagu(a, { ...shape, shards: 12 }), { maguId: "30", ...shape, shards: 12 });
    assert.deepEqual((await listSpareMagus(a)).spares, [], "taken spares are off the list");
    assert.equal((await listSpareMagus(a)).unreadable.length, 2, "unreadable files are left for the user");
    await addSpareMagu(a, { maguId: "41", ...shape });
    assert.deepEqual((await summarizeClientDir(root, A)).spareMagus, [41n], "muri status lists the readable spares");
    assert.deepEqual((await summarizeClientDir(root, B)).spareMagus, []);
  });
});
