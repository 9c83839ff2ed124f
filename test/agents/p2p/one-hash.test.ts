/**
 * One hash per byte (issue 19): a fragment's CID is its fragment root, so a fragment is hashed once
 * where it is made and once where it is received. Both nodes run in this process, so one counting
 * hash backend sees every leaf either side hashes:
 * - a push the sender vouches for (`verified: true`) is hashed only by the receiver, as it arrives;
 *   without it, the sender hashes it on the way out too;
 * - the receiver's sink stores verified bytes without a second hash (`put(..., { verify: false })`)
 *   and serves through `servingView` (no hash), so a fetch costs the fetcher's hash only;
 * - the store's default get still hashes (fsck, the prover's re-read).
 * Real libp2p connections, a real store on disk.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";
import { FRAGMENT_SIZE, LEAF_SIZE } from "../../../agents/data/constants.js";
import { hashBackend, setHashBackend, type HashBackend } from "../../../agents/data/hash-backend.js";
import { createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { openFragmentStore, servingView, type FragmentStore } from "../../../agents/store/index.js";
import { fragmentFromSeed } from "./fixtures.js";

/** Leaf bytes hashed (whole 1024-byte leaves, as the tree sees them) since the last reset. */
let leafBytes = 0;
const base = hashBackend();
const counting: HashBackend = {
  name: `counting ${base.name}`,
  hashLeaves(data, size, out) {
    leafBytes += Math.max(1, Math.ceil(size / LEAF_SIZE)) * LEAF_SIZE;
    base.hashLeaves(data, size, out);
  },
  hashPairs: (nodes, pairs, out) => base.hashPairs(nodes, pairs, out),
  sha256Many: (messages, out) => base.sha256Many(messages, out),
};

describe("one hash per byte on the fragment path (real libp2p, a store on disk)", { timeout: 120_000 }, () => {
  let dir: string;
  let store: FragmentStore;
  let holder: P2PNode;
  let client: P2PNode;
  const received: CID[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-one-hash-"));
    store = await openFragmentStore({ dir, quotaBytes: 1 << 30 });
    holder = await createP2PNode({
      source: servingView(store),
      // What magu-sync's sink does with a fragment the p2p layer verified.
      sink: { put: async (cid, bytes) => { received.push(cid); await store.put(cid, bytes, { verify: false }); } },
    });
    client = await createP2PNode({ source: { has: () => false, get: () => new Uint8Array() }, sink: { put: () => undefined } });
    await Promise.all([holder.start(), client.start()]);
    await client.addPeers([holder.multiaddrs[0]!]);
    setHashBackend(counting);
  });

  after(async () => {
    setHashBackend(base);
    await Promise.all([holder?.stop(), client?.stop()]);
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("a vouched push is hashed once (by the receiver), an unvouched one twice", async () => {
    const bytes = fragmentFromSeed("one-hash-push", FRAGMENT_SIZE);
    const cid = fragmentCid(bytes);
    leafBytes = 0;
    await client.pushFragment(holder.peerId, cid, bytes, { verified: true });
    assert.equal(leafBytes, FRAGMENT_SIZE, "the receiver hashed it once as it arrived; the sink's store.put did not hash again");
    assert.equal(await store.has(cid), true);

    const other = fragmentFromSeed("one-hash-push-2", FRAGMENT_SIZE);
    const otherCid = fragmentCid(other);
    leafBytes = 0;
    await client.pushFragment(holder.peerId, otherCid, other);
    assert.equal(leafBytes, 2 * FRAGMENT_SIZE, "without verified: true the sender hashes on the way out too");
  });

  it("a fetch is hashed once (by the fetcher); the store's default read hashes", async () => {
    const bytes = fragmentFromSeed("one-hash-fetch", FRAGMENT_SIZE);
    const cid = fragmentCid(bytes);
    await store.put(cid, bytes);
    leafBytes = 0;
    assert.deepEqual(Buffer.from(await client.fetchFragment(holder.peerId, cid)), Buffer.from(bytes));
    assert.equal(leafBytes, FRAGMENT_SIZE, "served without a hash, verified once by the fetcher");
    leafBytes = 0;
    await store.get(cid);
    assert.equal(leafBytes, FRAGMENT_SIZE, "a plain get still verifies");
  });

  it("a pushed fragment with other bytes is refused and not stored", async () => {
    const bytes = fragmentFromSeed("one-hash-lie", 100_000);
    const cid = fragmentCid(bytes);
    const lie = Buffer.from(bytes);
    lie[99_999] ^= 1;
    // The sender vouches wrongly: only the receiver's hash stands between the lie and the disk.
    await assert.rejects(client.pushFragment(holder.peerId, cid, lie, { verified: true }));
    assert.equal(await store.has(cid), false);
    assert.equal(received.some((c) => c.equals(cid)), false, "the sink never saw it");
  });
});
