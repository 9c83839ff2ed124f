/**
 * What a peer's requests may cost a node beyond the per-peer slots (issue 12): work a request
 * abandons at its deadline keeps the slot until it really ends, so it cannot pile up; a flood of
 * requests is refused by the peer's token bucket before it takes a slot. Real libp2p nodes on
 * 127.0.0.1, in this process.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";
import { RemoteRefusedError, createP2PNode, type P2PNode } from "../../../agents/p2p/index.js";
import { TokenBuckets } from "../../../agents/p2p/rate.js";
import { MemoryFragmentStore } from "./fixtures.js";

/** A sink whose writes hang until the test lets them finish (a disk that stopped answering). */
class HangingSink {
  readonly stored = new Map<string, Uint8Array>();
  private readonly waiting: Array<() => void> = [];

  put(cid: CID, bytes: Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      this.waiting.push(() => {
        this.stored.set(cid.toString(), bytes);
        resolve();
      });
    });
  }

  get pending(): number {
    return this.waiting.length;
  }

  finishAll(): void {
    for (const f of this.waiting.splice(0)) f();
  }
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  for (const stop = Date.now() + ms; !cond(); ) {
    if (Date.now() > stop) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("abandoned work keeps its slot", () => {
  let server: P2PNode;
  let client: P2PNode;
  const sink = new HangingSink();

  before(async () => {
    server = await createP2PNode({
      source: new MemoryFragmentStore(),
      sink,
      limits: { maxTransfersPerPeer: 2, requestTimeoutMs: 500 },
    });
    client = await createP2PNode({ source: new MemoryFragmentStore(), sink: new MemoryFragmentStore() });
    await Promise.all([server.start(), client.start()]);
  });
  after(async () => {
    sink.finishAll();
    await Promise.all([server?.stop(), client?.stop()]);
  });

  test("a push whose store write outlives the deadline holds the slot until the write ends", async () => {
    const target = server.multiaddrs[0]!;
    const push = (): Promise<unknown> => {
      const bytes = randomBytes(4096);
      return client.pushFragment(target, fragmentCid(bytes), bytes, { timeoutMs: 5_000 });
    };
    // Two pushes whose writes hang: each times out on the server after 500 ms.
    const first = await Promise.allSettled([push(), push()]);
    assert.deepEqual(first.map((r) => r.status), ["rejected", "rejected"], "the server cannot answer while its writes hang");
    assert.equal(sink.pending, 2);
    await until("both requests to end", () => server.transferSlots().abandoned === 2);
    assert.equal(server.transferSlots().active, 2, "abandoned writes still hold their slots");

    // Before the fix the slots were free again here, and every retry added one more hung write.
    await assert.rejects(push(), (err: unknown) => err instanceof RemoteRefusedError && err.context.reason === "busy: too many transfers from this peer");
    assert.equal(sink.pending, 2, "no third write was started");

    sink.finishAll();
    await until("the slots to be released", () => server.transferSlots().active === 0);
    assert.equal(server.transferSlots().abandoned, 0);
    assert.equal(sink.stored.size, 2, "the abandoned writes did finish");
    const ok = push();
    await until("the next write to start", () => sink.pending === 1);
    sink.finishAll();
    await ok;
    assert.equal(sink.stored.size, 3, "served again once the work ended");
  });
});

describe("per-peer request buckets", () => {
  let server: P2PNode;
  let flooder: P2PNode;
  let honest: P2PNode;
  const store = new MemoryFragmentStore();
  const bytes = randomBytes(8 * 1024);
  const cid = fragmentCid(bytes);

  before(async () => {
    store.put(cid, bytes);
    server = await createP2PNode({ source: store, sink: new MemoryFragmentStore(), limits: { peerRequestsPerSec: 4, peerRequestBurst: 8 } });
    flooder = await createP2PNode({ source: new MemoryFragmentStore(), sink: new MemoryFragmentStore() });
    honest = await createP2PNode({ source: new MemoryFragmentStore(), sink: new MemoryFragmentStore() });
    await Promise.all([server.start(), flooder.start(), honest.start()]);
  });
  after(async () => {
    await Promise.all([server?.stop(), flooder?.stop(), honest?.stop()]);
  });

  test("a flood past the burst is refused busy; another peer is served; the flooder is served again later", async () => {
    const target = server.multiaddrs[0]!;
    let served = 0;
    let refused = 0;
    const started = performance.now();
    for (let i = 0; i < 30; i++) {
      try {
        await flooder.fetchFragment(target, cid, { timeoutMs: 5_000 });
        served++;
      } catch (err) {
        assert.ok(err instanceof RemoteRefusedError && err.context.reason === "busy: rate limit", String(err));
        refused++;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    // The burst of 8, plus 4 per second that the loop took.
    assert.ok(served >= 8 && served <= 8 + Math.ceil(seconds * 4) + 1, `served ${served} of 30 in ${seconds.toFixed(2)} s`);
    assert.equal(served + refused, 30);
    assert.ok(refused >= 30 - 8 - Math.ceil(seconds * 4) - 1, `refused ${refused}`);

    const got = await honest.fetchFragment(target, cid, { timeoutMs: 5_000 });
    assert.ok(Buffer.from(got).equals(bytes), "another peer has its own bucket");

    await new Promise((r) => setTimeout(r, 600)); // two tokens earned
    const again = await flooder.fetchFragment(target, cid, { timeoutMs: 5_000 });
    assert.ok(Buffer.from(again).equals(bytes), "the bucket refills");
  });
});

describe("TokenBuckets", () => {
  test("refills at its rate up to its burst, and forgets the least recently used key past maxKeys", () => {
    let now = 0;
    const b = new TokenBuckets({ perSec: 2, burst: 3, maxKeys: 2, now: () => now });
    assert.deepEqual([b.take("a"), b.take("a"), b.take("a"), b.take("a")], [true, true, true, false]);
    now = 499;
    assert.equal(b.take("a"), false, "not a whole token yet");
    now = 1_000;
    assert.equal(b.take("a"), true, "one token after half a second (counting the try)");
    now = 60_000;
    assert.deepEqual([b.take("a"), b.take("a"), b.take("a"), b.take("a")], [true, true, true, false], "never more than the burst");
    b.take("b");
    b.take("c");
    assert.equal(b.size, 2, "bounded");
    assert.deepEqual([b.take("a"), b.take("a"), b.take("a"), b.take("a")], [true, true, true, false], "a forgotten key starts full");
    assert.equal(new TokenBuckets({ perSec: 0, burst: 0, maxKeys: 1 }).take("x"), true, "0 is unlimited");
  });
});
