import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { challengeItems, challengeDraw, challengeSeed, fallbackPeriodSeed, leafIndexFor, MAX_TRIES, periodOf, periodStart } from "../../../agents/data/challenge.js";
import { fragmentsOfSlot, holderBlob, holds, holdersVector, rank, score } from "../../../agents/data/placement.js";

/** PlacementLib.rankOf, literally. */
function rankOf(maguId: number, group: number, slots: number, slot: number): number {
  const own = score(maguId, group, slot);
  let r = 0;
  for (let s = 0; s < slots; s++) {
    if (s === slot) continue;
    const other = score(maguId, group, s);
    if (other > own || (other === own && s < slot)) r++;
  }
  return r;
}

describe("placement: rendezvous over member slots", () => {
  it("rank is a permutation ordered by score, consistent with rankOf (property)", () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 9 }), (maguId, group, n) => {
        const r = rank(maguId, group, n);
        assert.deepEqual([...r].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
        r.forEach((slot, position) => assert.equal(rankOf(maguId, group, n, slot), position));
      }),
      { numRuns: 30 },
    );
  });

  it("a blob stripe's k+m shards sit on k+m different slots; each fragment has exactly one holder", () => {
    const fragments = fragmentsOfSlot(3, 60, 7, 2, { k: 4, m: 2 });
    for (let stripe = 0; stripe < 10; stripe++) {
      const holders = Array.from({ length: 6 }, (_, j) => holderBlob(3, stripe * 6 + j, 7, 4, 2));
      assert.equal(new Set(holders).size, 6);
    }
    for (let f = 0; f < 60; f++) {
      const owners = Array.from({ length: 7 }, (_, s) => s).filter((s) => holds(3, f, 7, s, { k: 4, m: 2 }));
      assert.equal(owners.length, 1);
      assert.equal(fragments.includes(f), owners[0] === 2);
    }
  });

  it("vector holders are the first r of the rank, distinct", () => {
    for (let f = 0; f < 20; f++) {
      const h = holdersVector(11, f, 6, 3);
      assert.deepEqual(h, rank(11, f, 6).slice(0, 3));
      assert.equal(new Set(h).size, 3);
    }
    assert.deepEqual(fragmentsOfSlot(11, 20, 6, 1, { replication: 3 }), Array.from({ length: 20 }, (_, f) => f).filter((f) => holdersVector(11, f, 6, 3).includes(1)));
  });
});

describe("challenge derivation", () => {
  const periodSeed = `0x${"ab".repeat(32)}` as const;
  const member = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

  it("items follow the documented tries: first held fragment wins, leafSeed = h >> 128", () => {
    const held = new Set([3, 17]);
    const items = challengeItems({ periodSeed, maguId: 9, member, period: 4, samples: 4, fragmentCount: 20, holds: (f) => held.has(f) });
    const seed = challengeSeed(periodSeed, 9, member, 4);
    for (const item of items) {
      for (let t = 0; t < item.attempt; t++) assert.ok(!held.has(Number(challengeDraw(seed, item.item, t) % 20n)));
      const h = challengeDraw(seed, item.item, item.attempt);
      assert.equal(item.fragment, Number(h % 20n));
      assert.equal(item.leafSeed, h >> 128n);
      assert.ok(held.has(item.fragment));
    }
    assert.equal(challengeItems({ periodSeed, maguId: 9, member, period: 4, samples: 4, fragmentCount: 20, holds: () => false }).length, 0);
    assert.equal(MAX_TRIES, 64);
  });

  it("leaf index, periods and the late-seed fallback", () => {
    assert.equal(leafIndexFor(1025n, 0), 0);
    assert.equal(leafIndexFor(1025n, 1 << 20), 1);
    assert.equal(leafIndexFor(7n, 5000), 2);
    assert.equal(periodOf(125n, 100n, 10n), 2n);
    assert.equal(periodStart(2n, 100n, 10n), 120n);
    assert.match(fallbackPeriodSeed(3n, periodSeed), /^0x[0-9a-f]{64}$/);
  });
});
