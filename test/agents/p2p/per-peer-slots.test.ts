/**
 * One peer cannot hold every transfer slot of a node (`maxTransfersPerPeer`): a peer that opens
 * pushes and dribbles nothing keeps its own slots only; its next request is refused "busy", while
 * another peer is served; once its streams go, it is served again. Real libp2p nodes on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { Stream } from "@libp2p/interface";
import { fragmentCid } from "../../../agents/data/cid.js";
import { FRAGMENT_PROTOCOL, Op, RemoteRefusedError, createP2PNode, encodeRequestHeader, type P2PNode } from "../../../agents/p2p/index.js";
import { MemoryFragmentStore } from "./fixtures.js";

describe("transfer slots per peer", () => {
  let server: P2PNode;
  let hog: P2PNode;
  let honest: P2PNode;
  const store = new MemoryFragmentStore();
  const bytes = randomBytes(64 * 1024);
  const cid = fragmentCid(bytes);

  before(async () => {
    store.put(cid, bytes);
    server = await createP2PNode({ source: store, sink: new MemoryFragmentStore(), limits: { maxTransfersPerPeer: 3, readTimeoutMs: 20_000 } });
    hog = await createP2PNode({ source: new MemoryFragmentStore(), sink: new MemoryFragmentStore() });
    honest = await createP2PNode({ source: new MemoryFragmentStore(), sink: new MemoryFragmentStore() });
    await Promise.all([server.start(), hog.start(), honest.start()]);
  });
  after(async () => {
    await Promise.all([server?.stop(), hog?.stop(), honest?.stop()]);
  });

  test("a peer dribbling pushes holds only its own slots; its next request is busy, another peer's is served", async () => {
    const target = server.multiaddrs[0]!;
    await hog.fetchFragment(target, cid, { timeoutMs: 10_000 }); // connected, and served while it has slots
    const held: Stream[] = [];
    for (let i = 0; i < 3; i++) {
      const stream = await hog.libp2p.dialProtocol(target, FRAGMENT_PROTOCOL);
      // A push of 1 MiB announced, then a few bytes, then nothing: the server waits on it.
      stream.send(encodeRequestHeader({ op: Op.Push, cid: fragmentCid(randomBytes(32)), length: 1 << 20 }));
      stream.send(randomBytes(16));
      held.push(stream);
    }
    await new Promise((r) => setTimeout(r, 300)); // the server has read the three headers
    await assert.rejects(hog.fetchFragment(target, cid, { timeoutMs: 10_000 }), (err: unknown) => err instanceof RemoteRefusedError && err.context.reason === "busy: too many transfers from this peer");
    const got = await honest.fetchFragment(target, cid, { timeoutMs: 10_000 });
    assert.ok(Buffer.from(got).equals(bytes), "another peer is served");
    for (const s of held) s.abort(new Error("done"));
    let served = false;
    for (let i = 0; i < 50 && !served; i++) {
      served = await hog.fetchFragment(target, cid, { timeoutMs: 10_000 }).then(
        () => true,
        () => false,
      );
      if (!served) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(served, "served again once its streams are gone");
  });
});
