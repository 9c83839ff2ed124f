/**
 * Hostile pushes against the Magu sync of real storage nodes (magu-sync.ts): a real chain, nodes of
 * real parts (LevelDB, fragment store on disk, libp2p on 127.0.0.1) registered on chain, and a
 * client that is a real libp2p peer sending what an honest or a lying client would. Each refusal
 * is checked for its reason and for what it must leave behind: nothing stored, nothing recorded in
 * the Magu index, no fragment assigned.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import type { Address, Hex } from "viem";
import { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";
import { encodeVectorManifest } from "../../../agents/data/vector-manifest.js";
import { packRecords, recordSize, type VectorRecord } from "../../../agents/data/vectors.js";
import { encodeManifest, manifestCidOf, type Manifest } from "../../../agents/data/manifest.js";
import { fragmentRoot, maguRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { RemoteRefusedError, createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { MAX_CONCURRENT_DOCUMENTS, MAX_DOCUMENT_BYTES, REFUSALS_BEFORE_BAN, createMaguSync, encodeMaguIndexList } from "../../../agents/roles/shared/magu-sync.js";
import { sha256 } from "multiformats/hashes/sha2";
import { identity } from "multiformats/hashes/identity";
import { StagedManifests } from "../../../agents/roles/shared/staged-manifests.js";
import { ackSigner, batchDomain, getMuriContracts, openTypedData, proposalTypedData } from "../../../agents/chain/index.js";
import { privateKeyToAccount } from "viem/accounts";
import { E18, cleanup, fund, signer, startRpcProxy } from "../chain/harness.js";
import { commitRoots, createBlobMagu, createVectorMagu, encodeSmallFile, startTestChain, startTestNode, waitUntil, withShard, type TestChain, type TestNode } from "./adversarial-helpers.js";
import { commitWithAcks } from "./commit-helpers.js";

after(cleanup);

const SHARD = 4096;
const CLIENT = 5; // dev account of the client

const rootOf = (manifest: Manifest): Hex => `0x${maguRoot(manifest.roots.map((r) => Buffer.from(r, "hex"))).toString("hex")}`;

/** Asserts `push` is refused by the remote with a reason matching `reason`. */
async function refused(push: Promise<void>, reason: RegExp): Promise<void> {
  await assert.rejects(push, (err: unknown) => {
    assert.ok(err instanceof RemoteRefusedError, `refused, not ${String(err)}`);
    assert.match(err.context.reason, reason);
    return true;
  });
}

describe("magu-sync refuses hostile pushes (real chain, stores and libp2p)", { timeout: 300_000 }, () => {
  let t: TestChain;
  const nodes: TestNode[] = [];
  let client: P2PNode;
  const byAddress = (a: Address): TestNode => nodes.find((n) => n.address === a)!;
  // Magu 1: k=1, m=1, two members of the three nodes; a two-stripe file.
  let magu1: bigint;
  let members1: Address[];
  let file1: Awaited<ReturnType<typeof encodeSmallFile>>;
  let index1: { bytes: Buffer; cid: CID };
  // Magu 2: k=2, m=1, all three nodes.
  let magu2: bigint;

  before(async () => {
    t = await startTestChain();
    for (let i = 1; i <= 3; i++) nodes.push(await startTestNode(t, t.chain.keys[i]!, { vectors: true }));
    client = await createP2PNode({ source: { has: () => false, get: () => new Uint8Array() }, sink: { put: () => undefined } });
    await client.start();

    ({ maguId: magu1, members: members1 } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: 1, m: 1, members: 2, maxFragments: 4 }));
    file1 = await encodeSmallFile(randomBytes(SHARD + 1000), 1, 1, SHARD);
    assert.equal(file1.manifest.shards.length, 4);
    await commitRoots(t, t.chain.keys[CLIENT]!, magu1, rootOf(file1.manifest), 4);
    index1 = encodeMaguIndexList({ maguId: magu1, manifestCids: [file1.manifestCid] });

    ({ maguId: magu2 } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: 2, m: 1, members: 3, maxFragments: 3 }));
  });

  after(async () => {
    await client?.stop();
    for (const n of nodes) await n.close();
  });

  const push = (to: TestNode, cid: CID, bytes: Uint8Array) => client.pushFragment(to.p2p.peerId, cid, bytes, { timeoutMs: 20_000 });
  const addrs = async () => {
    for (const n of nodes) await client.addPeers([n.p2p.multiaddrs[0]!]);
  };

  test("control: a member takes the honest manifest and index, then exactly its assigned shards", async () => {
    await addrs();
    for (const [slot, address] of members1.entries()) {
      const node = byAddress(address);
      await push(node, file1.manifestCid, file1.manifestBytes);
      await push(node, index1.cid, index1.bytes);
      const rec = await node.index.get(magu1);
      assert.ok(rec, "index recorded");
      const held = fragmentsOfSlot(magu1, 4, 2, slot, { k: 1, m: 1 });
      assert.deepEqual(rec.held, held);
      assert.equal(node.sync.held().get(magu1), held.length);
      for (const f of held) {
        const cid = file1.manifest.shards[f]!;
        await push(node, cid, file1.shards.get(cid.toString())!);
        assert.equal(await node.store.has(cid), true);
      }
    }
  });

  test("a push past the node's capacity (its store quota) is refused before a byte is read, naming the free space; within it, taken", async () => {
    const node = byAddress(members1[0]!);
    const held = fragmentsOfSlot(magu1, 4, 2, 0, { k: 1, m: 1 });
    const cid = file1.manifest.shards[held[0]!]!;
    const bytes = file1.shards.get(cid.toString())!;
    assert.equal(await node.store.delete(cid), true, "the control test stored it");
    const { usedBytes, quotaBytes } = node.store.stats();
    node.store.setQuota(usedBytes + bytes.length - 1);
    try {
      await refused(push(node, cid, bytes), new RegExp(`^store full: the push needs ${bytes.length} bytes, ${bytes.length - 1} of this node's ${usedBytes + bytes.length - 1}-byte capacity free$`));
      assert.equal(await node.store.has(cid), false);
      assert.equal(node.store.stats().usedBytes, usedBytes, "nothing written");
      node.store.setQuota(usedBytes + bytes.length);
      await push(node, cid, bytes);
      assert.equal(await node.store.has(cid), true, "exactly the free space is enough");
    } finally {
      node.store.setQuota(quotaBytes);
    }
  });

  test("a raw fragment this node is not assigned is refused before a byte is read, and not stored", async () => {
    const first = byAddress(members1[0]!);
    const stranger = randomBytes(2048);
    const strangerCid = fragmentCid(stranger);
    await refused(push(first, strangerCid, stranger), /^push not accepted$/);
    assert.equal(await first.store.has(strangerCid), false);
    // (With k=1, m=1 the parity shard is a copy of the data shard: both members hold the same
    // CIDs, so a shard of this Magu pushed to a member is never "not its own". The outsider test
    // below pushes real shards of the Magu to a node that holds none of them.)
  });

  test("the sink stores no unassigned fragment even behind a node that accepts every push", async () => {
    // The same sink and store behind a libp2p node with no push policy (a wiring mistake).
    const node = byAddress(members1[0]!);
    const open = await createP2PNode({ source: node.store, sink: node.sync.sink });
    await open.start();
    try {
      await client.addPeers([open.multiaddrs[0]!]);
      const stranger = randomBytes(3000);
      const cid = fragmentCid(stranger);
      await refused(client.pushFragment(open.peerId, cid, stranger, { timeoutMs: 20_000 }), /not stored: .*fragment not assigned to this node/);
      assert.equal(await node.store.has(cid), false);
    } finally {
      await open.stop();
    }
  });

  test("a node that is not a member refuses the index, records nothing and takes none of the Magu's shards", async () => {
    const outsider = nodes.find((n) => !members1.includes(n.address))!;
    // Manifests are taken from anyone (they are checked against their CID); the index is not.
    await push(outsider, file1.manifestCid, file1.manifestBytes);
    await refused(push(outsider, index1.cid, index1.bytes), /this node is not a member/);
    assert.equal(await outsider.index.get(magu1), undefined);
    assert.equal(await outsider.store.has(index1.cid), false);
    assert.equal(outsider.sync.held().has(magu1), false);
    for (const cid of file1.manifest.shards) {
      await refused(push(outsider, cid, file1.shards.get(cid.toString())!), /^push not accepted$/);
      assert.equal(await outsider.store.has(cid), false);
    }
  });

  test("a forged index (a manifest whose roots do not fold to the committed root) is refused and changes nothing", async () => {
    const member = byAddress(members1[0]!);
    const before = await member.index.get(magu1);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 3 }), fc.uint8Array({ minLength: 1, maxLength: 4096, size: "max" }), async (i, bytes) => {
        const forged = withShard(file1.manifest, i, bytes);
        fc.pre(forged.roots[i] !== file1.manifest.roots[i]);
        const { bytes: mBytes, cid: mCid } = encodeManifest(forged);
        const idx = encodeMaguIndexList({ maguId: magu1, manifestCids: [mCid] });
        await push(member, mCid, mBytes);
        await refused(push(member, idx.cid, idx.bytes), /fold to 0x[0-9a-f]{64} over 4 fragments; chain has/);
        assert.equal(await member.store.has(idx.cid), false);
        assert.equal(await member.store.has(mCid), false, "the forged manifest never reached the disk");
        assert.deepEqual(await member.index.get(magu1), before, "the honest record stands");
        // The forged shard is not assigned: it is refused too.
        await refused(push(member, forged.shards[i]!, bytes), /^push not accepted$/);
        assert.equal(await member.store.has(forged.shards[i]!), false);
      }),
      { numRuns: 6 },
    );
    // The honest file's index for another Magu id does not fold to that Magu's root either.
    const wrongMagu = encodeMaguIndexList({ maguId: magu2, manifestCids: [file1.manifestCid] });
    for (const n of nodes) {
      await push(n, file1.manifestCid, file1.manifestBytes);
      await refused(push(n, wrongMagu.cid, wrongMagu.bytes), /k=1 m=1, Magu k=2 m=1|fold to/);
      assert.equal(await n.index.get(magu2), undefined);
    }
  });

  test("batch proposals: only the owner's, for the next batch, within the paid size; no acknowledgement without the data", async () => {
    const { maguId: magu3 } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: 2, m: 1, members: 3, maxFragments: 3 });
    const file = await encodeSmallFile(randomBytes(1500), 2, 1, SHARD);
    const index = encodeMaguIndexList({ maguId: magu3, manifestCids: [file.manifestCid] });
    const root = rootOf(file.manifest);
    const domain = batchDomain(t.d.chainId, t.d.contracts.maguRegistry);
    const sign = (key: Hex, p: { batch: number; root: Hex; fragmentCount: number }) =>
      privateKeyToAccount(key).signTypedData(proposalTypedData(domain, { magu: magu3, ...p, indexCid: `0x${Buffer.from(index.cid.bytes).toString("hex")}` }));
    const propose = async (node: TestNode, key: Hex, p: { batch: number; root: Hex; fragmentCount: number }) =>
      node.sync.handleBatchRequest({ op: "batch.propose", magu: magu3.toString(), ...p, indexCid: index.cid.toString(), signature: await sign(key, p) });
    const honest = { batch: 0, root, fragmentCount: 3 };
    const node = nodes[0]!;
    await assert.rejects(propose(node, t.chain.keys[6]!, honest), /signed by 0x[0-9a-fA-F]{40}, the owner is/);
    await assert.rejects(propose(node, t.chain.keys[CLIENT]!, { ...honest, batch: 1 }), /the next batch is 0/);
    await assert.rejects(propose(node, t.chain.keys[CLIENT]!, { ...honest, fragmentCount: 6 }), /within the paid 3/);
    await assert.rejects(node.sync.handleBatchRequest({ op: "batch.propose", magu: magu3.toString(), ...honest, indexCid: index.cid.toString(), signature: "0x1234" }), /"signature" must be/);
    assert.equal(node.sync.pending(magu3), undefined, "no refused proposal was kept");
    // Without a proposal, the batch's index document is checked against the chain (no data there).
    await push(node, file.manifestCid, file.manifestBytes);
    await refused(push(node, index.cid, index.bytes), /over 3 fragments; chain has 0x0{40}/);

    assert.deepEqual(await propose(node, t.chain.keys[CLIENT]!, honest), { ok: true });
    const ack = () => node.sync.handleBatchRequest({ op: "batch.ack", magu: magu3.toString(), batch: 0 }) as Promise<{ ok: boolean; error?: string; signature?: Hex }>;
    const early = await ack();
    assert.equal(early.ok, false);
    assert.match(early.error ?? "", /has not arrived/);
    await push(node, index.cid, index.bytes);
    const rec = await node.index.get(magu3);
    assert.equal(rec?.root, root, "recorded against the proposal, before any commit");
    const missing = await ack();
    assert.equal(missing.ok, false);
    assert.match(missing.error ?? "", new RegExp(`${rec!.held.length} of the ${rec!.held.length} fragments assigned here are missing`));
    for (const f of rec!.held) await push(node, file.manifest.shards[f]!, file.shards.get(file.manifest.shards[f]!.toString())!);
    const given = await ack();
    assert.equal(given.ok, true, given.error);
    const signerOf = await ackSigner(domain, { magu: magu3, batch: 0, root, fragmentCount: 3, member: node.address }, given.signature!);
    assert.equal(signerOf, node.address, "the member signed its acknowledgement");
    // A batch number other than the proposal's gets nothing.
    const other = (await node.sync.handleBatchRequest({ op: "batch.ack", magu: magu3.toString(), batch: 1 })) as { ok: boolean; error: string; signature?: Hex };
    assert.equal(other.ok, false);
    assert.equal(other.signature, undefined);
    assert.match(other.error, /no proposal of batch 1/);

    // Never committed: once its time is up the proposal is dropped with the data it brought.
    assert.equal(await node.sync.sweep(Date.now()), 0, "not before its time");
    assert.equal(await node.sync.sweep(Date.now() + 11 * 60_000), 1, "dropped after it");
    assert.equal(node.sync.pending(magu3), undefined);
    for (const f of rec!.held) {
      const cid = file.manifest.shards[f]!;
      assert.equal(await node.store.has(cid), false, `shard ${f} deleted`);
      assert.equal(node.sync.isAssigned(cid), false, `shard ${f} no longer accepted`);
    }
    assert.deepEqual((await node.index.get(magu3))?.held ?? [], [], "nothing held");
  });

  test("batch openings: only the owner's, for the pusher it names, within the batch's count; the index keeps only what it places here", async () => {
    const { maguId: magu4, members: members4 } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: 2, m: 1, members: 3, maxFragments: 3 });
    // Two full data chunks: no shard of this file is a padding shard another file shares.
    const file = await encodeSmallFile(randomBytes(6000), 2, 1, SHARD);
    const shardBytes = (i: number) => file.shards.get(file.manifest.shards[i]!.toString())!;
    const domain = batchDomain(t.d.chainId, t.d.contracts.maguRegistry);
    const pusherHex = (p: P2PNode): Hex => `0x${Buffer.from(p.peerId.toMultihash().bytes).toString("hex")}`;
    const open = async (node: TestNode, key: Hex, o: { batch: number; fragmentCount: number; magu?: bigint }, signedFor = client, sentFor = client) =>
      node.sync.handleBatchRequest({
        op: "batch.open",
        magu: (o.magu ?? magu4).toString(),
        batch: o.batch,
        fragmentCount: o.fragmentCount,
        pusher: sentFor.peerId.toString(),
        signature: await privateKeyToAccount(key).signTypedData(openTypedData(domain, { magu: o.magu ?? magu4, batch: o.batch, fragmentCount: o.fragmentCount, pusher: pusherHex(signedFor) })),
      });
    const honest = { batch: 0, fragmentCount: 3 };
    const node = byAddress(members4[0]!);
    const other = await createP2PNode({ source: { has: () => false, get: () => new Uint8Array() }, sink: { put: () => undefined } });
    await other.start();
    try {
      for (const n of nodes) await other.addPeers([n.p2p.multiaddrs[0]!]);
      await assert.rejects(open(node, t.chain.keys[6]!, honest), /signed by 0x[0-9a-fA-F]{40}, the owner is/);
      await assert.rejects(open(node, t.chain.keys[CLIENT]!, honest, other, client), /signed by 0x[0-9a-fA-F]{40}, the owner is/, "signed for another pusher");
      await assert.rejects(open(node, t.chain.keys[CLIENT]!, { ...honest, batch: 1 }), /the next batch is 0/);
      await assert.rejects(open(node, t.chain.keys[CLIENT]!, { ...honest, fragmentCount: 4 }), /within the paid 3/);
      await assert.rejects(node.sync.handleBatchRequest({ op: "batch.open", magu: magu4.toString(), ...honest, pusher: "not-a-peer", signature: `0x${"11".repeat(65)}` }), /"pusher" "not-a-peer" is not a peer id/);
      assert.equal(node.sync.opened(magu4), undefined, "no refused opening was kept");
      await refused(push(node, file.manifest.shards[0]!, shardBytes(0)), /^push not accepted$/);

      assert.deepEqual(await open(node, t.chain.keys[CLIENT]!, honest), { ok: true });
      assert.equal(node.sync.opened(magu4)?.budget, 3);
      const logged = (n: TestNode, msg: string) => n.log.entries.filter((e) => e.msg === msg && e.context?.magu === magu4.toString()).map((e) => e.context);
      assert.deepEqual(logged(node, "batch opened"), [{ magu: magu4.toString(), batch: 0, fragmentCount: 3, pusher: client.peerId.toString() }]);
      // Another peer gets nothing in; the pusher gets in at most the batch's count.
      await refused(other.pushFragment(node.p2p.peerId, file.manifest.shards[0]!, shardBytes(0), { timeoutMs: 20_000 }), /^push not accepted$/);
      for (let i = 0; i < 3; i++) await push(node, file.manifest.shards[i]!, shardBytes(i));
      const extra = randomBytes(2048);
      await refused(push(node, fragmentCid(extra), extra), /^push not accepted$/);
      assert.equal(await node.store.has(fragmentCid(extra)), false, "nothing past the count is stored");
      for (const cid of file.manifest.shards) assert.equal(await node.store.has(cid), true, "unplaced, but kept until the index");

      // The index places one shard here: the two others are deleted, the opening is closed.
      const index = encodeMaguIndexList({ maguId: magu4, manifestCids: [file.manifestCid] });
      const root = rootOf(file.manifest);
      const signature = await privateKeyToAccount(t.chain.keys[CLIENT]!).signTypedData(
        proposalTypedData(domain, { magu: magu4, batch: 0, root, fragmentCount: 3, indexCid: `0x${Buffer.from(index.cid.bytes).toString("hex")}` }),
      );
      assert.deepEqual(await node.sync.handleBatchRequest({ op: "batch.propose", magu: magu4.toString(), batch: 0, root, fragmentCount: 3, indexCid: index.cid.toString(), signature }), { ok: true });
      await push(node, file.manifestCid, file.manifestBytes);
      await push(node, index.cid, index.bytes);
      const held = fragmentsOfSlot(magu4, 3, 3, 0, { k: 2, m: 1 });
      assert.equal(held.length, 1);
      file.manifest.shards.forEach((cid, f) => assert.equal(node.sync.isAssigned(cid), held.includes(f)));
      for (const [f, cid] of file.manifest.shards.entries()) assert.equal(await node.store.has(cid), held.includes(f), `shard ${f} kept only if placed here`);
      assert.equal(node.sync.opened(magu4), undefined);
      const ack = (await node.sync.handleBatchRequest({ op: "batch.ack", magu: magu4.toString(), batch: 0 })) as { ok: boolean; error?: string };
      assert.equal(ack.ok, true, ack.error);
      // What the member logged of it: the proposal, the two unplaced shards it dropped, its acknowledgement.
      assert.deepEqual(logged(node, "batch proposed"), [{ magu: magu4.toString(), batch: 0, fragmentCount: 3, index: index.cid.toString() }]);
      assert.deepEqual(logged(node, "unplaced fragments dropped"), [{ magu: magu4.toString(), batch: 0, fragments: 2, why: "not placed here by the batch's index" }]);
      assert.deepEqual(logged(node, "batch acknowledged"), [{ magu: magu4.toString(), batch: 0, fragments: 3, held: 1 }]);

      // An opening whose index never comes is dropped after its time with what it brought.
      const late = byAddress(members4[1]!);
      assert.deepEqual(await open(late, t.chain.keys[CLIENT]!, honest), { ok: true });
      for (let i = 0; i < 2; i++) await push(late, file.manifest.shards[i]!, shardBytes(i));
      assert.equal(await late.sync.sweep(Date.now()), 0, "not before its time");
      assert.equal(await late.sync.sweep(Date.now() + 11 * 60_000), 1, "dropped after it");
      assert.equal(late.sync.opened(magu4), undefined);
      assert.deepEqual(logged(late, "unplaced fragments dropped"), [{ magu: magu4.toString(), batch: 0, fragments: 2, why: "the batch's index did not arrive in time" }]);
      for (let i = 0; i < 2; i++) assert.equal(await late.store.has(file.manifest.shards[i]!), false, `shard ${i} deleted`);
      await refused(push(late, file.manifest.shards[2]!, shardBytes(2)), /^push not accepted$/);
    } finally {
      await other.stop();
    }
  });

  test("an append batch's opening admits only its new fragments: the count it names minus the committed ones", async () => {
    const { maguId, members } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: 2, m: 1, members: 3, maxFragments: 6 });
    // Batch 0: three fragments committed (acknowledged by the members' keys).
    const first = Array.from({ length: 3 }, () => randomBytes(2048));
    await commitWithAcks(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!, t.chain.keys, maguId, first.map((f) => fragmentRoot(f)));
    const domain = batchDomain(t.d.chainId, t.d.contracts.maguRegistry);
    const pusher = `0x${Buffer.from(client.peerId.toMultihash().bytes).toString("hex")}` as Hex;
    const node = byAddress(members[0]!);
    const signature = await privateKeyToAccount(t.chain.keys[CLIENT]!).signTypedData(openTypedData(domain, { magu: maguId, batch: 1, fragmentCount: 6, pusher }));
    assert.deepEqual(await node.sync.handleBatchRequest({ op: "batch.open", magu: maguId.toString(), batch: 1, fragmentCount: 6, pusher: client.peerId.toString(), signature }), { ok: true });
    assert.equal(node.sync.opened(maguId)?.budget, 3, "6 named - 3 committed");
    const next = Array.from({ length: 4 }, () => randomBytes(2048));
    for (let i = 0; i < 3; i++) await push(node, fragmentCid(next[i]!), next[i]!);
    await refused(push(node, fragmentCid(next[3]!), next[3]!), /^push not accepted$/);
    assert.equal(await node.store.has(fragmentCid(next[3]!)), false, "nothing past the batch's new fragments is stored");
  });

  test("a vector batch not committed in time leaves the store and the search index; the committed document is back", async () => {
    const DIM = 8;
    const PER = 5;
    const { maguId: vmagu } = await createVectorMagu(t, t.chain.keys[CLIENT]!, { dim: DIM, members: 3, replication: 3, maxFragments: 3 });
    const all: VectorRecord[] = Array.from({ length: 2 * PER }, (_, i) => ({ id: BigInt(i), values: Int16Array.from({ length: DIM }, (_, j) => (i * 37 + j * 11) % 500) }));
    const fragments = [...packRecords(all, DIM, PER * recordSize(DIM))];
    assert.equal(fragments.length, 2);
    const roots = fragments.map((f) => fragmentRoot(f));
    const docOf = (n: number) =>
      encodeVectorManifest({ maguId: vmagu, dim: DIM, metric: "l2", fragments: fragments.slice(0, n).map((f, i) => ({ cid: fragmentCid(f), root: roots[i]!.toString("hex"), size: f.length, count: PER })) });
    const node = nodes[0]!;
    const vectors = node.vectors!;
    // Batch 0 (fragment 0) committed; batch 1 (fragment 1) proposed, delivered, never committed.
    await commitWithAcks(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!, t.chain.keys, vmagu, roots.slice(0, 1));
    const doc0 = docOf(1);
    await push(node, doc0.cid, doc0.bytes);
    await push(node, fragmentCid(fragments[0]!), fragments[0]!);
    const doc1 = docOf(2);
    const root1 = `0x${maguRoot(roots).toString("hex")}` as Hex;
    const domain = batchDomain(t.d.chainId, t.d.contracts.maguRegistry);
    const signature = await privateKeyToAccount(t.chain.keys[CLIENT]!).signTypedData(
      proposalTypedData(domain, { magu: vmagu, batch: 1, root: root1, fragmentCount: 2, indexCid: `0x${Buffer.from(doc1.cid.bytes).toString("hex")}` }),
    );
    assert.deepEqual(await node.sync.handleBatchRequest({ op: "batch.propose", magu: vmagu.toString(), batch: 1, root: root1, fragmentCount: 2, indexCid: doc1.cid.toString(), signature }), { ok: true });
    await push(node, doc1.cid, doc1.bytes);
    await push(node, fragmentCid(fragments[1]!), fragments[1]!);
    const query = all[PER + 2]!.values;
    await waitUntil("fragment 1 indexed", async () => (await vectors.search(vmagu, query, 1, { exact: true })).hits[0]?.fragment === 1);

    assert.ok((await node.sync.sweep(Date.now() + 11 * 60_000)) >= 1);
    assert.equal(node.sync.pending(vmagu), undefined);
    assert.equal(await node.store.has(fragmentCid(fragments[1]!)), false, "the uncommitted fragment is deleted");
    assert.equal(await node.store.has(doc1.cid), false, "and its document");
    assert.equal(await node.store.has(fragmentCid(fragments[0]!)), true, "the committed one stays");
    assert.equal((await vectors.manifest(vmagu))?.cid.toString(), doc0.cid.toString(), "the committed document is current again");
    const { hits } = await vectors.search(vmagu, query, 2 * PER, { exact: true });
    assert.deepEqual(
      hits.map((h) => h.id).sort((a, b) => Number(a - b)),
      all.slice(0, PER).map((r) => r.id),
      "only the committed records are searched",
    );
    assert.deepEqual((await node.index.get(vmagu))?.fragmentCount, 1);
  });

  test("a batch recorded under a proposal a restart forgot is still dropped after its time", async () => {
    const { maguId: magu6, members: members6 } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: 2, m: 1, members: 3, maxFragments: 3 });
    const file = await encodeSmallFile(randomBytes(6000), 2, 1, SHARD);
    const index = encodeMaguIndexList({ maguId: magu6, manifestCids: [file.manifestCid] });
    const root = rootOf(file.manifest);
    const domain = batchDomain(t.d.chainId, t.d.contracts.maguRegistry);
    const signature = await privateKeyToAccount(t.chain.keys[CLIENT]!).signTypedData(
      proposalTypedData(domain, { magu: magu6, batch: 0, root, fragmentCount: 3, indexCid: `0x${Buffer.from(index.cid.bytes).toString("hex")}` }),
    );
    const node = byAddress(members6[2]!);
    await node.sync.handleBatchRequest({ op: "batch.propose", magu: magu6.toString(), batch: 0, root, fragmentCount: 3, indexCid: index.cid.toString(), signature });
    await push(node, file.manifestCid, file.manifestBytes);
    await push(node, index.cid, index.bytes);
    const rec = await node.index.get(magu6);
    for (const f of rec!.held) await push(node, file.manifest.shards[f]!, file.shards.get(file.manifest.shards[f]!.toString())!);
    // The same store and index under a new sync, as after a restart: the proposal is gone.
    const restarted = createMaguSync({ member: node.address }, { store: node.store, index: node.index, contracts: t.reader });
    await restarted.load();
    assert.equal(restarted.pending(magu6), undefined);
    for (const f of rec!.held) assert.equal(restarted.isAssigned(file.manifest.shards[f]!), true, "still held until its time");
    assert.equal(await restarted.sweep(Date.now()), 0, "not before its time");
    assert.ok((await restarted.sweep(Date.now() + 11 * 60_000)) >= 1, "dropped after it");
    for (const f of rec!.held) assert.equal(await node.store.has(file.manifest.shards[f]!), false, `shard ${f} deleted`);
    assert.deepEqual((await node.index.get(magu6))?.held ?? [], [], "nothing held");
  });

  test("every batch request and document refusal names its reason and keeps nothing", async () => {
    const domain = batchDomain(t.d.chainId, t.d.contracts.maguRegistry);
    const owner = privateKeyToAccount(t.chain.keys[CLIENT]!);
    const pusher: Hex = `0x${Buffer.from(client.peerId.toMultihash().bytes).toString("hex")}`;
    const openReq = async (node: TestNode | { sync: typeof nodes[0]["sync"] }, magu: bigint, batch: number, fragmentCount: number, signature?: Hex) =>
      node.sync.handleBatchRequest({
        op: "batch.open",
        magu: magu.toString(),
        batch,
        fragmentCount,
        pusher: client.peerId.toString(),
        signature: signature ?? (await owner.signTypedData(openTypedData(domain, { magu, batch, fragmentCount, pusher }))),
      });
    const file = await encodeSmallFile(randomBytes(6000), 2, 1, SHARD);
    const index = encodeMaguIndexList({ maguId: magu1, manifestCids: [file.manifestCid] });
    const proposeReq = async (node: TestNode | { sync: typeof nodes[0]["sync"] }, magu: bigint, batch: number, fragmentCount: number, signature?: Hex) => {
      const root = rootOf(file.manifest);
      const indexCid = `0x${Buffer.from(index.cid.bytes).toString("hex")}` as Hex;
      return node.sync.handleBatchRequest({
        op: "batch.propose",
        magu: magu.toString(),
        batch,
        root,
        fragmentCount,
        indexCid: index.cid.toString(),
        signature: signature ?? (await owner.signTypedData(proposalTypedData(domain, { magu, batch, root, fragmentCount, indexCid }))),
      });
    };
    const member = byAddress(members1[0]!);
    const outsider = nodes.find((n) => !members1.includes(n.address))!;
    const garbled = `0x${"00".repeat(65)}` as Hex;

    // Magu 1 is full (4 of 4 committed): no count can both grow and fit.
    await assert.rejects(openReq(member, magu1, 1, 4), /fragment count 4 must exceed the committed 4 and stay within the paid 4/);
    await assert.rejects(proposeReq(member, magu1, 1, 4), /fragment count 4 must exceed the committed 4 and stay within the paid 4/);
    // Not a member, a garbled signature, an agent that does not acknowledge.
    await assert.rejects(openReq(outsider, magu1, 1, 5), /this node is not a member/);
    await assert.rejects(proposeReq(outsider, magu1, 1, 5), /this node is not a member/);
    const { maguId: open3 } = await createBlobMagu(t, t.chain.keys[CLIENT]!, { k: 2, m: 1, members: 3, maxFragments: 3 });
    await assert.rejects(openReq(member, open3, 0, 3, garbled), /unreadable signature/);
    await assert.rejects(proposeReq(member, open3, 0, 3, garbled), /unreadable signature/);
    const silent = { sync: createMaguSync({ member: member.address }, { store: member.store, index: member.index, contracts: t.reader }) };
    await assert.rejects(openReq(silent, open3, 0, 3), /this agent does not acknowledge batches/);
    await assert.rejects(proposeReq(silent, open3, 0, 3), /this agent does not acknowledge batches/);
    // An agent with no ban callback goes on refusing a peer's documents past the ban threshold.
    for (let i = 0; i <= REFUSALS_BEFORE_BAN; i++) {
      const junk = Buffer.from(JSON.stringify({ type: "junk", silent: i }));
      await assert.rejects(Promise.resolve(silent.sync.sink.put(manifestCidOf(junk), junk, client.peerId)), /unknown document type "junk"/);
    }
    // A vector Magu's batches are proposed, not opened; a Magu not formed yet takes neither.
    const { maguId: vector } = await createVectorMagu(t, t.chain.keys[CLIENT]!, { dim: 8, members: 3, replication: 3, maxFragments: 2 });
    await assert.rejects(openReq(member, vector, 0, 1), /vector batches are proposed with their root/);
    const c = getMuriContracts(t.d.contracts, signer(t.chain.rpcUrl, t.d, t.chain.keys[CLIENT]!));
    // The escrow is a few wei; the formation deposit is the rest.
    await fund(t.chain.rpcUrl, t.d, t.chain.keys[0]!, owner.address, 20n * E18);
    await t.wait(await c.token.write.approve([t.d.contracts.maguRegistry, 20n * E18]));
    await t.wait(
      await c.maguRegistry.write.createMagu([
        { kind: 0, metric: 0, dimension: 0, members: 3, replication: 0, dataShards: 2, parityShards: 1, maxFragments: 3, durationPeriods: 5n, pricePerFragmentPeriod: 1n },
      ]),
    );
    const requested = await t.reader.maguRegistry.read.maguCount();
    await assert.rejects(openReq(member, requested, 0, 3), /Magu status 1, not active/);
    await assert.rejects(proposeReq(member, requested, 0, 3), /Magu status 1, not active/);
    for (const m of [open3, vector, requested]) assert.equal(member.sync.opened(m), undefined);

    // An acknowledgement with no proposal at all.
    const noProposal = (await member.sync.handleBatchRequest({ op: "batch.ack", magu: open3.toString(), batch: 0 })) as { ok: boolean; error: string };
    assert.equal(noProposal.ok, false);
    assert.match(noProposal.error, /no proposal of batch 0 of Magu/);
    assert.equal(await member.sync.handleBatchRequest({ op: "search" }), undefined, "not a batch request");
    assert.equal(await member.sync.handleBatchRequest(null), undefined, "nor is null");

    // The same opening again keeps what it brought; another one replaces it and drops it.
    const shard = (i: number) => file.shards.get(file.manifest.shards[i]!.toString())!;
    const node = byAddress((await t.reader.maguRegistry.read.maguInfo([open3])).members[0]! as Address);
    assert.deepEqual(await openReq(node, open3, 0, 3), { ok: true });
    await push(node, file.manifest.shards[0]!, shard(0));
    assert.deepEqual(await openReq(node, open3, 0, 3), { ok: true });
    assert.equal(node.sync.opened(open3)?.received.size, 1, "a repeated opening keeps its shard");
    assert.equal(await node.store.has(file.manifest.shards[0]!), true);
    assert.deepEqual(await openReq(node, open3, 0, 2), { ok: true });
    assert.equal(node.sync.opened(open3)?.received.size, 0, "another opening starts empty");
    assert.equal(node.sync.opened(open3)?.budget, 2);
    assert.equal(await node.store.has(file.manifest.shards[0]!), false, "and the replaced one's shard is gone");
    // The same batch and count for another pusher replaces it too: the first pusher's shard goes, it gets nothing more in.
    await push(node, file.manifest.shards[1]!, shard(1));
    assert.equal(node.sync.opened(open3)?.received.size, 1);
    const otherPeer = outsider.p2p.peerId;
    const otherPusher: Hex = `0x${Buffer.from(otherPeer.toMultihash().bytes).toString("hex")}`;
    assert.deepEqual(
      await node.sync.handleBatchRequest({
        op: "batch.open",
        magu: open3.toString(),
        batch: 0,
        fragmentCount: 2,
        pusher: otherPeer.toString(),
        signature: await owner.signTypedData(openTypedData(domain, { magu: open3, batch: 0, fragmentCount: 2, pusher: otherPusher })),
      }),
      { ok: true },
    );
    assert.equal(node.sync.opened(open3)?.pusher, otherPeer.toString());
    assert.equal(node.sync.opened(open3)?.received.size, 0, "the other pusher's opening starts empty");
    assert.equal(await node.store.has(file.manifest.shards[1]!), false, "the first pusher's shard is gone");
    await refused(push(node, file.manifest.shards[2]!, shard(2)), /^push not accepted$/);
    // Closing an opening with nothing unplaced in it deletes and logs nothing.
    await node.sync.sweep(Date.now() + 11 * 60_000);
    assert.equal(node.sync.opened(open3), undefined);
    assert.deepEqual(
      node.log.entries.filter((e) => e.msg === "unplaced fragments dropped" && e.context?.magu === open3.toString()).map((e) => e.context),
      [
        { magu: open3.toString(), batch: 0, fragments: 1, why: "replaced by another opening" },
        { magu: open3.toString(), batch: 0, fragments: 1, why: "replaced by another opening" },
      ],
    );

    // The push policy: documents up to MAX_DOCUMENT_BYTES from anyone, no other codec.
    const peer = client.peerId;
    assert.equal(await node.sync.acceptPush({ peer, cid: index.cid, length: MAX_DOCUMENT_BYTES }), true);
    assert.equal(await node.sync.acceptPush({ peer, cid: index.cid, length: MAX_DOCUMENT_BYTES + 1 }), false);
    const pb = CID.createV1(0x70, index.cid.multihash);
    assert.equal(await node.sync.acceptPush({ peer, cid: pb, length: 10 }), false, "dag-pb is no document here");
    // The sink behind a missing policy: other codecs, non-JSON and unknown documents are refused.
    await assert.rejects(Promise.resolve(node.sync.sink.put(pb, new Uint8Array(10))), /unsupported codec/);
    const notJson = Buffer.from("not json");
    await assert.rejects(Promise.resolve(node.sync.sink.put(manifestCidOf(notJson), notJson)), /not JSON/);
    const odd = Buffer.from(JSON.stringify({ type: "muri/odd" }));
    await assert.rejects(Promise.resolve(node.sync.sink.put(manifestCidOf(odd), odd)), /unknown document type "muri\/odd"/);
    for (const cid of [pb, manifestCidOf(notJson), manifestCidOf(odd)]) assert.equal(await node.store.has(cid), false);
    // A document of the file manifest's type that is no valid manifest is refused too, and not kept.
    const fake = Buffer.from(JSON.stringify({ type: "muri/file", version: 1 }));
    await assert.rejects(Promise.resolve(node.sync.sink.put(manifestCidOf(fake), fake)));
    assert.equal(await node.store.has(manifestCidOf(fake)), false);
    // A raw fragment handed to the sink with no sender (no opening can be its pusher's) is refused as unassigned.
    const loose = randomBytes(100);
    await assert.rejects(Promise.resolve(node.sync.sink.put(fragmentCid(loose), loose)), /fragment not assigned to this node/);
    assert.equal(await node.store.has(fragmentCid(loose)), false);
  });

  test("a manifest of other erasure parameters is refused even when its roots fold to the committed root", async () => {
    // The client encodes with k=1, m=2 (three shards, like k=2, m=1) and commits those roots to a k=2, m=1 Magu.
    const other = await encodeSmallFile(randomBytes(1000), 1, 2, SHARD);
    assert.equal(other.manifest.shards.length, 3);
    await commitRoots(t, t.chain.keys[CLIENT]!, magu2, rootOf(other.manifest), 3);
    const idx = encodeMaguIndexList({ maguId: magu2, manifestCids: [other.manifestCid] });
    for (const n of nodes) {
      await push(n, other.manifestCid, other.manifestBytes);
      await refused(push(n, idx.cid, idx.bytes), new RegExp(`manifest ${other.manifestCid} k=1 m=2, Magu k=2 m=1`));
      assert.equal(await n.index.get(magu2), undefined);
      assert.equal(await n.store.has(idx.cid), false);
      assert.equal(n.sync.held().has(magu2), false);
      for (const cid of other.manifest.shards) assert.equal(n.sync.isAssigned(cid), false);
    }
  });

  test("made-up manifests from any peer stay off the disk (bounded in memory) until a verified index names them", async () => {
    const victim = nodes[0]!;
    const stranger = await createP2PNode({ source: { has: () => false, get: () => new Uint8Array() }, sink: { put: () => undefined } });
    await stranger.start();
    try {
      await stranger.addPeers([victim.p2p.multiaddrs[0]!]);
      const made: CID[] = [];
      for (let i = 0; i < 12; i++) {
        // Valid by its CID alone: a manifest of a file no Magu holds.
        const fake = encodeManifest(withShard(file1.manifest, i % 4, randomBytes(64 + i)));
        await stranger.pushFragment(victim.p2p.peerId, fake.cid, fake.bytes, { timeoutMs: 20_000 });
        made.push(fake.cid);
      }
      for (const cid of made) assert.equal(await victim.store.has(cid), false, `${cid} was written to disk`);
    } finally {
      await stranger.stop();
    }
    // The honest manifest, pushed again, reaches the disk with the index that names it.
    const outsider = nodes.find((n) => !members1.includes(n.address))!;
    assert.equal(await outsider.store.has(file1.manifestCid), false, "a node outside Magu 1 keeps no manifest of it");
  });

  test(`at most ${MAX_CONCURRENT_DOCUMENTS} documents are verified at once; the next is refused busy without a chain read`, async () => {
    // A sync whose chain reads go through a proxy that holds every eth_call until released.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const proxy = await startRpcProxy(t.chain.rpcUrl, undefined, (call) => (call.method === "eth_call" ? gate : undefined));
    const node = nodes[0]!;
    try {
      const slow = getMuriContracts(t.d.contracts, { publicClient: signer(proxy.url, t.d, t.chain.keys[0]!).publicClient });
      const sync = createMaguSync({ member: node.address }, { store: node.store, index: node.index, contracts: slow });
      const docs = Array.from({ length: MAX_CONCURRENT_DOCUMENTS + 1 }, (_, i) =>
        encodeMaguIndexList({ maguId: magu2, manifestCids: [fragmentCid(Buffer.from(`unseen ${i}`))] }),
      );
      const first = docs.slice(0, MAX_CONCURRENT_DOCUMENTS).map((d) => sync.sink.put(d.cid, d.bytes, client.peerId) as Promise<void>);
      await waitUntil("every verification to wait on the chain", async () => proxy.calls.filter((c) => c.method === "eth_call").length >= MAX_CONCURRENT_DOCUMENTS, 20_000);
      const reads = proxy.calls.length;
      const last = docs.at(-1)!;
      await assert.rejects(sync.sink.put(last.cid, last.bytes, client.peerId) as Promise<void>, /busy: too many documents being verified, retry later/);
      assert.equal(proxy.calls.length, reads, "the refused one read nothing");
      release();
      // Each held one then fails on its own merits (its manifest was never pushed).
      for (const r of await Promise.allSettled(first)) assert.match(String((r as PromiseRejectedResult).reason), /not here: push it first/);
      // Room again: the same document is now verified (and refused for its manifest, not busy).
      await assert.rejects(sync.sink.put(last.cid, last.bytes, client.peerId) as Promise<void>, /not here: push it first/);
    } finally {
      release();
      await proxy.close();
    }
  });

  test("StagedManifests: bounded per peer and in all, oldest first", () => {
    const staged = new StagedManifests({ maxBytes: 300, maxBytesPerPeer: 200 });
    const cid = (i: number) => CID.create(1, 0x0129, identity.digest(new Uint8Array([i])));
    staged.add(cid(1), new Uint8Array(100), "a");
    staged.add(cid(2), new Uint8Array(100), "a");
    staged.add(cid(3), new Uint8Array(100), "a"); // a's oldest goes
    assert.equal(staged.get(cid(1)), undefined);
    assert.equal(staged.bytes, 200);
    staged.add(cid(4), new Uint8Array(100), "b");
    staged.add(cid(5), new Uint8Array(100), "b"); // 400 in all: the oldest of anyone goes
    assert.equal(staged.get(cid(2)), undefined);
    assert.equal(staged.bytes, 300);
    assert.deepEqual([3, 4, 5].map((i) => staged.get(cid(i))?.length), [100, 100, 100]);
    staged.drop(cid(4).toString());
    assert.equal(staged.size, 2);
  });

  test("an index for a Magu this node is not in is refused before any manifest is read; a peer refused again and again is banned", async () => {
    const outsider = nodes.find((n) => !members1.includes(n.address))!;
    // Names a manifest the node never saw: the membership check (one chain read) answers first.
    const unseen = encodeMaguIndexList({ maguId: magu1, manifestCids: [fragmentCid(randomBytes(64))] });
    await refused(push(outsider, unseen.cid, unseen.bytes), /this node is not a member/);

    // A fresh peer sends documents that are refused, REFUSALS_BEFORE_BAN times: then it is cut off.
    const spammer = await createP2PNode({ source: { has: () => false, get: () => new Uint8Array() }, sink: { put: () => undefined } });
    await spammer.start();
    try {
      const victim = nodes[0]!;
      await spammer.addPeers([victim.p2p.multiaddrs[0]!]);
      for (let i = 0; i < REFUSALS_BEFORE_BAN; i++) {
        const junk = Buffer.from(JSON.stringify({ type: "junk", n: i }));
        await refused(spammer.pushFragment(victim.p2p.peerId, CID.create(1, 0x0129, (await sha256.digest(junk))), junk, { timeoutMs: 20_000 }), /unknown document type "junk"/);
      }
      assert.equal(victim.p2p.banList.isBanned(spammer.peerId), true, "banned after repeated refusals");
      assert.match(victim.p2p.banList.get(spammer.peerId)?.reason ?? "", new RegExp(`^${REFUSALS_BEFORE_BAN} refused documents in 10 min \\(last: .*unknown document type "junk".*\\)$`));
      const bans = victim.log.entries.filter((e) => e.msg === "peer banned: its document pushes were refused again and again");
      assert.deepEqual(bans.map((e) => [e.context?.peer, e.context?.refusals]), [[spammer.peerId.toString(), REFUSALS_BEFORE_BAN]]);
      assert.match(String(bans[0]!.context?.last), /unknown document type "junk"/);
      assert.equal(victim.p2p.banList.isBanned(client.peerId), false, "the test client (a few refusals) is not");
      const more = Buffer.from(JSON.stringify({ type: "junk", n: "after" }));
      await assert.rejects(spammer.pushFragment(victim.p2p.peerId, CID.create(1, 0x0129, await sha256.digest(more)), more, { timeoutMs: 10_000 }), "a banned peer gets nothing through");
      assert.equal(await victim.store.has(CID.create(1, 0x0129, await sha256.digest(more))), false);
    } finally {
      await spammer.stop();
    }
  });
});
