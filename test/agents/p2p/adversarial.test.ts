/**
 * An adversary process writes malformed, oversized, truncated and lying frames on raw
 * /muri/fragment/1.0.0 streams. The victim must cut it off (stream reset, connection closed, peer
 * banned), store nothing from it, and keep serving honest peers.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { Status } from "../../../agents/p2p/index.js";
import { fragmentFromSeed } from "./fixtures.js";
import { PeerCommandError, killAllPeers, spawnPeer, type PeerProcess } from "./harness.js";

interface AttackReport {
  attacker: string;
  outcome: "reset" | "closed" | "still-open";
  status: number | null;
  connectionClosed: boolean;
  redial: "accepted" | "refused" | "skipped";
}

const READ_TIMEOUT_MS = 1_500;
/** Bound on one attack (a failure only): above the attacker's 60 s wait for the victim's reaction. */
const ATTACK_CALL_MS = 120_000;

describe("adversarial peers", { timeout: 900_000 }, () => {
  let dir: string;
  let victim: PeerProcess;
  let adversary: PeerProcess;
  let honest: PeerProcess;
  let liar: PeerProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-p2p-adversarial-"));
    [victim, adversary, honest, liar] = await Promise.all([
      spawnPeer({
        store: "fs",
        storeDir: join(dir, "victim"),
        // A 1-s grace before the rate floor (64 KiB/s by default) applies.
        limits: { readTimeoutMs: READ_TIMEOUT_MS, transferGraceMs: 1_000 },
        // Every peer here dials from 127.0.0.1: lift libp2p's 5-per-second inbound limit per host.
        connections: { inboundConnectionThreshold: 100 },
      }),
      spawnPeer({ store: "memory" }),
      spawnPeer({ store: "memory" }),
      spawnPeer({ store: "memory", lie: true }),
    ]);
  });

  after(async () => {
    await Promise.all([victim, adversary, honest, liar].map((p) => p?.stop()));
    await killAllPeers();
    await rm(dir, { recursive: true, force: true });
  });

  const violations: Array<{ kind: string; status: number | null }> = [
    { kind: "bad-op", status: Status.BadRequest },
    { kind: "bad-cid", status: Status.BadRequest },
    { kind: "oversized", status: Status.TooLarge },
    { kind: "truncated-header", status: Status.BadRequest },
    { kind: "truncated", status: Status.BadRequest },
    { kind: "lying", status: Status.BadRequest },
    // The fetch before the junk is answered (not found) before the junk is read.
    { kind: "trailing", status: Status.NotFound },
  ];

  for (const { kind, status } of violations) {
    it(`cuts off a peer sending a ${kind} frame and bans it`, async () => {
      const report = await adversary.call<AttackReport>(
        "attack",
        { target: victim.multiaddrs[0], kind, maxFragmentBytes: FRAGMENT_SIZE, redial: true },
        ATTACK_CALL_MS,
      );
      assert.notEqual(report.outcome, "still-open", "the victim left the stream open");
      assert.equal(report.connectionClosed, true, "the victim kept the connection");
      assert.equal(report.redial, "refused", "the banned peer could connect again");
      // The answer is best effort (the connection is dropped right after), but if it came it is right.
      if (report.status !== null) assert.equal(report.status, status);
      assert.equal(await victim.call("isBanned", { peer: report.attacker }), true);
      assert.equal(victim.alive(), true);
    });
  }

  // A slow peer holds a transfer slot for as long as it is let: it is cut off and banned for
  // slowBanMs (a minute by default), shorter than a hostile frame's ban.
  for (const { kind, codes } of [
    // Whichever comes first: the 1-s grace then the floor, or the 1.5-s read timeout.
    { kind: "stall", codes: ["ERR_P2P_TOO_SLOW", "ERR_P2P_READ_TIMEOUT"] },
    // Never idle for a read timeout: only the floor catches it.
    { kind: "dribble", codes: ["ERR_P2P_TOO_SLOW"] },
  ]) {
    it(`cuts off a peer that ${kind}s mid-payload and bans it for a while`, async () => {
      const started = Date.now();
      const report = await adversary.call<AttackReport>("attack", { target: victim.multiaddrs[0], kind, redial: true }, ATTACK_CALL_MS);
      assert.equal(report.outcome, "reset");
      assert.equal(report.connectionClosed, true, "the victim kept the connection");
      assert.equal(report.redial, "refused", "the slow peer could connect again at once");
      // Caught by the read timeout (1.5 s) or the floor (1 s grace, then 64 KiB/s), not the 30 s deadline.
      assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
      const ban = await victim.call<{ reason: string; until: number } | null>("ban", { peer: report.attacker });
      assert.ok(codes.includes(ban?.reason ?? ""), `banned for ${ban?.reason}`);
      const left = ban!.until - Date.now();
      assert.ok(left > 0 && left <= 60_000, `a slow peer's ban lasts at most slowBanMs, ${left} ms left`);
    });
  }

  it("rejects a holder that serves bytes not matching the CID, and bans it", async () => {
    const cid = await liar.call<string>("makeFragment", { seed: "liar-1", size: 200_000 });
    await assert.rejects(
      victim.call("fetch", { target: liar.multiaddrs[0], cid }),
      (err: unknown) => err instanceof PeerCommandError && err.code === "ERR_P2P_CID_MISMATCH",
    );
    assert.equal(await victim.call("isBanned", { peer: liar.peerId }), true);
    await assert.rejects(
      victim.call("fetch", { target: liar.multiaddrs[0], cid }),
      (err: unknown) => err instanceof PeerCommandError && err.code === "ERR_P2P_PEER_BANNED",
    );
  });

  it("stored nothing from the attacks and still serves honest peers", async () => {
    const stats = await victim.call<{ count: number }>("stats");
    assert.equal(stats.count, 0, "the victim stored something an attacker sent");
    for (const kind of ["lying", "truncated", "oversized"]) {
      const cid = fragmentCid(fragmentFromSeed(`attack-${kind}`, 256 * 1024)).toString();
      assert.equal(await victim.call("has", { cid }), false);
    }

    const bytes = fragmentFromSeed("after-the-attacks", FRAGMENT_SIZE);
    const cid = await victim.call<string>("makeFragment", { seed: "after-the-attacks", size: FRAGMENT_SIZE });
    const got = await honest.call<{ size: number; sha256: string }>("fetch", { target: victim.multiaddrs[0], cid });
    assert.deepEqual(got, { size: FRAGMENT_SIZE, sha256: createHash("sha256").update(bytes).digest("hex") });
    const pushed = await honest.call<string>("push", { target: victim.multiaddrs[0], seed: "honest-push", size: 4096 });
    assert.equal(await victim.call("has", { cid: pushed }), true);
  });
});
