/**
 * Directories and compressed files on the client's disk (`muri put DIR`, `muri put FILE --compress`,
 * `muri get REF -o DIR`): packing a directory tree into one pack file (data/directory.ts), compressing
 * one file, and restoring a tree safely.
 *
 * Packing walks the tree in name order (UTF-8 bytes), streams each regular file through an optional
 * compressor (data/compression.ts: `auto` decides per file from its first 256 KiB) into the pack
 * while hashing its bytes, and keeps only the directory nodes in memory. Symlinks are stored as
 * links when their target is relative and stays inside the tree; one leaving the tree, and special
 * files (FIFOs, sockets, devices), are refused with the path named ({@link FolderError}).
 *
 * Restoring treats the tree as hostile (it may be someone else's): data/directory.ts `readTree`
 * has already refused unsafe names, paths and targets; here every path is joined from checked
 * components and must stay under the target; directories are created first (refusing an existing
 * symlink or file in their place), then files are written to a temporary name (`wx`: never through
 * an existing link) and renamed into place, each checked against its CID (and its recorded size,
 * so a compressed entry cannot expand without bound); symlinks come last, so no write can follow
 * one; modes keep the permission bits only, directories get theirs after their contents.
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, lstat, mkdir, open, readdir, readlink, rename, rm, symlink, unlink, utimes, type FileHandle } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { CID } from "multiformats/cid";
import { SAMPLE_BYTES, chooseCompression, compressor, decompressor, sizeLimit, type Compression, type CompressionChoice } from "../../data/compression.js";
import {
  DirectoryError,
  MODE_MASK,
  TRAILER_SIZE,
  checkName,
  checkSymlinkTarget,
  decodeTrailer,
  encodeDirectoryNode,
  encodeTrailer,
  fileCidOfDigest,
  frameNode,
  readTree,
  type NodeEntry,
  type TreeEntry,
} from "../../data/directory.js";

export type FolderErrorCode =
  /** A directory or file of the tree cannot be read. */
  | "ERR_DIR_UNREADABLE"
  /** A FIFO, socket or device in the tree. */
  | "ERR_DIR_SPECIAL_FILE"
  /** A symlink whose target is absolute or climbs out of the tree. */
  | "ERR_DIR_SYMLINK_OUTSIDE"
  /** The output exists (a non-empty directory, a file) and --force was not given. */
  | "ERR_OUTPUT_EXISTS"
  /** Something in the output is in the way of the tree (a symlink or file where a directory goes). */
  | "ERR_OUTPUT_UNSAFE"
  /** A restored file's bytes do not match its recorded CID or size. */
  | "ERR_CONTENT_MISMATCH";

/** A directory put or restore refused; `context.path` names the file. */
export class FolderError extends Error {
  readonly code: FolderErrorCode;
  readonly context: Record<string, unknown>;
  constructor(code: FolderErrorCode, message: string, context: Record<string, unknown>) {
    super(message);
    this.name = "FolderError";
    this.code = code;
    this.context = context;
  }
}

/** What {@link packDirectory} stored. */
export interface PackStats {
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  /** Sum of the files' sizes. */
  readonly bytes: number;
  /** Sum of the files' stored (compressed or not) lengths. */
  readonly stored: number;
  /** Files stored compressed. */
  readonly compressed: number;
  /** Size of the pack (files, nodes, trailer). */
  readonly packSize: number;
  /** CID of the root directory node. */
  readonly root: CID;
}

/** stream/promises `pipeline` over a list of stages built at run time (its overloads want them spelled out). */
const runPipeline = pipeline as unknown as (...stages: unknown[]) => Promise<void>;

const byNameBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

function unreadable(path: string, err: unknown): FolderError {
  const code = (err as NodeJS.ErrnoException).code ?? "error";
  return new FolderError("ERR_DIR_UNREADABLE", `${path} cannot be read (${code}): fix its permissions or leave it out of the directory`, { path, errno: code });
}

/** Reads up to `n` bytes from the start of `path`. */
export async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Counts and hashes the bytes going by. */
function meter(): Transform & { size: number; digest: () => Buffer } {
  const hash = createHash("sha256");
  const t = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      hash.update(chunk);
      t.size += chunk.length;
      done(null, chunk);
    },
  }) as Transform & { size: number; digest: () => Buffer };
  t.size = 0;
  t.digest = () => hash.digest();
  return t;
}

/**
 * Packs the tree at `root` into a new file `out` (data/directory.ts layout), compressing files as
 * `compress` says. Refuses special files, symlinks leaving the tree and unreadable entries.
 */
export async function packDirectory(root: string, out: string, compress: CompressionChoice = "none"): Promise<PackStats> {
  return walkTree(root, await open(out, "wx", 0o600), compress);
}

/**
 * Walks the tree at `root` as {@link packDirectory} does, reading nothing but directories and
 * file metadata: what the CLI runs before any chain work, so a tree that cannot be stored is
 * refused before anything is paid. `bytes` is the sum of the files' sizes.
 */
export async function scanDirectory(root: string): Promise<Omit<PackStats, "packSize" | "root" | "stored" | "compressed">> {
  const { files, directories, symlinks, bytes } = await walkTree(root, undefined, "none");
  return { files, directories, symlinks, bytes };
}

/** The walk of {@link packDirectory}; without `fh`, a dry run over metadata ({@link scanDirectory}). */
async function walkTree(root: string, fh: FileHandle | undefined, compress: CompressionChoice): Promise<PackStats> {
  let offset = 0;
  const write = async (bytes: Uint8Array): Promise<void> => {
    for (let done = 0; done < bytes.length; ) done += (await fh!.write(bytes, done, bytes.length - done)).bytesWritten;
    offset += bytes.length;
  };
  const frames: Buffer[] = [];
  const seen = new Set<string>();
  const stats = { files: 0, directories: 0, symlinks: 0, bytes: 0, stored: 0, compressed: 0 };

  const packFile = async (abs: string, size: number): Promise<{ size: number; offset: number; length: number; compression?: Compression; cid: CID }> => {
    if (fh === undefined) {
      stats.files++;
      stats.bytes += size;
      return { size, offset: 0, length: size, cid: fileCidOfDigest(Buffer.alloc(32)) };
    }
    let sample: Buffer;
    try {
      sample = await readHead(abs, SAMPLE_BYTES);
    } catch (err) {
      throw unreadable(abs, err);
    }
    const { compression } = chooseCompression(compress, sample);
    const start = offset;
    const m = meter();
    try {
      await runPipeline(createReadStream(abs), m, ...(compression !== undefined ? [compressor(compression)] : []), async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) await write(chunk);
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).syscall !== undefined) throw unreadable(abs, err);
      throw err;
    }
    stats.files++;
    stats.bytes += m.size;
    stats.stored += offset - start;
    if (compression !== undefined) stats.compressed++;
    return { size: m.size, offset: start, length: offset - start, ...(compression !== undefined ? { compression } : {}), cid: fileCidOfDigest(m.digest()) };
  };

  const walk = async (abs: string, rel: string): Promise<CID> => {
    let names: string[];
    try {
      names = (await readdir(abs)).sort(byNameBytes);
    } catch (err) {
      throw unreadable(abs, err);
    }
    const entries: NodeEntry[] = [];
    for (const name of names) {
      const path = rel === "" ? name : `${rel}/${name}`;
      const child = join(abs, name);
      checkName(name, path);
      const st = await lstat(child).catch((err: unknown) => {
        throw unreadable(child, err);
      });
      const mode = st.mode & MODE_MASK;
      const mtime = Math.max(0, Math.round(st.mtimeMs));
      if (st.isSymbolicLink()) {
        const target = await readlink(child);
        try {
          checkSymlinkTarget(path, target);
        } catch (err) {
          if (!(err instanceof DirectoryError)) throw err;
          throw new FolderError("ERR_DIR_SYMLINK_OUTSIDE", `${child} is a symlink to ${target}, outside ${root}: only links that stay inside the tree are stored; copy what it points to into the tree, or remove it`, {
            path: child,
            target,
          });
        }
        entries.push({ kind: "symlink", name, target });
        stats.symlinks++;
      } else if (st.isDirectory()) {
        entries.push({ kind: "dir", name, mode, mtime, link: await walk(child, path) });
        stats.directories++;
      } else if (st.isFile()) {
        entries.push({ kind: "file", name, mode, mtime, ...(await packFile(child, st.size)) });
      } else {
        const kind = st.isFIFO() ? "a FIFO" : st.isSocket() ? "a socket" : st.isBlockDevice() ? "a block device" : st.isCharacterDevice() ? "a character device" : "a special file";
        throw new FolderError("ERR_DIR_SPECIAL_FILE", `${child} is ${kind}: only regular files, directories and symlinks inside the tree can be stored; remove it or put the directory without it`, { path: child });
      }
    }
    const node = encodeDirectoryNode(entries);
    // Identical nodes (empty directories, say) are one node: links are hashes.
    if (!seen.has(node.cid.toString())) {
      seen.add(node.cid.toString());
      frames.push(frameNode(node.bytes));
    }
    return node.cid;
  };

  try {
    const rootCid = await walk(root, "");
    if (fh === undefined) return { ...stats, packSize: 0, root: rootCid };
    const nodesOffset = offset;
    for (const frame of frames) await write(frame);
    await write(encodeTrailer(nodesOffset, rootCid.multihash.digest));
    await fh.sync();
    return { ...stats, packSize: offset, root: rootCid };
  } finally {
    await fh?.close();
  }
}

/**
 * Compresses the file at `path` into a new file `out` with `compression`. Returns its size and
 * the compressed size.
 */
export async function compressFile(path: string, out: string, compression: Compression): Promise<{ size: number; stored: number }> {
  const m = meter();
  const counted = meter();
  await pipeline(createReadStream(path), m, compressor(compression), counted, createWriteStream(out, { flags: "wx", mode: 0o600 }));
  return { size: m.size, stored: counted.size };
}

/** Bytes of one stored file, from wherever the caller reads the pack. */
export type EntryBytes = (entry: TreeEntry & { kind: "file" }) => AsyncIterable<Buffer>;

/** Writes one file entry's bytes to `dest` (temporary name, checked, then renamed; `force`: over an existing file). */
export async function writeEntry(entry: TreeEntry & { kind: "file" }, bytes: AsyncIterable<Buffer>, dest: string, force: boolean): Promise<void> {
  const existing = await lstat(dest).catch(() => undefined);
  if (existing !== undefined) {
    if (!force) throw new FolderError("ERR_OUTPUT_EXISTS", `${dest} exists: pass --force to replace it`, { path: dest });
    if (existing.isDirectory()) throw new FolderError("ERR_OUTPUT_UNSAFE", `${dest} is a directory where the file ${entry.path} goes: move it away`, { path: dest });
  }
  const tmp = `${dest}.${process.pid}.tmp`;
  const m = meter();
  try {
    const stages: Transform[] = entry.compression !== undefined ? [decompressor(entry.compression), sizeLimit(entry.size)] : [];
    await runPipeline(Readable.from(bytes), ...stages, m, createWriteStream(tmp, { flags: "wx", mode: 0o600 }));
    const digest = m.digest();
    if (m.size !== entry.size || !digest.equals(Buffer.from(entry.cid.multihash.digest))) {
      throw new FolderError("ERR_CONTENT_MISMATCH", `${entry.path}: restored ${m.size} bytes that do not match its recorded size ${entry.size} and CID ${entry.cid}`, { path: entry.path });
    }
    await chmod(tmp, entry.mode & MODE_MASK);
    await utimes(tmp, new Date(entry.mtime), new Date(entry.mtime));
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** `target` joined with the checked components of `path`; refuses anything that would land outside. */
export function safeJoin(target: string, path: string): string {
  const parts = path.split("/");
  parts.forEach((p) => checkName(p, path));
  const full = resolve(target, ...parts);
  if (!full.startsWith(target.endsWith(sep) ? target : target + sep)) throw new DirectoryError(`resolves to ${full}, outside ${target}`, path);
  return full;
}

/** Makes `target` ready: created (its parent must exist), or an empty directory, or any directory with `force`. */
export async function prepareTarget(target: string, force: boolean): Promise<void> {
  const st = await lstat(target).catch(() => undefined);
  if (st === undefined) {
    await mkdir(target);
    return;
  }
  if (!st.isDirectory()) throw new FolderError("ERR_OUTPUT_EXISTS", `${target} exists and is not a directory: name a new or empty directory with -o`, { path: target });
  if (!force && (await readdir(target)).length > 0) {
    throw new FolderError("ERR_OUTPUT_EXISTS", `${target} is not empty: pass --force to write into it (files of the same paths are replaced), or name a new directory with -o`, { path: target });
  }
}

/** What {@link restoreTree} wrote. */
export interface RestoreStats {
  readonly files: number;
  readonly directories: number;
  readonly symlinks: number;
  readonly bytes: number;
}

/**
 * Restores `tree` (paths relative to it; data/directory.ts `readTree`, or a subtree of it) under
 * `target`, which {@link prepareTarget} made ready. `bytes` is asked for each file in pack order.
 */
export async function restoreTree(tree: readonly TreeEntry[], target: string, bytes: EntryBytes, force: boolean): Promise<RestoreStats> {
  const dirs = tree.filter((e): e is TreeEntry & { kind: "dir" } => e.kind === "dir");
  const files = tree.filter((e): e is TreeEntry & { kind: "file" } => e.kind === "file").sort((a, b) => a.offset - b.offset);
  const links = tree.filter((e): e is TreeEntry & { kind: "symlink" } => e.kind === "symlink");
  // Parents come before children in the tree; create each with owner access until its files are in.
  for (const d of dirs) {
    const full = safeJoin(target, d.path);
    try {
      await mkdir(full, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const st = await lstat(full);
      if (!st.isDirectory()) throw new FolderError("ERR_OUTPUT_UNSAFE", `${full} exists and is not a directory (a ${st.isSymbolicLink() ? "symlink" : "file"}): the tree's directory ${d.path} cannot go there; move it away`, { path: full });
      await chmod(full, 0o700);
    }
  }
  let written = 0;
  for (const f of files) {
    await writeEntry(f, bytes(f), safeJoin(target, f.path), force);
    written += f.size;
  }
  for (const l of links) {
    checkSymlinkTarget(l.path, l.target);
    const full = safeJoin(target, l.path);
    const st = await lstat(full).catch(() => undefined);
    if (st !== undefined) {
      if (!force) throw new FolderError("ERR_OUTPUT_EXISTS", `${full} exists: pass --force to replace it`, { path: full });
      if (st.isDirectory()) throw new FolderError("ERR_OUTPUT_UNSAFE", `${full} is a directory where the symlink ${l.path} goes: move it away`, { path: full });
      await unlink(full);
    }
    await symlink(l.target, full);
  }
  // Deepest first, so a read-only directory is closed only after everything under it is written.
  for (const d of [...dirs].reverse()) {
    const full = safeJoin(target, d.path);
    await chmod(full, d.mode & MODE_MASK);
    await utimes(full, new Date(d.mtime), new Date(d.mtime));
  }
  return { files: files.length, directories: dirs.length, symlinks: links.length, bytes: written };
}

/**
 * Serves the files of a tree, in pack order, from one sequential read of the whole pack: the
 * bytes between files (and after the last) are skipped.
 */
export function sequentialEntries(pack: AsyncIterable<Buffer>): EntryBytes {
  const it = pack[Symbol.asyncIterator]();
  let buffered: Buffer = Buffer.alloc(0);
  let position = 0; // pack offset of buffered[0]
  const next = async (): Promise<boolean> => {
    const r = await it.next();
    if (r.done === true) return false;
    position += buffered.length;
    buffered = r.value;
    return true;
  };
  return (entry) =>
    (async function* () {
      let at = entry.offset;
      const end = entry.offset + entry.length;
      while (at < end) {
        if (at >= position + buffered.length) {
          if (!(await next())) throw new DirectoryError(`the pack ends before byte ${at}`, entry.path);
          continue;
        }
        if (at < position) throw new DirectoryError("file regions out of order", entry.path);
        const from = at - position;
        const to = Math.min(buffered.length, end - position);
        yield buffered.subarray(from, to);
        at = position + to;
      }
    })();
}

/** The tree entries under `path` (a file: itself), re-rooted there; undefined when no entry has that path. */
export function subtree(tree: readonly TreeEntry[], path: string): { entry: TreeEntry; entries: TreeEntry[] } | undefined {
  const clean = path.replace(/^\.\/+/, "").replace(/\/+$/, "");
  const entry = tree.find((e) => e.path === clean);
  if (entry === undefined) return undefined;
  const prefix = `${clean}/`;
  return { entry, entries: tree.filter((e) => e.path.startsWith(prefix)).map((e) => ({ ...e, path: e.path.slice(prefix.length) })) };
}

/** A stored directory's entries as `muri ls --json` and `GET /v1/blobs/{cid}/ls` give them. */
export function listingJson(tree: readonly TreeEntry[]): Array<Record<string, unknown>> {
  return tree.map((e) => ({
    path: e.path,
    kind: e.kind,
    ...(e.kind === "symlink" ? { target: e.target } : { mode: `0${e.mode.toString(8)}`, mtime: new Date(e.mtime).toISOString() }),
    ...(e.kind === "file" ? { size: e.size, ...(e.compression !== undefined ? { compression: e.compression } : {}) } : {}),
  }));
}

/** Collects an async iterable of buffers into one (small ranges: a trailer, a node area). */
async function collect(parts: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const p of parts) out.push(Buffer.from(p));
  return Buffer.concat(out);
}

/**
 * The tree of a directory pack of `packSize` bytes, read through `range` (pipeline.ts
 * `decodeRange`): its trailer, then its node area; only the fragments holding them are fetched.
 */
export async function readPackTree(packSize: number, range: (offset: number, length: number) => AsyncIterable<Buffer>): Promise<TreeEntry[]> {
  if (packSize < TRAILER_SIZE) throw new DirectoryError(`the pack is ${packSize} bytes, shorter than its trailer`);
  const { nodesOffset, rootDigest } = decodeTrailer(await collect(range(packSize - TRAILER_SIZE, TRAILER_SIZE)), packSize);
  const nodes = await collect(range(nodesOffset, packSize - TRAILER_SIZE - nodesOffset));
  return readTree(nodes, rootDigest, nodesOffset);
}
