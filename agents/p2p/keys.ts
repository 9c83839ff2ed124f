/**
 * The node's libp2p identity on disk, so its peer id (registered on chain) survives restarts.
 * The file holds the libp2p protobuf encoding of an Ed25519 private key, mode 0600, written
 * durably and never over an existing key (store/key-file.ts); a key file others can read is refused.
 */
import { createKeyFile, KeyFilePermissionError, readKeyFile } from "../store/key-file.js";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { Ed25519PrivateKey } from "@libp2p/interface";
import { InvalidKeyFileError } from "./errors.js";

/** Reads an Ed25519 private key written by `savePrivateKey`. */
export async function loadPrivateKey(path: string): Promise<Ed25519PrivateKey> {
  let bytes: Uint8Array;
  try {
    bytes = await readKeyFile(path);
  } catch (err) {
    if (err instanceof KeyFilePermissionError) throw new InvalidKeyFileError(path, err.reason, err);
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

/**
 * Writes `key` to a new file `path` (mode 0600, fsynced with its directory), creating the directory
 * if needed; an existing file is never replaced (EEXIST).
 */
export async function savePrivateKey(path: string, key: Ed25519PrivateKey): Promise<void> {
  await createKeyFile(path, privateKeyToProtobuf(key));
}

/** Loads the key at `path`, or generates a new Ed25519 key and saves it there if the file is missing. */
export async function loadOrCreatePrivateKey(path: string): Promise<Ed25519PrivateKey> {
  try {
    return await loadPrivateKey(path);
  } catch (err) {
    if (!(err instanceof InvalidKeyFileError) || err.context.reason !== "file not found") throw err;
  }
  const key = await generateKeyPair("Ed25519");
  try {
    await savePrivateKey(path, key);
  } catch (err) {
    // Another process created it first: use that one.
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return loadPrivateKey(path);
    throw err;
  }
  return key;
}
