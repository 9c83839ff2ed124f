/**
 * A directory uploaded over HTTP (`PUT /v1/directories`, http-api.ts) as a tar stream (POSIX
 * ustar, with pax `x` records and GNU `L`/`K` records for long names, as `tar -c` writes them),
 * unpacked into a fresh directory of the daemon that `putDirectory` then packs (folder.ts).
 *
 * The archive is someone else's input and is treated as hostile, as folder.ts treats a stored
 * tree: every path component passes `checkName` (no `..`, no `/`, no NUL, UTF-8), files are created
 * with `wx` under directories this code made (never through an existing entry), an entry given
 * twice is refused, symlinks are checked to stay inside the tree (`checkSymlinkTarget`) and made
 * last, so no write can follow one; hard links, devices and FIFOs are refused. Every header's
 * checksum is checked; a body that ends early is refused. Any refusal is a {@link TarError} naming
 * the entry, and the caller removes the directory.
 */
import { createWriteStream } from "node:fs";
import { chmod, mkdir, symlink, utimes } from "node:fs/promises";
import { join } from "node:path";
import { once } from "node:events";
import { checkName, checkSymlinkTarget, DirectoryError, MODE_MASK } from "../../data/directory.js";

const BLOCK = 512;

/** A tar body refused: what and (when known) which entry. */
export class TarError extends Error {
  readonly code = "ERR_BAD_TAR";
  constructor(
    message: string,
    readonly entry?: string,
  ) {
    super(entry === undefined ? message : `${entry}: ${message}`);
    this.name = "TarError";
  }
}

/** What {@link extractTar} made. */
export interface TarStats {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
}

/** Reads byte counts off an async iterable of buffers. */
class Bytes {
  private readonly it: AsyncIterator<Uint8Array>;
  private head: Buffer = Buffer.alloc(0);
  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Up to `max` bytes as they arrive; empty at the body's end. */
  async some(max: number): Promise<Buffer> {
    while (this.head.length === 0) {
      const r = await this.it.next();
      if (r.done === true) return Buffer.alloc(0);
      this.head = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    }
    const out = this.head.subarray(0, max);
    this.head = this.head.subarray(out.length);
    return out;
  }

  /** The next `n` bytes; fewer only when the body ends. */
  async take(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const piece = await this.some(n - have);
      if (piece.length === 0) break;
      parts.push(piece);
      have += piece.length;
    }
    return Buffer.concat(parts, have);
  }
}

/** An octal (or GNU base-256) numeric field. */
function numberField(block: Buffer, start: number, length: number, what: string, entry: string): number {
  const field = block.subarray(start, start + length);
  if ((field[0]! & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    if (!Number.isSafeInteger(n)) throw new TarError(`its ${what} is too large`, entry);
    return n;
  }
  const text = field.toString("latin1").replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`its ${what} field "${text}" is not an octal number`, entry);
  return parseInt(text, 8);
}

function textField(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString("utf8");
}

/** The records of a pax extended header ("LEN key=value\n" ...). */
function paxRecords(data: Buffer, entry: string): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const len = space < 0 ? NaN : Number(data.subarray(at, space).toString("latin1"));
    if (!Number.isSafeInteger(len) || len <= 0 || at + len > data.length) throw new TarError("a malformed pax record", entry);
    const record = data.subarray(space + 1, at + len - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq < 0) throw new TarError("a malformed pax record", entry);
    out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

/** `path` as checked components joined with "/" ("./a//b/" is "a/b"); the root itself is "". */
function cleanPath(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  try {
    for (const p of parts) checkName(p, path);
  } catch (err) {
    if (err instanceof DirectoryError) throw new TarError(err.context.reason, path);
    throw err;
  }
  return parts.join("/");
}

/** Unpacks the tar stream `body` into the empty directory `root`. */
export async function extractTar(body: AsyncIterable<Uint8Array>, root: string): Promise<TarStats> {
  const input = new Bytes(body);
  const stats: TarStats = { files: 0, directories: 0, symlinks: 0, bytes: 0 };
  const seen = new Set<string>([""]);
  const made = new Set<string>([""]);
  const links: Array<{ path: string; target: string }> = [];
  const dirModes: Array<{ path: string; mode: number; mtime: number }> = [];
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  let blocks = 0;

  const makeDirs = async (path: string): Promise<void> => {
    const parts = path === "" ? [] : path.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (made.has(dir)) continue;
      if (seen.has(dir)) throw new TarError("a directory is needed where the archive has another entry", dir);
      await mkdir(join(root, ...dir.split("/")), { mode: 0o700 });
      made.add(dir);
      seen.add(dir);
    }
  };
  const claim = (path: string): void => {
    if (seen.has(path)) throw new TarError("it is given twice", path);
    seen.add(path);
  };
  const skip = async (n: number, entry: string): Promise<Buffer> => {
    const data = await input.take(n);
    if (data.length !== n) throw new TarError("the archive ends inside it", entry);
    return data;
  };

  for (;;) {
    const header = await input.take(BLOCK);
    blocks++;
    if (header.length === 0) {
      if (blocks === 1) throw new TarError("the body is empty: send a tar archive of the directory");
      throw new TarError("the archive ends without its end blocks (two zero blocks)");
    }
    if (header.length !== BLOCK) throw new TarError("the archive ends inside a header");
    if (header.every((b) => b === 0)) break; // the end (the second zero block is not needed)
    const rawName = textField(header, 0, 100);
    const prefix = header.subarray(257, 262).toString("latin1") === "ustar" ? textField(header, 345, 155) : "";
    const headerName = prefix === "" ? rawName : `${prefix}/${rawName}`;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (numberField(header, 148, 8, "checksum", headerName) !== sum) throw new TarError("its header checksum does not match (not a tar archive, or a damaged one)", headerName);
    const type = String.fromCharCode(header[156]!);
    const size = numberField(header, 124, 12, "size", headerName);
    const padded = Math.ceil(size / BLOCK) * BLOCK;

    if (type === "x" || type === "g" || type === "L" || type === "K") {
      const data = await skip(padded, headerName);
      const content = data.subarray(0, size);
      if (type === "x") pax = paxRecords(content, headerName);
      else if (type === "L") longName = content.toString("utf8").replace(/\0+$/, "");
      else if (type === "K") longLink = content.toString("utf8").replace(/\0+$/, "");
      continue; // "g" (global pax records) says nothing this unpacking uses
    }
    const name = pax.get("path") ?? longName ?? headerName;
    const linkTarget = pax.get("linkpath") ?? longLink ?? textField(header, 157, 100);
    const length = pax.has("size") ? Number(pax.get("size")) : size;
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    if (!Number.isSafeInteger(length) || length < 0) throw new TarError("its size is not a byte count", name);
    const path = cleanPath(name);
    const mode = numberField(header, 100, 8, "mode", name) & MODE_MASK;
    const mtime = numberField(header, 136, 12, "mtime", name) * 1000;
    const dataBlocks = Math.ceil(length / BLOCK) * BLOCK;

    if (type === "0" || type === "\0" || type === "7") {
      if (path === "") throw new TarError("a file cannot be the root", name);
      claim(path);
      const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
      await makeDirs(parent);
      const file = join(root, ...path.split("/"));
      const out = createWriteStream(file, { flags: "wx", mode: 0o600 });
      try {
        let left = length;
        while (left > 0) {
          const piece = await input.some(left);
          if (piece.length === 0) throw new TarError("the archive ends inside it", name);
          left -= piece.length;
          if (!out.write(piece)) await once(out, "drain");
        }
      } finally {
        await new Promise<void>((resolve) => out.end(() => resolve()));
      }
      await skip(dataBlocks - length, name);
      await chmod(file, mode | 0o400); // readable by this daemon, which packs it next
      await utimes(file, new Date(mtime), new Date(mtime));
      stats.files++;
      stats.bytes += length;
    } else if (type === "5") {
      await skip(dataBlocks, name);
      if (path === "") continue;
      if (made.has(path)) throw new TarError("it is given twice", name);
      if (seen.has(path)) throw new TarError("a directory is needed where the archive has another entry", name);
      await makeDirs(path);
      dirModes.push({ path, mode, mtime });
      stats.directories++;
    } else if (type === "2") {
      await skip(dataBlocks, name);
      claim(path);
      try {
        checkSymlinkTarget(path, linkTarget);
      } catch (err) {
        if (err instanceof DirectoryError) throw new TarError(err.context.reason, name);
        throw err;
      }
      links.push({ path, target: linkTarget });
    } else {
      const what = { "1": "a hard link", "3": "a character device", "4": "a block device", "6": "a FIFO" }[type] ?? `an entry of type "${type}"`;
      throw new TarError(`${what}: a directory upload holds files, directories and symlinks within the tree only`, name);
    }
  }
  // Symlinks last: nothing of the archive is written through one.
  for (const { path, target } of links) {
    const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
    await makeDirs(parent);
    await symlink(target, join(root, ...path.split("/")));
    stats.symlinks++;
  }
  // Directories' own modes and times after their contents (deepest first); the owner keeps rwx,
  // which packing and the removal afterwards need.
  for (const { path, mode, mtime } of dirModes.reverse()) {
    const dir = join(root, ...path.split("/"));
    await chmod(dir, mode | 0o700);
    await utimes(dir, new Date(mtime), new Date(mtime));
  }
  return stats;
}
