/**
 * Repair (repair.ts) when the other holders or the upload cannot be trusted: a real chain, four
 * storage nodes of real parts (LevelDB, fragment store on disk, libp2p on 127.0.0.1) and hostile
 * libp2p peers that a member's on-chain registration points to. Blob Magus k=2, m=1 on three of
 * the four nodes. Each case checks what the repair reports and that nothing wrong was stored.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { getAddress, type Address } from "viem";
import { getMuriContracts } from "../../../agents/chain/index.js";
import { encodeManifest } from "../../../agents/data/manifest.js";
import { fragmentsOfSlot, holderBlob } from "../../../agents/data/placement.js";
import { RemoteRefusedError, type P2PNode } from "../../../agents/p2p/index.js";
import { encodeMaguIndexList } from "../../../agents/roles/shared/magu-sync.js";
import { createRepairer, type Repairer } from "../../../agents/roles/node/repair.js";
import { cleanup, mineToVacancyWindow, signer } from "../chain/harness.js";
import {
  announce,
  commitRoots,
  createBlobMagu,
  encodeSmallFile,
  startClientPeer,
  startHostilePeer,
  startTestChain,
  startTestNode,
  testLogger,
  upload,
  withShard,
  type TestChain,
  type TestNode,
  manifestRoot,
  REPAIR_LAYOUT,
} from "./adversarial-helpers.js";

after(cleanup);

const { SHARD, CLIENT, K, M, FILE_BYTES } = REPAIR_LAYOUT;
const rootOf = manifestRoot;

describe("repair against lying holders, missing holders, a bad upload and a failed hand-over (real chain, stores, libp2p)", { timeout: 300_000 }, () => {
  let t: TestChain;
  const nodes: TestNode[] = [];
  let client: P2PNode;
  const hostile: Array<Awaited<ReturnType<typeof startHostilePeer>>> = [];
  const byAddress = (a: Address): TestNode => nodes.find((n) => n.address === a)!;
  let maguId: bigint;
  let members: Address[];
  let file: Awaited<ReturnType<typeof encodeSmallFile>>;

  /** A repairer over `node`'s parts with short bounds (2 attempts, 50 ms back-off). */
  const repairerOf = (node: TestNode, log = testLogger(`repair ${node.address}`)): { repair: Repairer; log: typeof log } => ({
    repair: createRepairer(
      { member: node.address, attempts: 2, backoffMs: 50, maxBackoffMs: 100, fetchTimeoutMs: 10_000, pushTimeoutMs: 10_000 },
      { store: node.store, index: node.index, p2p: node.p2p, contracts: t.reader, logger: log },
    ),
    log,
  });
  const shardsOf = async (node: TestNode, magu: bigint) => {
    const rec = (await node.index.get(magu))!;
    return rec.held.map((f) => rec.cids[f]!);
  };

  before(async () => {
    t = await startTestChain();
    for (let i = 1; i <= 4; i++) nodes.push(await startTestNode(t, t.chain.keys[i]!));
    client = await startClientPeer();
    ({ maguId, members } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: K, m: M, members: 3, maxFragments: 6 }));
    file = await encodeSmallFile(randomBytes(FILE_BYTES), K, M, SHARD);
    assert.equal(file.manifest.shards.length, 6);
    await commitRoots(t, t.chain.keys[CLIENT]!, maguId, rootOf(file.manifest), 6);
    await upload(client, maguId, members.map(byAddress), file);
  });

  after(async () => {
    await client?.stop();
    for (const h of hostile) await h.p2p.stop();
    for (const n of nodes) await n.close();
  });

  test("a lying holder and a missing one: nothing is rebuilt from their bytes; once both serve again, the slot is rebuilt exactly", async () => {
    const [a, , c] = members.map(byAddress) as [TestNode, TestNode, TestNode];
    const lost = await shardsOf(a, maguId);
    assert.equal(lost.length, 2, "one shard of each stripe");
    for (const cid of lost) assert.equal(await a.store.delete(cid), true);

    // c's registration points at a peer that serves other bytes of the right length under c's CIDs.
    const liar = await startHostilePeer();
    hostile.push(liar);
    for (const cid of await shardsOf(c, maguId)) liar.serve(cid, randomBytes(file.shards.get(cid.toString())!.length));
    await announce(t, c.clients, liar.p2p);
    let { repair, log } = repairerOf(a);
    let result = await repair.repairSlot({ maguId });
    assert.deepEqual({ ...result }, { maguId, slot: 0, assigned: 2, repaired: 0, present: 0, failed: 2 });
    for (const cid of lost) assert.equal(await a.store.has(cid), false, "nothing rebuilt from a lie");
    const skipped = log.entries.filter((e) => e.msg === "holder unreachable during repair, skipping it").map((e) => e.context!.holder);
    assert.deepEqual([...new Set(skipped)], [c.address], "the liar was caught and skipped");
    assert.match(String(log.entries.find((e) => e.context?.holder === c.address)!.context!.error), /CID|hash|match/i);
    await repair.stop();

    // Fewer than k holders: c's registration points at a stopped peer, b's is honest (1 < k = 2).
    const gone = await startHostilePeer();
    await announce(t, c.clients, gone.p2p);
    await gone.p2p.stop();
    ({ repair, log } = repairerOf(a));
    result = await repair.repairSlot({ maguId });
    assert.deepEqual({ ...result }, { maguId, slot: 0, assigned: 2, repaired: 0, present: 0, failed: 2 });
    for (const cid of lost) assert.equal(await a.store.has(cid), false);
    assert.equal(log.entries.filter((e) => e.msg === "stripe not rebuildable now").length, 4, "2 stripes x 2 attempts");
    await repair.stop();

    // Both serve: the slot is rebuilt, byte for byte.
    await announce(t, c.clients, c.p2p);
    ({ repair } = repairerOf(a));
    result = await repair.repairSlot({ maguId });
    assert.deepEqual({ ...result }, { maguId, slot: 0, assigned: 2, repaired: 2, present: 0, failed: 0 });
    for (const cid of lost) assert.deepEqual(Buffer.from(await a.store.get(cid)), file.shards.get(cid.toString()));
    await repair.stop();
  });

  test("a rebuilt shard that does not match its CID (a client's inconsistent parity) is not stored; the other stripe is", async () => {
    // Stripe 0's parity is random bytes (its own CID and root in the manifest): not the parity of the data.
    const honest = await encodeSmallFile(randomBytes(FILE_BYTES), K, M, SHARD);
    const bogus = randomBytes(honest.manifest.erasure.shardSize);
    const manifest = withShard(honest.manifest, K, bogus);
    const shards = new Map(honest.shards);
    shards.set(manifest.shards[K]!.toString(), bogus);
    const { bytes, cid } = encodeManifest(manifest);
    const { maguId: bad, members: badMembers } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: K, m: M, members: 3, maxFragments: 6 });
    await commitRoots(t, t.chain.keys[CLIENT]!, bad, rootOf(manifest), 6);
    await upload(client, bad, badMembers.map(byAddress), { manifest, manifestCid: cid, manifestBytes: bytes, shards });

    // The member holding data shard 0 of stripe 0 loses both its shards (one per stripe).
    const slot = holderBlob(bad, 0, 3, K, M);
    const x = byAddress(badMembers[slot]!);
    const held = fragmentsOfSlot(bad, 6, 3, slot, { k: K, m: M });
    assert.equal(held[0], 0);
    for (const f of held) assert.equal(await x.store.delete(manifest.shards[f]!), true);
    const { repair, log } = repairerOf(x);
    const result = await repair.repairSlot({ maguId: bad });
    await repair.stop();
    // The second attempt finds stripe 1 present (rebuilt by the first) and stripe 0 still failing.
    assert.deepEqual({ ...result }, { maguId: bad, slot, assigned: 2, repaired: 1, present: 1, failed: 1 });
    const mismatches = log.entries.filter((e) => e.msg === "rebuilt shard does not match its CID").map((e) => e.context!.fragment);
    assert.deepEqual(mismatches, [0, 0], "stripe 0, in each of the 2 attempts");
    assert.equal(await x.store.has(manifest.shards[0]!), false, "the wrong rebuild is not stored");
    assert.deepEqual(Buffer.from(await x.store.get(manifest.shards[held[1]!]!)), shards.get(manifest.shards[held[1]!]!.toString()), "stripe 1 rebuilt exactly");
  });

  test("a failed hand-over leaves the replacement nothing; a forged one is refused; an honest one lets it rebuild its slot", async () => {
    // The member of the last slot leaves; the node that never was a member is drafted in its place.
    const slot = members.length - 1;
    const leaver = byAddress(members[slot]!);
    const newcomer = nodes.find((n) => !members.includes(n.address))!;
    await t.wait(await getMuriContracts(t.d.contracts, leaver.clients).maguRegistry.write.leave([maguId]));
    await mineToVacancyWindow(t.reader, maguId, slot, (b) => t.mineTo(b));
    // Anyone may fill the vacancy (the validator does); here the client.
    await t.wait(await getMuriContracts(t.d.contracts, signer(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!)).maguRegistry.write.fillVacancy([maguId, slot]));
    const info = await t.reader.maguRegistry.read.maguInfo([maguId]);
    assert.equal(getAddress(info.members[slot]!), newcomer.address, "the only eligible node was drafted");
    const giver = byAddress(members[0]!);

    // The newcomer is unreachable (its registration points at a stopped peer): the hand-over gives up.
    const gone = await startHostilePeer();
    await announce(t, newcomer.clients, gone.p2p);
    await gone.p2p.stop();
    const { repair: giverRepair, log: giverLog } = repairerOf(giver);
    assert.equal(await giverRepair.handOver(maguId, newcomer.address), false);
    assert.equal(giverLog.entries.filter((e) => e.msg === "hand-over failed; retrying").length, 2);
    // Without the documents the newcomer's repair stores nothing and gives up.
    const { repair: newRepair, log: newLog } = repairerOf(newcomer);
    const empty = await newRepair.repairSlot({ maguId, slot });
    assert.equal(empty.repaired, 0);
    assert.equal(newLog.entries.filter((e) => e.msg === "waiting for the Magu documents").length, 2);
    assert.ok(newLog.entries.some((e) => e.msg === "repair gave up"));
    assert.equal(await newcomer.index.get(maguId), undefined);
    for (const cid of file.manifest.shards) assert.equal(await newcomer.store.has(cid), false);

    // Reachable again. A hostile member hands over a forged index (another file's manifest): refused.
    await announce(t, newcomer.clients, newcomer.p2p);
    const other = await encodeSmallFile(randomBytes(FILE_BYTES), K, M, SHARD);
    const forged = encodeMaguIndexList({ maguId, manifestCids: [other.manifestCid] });
    await client.addPeers([newcomer.p2p.multiaddrs[0]!]);
    await client.pushFragment(newcomer.p2p.peerId, other.manifestCid, other.manifestBytes, { timeoutMs: 20_000 });
    await assert.rejects(client.pushFragment(newcomer.p2p.peerId, forged.cid, forged.bytes, { timeoutMs: 20_000 }), (err: unknown) => {
      assert.ok(err instanceof RemoteRefusedError);
      assert.match(err.context.reason, /fold to/);
      return true;
    });
    assert.equal(await newcomer.index.get(maguId), undefined);

    // The honest hand-over: recorded, then the slot rebuilt from the two remaining members.
    assert.equal(await giverRepair.handOver(maguId, newcomer.address), true);
    const rec = await newcomer.index.get(maguId);
    assert.ok(rec);
    assert.deepEqual(rec.held, fragmentsOfSlot(maguId, 6, 3, slot, { k: K, m: M }));
    const result = await newRepair.repairSlot({ maguId, slot });
    assert.deepEqual({ ...result }, { maguId, slot, assigned: 2, repaired: 2, present: 0, failed: 0 });
    for (const f of rec.held) assert.deepEqual(Buffer.from(await newcomer.store.get(file.manifest.shards[f]!)), file.shards.get(file.manifest.shards[f]!.toString()));
    await giverRepair.stop();
    await newRepair.stop();
  });
});
