/**
 * The storage client's record of the files it put into each Magu, in its directory beside the
 * encryption secret (so whoever can decrypt a file can also locate it):
 *
 *   <dir>/magus/<id>.json   {"magu":"7","files":[{"manifest":"bafy…","offset":0,"shards":15,"fileSize":123}, …]}
 *
 * Files in commit order; `offset` is the Magu fragment index of the file's first shard (the running
 * sum of the shard counts before it). `put` appends an entry right after its commitData lands, so
 * the record covers exactly the fragments committed on chain. `get` reads a file's offset from it;
 * an append (`putInto`) reads the listed manifests to compute the new root. Writes go to a
 * temporary file renamed into place.
 *
 *   <dir>/magus/<id>.lock   pid of the process appending to the Magu (created exclusively; a lock
 *                           whose process is gone is taken over), so two appends from one directory
 *                           cannot both commit over the same old root.
 */
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CID } from "multiformats/cid";

/** One file of a Magu as the client recorded it. */
export interface RecordedFile {
  readonly manifestCid: CID;
  /** Magu fragment index of the file's first shard. */
  readonly offset: number;
  readonly shards: number;
  readonly fileSize: number;
}

/** A record that cannot be read, or an append that does not continue it. */
export class MaguRecordError extends Error {
  readonly code = "ERR_MAGU_RECORD";
  constructor(message: string) {
    super(message);
    this.name = "MaguRecordError";
  }
}

/** A Magu another process of this client directory is appending to. */
export class MaguBusyError extends Error {
  readonly code = "ERR_MAGU_BUSY";
  constructor(message: string) {
    super(message);
    this.name = "MaguBusyError";
  }
}

function recordPath(dir: string, maguId: bigint): string {
  return join(dir, "magus", `${maguId}.json`);
}

/** The files recorded for `maguId` in commit order ([] when the directory has no record of it). */
export async function readMaguRecord(dir: string, maguId: bigint): Promise<RecordedFile[]> {
  const path = recordPath(dir, maguId);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as { magu?: unknown; files?: unknown };
    if (parsed.magu !== maguId.toString() || !Array.isArray(parsed.files)) throw new Error("not a record of this Magu");
    let next = 0;
    return parsed.files.map((f: { manifest?: unknown; offset?: unknown; shards?: unknown; fileSize?: unknown }) => {
      if (typeof f.manifest !== "string" || f.offset !== next || !Number.isSafeInteger(f.shards) || !Number.isSafeInteger(f.fileSize)) {
        throw new Error(`file entry ${JSON.stringify(f)} is malformed or out of order`);
      }
      next += f.shards as number;
      return { manifestCid: CID.parse(f.manifest), offset: f.offset, shards: f.shards as number, fileSize: f.fileSize as number };
    });
  } catch (err) {
    throw new MaguRecordError(`client record ${path} is unreadable (${(err as Error).message}): restore it from a backup of the client directory`);
  }
}

/** Appends `file` to the record of `maguId`; its offset must be the end of the recorded files. */
export async function appendMaguRecord(dir: string, maguId: bigint, file: Omit<RecordedFile, "offset">, offset: number): Promise<RecordedFile> {
  const files = await readMaguRecord(dir, maguId);
  const end = files.reduce((n, f) => n + f.shards, 0);
  if (offset !== end) throw new MaguRecordError(`record of Magu ${maguId} ends at fragment ${end}, cannot add a file at ${offset}`);
  const entry: RecordedFile = { ...file, offset };
  const all = [...files, entry];
  const path = recordPath(dir, maguId);
  await mkdir(join(dir, "magus"), { recursive: true });
  const body = {
    magu: maguId.toString(),
    files: all.map((f) => ({ manifest: f.manifestCid.toString(), offset: f.offset, shards: f.shards, fileSize: f.fileSize })),
  };
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(body, null, 1)}\n`);
  await rename(tmp, path);
  return entry;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes `<dir>/magus/<id>.lock`; returns its release. Throws MaguBusyError while another live process holds it. */
export async function lockMaguRecord(dir: string, maguId: bigint): Promise<() => void> {
  await mkdir(join(dir, "magus"), { recursive: true });
  const path = join(dir, "magus", `${maguId}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx" });
      return () => {
        try {
          if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let owner = NaN;
    try {
      owner = Number.parseInt(readFileSync(path, "utf8"), 10);
    } catch {
      // removed meanwhile
    }
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new MaguBusyError(`another put into Magu ${maguId} is running from this client directory (pid ${owner}): wait for it to finish`);
    }
    if (owner === process.pid) throw new MaguBusyError(`a put into Magu ${maguId} is already running in this process`);
    try {
      unlinkSync(path); // stale: its process is gone
    } catch {
      // someone else removed it
    }
  }
  throw new MaguBusyError(`could not lock ${path}: another put into Magu ${maguId} is starting`);
}
