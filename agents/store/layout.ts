/**
 * On-disk layout of a fragment store directory:
 *
 *   <dir>/meta/                    LevelDB metadata (unless the caller supplies its own MetaDb)
 *   <dir>/blocks/ab/cd/<cid>       fragment bytes; ab, cd = hex of the first two digest bytes (fragment root or sha2-256)
 *   <dir>/tmp/<random>.tmp         writes in progress (same filesystem, so rename is atomic)
 *   <dir>/quarantine/<cid>.<ms>    files found corrupt, kept for inspection, never served
 *
 * Two levels of 256 directories keep each directory small (1 M fragments = ~16 files per leaf).
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { CID } from "multiformats/cid";
import { STORE_DIRS } from "./constants.js";

export interface StorePaths {
  root: string;
  meta: string;
  blocks: string;
  tmp: string;
  quarantine: string;
}

export function storePaths(root: string): StorePaths {
  return {
    root,
    meta: join(root, STORE_DIRS.meta),
    blocks: join(root, STORE_DIRS.blocks),
    tmp: join(root, STORE_DIRS.tmp),
    quarantine: join(root, STORE_DIRS.quarantine),
  };
}

function hex2(byte: number | undefined): string {
  return (byte ?? 0).toString(16).padStart(2, "0");
}

/** The shard directory of a CID, relative to `blocks/`: `[ab, cd]`. */
export function shardOf(cid: CID): [string, string] {
  const digest = cid.multihash.digest;
  return [hex2(digest[0]), hex2(digest[1])];
}

export function blockDir(paths: StorePaths, cid: CID): string {
  const [a, b] = shardOf(cid);
  return join(paths.blocks, a, b);
}

export function blockPath(paths: StorePaths, cid: CID): string {
  return join(blockDir(paths, cid), cid.toString());
}

let tmpCounter = 0;

/** A fresh temporary file path (unique within the process; random across processes). */
export function tmpPath(paths: StorePaths): string {
  tmpCounter = (tmpCounter + 1) % 0x1_0000_0000;
  return join(paths.tmp, `${randomBytes(6).toString("hex")}-${tmpCounter.toString(36)}.tmp`);
}

export function quarantinePath(paths: StorePaths, name: string): string {
  return join(paths.quarantine, `${name}.${Date.now()}`);
}
