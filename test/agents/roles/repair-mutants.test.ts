/**
 * Repair (repair.ts) edge cases that `npm run mutate -- roles/repair` showed untested: who may
 * repair (a non-member, another slot, a vector Magu, a Magu with nothing committed), an index that
 * names another root or a store without the Magu documents, repairing only the fragments asked for,
 * a corrupt file on disk (found only by a verifying pass), a lying holder asked once per pass, a
 * vacant slot never asked; catching up with a missed batch (blob and vector), a vector replica's
 * holder refusing "access denied" until it has seen this node join, hand-over, restart, the
 * per-Magu lock, the self-repair queue, and stop() in the middle of each. Real chain, four storage
 * nodes of real parts (LevelDB, fragment store on disk, libp2p on 127.0.0.1); blob Magu k=2, m=1
 * on three of them; steered hostile peers stand in for a holder that refuses or holds a request.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { toHex, type Address } from "viem";
import { getMuriContracts } from "../../../agents/chain/index.js";
import { manifestCidOf, type Manifest } from "../../../agents/data/manifest.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { fragmentRoot, maguRoot } from "../../../agents/data/merkle.js";
import { holdersVector } from "../../../agents/data/placement.js";
import { encodeVectorManifest } from "../../../agents/data/vector-manifest.js";
import { packRecords, recordSize } from "../../../agents/data/vectors.js";
import type { P2PNode } from "../../../agents/p2p/index.js";
import { openFragmentStore, type FragmentStore } from "../../../agents/store/fragment-store.js";
import { blockPath, storePaths } from "../../../agents/store/layout.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import { createMaguIndex, type MaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { createRepairer, type RepairResult } from "../../../agents/roles/node/repair.js";
import { encodeMaguIndexList } from "../../../agents/roles/shared/magu-sync.js";
import { cleanup, tempDir, type LogEntry } from "../chain/harness.js";
import {
  announce,
  commitRoots,
  createBlobMagu,
  createVectorMagu,
  encodeSmallFile,
  startClientPeer,
  startHostilePeer,
  startTestChain,
  startTestNode,
  testLogger,
  upload,
  waitUntil,
  type TestChain,
  type TestNode,
  manifestRoot,
  REPAIR_LAYOUT,
} from "./adversarial-helpers.js";

after(cleanup);

const { SHARD, CLIENT, K, M, FILE_BYTES } = REPAIR_LAYOUT;
const rootOf = manifestRoot;
const zeros = (maguId: bigint, slot: number): RepairResult => ({ maguId, slot, assigned: 0, repaired: 0, present: 0, failed: 0 });

describe("repair: who may repair, which documents, which fragments, which holders (real chain, stores, libp2p)", { timeout: 300_000 }, () => {
  let t: TestChain;
  const nodes: TestNode[] = [];
  let client: P2PNode;
  const closers: Array<() => Promise<void>> = [];
  const byAddress = (a: Address): TestNode => nodes.find((n) => n.address === a)!;
  let maguId: bigint;
  let members: Address[];
  let file: Awaited<ReturnType<typeof encodeSmallFile>>;
  /** A formed blob Magu with nothing committed, and a formed vector Magu. */
  let empty: { maguId: bigint; members: Address[] };
  let vector: { maguId: bigint; members: Address[] };

  /** A repairer over `node`'s parts (or others given): 2 attempts, 50 ms back-off; 30 s per fetch (an honest holder on a loaded machine is slow, a liar or a stopped peer answers at once). */
  const repairerOf = (node: TestNode, parts: { store?: FragmentStore; index?: MaguIndex } = {}) => {
    const log = testLogger(`repair ${node.address}`);
    const repair = createRepairer(
      { member: node.address, attempts: 2, backoffMs: 50, maxBackoffMs: 100, fetchTimeoutMs: 30_000 },
      { store: parts.store ?? node.store, index: parts.index ?? node.index, p2p: node.p2p, contracts: t.reader, logger: log },
    );
    closers.push(() => repair.stop());
    /** What was logged above debug level, as [level, message]. */
    const said = () => log.entries.filter((e) => e.level !== "debug").map((e) => [e.level, e.msg]);
    return { repair, log, said };
  };
  /** The fragments `node` holds in `maguId`, by index, with their CIDs. */
  const heldBy = async (node: TestNode): Promise<Array<{ f: number; cid: Manifest["shards"][number] }>> => {
    const rec = (await node.index.get(maguId))!;
    return rec.held.map((f) => ({ f, cid: rec.cids[f]! }));
  };
  const deleteAll = async (node: TestNode) => {
    for (const { cid } of await heldBy(node)) await node.store.delete(cid);
  };
  const assertExact = async (node: TestNode) => {
    for (const { cid } of await heldBy(node)) assert.deepEqual(Buffer.from(await node.store.get(cid)), file.shards.get(cid.toString()), `${cid} rebuilt exactly`);
  };
  /** `store` with some of its methods replaced (the others called on `store` itself). */
  const overriding = (store: FragmentStore, methods: Partial<Pick<FragmentStore, "get" | "has">>): FragmentStore =>
    new Proxy(store, {
      get(target, key) {
        const own: unknown = key === "get" || key === "has" ? methods[key] : undefined;
        if (own !== undefined) return own;
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  /** The contexts logged with `msg`, in order. */
  const contexts = (log: { entries: LogEntry[] }, msg: string) => log.entries.filter((e) => e.msg === msg).map((e) => e.context);
  /** A meta DB and fragment store of their own (closed after the tests). */
  const freshParts = async () => {
    const dir = await tempDir("muri-repair-mutants-");
    const meta: MetaDb = await openMetaDb(join(dir, "meta"));
    const store = await openFragmentStore({ dir, quotaBytes: 64 * 1024 * 1024, metaDb: meta, sync: "none" });
    closers.push(async () => {
      await store.close();
      await meta.close();
    });
    return { store, index: createMaguIndex({}, { metaDb: meta }) };
  };
  /**
   * Commits six fragments of 3 records (dim 4) to the vector Magu `v` and gives every member its
   * replicas and the index document, as after a put. Returns the fragments, their CIDs, the index
   * document and the holders (addresses) of each fragment.
   */
  const putVectorBatch = async (v: { maguId: bigint; members: Address[] }) => {
    const DIM = 4;
    const PER = 3;
    const info = await t.reader.maguRegistry.read.maguInfo([v.maguId]);
    const records = Array.from({ length: 6 * PER }, (_, i) => ({ id: BigInt(i), values: Int16Array.from({ length: DIM }, (_, j) => (i * 31 + j * 7) % 300) }));
    const fragments = [...packRecords(records, DIM, PER * recordSize(DIM))];
    assert.equal(fragments.length, 6);
    const roots = fragments.map((f) => fragmentRoot(f));
    const cids = fragments.map((f) => fragmentCid(f));
    const doc = encodeVectorManifest({ maguId: v.maguId, dim: DIM, metric: "l2", fragments: fragments.map((f, i) => ({ cid: cids[i]!, root: roots[i]!.toString("hex"), size: f.length, count: PER })) });
    const root = `0x${maguRoot(roots).toString("hex")}` as const;
    await commitRoots(t, t.chain.keys[CLIENT]!, v.maguId, root, fragments.length);
    const holders = (f: number) => holdersVector(v.maguId, f, info.members.length, Number(info.params.replication)).map((slot) => v.members[slot]!);
    for (const address of v.members) {
      const node = byAddress(address);
      const held = fragments.map((_, f) => f).filter((f) => holders(f).includes(address));
      await node.index.recordFragments(v.maguId, root, roots, cids);
      await node.index.setHeld(v.maguId, held);
      for (const f of held) await node.store.put(cids[f]!, fragments[f]!);
      await node.store.put(doc.cid, doc.bytes);
    }
    return { fragments, cids, doc, holders };
  };

  before(async () => {
    t = await startTestChain();
    for (let i = 1; i <= 4; i++) nodes.push(await startTestNode(t, t.chain.keys[i]!));
    client = await startClientPeer();
    ({ maguId, members } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: K, m: M, members: 3, maxFragments: 6 }));
    file = await encodeSmallFile(randomBytes(FILE_BYTES), K, M, SHARD);
    await commitRoots(t, t.chain.keys[CLIENT]!, maguId, rootOf(file.manifest), 6);
    await upload(client, maguId, members.map(byAddress), file);
    empty = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: K, m: M, members: 3, maxFragments: 6 });
    vector = await createVectorMagu(t, t.chain.keys[CLIENT]!, { dim: 4, members: 3, replication: 2, maxFragments: 6 });
  });

  after(async () => {
    for (const close of closers) await close();
    await client?.stop();
    for (const n of nodes) await n.close();
  });

  test("only an active member of a blob Magu repairs, and only its own slot; a Magu with nothing committed is complete at once", async () => {
    const outsider = nodes.find((n) => !members.includes(n.address))!;
    let r = repairerOf(outsider);
    assert.deepEqual(await r.repair.repairSlot({ maguId }), zeros(maguId, -1));
    assert.deepEqual(r.said(), [["info", "repair skipped: not an active member"]]);

    // A member asked to repair another slot than its own.
    const a = byAddress(members[0]!);
    r = repairerOf(a);
    assert.deepEqual(await r.repair.repairSlot({ maguId, slot: 1 }), zeros(maguId, 1));
    assert.deepEqual(r.said(), [["info", "repair skipped: not an active member"]]);

    // A vector Magu's replicas are fetched by catchUp, never rebuilt.
    const v = byAddress(vector.members[0]!);
    r = repairerOf(v);
    assert.deepEqual(await r.repair.repairSlot({ maguId: vector.maguId }), zeros(vector.maguId, -1));
    assert.deepEqual(r.said(), [["info", "repair skipped: not an active member"]]);

    // Nothing committed: nothing to rebuild, no document to wait for.
    const e = byAddress(empty.members[1]!);
    r = repairerOf(e);
    assert.deepEqual(await r.repair.repairSlot({ maguId: empty.maguId }), zeros(empty.maguId, 1));
    assert.deepEqual(r.said(), [["info", "repair complete"]]);
    assert.deepEqual({ ...r.log.entries.find((x) => x.msg === "repair complete")!.context, ms: 0 }, { magu: empty.maguId.toString(), slot: 1, assigned: 0, repaired: 0, present: 0, ms: 0 });
  });

  test("an index of another root, or a store without the Magu documents, rebuilds nothing: the repair waits for the documents", async () => {
    const a = byAddress(members[0]!);
    await deleteAll(a);

    // The index names another file's fragments for this Magu; the store holds the right documents.
    const other = await encodeSmallFile(randomBytes(FILE_BYTES), K, M, SHARD);
    const stale = await freshParts();
    await stale.index.recordFragments(maguId, rootOf(other.manifest), other.manifest.roots.map((x) => Buffer.from(x, "hex")), other.manifest.shards);
    let r = repairerOf(a, { index: stale.index });
    assert.deepEqual(await r.repair.repairSlot({ maguId }), zeros(maguId, -1));
    const waited = [
      ["info", "waiting for the Magu documents"],
      ["info", "waiting for the Magu documents"],
      ["error", "repair gave up"],
    ];
    assert.deepEqual(r.said(), waited);
    const magu = maguId.toString();
    assert.deepEqual(contexts(r.log, "waiting for the Magu documents"), [
      { magu, attempt: 0 },
      { magu, attempt: 1 },
    ]);
    assert.deepEqual(contexts(r.log, "repair gave up"), [{ magu, slot: -1, assigned: 0, repaired: 0, present: 0, failed: 0, maguId: undefined }]);
    for (const { cid } of await heldBy(a)) assert.equal(await a.store.has(cid), false, "nothing rebuilt");

    // The right index, but a store without the manifest and index document. It holds others that
    // must not be taken for them: an index of this Magu listing another file of as many fragments
    // (the root it folds to is not the committed one), and an index of another Magu listing this
    // Magu's own manifest.
    const bare = await freshParts();
    await bare.index.recordFragments(maguId, rootOf(file.manifest), file.manifest.roots.map((x) => Buffer.from(x, "hex")), file.manifest.shards);
    const forged = encodeMaguIndexList({ maguId, manifestCids: [other.manifestCid] });
    const elsewhere = encodeMaguIndexList({ maguId: maguId + 1_000n, manifestCids: [file.manifestCid] });
    for (const [cid, bytes] of [
      [other.manifestCid, other.manifestBytes],
      [forged.cid, forged.bytes],
      [file.manifestCid, file.manifestBytes],
      [elsewhere.cid, elsewhere.bytes],
    ] as const) {
      await bare.store.put(cid, bytes);
    }
    r = repairerOf(a, { store: bare.store, index: bare.index });
    assert.deepEqual(await r.repair.repairSlot({ maguId }), zeros(maguId, -1));
    assert.deepEqual(r.said(), waited);
  });

  test("only the fragments asked for are rebuilt; a corrupt file is found by a verifying pass only; a verifying pass with nothing to do says nothing", async () => {
    const a = byAddress(members[0]!);
    const held = await heldBy(a);
    assert.equal(held.length, 2, "one shard of each stripe");
    for (const { cid } of held) assert.equal(await a.store.has(cid), false, "deleted by the test before");

    let r = repairerOf(a);
    assert.deepEqual(await r.repair.repairFragments(maguId, [held[1]!.f]), { maguId, slot: 0, assigned: 1, repaired: 1, present: 0, failed: 0 });
    assert.equal(await a.store.has(held[0]!.cid), false, "not asked for");
    assert.deepEqual(await r.repair.repairSlot({ maguId }), { maguId, slot: 0, assigned: 2, repaired: 1, present: 1, failed: 0 });
    const complete = r.log.entries.filter((e) => e.msg === "repair complete").map((e) => ({ ...e.context, ms: 0 }));
    assert.deepEqual(complete, [
      { magu: maguId.toString(), slot: 0, assigned: 1, repaired: 1, present: 0, ms: 0 },
      { magu: maguId.toString(), slot: 0, assigned: 2, repaired: 1, present: 1, ms: 0 },
    ]);
    await assertExact(a);
    assert.deepEqual(
      contexts(r.log, "fragment rebuilt"),
      [held[1]!, held[0]!].map(({ f, cid }) => ({ magu: maguId.toString(), fragment: f, cid: cid.toString() })),
      "the one asked for, then the other",
    );

    // Same length, other bytes on disk: the store's index still lists it.
    const bytes = file.shards.get(held[0]!.cid.toString())!;
    await writeFile(blockPath(storePaths(a.dir), held[0]!.cid), randomBytes(bytes.length));
    r = repairerOf(a);
    assert.deepEqual(await r.repair.repairSlot({ maguId }), { maguId, slot: 0, assigned: 2, repaired: 0, present: 2, failed: 0 });
    assert.deepEqual(await r.repair.repairSlot({ maguId, verify: true }), { maguId, slot: 0, assigned: 2, repaired: 1, present: 1, failed: 0 });
    await assertExact(a);

    // Self-repair of fragments that are fine: nothing rebuilt, nothing logged.
    r = repairerOf(a);
    assert.deepEqual(await r.repair.repairFragments(maguId, held.map((h) => h.f)), { maguId, slot: 0, assigned: 2, repaired: 0, present: 2, failed: 0 });
    assert.deepEqual(r.said(), []);
  });

  test("a holder caught lying is skipped for the rest of the pass: asked once per pass, not once per stripe", async () => {
    const [a, , c] = members.map(byAddress) as [TestNode, TestNode, TestNode];
    await deleteAll(a);
    const liar = await startHostilePeer();
    closers.push(() => liar.p2p.stop());
    for (const { cid } of await (async () => {
      const rec = (await c.index.get(maguId))!;
      return rec.held.map((f) => ({ cid: rec.cids[f]! }));
    })()) {
      liar.serve(cid, randomBytes(file.shards.get(cid.toString())!.length));
    }
    await announce(t, c.clients, liar.p2p);
    try {
      const r = repairerOf(a);
      assert.deepEqual(await r.repair.repairSlot({ maguId }), { maguId, slot: 0, assigned: 2, repaired: 0, present: 0, failed: 2 });
      const skipped = r.log.entries.filter((e) => e.msg === "holder unreachable during repair, skipping it").map((e) => e.context!.holder);
      assert.deepEqual(skipped, [c.address, c.address], "once in each of the 2 passes");
    } finally {
      await announce(t, c.clients, c.p2p);
    }
    const r = repairerOf(a);
    assert.deepEqual(await r.repair.repairSlot({ maguId }), { maguId, slot: 0, assigned: 2, repaired: 2, present: 0, failed: 0 });
    await assertExact(a);
  });

  test("a shard of another holder kept in this node's store is used without asking that holder", async () => {
    const [a, b] = members.map(byAddress) as [TestNode, TestNode];
    await deleteAll(a);
    // b is unreachable (its registration points at a stopped peer); a keeps a copy of b's shard of
    // stripe 0, so stripe 0 has k=2 shards (the copy and c's), stripe 1 only c's.
    const copy = (await heldBy(b)).find(({ f }) => f < K + M)!;
    await a.store.put(copy.cid, file.shards.get(copy.cid.toString())!);
    const gone = await startHostilePeer();
    await announce(t, b.clients, gone.p2p);
    await gone.p2p.stop();
    try {
      const r = repairerOf(a);
      const result = await r.repair.repairSlot({ maguId });
      // The second attempt finds stripe 0 present (rebuilt by the first) and stripe 1 still failing.
      assert.deepEqual(result, { maguId, slot: 0, assigned: 2, repaired: 1, present: 1, failed: 1 }, "stripe 0 rebuilt, stripe 1 not");
      const aStripe0 = (await heldBy(a)).find(({ f }) => f < K + M)!;
      assert.deepEqual(Buffer.from(await a.store.get(aStripe0.cid)), file.shards.get(aStripe0.cid.toString()));
      const asked = r.log.entries.filter((e) => e.msg === "holder unreachable during repair, skipping it").map((e) => e.context!.holder);
      assert.deepEqual(asked, [b.address, b.address], "b was asked for stripe 1 only, once per pass");
    } finally {
      await announce(t, b.clients, b.p2p);
      await a.store.delete(copy.cid);
    }
    const r = repairerOf(a);
    assert.deepEqual(await r.repair.repairSlot({ maguId }), { maguId, slot: 0, assigned: 2, repaired: 1, present: 1, failed: 0 });
    await assertExact(a);
  });

  test("a Magu of two files: fragments of the second file are found in its manifest and rebuilt from its stripes", async () => {
    const { maguId: two, members: twoMembers } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: K, m: M, members: 3, maxFragments: 12 });
    const files = [await encodeSmallFile(randomBytes(FILE_BYTES), K, M, SHARD), await encodeSmallFile(randomBytes(FILE_BYTES - 500), K, M, SHARD)];
    const roots = files.flatMap((f) => f.manifest.roots.map((x) => Buffer.from(x, "hex")));
    await commitRoots(t, t.chain.keys[CLIENT]!, two, `0x${maguRoot(roots).toString("hex")}`, 12);
    const index = encodeMaguIndexList({ maguId: two, manifestCids: files.map((f) => f.manifestCid) });
    const holders = twoMembers.map(byAddress);
    for (const node of holders) {
      await client.addPeers([node.p2p.multiaddrs[0]!]);
      for (const f of files) await client.pushFragment(node.p2p.peerId, f.manifestCid, f.manifestBytes, { timeoutMs: 20_000 });
      await client.pushFragment(node.p2p.peerId, index.cid, index.bytes, { timeoutMs: 20_000 });
    }
    const shardOf = (f: number) => {
      const fl = files[f < 6 ? 0 : 1]!;
      const cid = fl.manifest.shards[f < 6 ? f : f - 6]!;
      return { cid, bytes: fl.shards.get(cid.toString())! };
    };
    for (const node of holders) {
      const rec = (await node.index.get(two))!;
      for (const f of rec.held) await client.pushFragment(node.p2p.peerId, shardOf(f).cid, shardOf(f).bytes, { timeoutMs: 20_000 });
    }
    const x = holders[1]!;
    const held = (await x.index.get(two))!.held;
    assert.deepEqual(held.map((f) => Math.floor(f / (K + M))), [0, 1, 2, 3], "one shard of each of the four stripes, two in each file");
    for (const f of held) assert.equal(await x.store.delete(shardOf(f).cid), true);
    const r = repairerOf(x);
    assert.deepEqual(await r.repair.repairSlot({ maguId: two }), { maguId: two, slot: 1, assigned: 4, repaired: 4, present: 0, failed: 0 });
    for (const f of held) assert.deepEqual(Buffer.from(await x.store.get(shardOf(f).cid)), shardOf(f).bytes, `fragment ${f} rebuilt exactly`);
  });

  test("a member that missed a batch catches up: its documents from another member, then its shards rebuilt; a non-member, or an index no member serves, catches up nothing", async () => {
    const a = byAddress(members[0]!);
    const held = await heldBy(a);
    const index = encodeMaguIndexList({ maguId, manifestCids: [file.manifestCid] });
    const indexHex = toHex(index.cid.bytes);
    // The member lost the batch: its shards, its documents and its record of the Magu.
    await deleteAll(a);
    for (const cid of [file.manifestCid, index.cid]) assert.equal(await a.store.delete(cid), true);
    await a.index.remove(maguId);
    const taken: string[] = [];
    const take = async (cid: typeof index.cid, bytes: Uint8Array) => {
      taken.push(cid.toString());
      await a.sync.sink.put(cid, bytes);
    };
    const r = repairerOf(a);
    assert.equal(await r.repair.catchUp(maguId, indexHex, take), true);
    assert.deepEqual(taken, [file.manifestCid.toString(), index.cid.toString()], "the manifest the index lists, then the index");
    assert.deepEqual(r.said()[0], ["info", "caught up with a batch: documents taken"]);
    assert.deepEqual((await a.index.get(maguId))?.held, held.map((h) => h.f), "the Magu recorded again, the same fragments assigned");
    // A blob Magu: the member then repairs its own slot from the others' shards.
    await waitUntil("the member's shards rebuilt", async () => (await Promise.all(held.map(({ cid }) => a.store.has(cid)))).every(Boolean));
    await assertExact(a);

    // Not a member: asks nobody, takes nothing.
    const outsider = nodes.find((n) => !members.includes(n.address))!;
    const o = repairerOf(outsider);
    assert.equal(await o.repair.catchUp(maguId, indexHex, () => Promise.reject(new Error("nothing is taken"))), false);
    assert.deepEqual(o.said(), []);

    // An index document no member holds: every member asked on each attempt, then given up.
    const unknown = encodeMaguIndexList({ maguId, manifestCids: [file.manifestCid, file.manifestCid] });
    const u = repairerOf(a);
    assert.equal(await u.repair.catchUp(maguId, toHex(unknown.cid.bytes), () => Promise.reject(new Error("nothing is taken"))), false);
    assert.deepEqual(u.said(), [["warn", "could not catch up with a batch: no member served its index document"]]);
    assert.deepEqual(
      contexts(u.log, "member did not serve the batch documents").map((c) => c?.member),
      [members[1], members[2], members[1], members[2]],
      "the two other members asked on each of the 2 attempts",
    );
  });

  test("a member of a vector Magu catches up: the index document, then each replica it holds by CID from another holder; one no other holder has is counted missing", async () => {
    const { maguId: vmagu, members: vmembers } = vector;
    const { fragments, cids, doc, holders } = await putVectorBatch(vector);
    const x = byAddress(vmembers[0]!);
    const mine = (await x.index.get(vmagu))!.held;
    assert.ok(mine.length >= 3, `member 0 holds ${mine.length} replicas`);
    // The member lost its replicas but one; the first of them is lost by its other holder too.
    const [gone, kept, ...back] = mine as [number, number, ...number[]];
    for (const f of [gone, ...back]) assert.equal(await x.store.delete(cids[f]!), true);
    for (const a of holders(gone)) if (a !== x.address) assert.equal(await byAddress(a).store.delete(cids[gone]!), true);
    const taken: string[] = [];
    const take = async (cid: (typeof cids)[number], bytes: Uint8Array) => {
      taken.push(cid.toString());
      await x.store.put(cid, bytes);
    };
    const r = repairerOf(x);
    assert.equal(await r.repair.catchUp(vmagu, toHex(doc.cid.bytes), take), true);
    await waitUntil("the replica fetch's end", () => r.log.entries.some((e) => e.msg === "vector replicas fetched"));
    assert.deepEqual(taken, [doc.cid.toString(), ...back.map((f) => cids[f]!.toString())], "the index document, then each replica another holder has, once");
    for (const f of back) assert.deepEqual(Buffer.from(await x.store.get(cids[f]!)), fragments[f], `replica ${f} fetched exactly`);
    assert.equal(await x.store.has(cids[gone]!), false);
    assert.equal(await x.store.has(cids[kept]!), true, "the replica it kept is not fetched");
    const tries = r.log.entries.filter((e) => e.msg === "replica fetch failed").map((e) => e.context?.fragment);
    assert.deepEqual(tries, [gone], "the lost replica asked of its one other holder, once: nobody refused, so no second round");
    assert.deepEqual(r.log.entries.find((e) => e.msg === "vector replicas fetched")!.context, { magu: vmagu.toString(), held: mine.length, missing: 1 });
    assert.deepEqual(r.said(), [["info", "caught up with a batch: documents taken"], ["info", "vector replicas fetched"]]);

    // A take that keeps the document where this node's index never sees it: the Magu is not
    // recorded, so there is no replica to fetch, and nothing goes wrong.
    const elsewhere = await freshParts();
    const e = repairerOf(x, elsewhere);
    assert.equal(await e.repair.catchUp(vmagu, toHex(doc.cid.bytes), (cid, bytes) => elsewhere.store.put(cid, bytes)), true);
    await e.repair.stop(); // waits for the spawned replica fetch
    assert.deepEqual(e.said(), [["info", "caught up with a batch: documents taken"]]);
  });

  test("documents handed over to a member that lacks them; not to a non-member, nor by a node without them (an unreadable one skipped); a restart resumes what is missing", async () => {
    const [a, b] = members.map(byAddress) as [TestNode, TestNode];
    const index = encodeMaguIndexList({ maguId, manifestCids: [file.manifestCid] });
    const outsider = nodes.find((n) => !members.includes(n.address))!;
    let r = repairerOf(a);
    assert.equal(await r.repair.handOver(maguId, outsider.address), false);
    assert.deepEqual(r.said(), [["info", "hand-over skipped: not a member any more"]]);

    // A store whose one document is unreadable (a DAG-JSON entry cut short): skipped, said at debug level.
    const bare = await freshParts();
    const cut = Buffer.from(`{"magu":"${maguId}","manifest":`, "utf8");
    await bare.store.put(manifestCidOf(cut), cut);
    r = repairerOf(a, bare);
    assert.equal(await r.repair.handOver(maguId, b.address), false);
    assert.deepEqual(r.said(), [["warn", "hand-over skipped: this node has no documents for the committed root"]]);
    assert.deepEqual(
      contexts(r.log, "skipping unreadable document").map((c) => c?.cid),
      [manifestCidOf(cut).toString()],
    );

    for (const cid of [file.manifestCid, index.cid]) assert.equal(await b.store.delete(cid), true);
    r = repairerOf(a);
    assert.equal(await r.repair.handOver(maguId, b.address), true);
    assert.deepEqual(r.said(), [["info", "handed the Magu documents over"]]);
    assert.equal(r.log.entries.find((e) => e.msg === "handed the Magu documents over")!.context?.index, index.cid.toString());
    assert.deepEqual(Buffer.from(await b.store.get(file.manifestCid)), file.manifestBytes);
    assert.deepEqual(Buffer.from(await b.store.get(index.cid)), index.bytes);

    // resumeAll (a restart), over an index of this Magu alone: a held fragment missing is
    // repaired; once nothing is missing, nothing is resumed.
    const only = await freshParts();
    const held = await heldBy(b);
    await only.index.recordFragments(maguId, rootOf(file.manifest), file.manifest.roots.map((x) => Buffer.from(x, "hex")), file.manifest.shards);
    await only.index.setHeld(maguId, held.map((h) => h.f));
    assert.equal(await b.store.delete(held[0]!.cid), true);
    const resumed = repairerOf(b, { index: only.index });
    await resumed.repair.resumeAll();
    assert.deepEqual(resumed.log.entries.filter((e) => e.msg === "resuming repair").map((e) => e.context), [{ magu: maguId.toString(), missing: 1 }]);
    await waitUntil("the missing fragment rebuilt", () => b.store.has(held[0]!.cid));
    await assertExact(b);
    const again = repairerOf(b, { index: only.index });
    await again.repair.resumeAll();
    assert.deepEqual(again.said(), [], "nothing missing, nothing resumed");
  });

  test("two repairs of one Magu take turns (the second finds the work done); stop() ends a back-off at once and waits for what was spawned; a task's error is logged", async () => {
    const a = byAddress(members[0]!);
    const [first] = await heldBy(a);
    assert.equal(await a.store.delete(first!.cid), true);
    const r = repairerOf(a);
    const both = await Promise.all([r.repair.repairFragments(maguId, [first!.f]), r.repair.repairFragments(maguId, [first!.f])]);
    assert.deepEqual(
      both.map((x) => [x.repaired, x.present]),
      [
        [1, 0],
        [0, 1],
      ],
      "rebuilt once, then found present",
    );
    await assertExact(a);

    // A repair waiting for documents that will not come (a store without them), with a back-off
    // of a minute; a task of its own that ends after 300 ms; and one that fails.
    const bare = await freshParts();
    await bare.index.recordFragments(maguId, rootOf(file.manifest), file.manifest.roots.map((x) => Buffer.from(x, "hex")), file.manifest.shards);
    const log = testLogger("repair stop");
    const slow = createRepairer(
      { member: a.address, attempts: 5, backoffMs: 60_000, maxBackoffMs: 60_000, fetchTimeoutMs: 30_000 },
      { store: bare.store, index: bare.index, p2p: a.p2p, contracts: t.reader, logger: log },
    );
    let finished = false;
    slow.spawn("waiting repair", () => slow.repairSlot({ maguId }));
    slow.spawn("probe", () => new Promise<void>((resolve) => setTimeout(() => ((finished = true), resolve()), 300)));
    slow.spawn("failing probe", () => Promise.reject(new Error("the probe failed")));
    await waitUntil("the repair waiting", () => log.entries.some((e) => e.msg === "waiting for the Magu documents"));
    const since = Date.now();
    await slow.stop();
    assert.ok(Date.now() - since < 30_000, `stopped in ${Date.now() - since} ms, not after the minute's back-off`);
    assert.equal(finished, true, "stop() waited for the spawned task");
    assert.deepEqual(
      log.entries.filter((e) => e.level === "warn").map((e) => [e.msg, e.context?.error]),
      [["failing probe failed", "the probe failed"]],
      "the failed task is logged; the stopped repair is not",
    );
    slow.spawn("after stop", () => Promise.reject(new Error("ran after stop")));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(log.entries.filter((e) => e.msg === "after stop failed").length, 0, "nothing is spawned after stop()");
  });

  test("a replica refused as 'access denied' (its holder has not seen this node join) is asked again a second later, five rounds at most; another refusal is not asked again; a stop ends a held fetch quietly", async () => {
    const v = await createVectorMagu(t, t.chain.keys[CLIENT]!, { dim: 4, members: 3, replication: 2, maxFragments: 6 });
    const { fragments, cids, doc, holders } = await putVectorBatch(v);
    const x = byAddress(v.members[0]!);
    const mine = (await x.index.get(v.maguId))!.held;
    const f = mine[0]!;
    const h = byAddress(holders(f).find((a) => a !== x.address)!);
    // h's registration points at a peer that holds the replica and answers as the test says.
    let answer: () => string | undefined | Promise<string | undefined> = () => undefined;
    let unreadable = false;
    const asked: number[] = [];
    const steered = await startHostilePeer({
      authorizeFetch: ({ cid }) => {
        if (!cid.equals(cids[f]!)) return undefined;
        asked.push(Date.now());
        return answer();
      },
      read: () => {
        if (unreadable) throw new Error("disk unreadable");
      },
    });
    closers.push(() => steered.p2p.stop());
    steered.serve(cids[f]!, fragments[f]!);
    await announce(t, h.clients, steered.p2p);
    /** x loses the replica and catches up (the replica fetch is spawned, not awaited). */
    const begin = async () => {
      await x.store.delete(cids[f]!);
      asked.length = 0;
      const r = repairerOf(x);
      assert.equal(await r.repair.catchUp(v.maguId, toHex(doc.cid.bytes), (cid, bytes) => x.store.put(cid, bytes)), true);
      return r;
    };
    /** `begin`, then the fetch's failed tries and its closing line once it has ended. */
    const catchUp = async () => {
      const r = await begin();
      const fetched = await r.log.waitFor((e) => e.msg === "vector replicas fetched", 60_000);
      return { tries: contexts(r.log, "replica fetch failed").map((c) => c?.fragment), fetched: fetched.context };
    };
    const magu = v.maguId.toString();
    try {
      // Refused every time: five rounds a second apart, then counted missing.
      answer = () => "not a member yet";
      let got = await catchUp();
      assert.deepEqual(got.tries, [f, f, f, f, f]);
      assert.ok(asked.length === 5 && asked[4]! - asked[0]! >= 3_900, `asked ${asked.length} times over ${asked[asked.length - 1]! - asked[0]!} ms`);
      assert.deepEqual(got.fetched, { magu, held: mine.length, missing: 1 });
      assert.equal(await x.store.has(cids[f]!), false);

      // Refused twice, then served: taken in the third round.
      let refusals = 2;
      answer = () => (refusals-- > 0 ? "not a member yet" : undefined);
      got = await catchUp();
      assert.deepEqual(got.tries, [f, f]);
      assert.deepEqual(got.fetched, { magu, held: mine.length, missing: 0 });
      assert.deepEqual(Buffer.from(await x.store.get(cids[f]!)), fragments[f]);

      // The holder cannot read it ("fragment unavailable"): waiting would not help, asked once.
      answer = () => undefined;
      unreadable = true;
      got = await catchUp();
      assert.deepEqual(got.tries, [f]);
      assert.deepEqual(got.fetched, { magu, held: mine.length, missing: 1 });

      // Stopped while the holder holds the fetch: it ends, nothing more is asked or logged.
      unreadable = false;
      let release = (): void => undefined;
      answer = () => new Promise<undefined>((resolve) => (release = () => resolve(undefined)));
      const r = await begin();
      try {
        await waitUntil("the fetch held by the holder", () => asked.length === 1);
        await r.repair.stop();
      } finally {
        release();
      }
      assert.deepEqual(r.said(), [["info", "caught up with a batch: documents taken"]]);
      assert.deepEqual(contexts(r.log, "replica fetch failed"), []);
      assert.equal(asked.length, 1);
    } finally {
      await announce(t, h.clients, h.p2p);
    }
  });

  test("stop() ends a catch-up and a hand-over in flight with 'repair stopped', no retry logged; a stopped repairer refuses every call at once", async () => {
    const [a, b] = members.map(byAddress) as [TestNode, TestNode];
    const indexHex = toHex(encodeMaguIndexList({ maguId, manifestCids: [file.manifestCid] }).cid.bytes);
    // b's registration points at a peer that holds every fetch and push until released.
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let fetches = 0;
    let pushes = 0;
    const steered = await startHostilePeer({
      authorizeFetch: async () => {
        fetches++;
        await held;
        return "released";
      },
      acceptPush: async () => {
        pushes++;
        await held;
        return false;
      },
    });
    closers.push(() => steered.p2p.stop());
    await announce(t, b.clients, steered.p2p);
    const nothingTaken = () => Promise.reject(new Error("nothing is taken"));
    try {
      const r = repairerOf(a);
      const caught = r.repair.catchUp(maguId, indexHex, nothingTaken);
      const handed = r.repair.handOver(maguId, b.address);
      await waitUntil("the catch-up's fetch and the hand-over's push held by b", () => fetches > 0 && pushes > 0);
      await r.repair.stop();
      await assert.rejects(caught, { message: "repair stopped" });
      await assert.rejects(handed, { message: "repair stopped" });
      assert.deepEqual(r.said(), []);
    } finally {
      release();
      await announce(t, b.clients, b.p2p);
    }

    // Stopped before it is asked anything (an outsider: asked to go on, it would answer "not a member").
    const outsider = nodes.find((n) => !members.includes(n.address))!;
    const o = repairerOf(outsider);
    await o.repair.stop();
    await assert.rejects(o.repair.catchUp(maguId, indexHex, nothingTaken), { message: "repair stopped" });
    await assert.rejects(o.repair.handOver(maguId, b.address), { message: "repair stopped" });
    await assert.rejects(o.repair.repairSlot({ maguId }), { message: "repair stopped" });
    assert.deepEqual(o.said(), []);
  });

  test("a self-repair request verifies the slot and rebuilds a file that rotted; requests made while one is queued are that one pass; a request after it ends is a new pass", async () => {
    const a = byAddress(members[0]!);
    const held = await heldBy(a);
    const mine = new Set(held.map(({ cid }) => cid.toString()));
    let reads = 0;
    // a's store, counting the reads of a's own fragments.
    const counted = overriding(a.store, {
      get: (cid, options) => {
        if (mine.has(cid.toString())) reads++;
        return a.store.get(cid, options);
      },
    });
    const r = repairerOf(a, { store: counted });
    assert.equal((await r.repair.repairSlot({ maguId })).failed, 0, "the slot complete to begin with");
    const rot = (cid: (typeof held)[number]["cid"]) => writeFile(blockPath(storePaths(a.dir), cid), randomBytes(file.shards.get(cid.toString())!.length));
    const completed = () => contexts(r.log, "repair complete").length;
    const before = completed();
    reads = 0;

    await rot(held[0]!.cid);
    for (let i = 0; i < 3; i++) r.repair.requestSelfRepair(maguId);
    await waitUntil("the first self-repair", () => completed() === before + 1);
    await rot(held[1]!.cid);
    r.repair.requestSelfRepair(maguId);
    await waitUntil("the second self-repair", () => completed() === before + 2);
    await assertExact(a);
    const pass = { magu: maguId.toString(), slot: 0, assigned: 2, repaired: 1, present: 1, ms: 0 };
    assert.deepEqual(
      contexts(r.log, "repair complete")
        .slice(before)
        .map((c) => ({ ...c, ms: 0 })),
      [pass, pass],
    );
    // Two passes, each reading the slot's two fragments once; the second request came after the
    // first pass, so it waited for any pass queued before it.
    assert.equal(reads, 4, "three requests made together were one pass");
  });

  test("a pass that fails (the store cannot be read) is logged with its error and retried, then given up; nothing is rebuilt", async () => {
    const a = byAddress(members[0]!);
    const mine = new Set((await heldBy(a)).map(({ cid }) => cid.toString()));
    // The documents read fine; the slot's own fragments cannot be looked up.
    const failing = overriding(a.store, { has: (cid) => (mine.has(cid.toString()) ? Promise.reject(new Error("EIO: i/o error, read")) : a.store.has(cid)) });
    const r = repairerOf(a, { store: failing });
    assert.deepEqual(await r.repair.repairSlot({ maguId }), zeros(maguId, -1));
    assert.deepEqual(r.said(), [
      ["warn", "repair pass failed; retrying"],
      ["warn", "repair pass failed; retrying"],
      ["error", "repair gave up"],
    ]);
    assert.deepEqual(
      contexts(r.log, "repair pass failed; retrying"),
      [0, 1].map((attempt) => ({ magu: maguId.toString(), attempt, error: "EIO: i/o error, read" })),
    );
  });

  test("a vacant slot (its member left) is not asked for shards", async () => {
    const [a, , c] = members.map(byAddress) as [TestNode, TestNode, TestNode];
    await t.wait(await getMuriContracts(t.d.contracts, c.clients).maguRegistry.write.leave([maguId]));
    assert.match((await t.reader.maguRegistry.read.maguInfo([maguId])).members[2]!, /^0x0{40}$/);
    await deleteAll(a);
    const r = repairerOf(a);
    assert.deepEqual(await r.repair.repairSlot({ maguId }), { maguId, slot: 0, assigned: 2, repaired: 0, present: 0, failed: 2 });
    assert.deepEqual(
      r.said(),
      [
        ["warn", "stripe not rebuildable now"],
        ["warn", "stripe not rebuildable now"],
        ["warn", "repair incomplete; retrying"],
        ["warn", "stripe not rebuildable now"],
        ["warn", "stripe not rebuildable now"],
        ["warn", "repair incomplete; retrying"],
        ["error", "repair gave up"],
      ],
      "one holder of k=2 left; the vacant slot is not a holder that failed",
    );
    assert.deepEqual(
      contexts(r.log, "stripe not rebuildable now").map((c) => [c?.magu, c?.stripe]),
      [0, 1, 0, 1].map((stripe) => [maguId.toString(), stripe]),
    );
    assert.deepEqual(contexts(r.log, "repair incomplete; retrying"), [
      { magu: maguId.toString(), attempt: 0, failed: 2 },
      { magu: maguId.toString(), attempt: 1, failed: 2 },
    ]);
  });
});
