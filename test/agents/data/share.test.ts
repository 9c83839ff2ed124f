import assert from "node:assert/strict";
import { createDecipheriv, createECDH, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { CID } from "multiformats/cid";
import { decryptFragment, deriveFragmentKey, encryptFragment, fileKeyOf, FileKey, manifestMac, openFileSize, sealFileSize } from "../../../agents/data/crypto.js";
import { InvalidParameterError } from "../../../agents/data/errors.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { decodeFile, encodeFile } from "../../../agents/data/pipeline.js";
import { decodeShareToken, encodeShareToken, isShareToken, parsePublicKey, SHARE_TOKEN_PREFIX, ShareError, unwrapFileKey, wrapFileKey, type Share } from "../../../agents/data/share.js";

const secret = Buffer.alloc(32, 0x11);
const fileId = Buffer.alloc(32, 0x22);
const otherFile = Buffer.alloc(32, 0x23);

/** A recipient: a secp256k1 key pair, as a chain account has. */
function recipient() {
  const ecdh = createECDH("secp256k1");
  ecdh.generateKeys();
  return { publicKey: ecdh.getPublicKey(undefined, "compressed"), ecdh: (p: Buffer) => ecdh.computeSecret(p) };
}

const target = { chainId: 31337, maguId: 7n, manifestCid: fragmentCid(Buffer.from("a manifest")) };

function shareFor(fileKey: FileKey, to: ReturnType<typeof recipient>, over: Partial<Share> = {}): Share {
  const { epk, box } = wrapFileKey(fileKey, to.publicKey, target);
  return { ...target, fileId: fileKey.fileId, to: "0x" + "ab".repeat(20), epk, box, ...over };
}

describe("a file's own key (FileKey)", () => {
  it("is HKDF's extract step: expanding it gives the keys the secret gives, byte for byte", () => {
    const key = fileKeyOf(secret, fileId);
    // RFC 5869: hkdfSync(secret, salt = fileId, info) = Expand(PRK = HMAC(fileId, secret), info).
    assert.deepEqual(key.prk, createHmac("sha256", fileId).update(secret).digest());
    for (const index of [0, 1, 255, 1_000_000]) assert.deepEqual(deriveFragmentKey(key, fileId, index), deriveFragmentKey(secret, fileId, index), `fragment ${index}`);
    const body = Buffer.from("manifest body");
    assert.equal(manifestMac(key, fileId, body), manifestMac(secret, fileId, body));
    const sealed = sealFileSize(secret, fileId, 123_456_789);
    assert.equal(openFileSize(key, fileId, sealed), 123_456_789);
    assert.equal(sealFileSize(key, fileId, 5), sealFileSize(secret, fileId, 5));
    const fragment = encryptFragment(secret, fileId, 9, Buffer.from("plaintext"));
    assert.equal(decryptFragment(key, fileId, 9, fragment).toString(), "plaintext");
  });

  it("opens its own file only, and keys of two files are unrelated", () => {
    const key = fileKeyOf(secret, fileId);
    assert.throws(() => deriveFragmentKey(key, otherFile, 0), (err: unknown) => err instanceof InvalidParameterError && /this key opens file 2222.* only/.test(err.message));
    assert.throws(() => sealFileSize(key, otherFile, 1), InvalidParameterError);
    assert.notDeepEqual(fileKeyOf(secret, otherFile).prk, key.prk);
    assert.notDeepEqual(key.prk, secret, "not the secret itself");
    assert.throws(() => new FileKey(fileId, Buffer.alloc(31)), InvalidParameterError);
  });

  it("decodes a whole file the secret encoded (pipeline)", async () => {
    const data = randomBytes(70_000);
    const shards: Buffer[] = [];
    const { manifest } = await encodeFile(data, { secret, k: 2, m: 1, shardSize: 16_384 }, (stripe) => {
      for (const s of stripe) shards[s.index] = s.bytes;
    });
    const key = fileKeyOf(secret, Buffer.from(manifest.encryption.fileId, "hex"));
    const parts: Buffer[] = [];
    for await (const p of decodeFile(manifest, async (_cid: CID, where) => shards[where.index], { secret: key })) parts.push(Buffer.from(p));
    assert.deepEqual(Buffer.concat(parts), data);
  });
});

describe("share: a file key wrapped to another account's public key", () => {
  it("round trips through the token for its recipient", () => {
    const bob = recipient();
    const key = fileKeyOf(secret, fileId);
    const token = encodeShareToken({ ...shareFor(key, bob), grant: "a grant token" });
    assert.ok(token.startsWith(SHARE_TOKEN_PREFIX) && isShareToken(`  ${token}\n`));
    const share = decodeShareToken(token);
    assert.equal(share.maguId, 7n);
    assert.ok(share.manifestCid.equals(target.manifestCid));
    assert.equal(share.grant, "a grant token");
    const opened = unwrapFileKey(share, bob.publicKey, bob.ecdh);
    assert.deepEqual(opened.prk, key.prk);
    assert.deepEqual(opened.fileId, fileId);
  });

  it("two shares of one file to one recipient differ (a fresh ephemeral key each)", () => {
    const bob = recipient();
    const key = fileKeyOf(secret, fileId);
    assert.notDeepEqual(shareFor(key, bob).box, shareFor(key, bob).box);
  });

  it("does not open for anyone else", () => {
    const bob = recipient();
    const eve = recipient();
    const share = shareFor(fileKeyOf(secret, fileId), bob);
    // Eve holds the token, but her key gives another ECDH secret.
    assert.throws(() => unwrapFileKey(share, eve.publicKey, eve.ecdh), (err: unknown) => err instanceof ShareError && err.code === "ERR_SHARE_NOT_FOR_YOU" && /made for account 0xabab/.test(err.message));
    // Nor when she claims to be Bob (his public key, her ECDH).
    assert.throws(() => unwrapFileKey(share, bob.publicKey, eve.ecdh), ShareError);
  });

  it("is bound to the file it names: a token edited to name another Magu, manifest or file id does not open", () => {
    const bob = recipient();
    const share = shareFor(fileKeyOf(secret, fileId), bob);
    const edits: Array<Partial<Share>> = [{ maguId: 8n }, { chainId: 1 }, { manifestCid: fragmentCid(Buffer.from("another manifest")) }, { fileId: otherFile }];
    for (const edit of edits) assert.throws(() => unwrapFileKey({ ...share, ...edit }, bob.publicKey, bob.ecdh), ShareError, JSON.stringify(Object.keys(edit)));
    const box = Buffer.from(share.box);
    box[3]! ^= 1;
    assert.throws(() => unwrapFileKey({ ...share, box }, bob.publicKey, bob.ecdh), ShareError);
  });

  it("is the documented construction, byte for byte: ECDH, HKDF-SHA256 over E || R with info muri/v1/share, AES-256-GCM bound to the chain, Magu, manifest and file", () => {
    const bob = recipient();
    const key = fileKeyOf(secret, fileId);
    const share = shareFor(key, bob);
    const z = bob.ecdh(share.epk);
    const okm = Buffer.from(hkdfSync("sha256", z, Buffer.concat([share.epk, bob.publicKey]), "muri/v1/share", 44));
    const head = Buffer.alloc(40);
    head.writeBigUInt64BE(BigInt(target.chainId), 0);
    head.writeBigUInt64BE(target.maguId, 32); // the Magu id as uint256_be (it fits the low 8 bytes here)
    const aad = Buffer.concat([Buffer.from("muri/v1/share", "utf8"), head, target.manifestCid.bytes, fileId]);
    const d = createDecipheriv("aes-256-gcm", okm.subarray(0, 32), okm.subarray(32, 44));
    d.setAAD(aad);
    d.setAuthTag(share.box.subarray(32));
    assert.deepEqual(Buffer.concat([d.update(share.box.subarray(0, 32)), d.final()]), key.prk);
    assert.equal(share.epk.length, 33);
    assert.equal(share.box.length, 48);
    // Not for this account: the error names the account it was made for.
    const eve = recipient();
    assert.throws(() => unwrapFileKey(share, eve.publicKey, eve.ecdh), (e: unknown) => e instanceof ShareError && e.code === "ERR_SHARE_NOT_FOR_YOU" && (e.context as { to?: string }).to === share.to);
    // The token carries exactly these fields, a grant only when there is one.
    const fields = (t: string) => Object.keys(JSON.parse(Buffer.from(t.slice(SHARE_TOKEN_PREFIX.length), "base64url").toString("utf8")) as object).sort();
    assert.deepEqual(fields(encodeShareToken(share)), ["box", "chainId", "cid", "epk", "fileId", "magu", "to", "v"]);
    assert.deepEqual(fields(encodeShareToken({ ...share, grant: "g" })), ["box", "chainId", "cid", "epk", "fileId", "grant", "magu", "to", "v"]);
    assert.equal(isShareToken(`  ${encodeShareToken(share)}`), true);
    assert.equal(isShareToken("bafy"), false);
  });

  it("refuses malformed tokens, naming what is wrong", () => {
    const good = JSON.parse(Buffer.from(encodeShareToken(shareFor(fileKeyOf(secret, fileId), recipient())).slice(SHARE_TOKEN_PREFIX.length), "base64url").toString()) as Record<string, unknown>;
    const token = (o: Record<string, unknown>): string => SHARE_TOKEN_PREFIX + Buffer.from(JSON.stringify(o)).toString("base64url");
    const cases: Array<[string, RegExp]> = [
      ["bafkabc", /does not start with muri-share:/],
      [`${SHARE_TOKEN_PREFIX}!!!`, /not base64url of JSON/],
      [token({ ...good, v: 2 }), /version 2 is not 1/],
      [token({ ...good, magu: "0" }), /field magu is not a Magu id/],
      [token({ ...good, cid: "nope" }), /field cid is not a CID/],
      [token({ ...good, epk: "00" }), /field epk is not 33 bytes of hex/],
      [token({ ...good, box: undefined }), /field box is missing/],
      [token({ ...good, to: "bob" }), /field to is not an account address/],
      [token({ ...good, chainId: -1 }), /chainId is not a positive integer/],
      [token({ ...good, grant: 5 }), /field grant is not a string/],
      // Each pattern is anchored: a valid value with anything before or after it is refused.
      [token({ ...good, magu: `${good.magu as string}x` }), /field magu is not a Magu id/],
      [token({ ...good, magu: `x${good.magu as string}` }), /field magu is not a Magu id/],
      [token({ ...good, magu: "1a" }), /field magu is not a Magu id/],
      [token({ ...good, to: `${good.to as string}00` }), /field to is not an account address/],
      [token({ ...good, to: `1${good.to as string}` }), /field to is not an account address/],
      [token({ ...good, fileId: `zz${(good.fileId as string).slice(2)}` }), /field fileId is not 32 bytes of hex/],
      [token({ ...good, fileId: `${(good.fileId as string).slice(0, 62)}zz` }), /field fileId is not 32 bytes of hex/],
      [token({ ...good, fileId: `AB${(good.fileId as string).slice(2)}` }), /field fileId is not 32 bytes of hex/],
      [token({ ...good, chainId: "31337" }), /chainId is not a positive integer/],
      [token({ ...good, chainId: 1.5 }), /chainId is not a positive integer/],
      [token({ ...good, chainId: 0 }), /chainId is not a positive integer/],
      [SHARE_TOKEN_PREFIX + Buffer.from("null").toString("base64url"), /share token: not an object/],
      [SHARE_TOKEN_PREFIX + Buffer.from("7").toString("base64url"), /share token: not an object/],
    ];
    for (const [value, pattern] of cases) {
      assert.throws(() => decodeShareToken(value), (err: unknown) => err instanceof ShareError && err.code === "ERR_BAD_SHARE" && pattern.test(err.message) && /pass the whole string muri share printed/.test(err.message), value);
    }
    // Surrounding whitespace is not part of the token; the smallest chain id and a grant are kept.
    const ok = decodeShareToken(`  ${token({ ...good, chainId: 1, grant: "g" })}\n`);
    assert.deepEqual([ok.chainId, ok.grant, ok.to], [1, "g", good.to]);
    assert.equal(decodeShareToken(token(good)).grant, undefined);
    assert.equal("grant" in decodeShareToken(token(good)), false);
  });

  it("parses public keys: compressed, uncompressed, without the 04 prefix; refuses others", () => {
    const ecdh = createECDH("secp256k1");
    ecdh.generateKeys();
    const compressed = ecdh.getPublicKey(undefined, "compressed");
    const full = ecdh.getPublicKey();
    for (const form of [compressed.toString("hex"), `0x${full.toString("hex")}`, full.subarray(1).toString("hex")]) assert.deepEqual(parsePublicKey(form), compressed, form);
    // Whitespace around it and an upper-case 0X are accepted.
    assert.deepEqual(parsePublicKey(` 0X${compressed.toString("hex")} `), compressed);
    const bad: Array<[string, RegExp]> = [
      ["0xzz", /is not hex/],
      [`${compressed.toString("hex")}0`, /is not hex/],
      [`10x${compressed.toString("hex")}`, /is not hex/],
      ["0x" + "11".repeat(20), /20 bytes, not a secp256k1 public key/],
      ["02" + "ff".repeat(32), /not a point on secp256k1/],
    ];
    for (const [value, pattern] of bad) assert.throws(() => parsePublicKey(value, "--to"), (err: unknown) => err instanceof ShareError && err.code === "ERR_BAD_PUBLIC_KEY" && pattern.test(err.message) && err.message.startsWith("--to"), value);
  });
});
