/**
 * How a validator reaches every node and every Magu: an audit tries each multiaddr a node
 * registered (over real libp2p), a node can register the addresses others dial (`--announce`), and
 * the Magu scan goes round all ids a bounded window at a time.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { fragmentCid } from "../../../agents/data/cid.js";
import { createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { fetchFromAny, scanWindow } from "../../../agents/roles/validator/validator.js";
import { freePort } from "../chain/harness.js";
import { muri } from "../cli/run-muri.js";
import { MemoryFragmentStore } from "../p2p/fixtures.js";

describe("the validator's reach", () => {
  let holder: P2PNode;
  let auditor: P2PNode;
  const store = new MemoryFragmentStore();
  const bytes = randomBytes(8192);
  const cid = fragmentCid(bytes);

  before(async () => {
    await store.put(cid, bytes);
    holder = await createP2PNode({ source: store, sink: store });
    auditor = await createP2PNode({ source: new MemoryFragmentStore(), sink: new MemoryFragmentStore() });
    await holder.start();
    await auditor.start();
  });
  after(async () => {
    await auditor?.stop();
    await holder?.stop();
  });

  test("an audit tries each registered multiaddr in turn and names every failure", async () => {
    // Before any connection to the holder (afterwards libp2p would reuse it whatever the address).
    const dead = `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/${holder.peerId.toString()}`;
    const dead2 = `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/${holder.peerId.toString()}`;
    await assert.rejects(fetchFromAny(auditor, [dead], cid, { timeoutMs: 5_000 }), (err: Error) => err.message.startsWith(`${dead}: `));
    await assert.rejects(fetchFromAny(auditor, [dead, dead2], cid, { timeoutMs: 5_000 }), (err: Error) =>
      err.message.startsWith("no registered address served it (") && err.message.includes(`${dead}: `) && err.message.includes(`${dead2}: `),
    );
    await assert.rejects(fetchFromAny(auditor, [], cid), /^Error: no multiaddr registered$/);
    const live = holder.multiaddrs[0]!.toString();
    const got = await fetchFromAny(auditor, [dead, live], cid, { timeoutMs: 5_000 });
    assert.ok(Buffer.from(got).equals(bytes), "served by the second address");
  });

  test("a node announces the addresses others dial instead of its listen addresses", async () => {
    const port = await freePort();
    const announced = `/ip4/127.0.0.1/tcp/${port}`;
    const node = await createP2PNode({ listen: [`/ip4/127.0.0.1/tcp/${port}`], announce: [announced, "/dns4/node.example.org/tcp/4001"], source: store, sink: store });
    await node.start();
    try {
      const id = node.peerId.toString();
      assert.deepEqual(node.multiaddrs.map(String).sort(), [`${announced}/p2p/${id}`, `/dns4/node.example.org/tcp/4001/p2p/${id}`].sort());
      // What it announces is dialable: the auditor fetches through it.
      const got = await fetchFromAny(auditor, [`${announced}/p2p/${id}`], cid, { timeoutMs: 5_000 });
      assert.ok(Buffer.from(got).equals(bytes));
    } finally {
      await node.stop();
    }
    const bad = await muri(["node", "--key", `0x${"ab".repeat(32)}`, "--dir", "/tmp/muri-never", "--announce", "not-a-multiaddr", "--rpc", "http://127.0.0.1:1"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--announce/);
  });

  test("the Magu scan covers every id a bounded window at a time, round the ids", () => {
    assert.deepEqual(scanWindow(1n, 0n, 3n), { ids: [], next: 1n });
    assert.deepEqual(scanWindow(1n, 2n, 10n), { ids: [1n, 2n], next: 1n });
    const seen: bigint[] = [];
    let from = 1n;
    for (let pass = 0; pass < 3; pass++) {
      const w = scanWindow(from, 7n, 3n);
      seen.push(...w.ids);
      from = w.next;
    }
    assert.deepEqual(seen, [1n, 2n, 3n, 4n, 5n, 6n, 7n, 1n, 2n]);
    // A start past the end (Magus counted again) begins at 1.
    assert.deepEqual(scanWindow(9n, 5n, 2n), { ids: [1n, 2n], next: 3n });
  });
});
