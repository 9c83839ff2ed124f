/**
 * Three processes on one DHT: Alice and Carol only know the bootstrap node Bob. Alice announces a
 * fragment; Carol finds Alice through the DHT provider records and fetches the fragment from her.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { fragmentCid } from "../../../agents/data/cid.js";
import { fragmentFromSeed } from "./fixtures.js";
import { killAllPeers, spawnPeer, type PeerProcess } from "./harness.js";

/** Bounds a failure only: a provide or a lookup normally takes well under a second. */
const DHT_MS = 30_000;

describe("DHT provider lookup across three processes", { timeout: 600_000 }, () => {
  let alice: PeerProcess;
  let bob: PeerProcess;
  let carol: PeerProcess;

  before(async () => {
    bob = await spawnPeer({ store: "memory" });
    [alice, carol] = await Promise.all([
      spawnPeer({ store: "memory", bootstrap: [bob.multiaddrs[0]] }),
      spawnPeer({ store: "memory", bootstrap: [bob.multiaddrs[0]] }),
    ]);
  });

  after(async () => {
    await Promise.all([alice, bob, carol].map((p) => p?.stop()));
    await killAllPeers();
  });

  it("finds the holder of a CID and fetches the fragment from it", async () => {
    const bytes = fragmentFromSeed("dht-fragment", 500_000);
    const cid = fragmentCid(bytes).toString();
    assert.equal(await alice.call("makeFragment", { seed: "dht-fragment", size: bytes.length }), cid);
    // Alice and Carol know Bob once identify ran after their bootstrap dial: a provide or a lookup
    // before that would have nobody to ask.
    for (const peer of [alice, carol]) {
      const deadline = Date.now() + DHT_MS;
      while ((await peer.call<number>("routingTableSize")) < 1) {
        if (Date.now() > deadline) throw new Error(`${peer.peerId} has no DHT peer ${DHT_MS} ms after start:\n${peer.stderr()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await alice.call("provide", { cid, timeoutMs: DHT_MS }, DHT_MS + 10_000);

    const providers = await carol.call<Array<{ id: string; multiaddrs: string[] }>>("findProviders", { cid, timeoutMs: DHT_MS, limit: 1 }, DHT_MS + 10_000);
    assert.deepEqual(providers.map((p) => p.id), [alice.peerId]);
    assert.ok(providers[0].multiaddrs.length > 0, "the provider record carries no address");

    const got = await carol.call<{ size: number; sha256: string }>("fetch", { target: providers[0].id, cid });
    assert.deepEqual(got, { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });
  });

  it("finds nobody for a CID nobody announced", async () => {
    const cid = fragmentCid(fragmentFromSeed("never-provided", 100)).toString();
    const providers = await carol.call<unknown[]>("findProviders", { cid, timeoutMs: 5_000 }, 5_000 + DHT_MS);
    assert.deepEqual(providers, []);
  });
});
