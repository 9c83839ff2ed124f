/**
 * Two nodes in separate processes exchange fragments over /muri/fragment/1.0.0, both ways, by
 * fetch and by push, through the real fragment store.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { fragmentFromSeed } from "./fixtures.js";
import { PeerCommandError, killAllPeers, spawnPeer, type PeerProcess } from "./harness.js";

function expected(seed: string, size: number): { cid: string; size: number; sha256: string } {
  const bytes = fragmentFromSeed(seed, size);
  return { cid: fragmentCid(bytes).toString(), size, sha256: createHash("sha256").update(bytes).digest("hex") };
}

describe("fragment exchange between two processes", { timeout: 600_000 }, () => {
  let dir: string;
  let alice: PeerProcess;
  let bob: PeerProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-p2p-exchange-"));
    [alice, bob] = await Promise.all([
      spawnPeer({ store: "fs", storeDir: join(dir, "alice") }),
      spawnPeer({ store: "fs", storeDir: join(dir, "bob") }),
    ]);
  });

  after(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
    await killAllPeers();
    await rm(dir, { recursive: true, force: true });
  });

  it("fetches a full-size fragment by multiaddr, then the other way by peer id", async () => {
    const fromAlice = expected("alice-1", FRAGMENT_SIZE);
    assert.equal(await alice.call("makeFragment", { seed: "alice-1", size: FRAGMENT_SIZE }), fromAlice.cid);
    const got = await bob.call<{ size: number; sha256: string }>("fetch", { target: alice.multiaddrs[0], cid: fromAlice.cid });
    assert.deepEqual(got, { size: fromAlice.size, sha256: fromAlice.sha256 });

    // Bob is now connected to Alice, so Alice can reach him by peer id alone.
    const fromBob = expected("bob-1", 300_000);
    assert.equal(await bob.call("makeFragment", { seed: "bob-1", size: 300_000 }), fromBob.cid);
    const back = await alice.call<{ size: number; sha256: string }>("fetch", { target: bob.peerId, cid: fromBob.cid });
    assert.deepEqual(back, { size: fromBob.size, sha256: fromBob.sha256 });
  });

  it("pushes fragments both ways; the receiver stores them", async () => {
    const toBob = expected("push-to-bob", FRAGMENT_SIZE);
    assert.equal(await bob.call("has", { cid: toBob.cid }), false);
    assert.equal(await alice.call("push", { target: bob.multiaddrs[0], seed: "push-to-bob", size: FRAGMENT_SIZE }), toBob.cid);
    assert.equal(await bob.call("has", { cid: toBob.cid }), true);

    const toAlice = expected("push-to-alice", 1);
    assert.equal(await bob.call("push", { target: alice.multiaddrs[0], seed: "push-to-alice", size: 1 }), toAlice.cid);
    assert.equal(await alice.call("has", { cid: toAlice.cid }), true);
    // ...and what was pushed can be fetched back from the receiver.
    const again = await bob.call<{ size: number; sha256: string }>("fetch", { target: alice.multiaddrs[0], cid: toAlice.cid });
    assert.deepEqual(again, { size: 1, sha256: toAlice.sha256 });
  });

  it("reports a fragment the remote does not hold as RemoteNotFoundError", async () => {
    const missing = expected("nobody-has-this", 1000);
    await assert.rejects(
      bob.call("fetch", { target: alice.multiaddrs[0], cid: missing.cid }),
      (err: unknown) => err instanceof PeerCommandError && err.code === "ERR_P2P_REMOTE_NOT_FOUND",
    );
  });

  it("runs many fetches at once over one connection", async () => {
    const seeds = Array.from({ length: 12 }, (_, i) => `many-${i}`);
    await Promise.all(seeds.map((seed) => alice.call("makeFragment", { seed, size: FRAGMENT_SIZE })));
    const results = await Promise.all(
      seeds.map((seed) => bob.call<{ size: number; sha256: string }>("fetch", { target: alice.multiaddrs[0], cid: expected(seed, FRAGMENT_SIZE).cid })),
    );
    results.forEach((got, i) => assert.equal(got.sha256, expected(seeds[i], FRAGMENT_SIZE).sha256));
  });
});
