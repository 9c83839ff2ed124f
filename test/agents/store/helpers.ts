import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import type { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";

export interface Fragment {
  cid: CID;
  bytes: Uint8Array;
}

export function randomFragment(size: number): Fragment {
  const bytes = new Uint8Array(randomBytes(size));
  return { cid: fragmentCid(bytes), bytes };
}

const dirs: string[] = [];
// Removed once the whole file ran, after every test's own `after` hooks (which close stores).
after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A fresh temporary directory, removed when the test file ends. */
export async function tempDir(_t?: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "muri-store-test-"));
  dirs.push(dir);
  return dir;
}

/** Every regular file under `dir` (relative paths), recursively; [] when `dir` is missing. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

export const FIXTURES = new URL("./fixtures/", import.meta.url);
