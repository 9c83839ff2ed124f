/**
 * The node's libp2p identity on disk, so its peer id (registered on chain) survives restarts.
 * The file holds the libp2p protobuf encoding of an Ed25519 private key, mode 0600, written
 * atomically (temporary file + rename).
 */
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import { InvalidKeyFileError } from "./errors.js";

/** Reads an Ed25519 private key written by `savePrivateKey`. */
export async function loadPrivateKey(path: string): Promise<Ed25519PrivateKey> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new InvalidKeyFileError(path, (err as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : "unreadable", err);
  }
  let key;
  try {
    key = privateKeyFromProtobuf(bytes);
  } catch (err) {
    throw new InvalidKeyFileError(path, "not a libp2p private key", err);
  }
  if (key.type !== "Ed25519") throw new InvalidKeyFileError(path, `key type ${key.type}, expected Ed25519`);
  return key;
}

/** Writes `key` to `path` (mode 0600), creating the directory if needed. */
export async function savePrivateKey(path: string, key: Ed25519PrivateKey): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** Loads the key at `path`, or generates a new Ed25519 key and saves it there if the file is missing. */
export async function loadOrCreatePrivateKey(path: string): Promise<Ed25519PrivateKey> {
  try {
    return await loadPrivateKey(path);
  } catch (err) {
    if (!(err instanceof InvalidKeyFileError) || err.context.reason !== "file not found") throw err;
  }
  const key = await generateKeyPair("Ed25519");
  await savePrivateKey(path, key);
  return key;
}
