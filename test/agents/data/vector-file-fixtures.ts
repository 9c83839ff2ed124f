/**
 * Files for the vector-file tests (vector-files-edges, vector-files-messages): a temporary directory
 * for the calling test file, and hand-made .npy files (any header text, version 1-3).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";

/** A directory made before the file's tests and removed after; `put` writes a new file in it. */
export function vectorFileDir(prefix: string): { put(ext: string, body: string | Buffer): Promise<string>; path(name: string): string } {
  let dir = "";
  let n = 0;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return {
    async put(ext, body) {
      const path = join(dir, `f${n++}${ext}`);
      await writeFile(path, body);
      return path;
    },
    path: (name) => join(dir, name),
  };
}

/** A .npy file: magic, version `major`.0, the header length (2 bytes in v1, 4 after), header, data. */
export function npy(dict: string, data: Buffer = Buffer.alloc(0), major = 1): Buffer {
  const prefix = major === 1 ? 10 : 12;
  const header = Buffer.from(dict.padEnd(Math.ceil((prefix + dict.length + 1) / 64) * 64 - prefix - 1) + "\n", major === 3 ? "utf8" : "latin1");
  const pre = Buffer.alloc(prefix);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]).copy(pre);
  if (major === 1) pre.writeUInt16LE(header.length, 8);
  else pre.writeUInt32LE(header.length, 8);
  return Buffer.concat([pre, header, data]);
}
