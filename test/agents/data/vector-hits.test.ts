/** Canonical distances, hit order and the 32-byte result entry word of docs/SEARCH.md. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { InvalidParameterError } from "../../../agents/data/errors.js";
import { canonicalDistance, compareHits, decodeHit, encodeHit, encodeHitHex, innerProduct, squaredL2, type HitEntry } from "../../../agents/data/vectors.js";

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

const hitArb = fc.record({
  distance: fc.oneof(fc.bigInt({ min: INT64_MIN, max: INT64_MAX }), fc.bigInt({ min: -5n, max: 5n }), fc.constantFrom(INT64_MIN, INT64_MAX, -1n, 0n)),
  id: fc.oneof(fc.bigInt({ min: 0n, max: UINT64_MAX }), fc.bigInt({ min: 0n, max: 3n })),
  fragment: fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 2 })),
  position: fc.oneof(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 2 })),
});

describe("vectors: canonical distance and result entries", () => {
  it("l2 is the squared L2 distance, ip and cosine the negated inner product", () => {
    const q = Int16Array.from([1, -2, 3]);
    const v = Int16Array.from([4, 5, -6]);
    assert.equal(canonicalDistance("l2", q, v), 9n + 49n + 81n);
    assert.equal(canonicalDistance("l2", q, v), squaredL2(q, v));
    assert.equal(canonicalDistance("ip", q, v), -(4n - 10n - 18n));
    assert.equal(canonicalDistance("ip", q, v), -innerProduct(q, v));
    const big = new Int16Array(4).fill(-32768);
    assert.equal(canonicalDistance("ip", big, big), -4n * 32768n * 32768n, "the most negative distance");
    assert.equal(canonicalDistance("cosine", q, v), canonicalDistance("ip", q, v), "cosine: the negated inner product of the normalised vectors");
    assert.throws(() => canonicalDistance("cos" as "l2", q, v), InvalidParameterError);
  });

  it("lays out the word as SEARCH.md says", () => {
    const word = encodeHit({ distance: -1n, id: 0x0102030405060708n, fragment: 0x0a0b0c0d, position: 7 });
    assert.equal(encodeHitHex({ distance: -1n, id: 0x0102030405060708n, fragment: 0x0a0b0c0d, position: 7 }), `0x7fffffffffffffff${"0102030405060708"}0a0b0c0d00000007${"0".repeat(16)}`);
    assert.equal(word, BigInt(`0x7fffffffffffffff01020304050607080a0b0c0d00000007${"0".repeat(16)}`));
    assert.equal(encodeHitHex({ distance: 0n, id: 0n, fragment: 0, position: 0 }), `0x8${"0".repeat(63)}`);
    assert.equal(encodeHitHex({ distance: INT64_MIN, id: 0n, fragment: 0, position: 0 }), `0x${"0".repeat(64)}`);
    assert.equal(encodeHitHex({ distance: INT64_MAX, id: UINT64_MAX, fragment: 0xffff_ffff, position: 0xffff_ffff }), `0x${"f".repeat(48)}${"0".repeat(16)}`);
  });

  it("decodes what it encodes, from a bigint or hex (property)", () => {
    fc.assert(
      fc.property(hitArb, (hit) => {
        assert.deepEqual(decodeHit(encodeHit(hit)), { ...hit });
        const hex = encodeHitHex(hit);
        assert.match(hex, /^0x[0-9a-f]{64}$/);
        assert.deepEqual(decodeHit(hex), { ...hit });
      }),
    );
  });

  it("words compare as unsigned integers exactly as hits compare by (distance, id, fragment, position) (property)", () => {
    const sign = (x: number | bigint) => (x > 0 ? 1 : x < 0 ? -1 : 0);
    fc.assert(
      fc.property(hitArb, hitArb, (a, b) => {
        assert.equal(sign(encodeHit(a) - encodeHit(b)), sign(compareHits(a, b)));
        // (distance, id) alone decides whenever it differs.
        if (a.distance !== b.distance || a.id !== b.id) assert.equal(sign(compareHits(a, b)), sign(compareHits({ distance: a.distance, id: a.id }, { distance: b.distance, id: b.id })));
      }),
      { numRuns: 500 },
    );
    const hits: HitEntry[] = [
      { distance: 5n, id: 1n, fragment: 0, position: 0 },
      { distance: -7n, id: 9n, fragment: 3, position: 1 },
      { distance: -7n, id: 2n, fragment: 8, position: 4 },
      { distance: 0n, id: 0n, fragment: 1, position: 0 },
      { distance: -1n, id: UINT64_MAX, fragment: 0, position: 0 },
    ];
    const byCompare = [...hits].sort(compareHits);
    const byWord = [...hits].sort((a, b) => (encodeHit(a) < encodeHit(b) ? -1 : 1));
    assert.deepEqual(byWord, byCompare);
    assert.deepEqual(
      byCompare.map((h) => [h.distance, h.id]),
      [
        [-7n, 2n],
        [-7n, 9n],
        [-1n, UINT64_MAX],
        [0n, 0n],
        [5n, 1n],
      ],
    );
  });

  it("refuses values outside the word's fields and malformed words", () => {
    const ok: HitEntry = { distance: 0n, id: 0n, fragment: 0, position: 0 };
    for (const bad of [{ distance: INT64_MAX + 1n }, { distance: INT64_MIN - 1n }, { id: -1n }, { id: UINT64_MAX + 1n }, { fragment: -1 }, { fragment: 2 ** 32 }, { position: 1.5 }]) {
      assert.throws(() => encodeHit({ ...ok, ...bad }), InvalidParameterError, JSON.stringify(bad, (_, v) => (typeof v === "bigint" ? String(v) : v)));
    }
    assert.throws(() => decodeHit(encodeHit(ok) | 1n), /low 64 bits must be zero/);
    assert.throws(() => decodeHit(1n << 256n), InvalidParameterError);
    assert.throws(() => decodeHit(-1n), InvalidParameterError);
    assert.throws(() => decodeHit(`0x${"0".repeat(65)}`), InvalidParameterError);
    assert.throws(() => decodeHit("0xzz"), InvalidParameterError);
    assert.deepEqual(decodeHit(`0x1${"0".repeat(16)}`), { distance: INT64_MIN, id: 0n, fragment: 0, position: 1 }, "short hex is left-padded");
  });
});
