import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AbiCoder, keccak256 as ethersKeccak } from "ethers";
import {
  challengeDraw,
  challengeItems,
  challengeSeed,
  fallbackPeriodSeed,
  leafIndexFor,
  MAX_TRIES,
  periodOf,
  periodStart,
} from "../../../agents/data/challenge.js";
import { IndexOutOfRangeError, InvalidParameterError } from "../../../agents/data/errors.js";
import { fragmentsOfSlot, holderBlob, holds, holdersVector, rank, score } from "../../../agents/data/placement.js";

const invalid = (name: string, reason?: string) => (e: unknown): boolean => {
  assert.ok(e instanceof InvalidParameterError, String(e));
  assert.equal(e.context.name, name);
  if (reason !== undefined) assert.ok(e.context.reason.includes(reason), e.context.reason);
  return true;
};
const UINT256_MAX = (1n << 256n) - 1n;
const abi = AbiCoder.defaultAbiCoder();

describe("placement: inputs and boundaries", () => {
  it("score is keccak256(abi.encode(uint256, uint256, uint256)) for the whole uint256 range, numbers or bigints", () => {
    for (const [m, g, s] of [[0n, 0n, 0n], [UINT256_MAX, 1n, 2n], [5n, UINT256_MAX, 0n], [7n, 3n, UINT256_MAX]] as const) {
      assert.equal(score(m, g, s), BigInt(ethersKeccak(abi.encode(["uint256", "uint256", "uint256"], [m, g, s]))));
    }
    assert.equal(score(3, 4, 5), score(3n, 4n, 5n));
    assert.equal(score(Number.MAX_SAFE_INTEGER, 0, 0), score(BigInt(Number.MAX_SAFE_INTEGER), 0n, 0n));
    for (const bad of [-1n, UINT256_MAX + 1n, -1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => score(bad, 0, 0), invalid("maguId", "must be a uint256"));
      assert.throws(() => score(0, bad, 0), invalid("group", "must be a uint256"));
      assert.throws(() => score(0, 0, bad), invalid("slot", "must be a uint256"));
    }
  });

  it("rank needs at least one slot; one slot ranks [0]", () => {
    assert.deepEqual(rank(1, 2, 1), [0]);
    for (const n of [0, -1, 1.5]) assert.throws(() => rank(1, 2, n), invalid("nSlots", "must be an integer >= 1"));
  });

  it("rank orders by score, highest first", () => {
    for (let g = 0; g < 5; g++) {
      const r = rank(9, g, 8);
      for (let i = 1; i < r.length; i++) assert.ok(score(9, g, r[i - 1]!) > score(9, g, r[i]!));
    }
  });

  it("holdersVector: 1 <= r <= nSlots", () => {
    assert.deepEqual(holdersVector(2, 3, 4, 4), rank(2, 3, 4));
    assert.deepEqual(holdersVector(2, 3, 4, 1), rank(2, 3, 4).slice(0, 1));
    assert.throws(() => holdersVector(2, 3, 4, 5), invalid("r", "replication exceeds the 4 member slots"));
    assert.throws(() => holdersVector(2, 3, 4, 0), invalid("r", "must be an integer >= 1"));
  });

  it("holderBlob: shard f % w of stripe f / w sits at rank(stripe)[f % w]; k >= 1, m >= 0, k + m <= nSlots", () => {
    for (let f = 0; f < 30; f++) assert.equal(holderBlob(4, f, 7, 3, 2), rank(4, Math.floor(f / 5), 7)[f % 5]);
    for (let f = 0; f < 10; f++) assert.equal(holderBlob(4, f, 3, 3, 0), rank(4, Math.floor(f / 3), 3)[f % 3]);
    assert.equal(holderBlob(4, 7n, 7, 3, 2), holderBlob(4, 7, 7, 3, 2));
    assert.equal(holderBlob(4, 0, 5, 3, 2), rank(4, 0, 5)[0]);
    assert.throws(() => holderBlob(4, 0, 5, 4, 2), invalid("k + m", "stripe width exceeds the 5 member slots"));
    assert.throws(() => holderBlob(4, 0, 5, 0, 2), invalid("k", "must be an integer >= 1"));
    assert.throws(() => holderBlob(4, 0, 5, 2, -1), invalid("m", "must be an integer >= 0"));
    assert.throws(() => holderBlob(4, -1, 5, 2, 1), invalid("f"));
  });

  it("holds: the slot must be one of the nSlots", () => {
    for (const slot of [-1, 5, 1.5]) {
      assert.throws(() => holds(1, 0, 5, slot, { replication: 2 }), (e: unknown) => e instanceof IndexOutOfRangeError && e.context.what === "slot" && e.context.count === 5);
    }
    const owners = [0, 1, 2, 3, 4].filter((s) => holds(1, 0, 5, s, { replication: 2 }));
    assert.deepEqual(owners.sort(), holdersVector(1, 0, 5, 2).sort());
    assert.equal(holds(1, 6, 5, holderBlob(1, 6, 5, 2, 1), { k: 2, m: 1 }), true);
  });

  it("fragmentsOfSlot: exactly the fragments each slot holds, partial last stripe included", () => {
    for (const [count, nSlots, layout] of [
      [0, 4, { k: 2, m: 1 }],
      [1, 4, { k: 2, m: 1 }],
      [14, 5, { k: 3, m: 1 }],
      [13, 4, { k: 2, m: 2 }],
      [9, 3, { k: 3, m: 0 }],
      [11, 6, { replication: 2 }],
    ] as const) {
      const seen: number[] = [];
      for (let slot = 0; slot < nSlots; slot++) {
        const mine = fragmentsOfSlot(8, count, nSlots, slot, layout);
        const expected = Array.from({ length: count }, (_, f) => f).filter((f) => holds(8, f, nSlots, slot, layout));
        assert.deepEqual(mine, expected, `count ${count} slots ${nSlots} slot ${slot}`);
        seen.push(...mine);
      }
      const copies = "replication" in layout ? layout.replication : 1;
      assert.equal(seen.length, count * copies);
    }
    // A slot outside the member list holds nothing of a blob Magu.
    for (const slot of [-1, 4, 9]) assert.deepEqual(fragmentsOfSlot(8, 12, 4, slot, { k: 2, m: 1 }), [], `slot ${slot}`);
    assert.throws(() => fragmentsOfSlot(8, 4, 3, 0, { k: 3, m: 1 }), invalid("k + m", "stripe width exceeds the 3 member slots"));
    assert.throws(() => fragmentsOfSlot(8, -1, 3, 0, { k: 2, m: 1 }), invalid("fragmentCount", ">= 0"));
  });
});

describe("challenge: inputs, periods and the try limit", () => {
  const periodSeed = `0x${"cd".repeat(32)}` as const;
  const member = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

  it("seed and draws are the documented abi encodings; bytes32 and addresses in any spelling", () => {
    const seed = challengeSeed(periodSeed, 5, member, 9);
    assert.equal(seed, ethersKeccak(abi.encode(["bytes32", "uint256", "address", "uint256"], [periodSeed, 5, member, 9])));
    assert.equal(challengeSeed(Buffer.from("cd".repeat(32), "hex"), 5n, member.toLowerCase(), 9n), seed);
    assert.equal(challengeSeed(periodSeed.toUpperCase().replace("0X", "0x") as `0x${string}`, 5, member, 9), seed);
    assert.equal(challengeDraw(seed, 2, 3), BigInt(ethersKeccak(abi.encode(["bytes32", "uint256", "uint256"], [seed, 2, 3]))));
    const prev = `0x${"01".repeat(32)}` as const;
    assert.equal(fallbackPeriodSeed(3n, prev), ethersKeccak(abi.encode(["uint256", "bytes32"], [3, prev])));
    assert.equal(fallbackPeriodSeed(3, Buffer.from("01".repeat(32), "hex")), fallbackPeriodSeed(3n, prev));
  });

  it("rejects malformed seeds, ids and members", () => {
    assert.throws(() => challengeSeed("0x1234", 1, member, 1), invalid("periodSeed", "must be 32 bytes"));
    assert.throws(() => challengeSeed(Buffer.alloc(31), 1, member, 1), invalid("periodSeed", "must be 32 bytes"));
    assert.throws(() => challengeSeed(`0x${"zz".repeat(32)}` as `0x${string}`, 1, member, 1), invalid("periodSeed"));
    assert.throws(() => challengeSeed(periodSeed, -1, member, 1), invalid("maguId", "must be a uint256"));
    assert.throws(() => challengeSeed(periodSeed, 1.5, member, 1), invalid("maguId"));
    assert.throws(() => challengeSeed(periodSeed, 1n << 256n, member, 1), invalid("maguId"));
    assert.equal(typeof challengeSeed(periodSeed, (1n << 256n) - 1n, member, 1), "string");
    assert.throws(() => challengeSeed(periodSeed, 1, "0x1234", 1), invalid("member", "must be an address"));
    assert.throws(() => challengeSeed(periodSeed, 1, member, -1), invalid("period"));
    assert.throws(() => challengeDraw(periodSeed, -1, 0), invalid("item"));
    assert.throws(() => challengeDraw(periodSeed, 0, -1), invalid("attempt"));
    assert.throws(() => challengeDraw("0x12", 0, 0), invalid("seed", "must be 32 bytes"));
    assert.throws(() => fallbackPeriodSeed(1, "0x12"), invalid("previousBlockHash", "must be 32 bytes"));
    // Addresses are taken in any case, a wrong EIP-55 checksum included (the chain compares 20 bytes).
    const badChecksum = `0x${member.slice(2, 10).toLowerCase()}${member.slice(10).toUpperCase()}`;
    assert.equal(challengeSeed(periodSeed, 1, badChecksum, 1), challengeSeed(periodSeed, 1, member, 1));
    assert.throws(() => fallbackPeriodSeed(-1, periodSeed), invalid("period"));
  });

  it("periods: period(block) = (block - genesis) / periodBlocks, start(p) = genesis + p * periodBlocks", () => {
    assert.equal(periodOf(100n, 100n, 10n), 0n);
    assert.equal(periodOf(109n, 100n, 10n), 0n);
    assert.equal(periodOf(110n, 100n, 10n), 1n);
    assert.equal(periodOf(5n, 0n, 1n), 5n);
    assert.throws(() => periodOf(99n, 100n, 10n), invalid("block", "before genesis block 100"));
    assert.throws(() => periodOf(100n, 100n, 0n), invalid("periodBlocks", "must be positive"));
    assert.throws(() => periodOf(100n, 100n, -1n), invalid("periodBlocks"));
    assert.equal(periodStart(0n, 100n, 10n), 100n);
    assert.equal(periodStart(3n, 7n, 5n), 22n);
  });

  it("an item takes the first held fragment within MAX_TRIES tries, never the try after", () => {
    const F = 2 ** 40;
    const seed = challengeSeed(periodSeed, 1, member, 2);
    const at = (t: number, i = 0) => Number(challengeDraw(seed, i, t) % BigInt(F));
    const input = { periodSeed, maguId: 1, member, period: 2, samples: 1, fragmentCount: F };
    assert.equal(MAX_TRIES, 64);
    const last = challengeItems({ ...input, holds: (f) => f === at(MAX_TRIES - 1) });
    assert.deepEqual(last.map((x) => [x.item, x.attempt, x.fragment]), [[0, MAX_TRIES - 1, at(MAX_TRIES - 1)]]);
    assert.deepEqual(challengeItems({ ...input, holds: (f) => f === at(MAX_TRIES) }), []);
    // Several held fragments: the earliest try wins, and each item stops there.
    const calls: number[] = [];
    const items = challengeItems({ ...input, samples: 3, holds: (f) => (calls.push(f), f === at(5) || f === at(9) || f === at(2, 1) || f === at(0, 2)) });
    assert.deepEqual(items.map((x) => [x.item, x.attempt]), [[0, 5], [1, 2], [2, 0]]);
    assert.equal(calls.length, 6 + 3 + 1);
    assert.equal(items[0]!.leafSeed, challengeDraw(seed, 0, 5) >> 128n);
    assert.deepEqual(challengeItems({ ...input, samples: 0, holds: () => true }), []);
    assert.equal(challengeItems({ ...input, fragmentCount: 1, samples: 4, holds: () => true }).every((x) => x.fragment === 0 && x.attempt === 0), true);
  });

  it("rejects negative or fractional samples and fewer than one fragment", () => {
    const input = { periodSeed, maguId: 1, member, period: 2, holds: () => true };
    assert.throws(() => challengeItems({ ...input, samples: -1, fragmentCount: 3 }), invalid("samples", "non-negative integer"));
    assert.throws(() => challengeItems({ ...input, samples: 1.5, fragmentCount: 3 }), invalid("samples"));
    assert.throws(() => challengeItems({ ...input, samples: 1, fragmentCount: 0 }), invalid("fragmentCount", "must be >= 1"));
    assert.throws(() => challengeItems({ ...input, samples: 1, fragmentCount: 2.5 }), invalid("fragmentCount"));
  });

  it("leafIndexFor: leafSeed mod leafCount(size)", () => {
    assert.equal(leafIndexFor(5n, 0), 0);
    assert.equal(leafIndexFor(5n, 1024), 0);
    assert.equal(leafIndexFor(5n, 1025), 1);
    assert.equal(leafIndexFor(5n, 3 * 1024), 2);
    assert.equal(leafIndexFor((1n << 128n) - 1n, 1 << 20), Number(((1n << 128n) - 1n) % 1024n));
  });
});
