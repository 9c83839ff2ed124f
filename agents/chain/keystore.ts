/**
 * Chain keys at rest: the Web3 Secret Storage format (version 3, what geth, clef, MetaMask exports
 * and ethers write): the private key encrypted with AES-128-CTR under a key derived from a
 * passphrase by scrypt (or PBKDF2-HMAC-SHA256), with a Keccak-256 MAC that tells a wrong passphrase
 * from a damaged file. An agent reads one with `--keystore FILE` instead of `--key HEX` (visible in
 * `ps` and shell history).
 */
import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes, scryptSync } from "node:crypto";
import { keccak256, type Hex } from "viem";
import { privateKeyToAddress } from "viem/accounts";

/** scrypt cost of new keystores (geth's "standard": 2^18, about a second and 256 MiB). */
export const KEYSTORE_SCRYPT_N = 262_144;

/** A keystore file that cannot be used: the message says why. */
export class KeystoreError extends Error {
  readonly code = "ERR_KEYSTORE";
  constructor(message: string) {
    super(message);
    this.name = "KeystoreError";
  }
}

interface KeystoreV3 {
  version: number;
  address?: string;
  id?: string;
  crypto?: KeystoreCrypto;
  Crypto?: KeystoreCrypto;
}

interface KeystoreCrypto {
  cipher: string;
  ciphertext: string;
  cipherparams: { iv: string };
  kdf: string;
  kdfparams: { dklen: number; salt: string; n?: number; r?: number; p?: number; c?: number; prf?: string };
  mac: string;
}

const unhex = (s: string, what: string): Buffer => {
  const v = s.startsWith("0x") ? s.slice(2) : s;
  if (!/^([0-9a-fA-F]{2})*$/.test(v)) throw new KeystoreError(`keystore: ${what} is not hex`);
  return Buffer.from(v, "hex");
};

function derive(c: KeystoreCrypto, passphrase: string): Buffer {
  const p = c.kdfparams;
  const salt = unhex(p.salt, "kdfparams.salt");
  if (c.kdf === "scrypt") {
    const { n, r, p: par } = p;
    if (!n || !r || !par || (n & (n - 1)) !== 0) throw new KeystoreError("keystore: scrypt needs kdfparams n (a power of two), r and p");
    return scryptSync(Buffer.from(passphrase.normalize("NFKC"), "utf8"), salt, p.dklen, { N: n, r, p: par, maxmem: 256 * n * r + (1 << 20) });
  }
  if (c.kdf === "pbkdf2") {
    if (p.prf !== "hmac-sha256" || !p.c) throw new KeystoreError(`keystore: pbkdf2 with ${p.prf ?? "no prf"} is not supported (hmac-sha256 is)`);
    return pbkdf2Sync(Buffer.from(passphrase.normalize("NFKC"), "utf8"), salt, p.c, p.dklen, "sha256");
  }
  throw new KeystoreError(`keystore: key derivation ${JSON.stringify(c.kdf)} is not supported (scrypt or pbkdf2 are)`);
}

/** The private key in a version-3 keystore (JSON text), or a `KeystoreError` naming the problem. */
export function decryptKeystore(json: string, passphrase: string): Hex {
  let ks: KeystoreV3;
  try {
    ks = JSON.parse(json) as KeystoreV3;
  } catch {
    throw new KeystoreError("keystore: not JSON");
  }
  if (ks?.version !== 3) throw new KeystoreError(`keystore: version ${JSON.stringify(ks?.version)}, only version 3 is supported`);
  const c = ks.crypto ?? ks.Crypto;
  if (!c?.kdfparams || !c.cipherparams || typeof c.ciphertext !== "string" || typeof c.mac !== "string") throw new KeystoreError("keystore: no crypto section");
  if (c.cipher !== "aes-128-ctr") throw new KeystoreError(`keystore: cipher ${JSON.stringify(c.cipher)} is not supported (aes-128-ctr is)`);
  const derived = derive(c, passphrase);
  if (derived.length < 32) throw new KeystoreError("keystore: kdfparams.dklen must be at least 32");
  const ciphertext = unhex(c.ciphertext, "ciphertext");
  const mac = keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2);
  if (mac !== unhex(c.mac, "mac").toString("hex")) throw new KeystoreError("keystore: wrong passphrase (the MAC does not match)");
  const decipher = createDecipheriv("aes-128-ctr", derived.subarray(0, 16), unhex(c.cipherparams.iv, "cipherparams.iv"));
  const key = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  if (key.length !== 32) throw new KeystoreError(`keystore: the key is ${key.length} bytes, not 32`);
  const hex = `0x${key.toString("hex")}` as Hex;
  if (ks.address !== undefined && privateKeyToAddress(hex).slice(2).toLowerCase() !== ks.address.replace(/^0x/, "").toLowerCase()) {
    throw new KeystoreError(`keystore: the key is not the one of address ${ks.address}`);
  }
  return hex;
}

/** A version-3 keystore (JSON text) of `privateKey` under `passphrase` (scrypt, `n` default KEYSTORE_SCRYPT_N). */
export function encryptKeystore(privateKey: Hex, passphrase: string, options: { n?: number } = {}): string {
  if (passphrase.length === 0) throw new KeystoreError("keystore: an empty passphrase protects nothing");
  const n = options.n ?? KEYSTORE_SCRYPT_N;
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const crypto: KeystoreCrypto = { cipher: "aes-128-ctr", ciphertext: "", cipherparams: { iv: iv.toString("hex") }, kdf: "scrypt", kdfparams: { dklen: 32, salt: salt.toString("hex"), n, r: 8, p: 1 }, mac: "" };
  const derived = derive(crypto, passphrase);
  const cipher = createCipheriv("aes-128-ctr", derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(Buffer.from(privateKey.slice(2), "hex")), cipher.final()]);
  crypto.ciphertext = ciphertext.toString("hex");
  crypto.mac = keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2);
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const id = [b.subarray(0, 4), b.subarray(4, 6), b.subarray(6, 8), b.subarray(8, 10), b.subarray(10, 16)].map((x) => x.toString("hex")).join("-");
  return JSON.stringify({ version: 3, id, address: privateKeyToAddress(privateKey).slice(2).toLowerCase(), crypto });
}
