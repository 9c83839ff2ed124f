/**
 * The binary answers of `/muri/search/3.0.0` (roles/shared/search-wire.ts): a search answer (the
 * covered fragments and each query's hits as 32-byte result entry words) and a prove answer (a
 * proof or a reason per hit) round trip exactly, the words are SearchMarket's; every malformed
 * frame a member could send is refused with an error naming the byte and the rule.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { buildHitProof, checkHitProof } from "../../../agents/data/hit-proof.js";
import { buildFragmentTree } from "../../../agents/data/merkle.js";
import { canonicalDistance, encodeHit, packRecords, type HitEntry, type VectorRecord } from "../../../agents/data/vectors.js";
import { decodeProveAnswer, decodeSearchAnswer, encodeProveAnswer, encodeSearchAnswer, readHitWord, writeHitWord } from "../../../agents/roles/shared/search-wire.js";

const hits: HitEntry[][] = [
  [
    { distance: -(2n ** 63n), id: 0n, fragment: 0, position: 0 },
    { distance: -5n, id: 2n ** 64n - 257n, fragment: 7, position: 116_000 },
    { distance: 2n ** 63n - 1n, id: 42n, fragment: 2 ** 32 - 1, position: 3 },
  ],
  [],
  [{ distance: 123_456_789n, id: 9n, fragment: 3, position: 1 }],
];

describe("search answers on the wire", () => {
  it("round trip a batch; each hit is SearchMarket's result entry word", () => {
    const bytes = encodeSearchAnswer({ fragments: [0, 3, 7, 2 ** 32 - 1], hits });
    assert.equal(bytes.length, 1 + 4 + 16 + 2 + 3 * 2 + 4 * 32);
    assert.deepEqual(decodeSearchAnswer(bytes, 3, 3), { fragments: [0, 3, 7, 2 ** 32 - 1], hits, proofs: [] });
    const word = Buffer.alloc(32);
    for (const h of hits.flat()) {
      writeHitWord(h, word, 0);
      assert.equal(BigInt(`0x${word.toString("hex")}`), encodeHit(h), "the word is encodeHit's");
      assert.deepEqual(readHitWord(word, 0), h);
    }
  });

  it("a malformed search answer is refused naming what is wrong", () => {
    const good = encodeSearchAnswer({ fragments: [1, 2], hits });
    const bad = (mutate: (b: Buffer) => Buffer, re: RegExp, queries = 3, k = 3): void => {
      assert.throws(() => decodeSearchAnswer(mutate(Buffer.from(good)), queries, k), re);
    };
    bad((b) => b.subarray(0, 3), /the tag and fragment count at byte 0 needs 5 bytes, 3 left/);
    bad((b) => ((b[0] = 0x02), b), /tag 0x2, expected 0x01/);
    bad((b) => (b.writeUInt32BE(1_000_000, 1), b), /1000000 covered fragments at byte 5 needs 4000000 bytes/);
    bad((b) => (b.writeUInt32BE(1, 9), b), /covered fragment 1 at byte 9 does not follow 1/);
    bad((b) => b, /3 queries answered, 2 asked/, 2);
    bad((b) => b, /3 hits for query 0, k is 2/, 3, 2);
    bad((b) => b.subarray(0, b.length - 1), /query 2's 1 hits at byte \d+ needs 32 bytes, 31 left/);
    bad((b) => Buffer.concat([b, Buffer.of(0)]), /1 bytes after the last query's hits/);
    bad((b) => ((b[b.length - 1] = 1), b), /hit word at byte \d+: its low 64 bits must be zero/);
    bad(() => Buffer.alloc(0), /needs 5 bytes, 0 left/);
    // Random bytes never decode by chance into something accepted without a throw naming it.
    for (let i = 0; i < 200; i++) {
      const junk = randomBytes(1 + (i % 80));
      try {
        decodeSearchAnswer(junk, 1, 10);
      } catch (err) {
        assert.match((err as Error).message, /^malformed search answer: /);
      }
    }
  });
});

describe("inline proofs in a search answer", () => {
  const DIM = 16;
  const records: VectorRecord[] = Array.from({ length: 30 }, (_, i) => ({ id: BigInt(i), values: Int16Array.from({ length: DIM }, (_, c) => (i * 17 + c * 3) % 100) }));
  const [fragment] = [...packRecords(records, DIM)];
  const tree = buildFragmentTree(fragment!);

  it("round trip after the hits; more proofs than asked, or a broken one, is refused", () => {
    const proofs = [2, 29].map((position) => ({ fragment: 5, position, proof: buildHitProof(fragment!, tree, position, DIM) }));
    const bytes = encodeSearchAnswer({ fragments: [5], hits: [hits[2]!], proofs });
    const back = decodeSearchAnswer(bytes, 1, 3, 2);
    assert.deepEqual(back.hits, [hits[2]]);
    assert.deepEqual(back.proofs.map((p) => [p.fragment, p.position]), [[5, 2], [5, 29]]);
    assert.ok(back.proofs.every((p, i) => p.proof.leaves.equals(proofs[i]!.proof.leaves) && p.proof.siblings.equals(proofs[i]!.proof.siblings) && p.proof.size === proofs[i]!.proof.size));
    assert.throws(() => decodeSearchAnswer(bytes, 1, 3, 1), /2 proofs, 1 to 1 may come with it/);
    assert.throws(() => decodeSearchAnswer(bytes, 1, 3), /bytes after the last query's hits/, "no proofs asked");
    assert.throws(() => decodeSearchAnswer(bytes.subarray(0, bytes.length - 3), 1, 3, 2), /malformed search answer: proof 1: proof at byte \d+: .* the answer has/);
    const zero = Buffer.from(bytes);
    zero.writeUInt16BE(0, 1 + 4 + 4 + 2 + 2 + 32);
    assert.throws(() => decodeSearchAnswer(zero, 1, 3, 2), /0 proofs, 1 to 2/);
  });
});

describe("prove answers on the wire", () => {
  const DIM = 16;
  const records: VectorRecord[] = Array.from({ length: 40 }, (_, i) => ({ id: BigInt(100 + i), values: Int16Array.from({ length: DIM }, (_, c) => (i * 31 + c * 7) % 200) }));
  const [fragment] = [...packRecords(records, DIM)];
  const tree = buildFragmentTree(fragment!);
  const query = Int16Array.from({ length: DIM }, (_, c) => c);
  const hitAt = (p: number): HitEntry => ({ id: records[p]!.id, distance: canonicalDistance("l2", query, records[p]!.values), fragment: 4, position: p });

  it("round trip proofs and reasons; the proofs still check", () => {
    const bytes = encodeProveAnswer([{ proof: buildHitProof(fragment!, tree, 3, DIM) }, { error: "fragment 9 position 1 cannot be proven here: gone" }, { proof: buildHitProof(fragment!, tree, 39, DIM) }]);
    const items = decodeProveAnswer(bytes, 3);
    assert.ok("proof" in items[0]! && "proof" in items[2]!);
    assert.deepEqual(items[1], { error: "fragment 9 position 1 cannot be proven here: gone" });
    assert.equal(checkHitProof(hitAt(3), (items[0] as { proof: never }).proof, tree.fragmentRoot, query, "l2"), undefined);
    assert.equal(checkHitProof(hitAt(39), (items[2] as { proof: never }).proof, tree.fragmentRoot, query, "l2"), undefined);
    assert.match(checkHitProof(hitAt(3), (items[2] as { proof: never }).proof, tree.fragmentRoot, query, "l2")!, /does not prove|holds id/, "the proof of a record in another leaf");
  });

  it("a malformed prove answer is refused naming what is wrong", () => {
    const good = encodeProveAnswer([{ proof: buildHitProof(fragment!, tree, 3, DIM) }, { error: "no" }]);
    const bad = (mutate: (b: Buffer) => Buffer, re: RegExp, count = 2): void => {
      assert.throws(() => decodeProveAnswer(mutate(Buffer.from(good)), count), re);
    };
    bad((b) => b.subarray(0, 2), /2 bytes, the header alone is 3/);
    bad((b) => ((b[0] = 0x01), b), /tag 0x1, expected 0x02/);
    bad((b) => b, /2 items, 3 hits asked/, 3);
    bad((b) => ((b[3] = 7), b), /item 0 has status 7/);
    bad((b) => (b.writeUInt32BE(0, 4), b), /item 0: proof at byte 4: fragment size 0/);
    bad((b) => b.subarray(0, 600), /item 0: proof at byte 4: .* the answer has 596 left/);
    bad((b) => b.subarray(0, b.length - 1), /item 1's reason of 2 bytes runs past the answer/);
    bad((b) => Buffer.concat([b, Buffer.of(9, 9)]), /2 bytes after the last item/);
    bad((b) => b.subarray(0, b.length - 4), /item 1's reason length at byte \d+ is missing/);
    for (let i = 0; i < 200; i++) {
      try {
        decodeProveAnswer(Buffer.concat([Buffer.of(2, 0, 1), randomBytes(i % 90)]), 1);
      } catch (err) {
        assert.match((err as Error).message, /^malformed prove answer: /);
      }
    }
  });
});
