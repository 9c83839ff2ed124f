import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PeerBanList } from "../../../agents/p2p/index.js";

describe("peer ban list", () => {
  it("bans for the configured time, then forgets", () => {
    let now = 1_000;
    const bans = new PeerBanList({ banMs: 500, maxEntries: 10, now: () => now });
    assert.deepEqual(bans.ban("peer-a", "ERR_P2P_CID_MISMATCH"), { until: 1_500, reason: "ERR_P2P_CID_MISMATCH" });
    assert.equal(bans.isBanned("peer-a"), true);
    assert.equal(bans.isBanned("peer-b"), false);
    now = 1_499;
    assert.equal(bans.isBanned("peer-a"), true);
    now = 1_500;
    assert.equal(bans.isBanned("peer-a"), false);
    assert.equal(bans.size, 0);
  });

  it("keeps at most maxEntries bans, forgetting the oldest", () => {
    const bans = new PeerBanList({ banMs: 60_000, maxEntries: 2 });
    bans.ban("a", "x");
    bans.ban("b", "x");
    bans.ban("a", "again"); // refreshed: now the newest
    bans.ban("c", "x");
    assert.equal(bans.size, 2);
    assert.equal(bans.isBanned("b"), false);
    assert.equal(bans.isBanned("a"), true);
    assert.equal(bans.isBanned("c"), true);
  });

  it("bans for a given time, and a shorter ban does not cut a longer one short", () => {
    let now = 1_000;
    const bans = new PeerBanList({ banMs: 60_000, maxEntries: 10, now: () => now });
    assert.equal(bans.ban("slow", "ERR_P2P_TOO_SLOW", 5_000)?.until, 6_000);
    now = 2_000;
    assert.equal(bans.ban("slow", "ERR_P2P_CID_MISMATCH")?.until, 62_000, "a longer ban replaces it");
    assert.deepEqual(bans.ban("slow", "ERR_P2P_TOO_SLOW", 5_000), { until: 62_000, reason: "ERR_P2P_CID_MISMATCH" });
    now = 61_999;
    assert.equal(bans.isBanned("slow"), true);
    now = 62_000;
    assert.equal(bans.isBanned("slow"), false);
  });

  it("does not ban when banMs is 0, and unban lifts a ban", () => {
    assert.equal(new PeerBanList({ banMs: 0, maxEntries: 10 }).ban("a", "x"), undefined);
    const bans = new PeerBanList({ banMs: 60_000, maxEntries: 10 });
    bans.ban("a", "x");
    bans.unban("a");
    assert.equal(bans.isBanned("a"), false);
  });
});
