/**
 * The binary answers of `/muri/search/3.0.0` searches (docs/SEARCH.md, "Off-chain searches on the
 * wire"). Requests stay JSON (small, and the access gate and the search meter read their `op` and
 * `magu`); the answers that carry hits and proofs are binary frames, big-endian:
 *
 *   search answer: 0x01 | fragments u32 | fragments × u32 (covered, ascending)
 *                  | queries u16 | per query: hits u16 | hits × 32-byte result entry words
 *                  [| proofs u16 | per proof: fragment u32 | position u32 | proof]  (asked with `prove`)
 *   prove answer:  0x02 | items u16 | per item: 0x00 proof (data/hit-proof.ts writeHitProof)
 *                                             | 0x01 reason-length u16 | UTF-8 reason
 *
 * A hit is the 32-byte word SearchMarket reveals (docs/SEARCH.md "Result entries": distance key,
 * id, fragment, position, 64 zero bits), so it costs 32 bytes and no decimal strings.
 *
 * The decoders check everything a member could get wrong (the tag, every count against the request,
 * a word's zero bits, the order of covered fragments, bytes missing or left over) and throw an error
 * naming the byte and the rule: the client counts that member as failed, nothing else happens.
 */
import { hitProofBytes, readHitProof, writeHitProof, type HitProof } from "../../data/hit-proof.js";
import type { HitEntry } from "../../data/vectors.js";

export const SEARCH_ANSWER_TAG = 0x01;
export const PROVE_ANSWER_TAG = 0x02;
/** Bytes of one hit: a result entry word. */
export const HIT_WORD_BYTES = 32;

const SIGN_FLIP = 1n << 63n;
const UINT64 = (1n << 64n) - 1n;

/** Writes `hit` as its result entry word at `offset` (data/vectors.ts `encodeHit`, without the bigint). */
export function writeHitWord(hit: HitEntry, out: Buffer, offset: number): void {
  out.writeBigUInt64BE((hit.distance & UINT64) ^ SIGN_FLIP, offset);
  out.writeBigUInt64BE(hit.id, offset + 8);
  out.writeUInt32BE(hit.fragment, offset + 16);
  out.writeUInt32BE(hit.position, offset + 20);
  out.writeBigUInt64BE(0n, offset + 24);
}

/** Reads a result entry word at `offset`; throws when its low 64 bits are not zero. */
export function readHitWord(bytes: Buffer, offset: number): HitEntry {
  if (bytes.readUInt32BE(offset + 24) !== 0 || bytes.readUInt32BE(offset + 28) !== 0) throw new Error(`hit word at byte ${offset}: its low 64 bits must be zero`);
  const key = bytes.readBigUInt64BE(offset) ^ SIGN_FLIP;
  return {
    distance: key >= SIGN_FLIP ? key - (1n << 64n) : key,
    id: bytes.readBigUInt64BE(offset + 8),
    fragment: bytes.readUInt32BE(offset + 16),
    position: bytes.readUInt32BE(offset + 20),
  };
}

/** A record's proof sent inline with a search answer. */
export interface InlineProof {
  fragment: number;
  position: number;
  proof: HitProof;
}

/** A decoded search answer: the fragments the member covered, each query's hits, and the proofs sent with them. */
export interface SearchAnswerBody {
  fragments: number[];
  hits: HitEntry[][];
  proofs: InlineProof[];
}

export function encodeSearchAnswer(answer: { fragments: readonly number[]; hits: readonly (readonly HitEntry[])[]; proofs?: readonly InlineProof[] }): Buffer {
  const hitCount = answer.hits.reduce((n, q) => n + q.length, 0);
  const proofs = answer.proofs ?? [];
  const proofBytes = proofs.length === 0 ? 0 : 2 + proofs.reduce((n, p) => n + 8 + hitProofBytes(p.proof), 0);
  const out = Buffer.allocUnsafe(1 + 4 + 4 * answer.fragments.length + 2 + 2 * answer.hits.length + HIT_WORD_BYTES * hitCount + proofBytes);
  let o = out.writeUInt8(SEARCH_ANSWER_TAG, 0);
  o = out.writeUInt32BE(answer.fragments.length, o);
  for (const f of answer.fragments) o = out.writeUInt32BE(f, o);
  o = out.writeUInt16BE(answer.hits.length, o);
  for (const q of answer.hits) {
    o = out.writeUInt16BE(q.length, o);
    for (const h of q) {
      writeHitWord(h, out, o);
      o += HIT_WORD_BYTES;
    }
  }
  if (proofs.length > 0) {
    o = out.writeUInt16BE(proofs.length, o);
    for (const p of proofs) {
      o = out.writeUInt32BE(p.fragment, o);
      o = out.writeUInt32BE(p.position, o);
      o = writeHitProof(p.proof, out, o);
    }
  }
  return out;
}

/** Throws `answer byte N: ...` unless `n` bytes remain at `o`. */
function need(bytes: Buffer, o: number, n: number, what: string): void {
  if (o + n > bytes.length) throw new Error(`malformed search answer: ${what} at byte ${o} needs ${n} bytes, ${bytes.length - o} left`);
}

/**
 * Decodes a search answer to a request of `queries` queries and `k` hits each, with at most
 * `maxProofs` proofs inline (0: the request asked none); throws an error naming what is malformed.
 */
export function decodeSearchAnswer(bytes: Uint8Array, queries: number, k: number, maxProofs = 0): SearchAnswerBody {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  need(b, 0, 5, "the tag and fragment count");
  if (b[0] !== SEARCH_ANSWER_TAG) throw new Error(`malformed search answer: tag 0x${b[0]!.toString(16)}, expected 0x0${SEARCH_ANSWER_TAG}`);
  const fragmentCount = b.readUInt32BE(1);
  let o = 5;
  need(b, o, 4 * fragmentCount, `${fragmentCount} covered fragments`);
  const fragments: number[] = [];
  for (let i = 0; i < fragmentCount; i++, o += 4) {
    const f = b.readUInt32BE(o);
    if (i > 0 && f <= fragments[i - 1]!) throw new Error(`malformed search answer: covered fragment ${f} at byte ${o} does not follow ${fragments[i - 1]} (ascending, no repeats)`);
    fragments.push(f);
  }
  need(b, o, 2, "the query count");
  const n = b.readUInt16BE(o);
  o += 2;
  if (n !== queries) throw new Error(`malformed search answer: ${n} queries answered, ${queries} asked`);
  const hits: HitEntry[][] = [];
  for (let q = 0; q < n; q++) {
    need(b, o, 2, `query ${q}'s hit count`);
    const count = b.readUInt16BE(o);
    o += 2;
    if (count > k) throw new Error(`malformed search answer: ${count} hits for query ${q}, k is ${k}`);
    need(b, o, HIT_WORD_BYTES * count, `query ${q}'s ${count} hits`);
    const list: HitEntry[] = [];
    for (let i = 0; i < count; i++, o += HIT_WORD_BYTES) {
      try {
        list.push(readHitWord(b, o));
      } catch (err) {
        throw new Error(`malformed search answer: ${(err as Error).message}`, { cause: err });
      }
    }
    hits.push(list);
  }
  const proofs: InlineProof[] = [];
  if (o < b.length && maxProofs > 0) {
    need(b, o, 2, "the proof count");
    const count = b.readUInt16BE(o);
    o += 2;
    if (count < 1 || count > maxProofs) throw new Error(`malformed search answer: ${count} proofs, 1 to ${maxProofs} may come with it`);
    for (let i = 0; i < count; i++) {
      need(b, o, 8, `proof ${i}'s record`);
      const fragment = b.readUInt32BE(o);
      const position = b.readUInt32BE(o + 4);
      try {
        const { proof, end } = readHitProof(b, o + 8);
        proofs.push({ fragment, position, proof });
        o = end;
      } catch (err) {
        throw new Error(`malformed search answer: proof ${i}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
  if (o !== b.length) throw new Error(`malformed search answer: ${b.length - o} bytes after the last ${proofs.length > 0 ? "proof" : "query's hits"}`);
  return { fragments, hits, proofs };
}

/** One item of a prove answer: the proof, or why the member cannot give it. */
export type ProveItem = { proof: HitProof } | { error: string };

export function encodeProveAnswer(items: readonly ProveItem[]): Buffer {
  const parts = items.map((item) => ("proof" in item ? null : Buffer.from(item.error.slice(0, 1000), "utf8")));
  const size = items.reduce((n, item, i) => n + 1 + ("proof" in item ? hitProofBytes(item.proof) : 2 + parts[i]!.length), 3);
  const out = Buffer.allocUnsafe(size);
  let o = out.writeUInt8(PROVE_ANSWER_TAG, 0);
  o = out.writeUInt16BE(items.length, o);
  items.forEach((item, i) => {
    if ("proof" in item) {
      o = out.writeUInt8(0, o);
      o = writeHitProof(item.proof, out, o);
    } else {
      o = out.writeUInt8(1, o);
      o = out.writeUInt16BE(parts[i]!.length, o);
      o += parts[i]!.copy(out, o);
    }
  });
  return out;
}

/** Decodes a prove answer to a request for `count` hits; throws an error naming what is malformed. */
export function decodeProveAnswer(bytes: Uint8Array, count: number): ProveItem[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 3) throw new Error(`malformed prove answer: ${b.length} bytes, the header alone is 3`);
  if (b[0] !== PROVE_ANSWER_TAG) throw new Error(`malformed prove answer: tag 0x${b[0]!.toString(16)}, expected 0x0${PROVE_ANSWER_TAG}`);
  const n = b.readUInt16BE(1);
  if (n !== count) throw new Error(`malformed prove answer: ${n} items, ${count} hits asked`);
  const items: ProveItem[] = [];
  let o = 3;
  for (let i = 0; i < n; i++) {
    if (o >= b.length) throw new Error(`malformed prove answer: item ${i} at byte ${o} is missing`);
    const status = b[o++]!;
    if (status === 0) {
      try {
        const { proof, end } = readHitProof(b, o);
        items.push({ proof });
        o = end;
      } catch (err) {
        throw new Error(`malformed prove answer: item ${i}: ${(err as Error).message}`, { cause: err });
      }
    } else if (status === 1) {
      if (o + 2 > b.length) throw new Error(`malformed prove answer: item ${i}'s reason length at byte ${o} is missing`);
      const length = b.readUInt16BE(o);
      o += 2;
      if (o + length > b.length) throw new Error(`malformed prove answer: item ${i}'s reason of ${length} bytes runs past the answer`);
      items.push({ error: b.toString("utf8", o, o + length) });
      o += length;
    } else {
      throw new Error(`malformed prove answer: item ${i} has status ${status}, expected 0 (proof) or 1 (reason)`);
    }
  }
  if (o !== b.length) throw new Error(`malformed prove answer: ${b.length - o} bytes after the last item`);
  return items;
}
