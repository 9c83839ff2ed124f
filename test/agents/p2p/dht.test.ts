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

describe("DHT provider lookup across three processes", { timeout: 90_000 }, () => {
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
    await alice.call("provide", { cid, timeoutMs: 15_000 }, 20_000);

    const providers = await carol.call<Array<{ id: string; multiaddrs: string[] }>>("findProviders", { cid, timeoutMs: 15_000, limit: 1 }, 20_000);
    assert.deepEqual(providers.map((p) => p.id), [alice.peerId]);
    assert.ok(providers[0].multiaddrs.length > 0, "the provider record carries no address");

    const got = await carol.call<{ size: number; sha256: string }>("fetch", { target: providers[0].id, cid });
    assert.deepEqual(got, { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });
  });

  it("finds nobody for a CID nobody announced", async () => {
    const cid = fragmentCid(fragmentFromSeed("never-provided", 100)).toString();
    const providers = await carol.call<unknown[]>("findProviders", { cid, timeoutMs: 5_000 }, 10_000);
    assert.deepEqual(providers, []);
  });
});
