/**
 * Directories as one blob (`muri put DIR`): a *pack* whose plaintext holds every file's bytes, then
 * a Merkle DAG of directory nodes, then a trailer; the pack is encrypted and erasure-coded like any
 * file (pipeline.ts) with the content code `CONTENT_DIRECTORY` sealed beside its size, so members
 * see one ordinary file manifest: no names, no count of files, not even that it is a directory.
 *
 * Pack layout (docs/ENCODING.md § Directories):
 *   file regions   each regular file's stored bytes (compressed or not), back to back
 *   nodes          per directory node: uint32_be(length) ‖ its canonical DAG-JSON bytes (children first, the root last)
 *   trailer        "muri-dir" (8 bytes) ‖ uint64_be(offset of the nodes) ‖ sha2-256 of the root node (32 bytes)
 *
 * A directory node is canonical DAG-JSON (manifest.ts `canonicalDagJson`), addressed like every
 * document by CIDv1(dag-json, sha2-256):
 *   {"entries":[...],"type":"muri/dir","version":1}, entries sorted by name (UTF-8 bytes), each one of
 *   {"kind":"file","name","mode","mtime","size","offset","length","compression":"none|gzip|zstd","cid":{"/":raw sha2-256 CID of the file's bytes}}
 *   {"kind":"dir","name","mode","mtime","link":{"/":the child node's CID}}
 *   {"kind":"symlink","name","target"}
 * A directory's link is the hash of its child node, so the root's hash covers the whole tree.
 *
 * Reading ({@link readTree}) treats the pack as hostile (a directory shared by someone else, or
 * crafted): names are single path components (not empty, `.` or `..`, no `/` or NUL, at most 255
 * bytes), sorted and unique; paths stay under 4096 bytes and 256 levels; a symlink's target is
 * relative and stays inside the tree; file regions lie inside the file area and do not overlap;
 * at most {@link MAX_ENTRIES} entries are walked (a DAG linking one node many times cannot blow up
 * into an exponential walk). Anything else is a {@link DirectoryError}, before anything is written.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import type { Compression } from "./compression.js";
import { RAW_CODEC } from "./constants.js";
import { DataError } from "./errors.js";
import { DAG_JSON_CODEC, canonicalDagJson, manifestCidOf, type DagValue } from "./manifest.js";

/** `type` of a directory node. */
export const DIRECTORY_NODE_TYPE = "muri/dir";
export const DIRECTORY_NODE_VERSION = 1;
/** First 8 bytes of the trailer. */
export const PACK_MAGIC = Buffer.from("muri-dir", "ascii");
/** Bytes of the trailer at the end of a pack. */
export const TRAILER_SIZE = 8 + 8 + 32;
export const MAX_NAME_BYTES = 255;
export const MAX_PATH_BYTES = 4096;
export const MAX_DEPTH = 256;
/** Entries a tree may have (counted as walked). */
export const MAX_ENTRIES = 1_000_000;
/** Largest node area read from a pack. */
export const MAX_NODES_BYTES = 256 * 1024 * 1024;
/** Permission bits kept and restored (setuid, setgid and sticky are not: a shared tree must not plant them). */
export const MODE_MASK = 0o777;

/** A directory node or pack is malformed or unsafe; `path` says where in the tree. */
export class DirectoryError extends DataError<{ reason: string; path?: string }> {
  constructor(reason: string, path?: string) {
    super("ERR_DIRECTORY_INVALID", path === undefined ? `invalid directory: ${reason}` : `invalid directory entry ${JSON.stringify(path)}: ${reason}`, { reason, path });
  }
}

export interface FileNodeEntry {
  readonly kind: "file";
  readonly name: string;
  readonly mode: number;
  readonly mtime: number;
  /** The file's size. */
  readonly size: number;
  /** Where its stored bytes start in the pack, and how many there are (`size` when not compressed). */
  readonly offset: number;
  readonly length: number;
  readonly compression?: Compression;
  /** CIDv1(raw, sha2-256) of the file's bytes (checked after decompression). */
  readonly cid: CID;
}
export interface DirNodeEntry {
  readonly kind: "dir";
  readonly name: string;
  readonly mode: number;
  readonly mtime: number;
  /** CID of the child directory node. */
  readonly link: CID;
}
export interface SymlinkNodeEntry {
  readonly kind: "symlink";
  readonly name: string;
  readonly target: string;
}
export type NodeEntry = FileNodeEntry | DirNodeEntry | SymlinkNodeEntry;

/** An entry of a whole tree: a node entry with its path from the root (POSIX, no leading `/`). */
export type TreeEntry = (Omit<FileNodeEntry, "name"> | Omit<DirNodeEntry, "name"> | Omit<SymlinkNodeEntry, "name">) & { readonly path: string };

/** CIDv1(raw, sha2-256) of a digest: a file entry's `cid`. */
export function fileCidOfDigest(digest: Uint8Array): CID {
  return CID.createV1(RAW_CODEC, Digest.create(sha256.code, digest));
}

/** Throws unless `name` is one safe path component. */
export function checkName(name: unknown, where = String(name)): string {
  if (typeof name !== "string" || name.length === 0) throw new DirectoryError("a name must be a non-empty string", where);
  if (name === "." || name === "..") throw new DirectoryError(`"${name}" is not a name (it would leave its directory)`, where);
  if (name.includes("/")) throw new DirectoryError("a name cannot contain '/' (a path in a name would leave its directory)", where);
  if (name.includes("\0")) throw new DirectoryError("a name cannot contain NUL", where);
  if (Buffer.byteLength(name, "utf8") > MAX_NAME_BYTES) throw new DirectoryError(`a name is at most ${MAX_NAME_BYTES} bytes`, where);
  if (Buffer.from(name, "utf8").toString("utf8") !== name) throw new DirectoryError("a name must be valid UTF-8", where);
  return name;
}

/**
 * Throws unless a symlink at `path` (relative to the root) pointing to `target` stays inside the
 * tree: relative, and not climbing above the root once resolved from the link's directory.
 */
export function checkSymlinkTarget(path: string, target: unknown): string {
  if (typeof target !== "string" || target.length === 0 || target.includes("\0")) throw new DirectoryError("a symlink target must be a non-empty string without NUL", path);
  if (posix.isAbsolute(target)) throw new DirectoryError(`symlink target ${JSON.stringify(target)} is absolute: it leaves the tree`, path);
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  if (resolved === ".." || resolved.startsWith("../")) throw new DirectoryError(`symlink target ${JSON.stringify(target)} leaves the tree`, path);
  if (Buffer.byteLength(target, "utf8") > MAX_PATH_BYTES) throw new DirectoryError(`a symlink target is at most ${MAX_PATH_BYTES} bytes`, path);
  return target;
}

const byNameBytes = (a: { name: string }, b: { name: string }): number => Buffer.compare(Buffer.from(a.name, "utf8"), Buffer.from(b.name, "utf8"));

function entryToDag(e: NodeEntry): DagValue {
  if (e.kind === "file") {
    return { kind: e.kind, name: e.name, mode: e.mode, mtime: e.mtime, size: e.size, offset: e.offset, length: e.length, compression: e.compression ?? "none", cid: e.cid };
  }
  if (e.kind === "dir") return { kind: e.kind, name: e.name, mode: e.mode, mtime: e.mtime, link: e.link };
  return { kind: e.kind, name: e.name, target: e.target };
}

/** Encodes one directory node (entries sorted by name here); its canonical bytes and CID. */
export function encodeDirectoryNode(entries: readonly NodeEntry[]): { bytes: Buffer; cid: CID } {
  const sorted = [...entries].sort(byNameBytes);
  sorted.forEach((e, i) => {
    checkName(e.name);
    if (i > 0 && sorted[i - 1]!.name === e.name) throw new DirectoryError("two entries have this name", e.name);
  });
  const bytes = canonicalDagJson({ type: DIRECTORY_NODE_TYPE, version: DIRECTORY_NODE_VERSION, entries: sorted.map(entryToDag) });
  return { bytes, cid: manifestCidOf(bytes) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function keysAre(obj: Record<string, unknown>, keys: readonly string[], where: string): void {
  const got = Object.keys(obj).sort();
  const want = [...keys].sort();
  if (got.length !== want.length || got.some((k, i) => k !== want[i])) throw new DirectoryError(`keys [${got.join(",")}], expected [${want.join(",")}]`, where);
}

function intIn(v: unknown, min: number, max: number, what: string, where: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) throw new DirectoryError(`${what} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`, where);
  return v;
}

function link(v: unknown, codec: number, what: string, where: string): CID {
  if (!isRecord(v) || Object.keys(v).length !== 1 || typeof v["/"] !== "string") throw new DirectoryError(`${what} must be a link`, where);
  let cid: CID;
  try {
    cid = CID.parse(v["/"]);
  } catch {
    throw new DirectoryError(`${what} ${JSON.stringify(v["/"])} is not a CID`, where);
  }
  if (cid.version !== 1 || cid.code !== codec || cid.multihash.code !== sha256.code) throw new DirectoryError(`${what} must be a CIDv1 sha2-256 link (codec 0x${codec.toString(16)})`, where);
  return cid;
}

/**
 * Decodes one directory node: canonical DAG-JSON, the schema above, names safe, sorted and unique.
 * `at` is the node's path (for errors).
 */
export function decodeDirectoryNode(bytes: Uint8Array, at = ""): NodeEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new DirectoryError(`a node is not UTF-8 JSON (${(err as Error).message})`, at || undefined);
  }
  if (!isRecord(parsed)) throw new DirectoryError("a node is not a map", at || undefined);
  keysAre(parsed, ["type", "version", "entries"], at || "(root)");
  if (parsed.type !== DIRECTORY_NODE_TYPE || parsed.version !== DIRECTORY_NODE_VERSION) {
    throw new DirectoryError(`not a ${DIRECTORY_NODE_TYPE} version ${DIRECTORY_NODE_VERSION} node`, at || undefined);
  }
  if (!Array.isArray(parsed.entries)) throw new DirectoryError("entries must be a list", at || undefined);
  const entries: NodeEntry[] = parsed.entries.map((raw: unknown, i: number): NodeEntry => {
    const where = `${at}${at ? "/" : ""}${isRecord(raw) && typeof raw.name === "string" ? raw.name : `[${i}]`}`;
    if (!isRecord(raw)) throw new DirectoryError("an entry must be a map", where);
    const name = checkName(raw.name, where);
    if (raw.kind === "file") {
      keysAre(raw, ["kind", "name", "mode", "mtime", "size", "offset", "length", "compression", "cid"], where);
      const size = intIn(raw.size, 0, Number.MAX_SAFE_INTEGER, "size", where);
      const length = intIn(raw.length, 0, Number.MAX_SAFE_INTEGER, "length", where);
      const compression = raw.compression;
      if (compression !== "none" && compression !== "gzip" && compression !== "zstd") throw new DirectoryError(`compression must be none, gzip or zstd, got ${JSON.stringify(compression)}`, where);
      if (compression === "none" && length !== size) throw new DirectoryError(`an uncompressed file's length ${length} must equal its size ${size}`, where);
      return {
        kind: "file",
        name,
        mode: intIn(raw.mode, 0, MODE_MASK, "mode", where),
        mtime: intIn(raw.mtime, 0, Number.MAX_SAFE_INTEGER, "mtime", where),
        size,
        offset: intIn(raw.offset, 0, Number.MAX_SAFE_INTEGER, "offset", where),
        length,
        ...(compression === "none" ? {} : { compression }),
        cid: link(raw.cid, RAW_CODEC, "cid", where),
      };
    }
    if (raw.kind === "dir") {
      keysAre(raw, ["kind", "name", "mode", "mtime", "link"], where);
      return { kind: "dir", name, mode: intIn(raw.mode, 0, MODE_MASK, "mode", where), mtime: intIn(raw.mtime, 0, Number.MAX_SAFE_INTEGER, "mtime", where), link: link(raw.link, DAG_JSON_CODEC, "link", where) };
    }
    if (raw.kind === "symlink") {
      keysAre(raw, ["kind", "name", "target"], where);
      if (typeof raw.target !== "string") throw new DirectoryError("a symlink target must be a string", where);
      return { kind: "symlink", name, target: raw.target };
    }
    throw new DirectoryError(`kind must be file, dir or symlink, got ${JSON.stringify(raw.kind)}`, where);
  });
  for (let i = 1; i < entries.length; i++) {
    if (byNameBytes(entries[i - 1]!, entries[i]!) >= 0) throw new DirectoryError("entries must be sorted by name, each name once", `${at}${at ? "/" : ""}${entries[i]!.name}`);
  }
  const { bytes: canonical } = encodeDirectoryNode(entries);
  if (!canonical.equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) throw new DirectoryError("a node is not in canonical DAG-JSON form", at || undefined);
  return entries;
}

/** The trailer of a pack whose nodes start at `nodesOffset` and whose root node hashes to `rootDigest`. */
export function encodeTrailer(nodesOffset: number, rootDigest: Uint8Array): Buffer {
  const out = Buffer.alloc(TRAILER_SIZE);
  PACK_MAGIC.copy(out, 0);
  out.writeBigUInt64BE(BigInt(nodesOffset), 8);
  Buffer.from(rootDigest).copy(out, 16);
  return out;
}

/** Reads a pack's trailer (its last {@link TRAILER_SIZE} bytes) given the pack's size. */
export function decodeTrailer(trailer: Uint8Array, packSize: number): { nodesOffset: number; rootDigest: Buffer } {
  const t = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  if (t.length !== TRAILER_SIZE || !t.subarray(0, 8).equals(PACK_MAGIC)) throw new DirectoryError("the pack has no muri-dir trailer");
  const nodesOffset = t.readBigUInt64BE(8);
  const nodesEnd = BigInt(packSize - TRAILER_SIZE);
  if (nodesOffset > nodesEnd) throw new DirectoryError(`the node area starts at ${nodesOffset}, past its end ${nodesEnd}`);
  if (nodesEnd - nodesOffset > BigInt(MAX_NODES_BYTES)) throw new DirectoryError(`the node area is ${nodesEnd - nodesOffset} bytes, more than ${MAX_NODES_BYTES}`);
  return { nodesOffset: Number(nodesOffset), rootDigest: Buffer.from(t.subarray(16)) };
}

/** One node's frame in the node area: uint32_be(length) ‖ bytes. */
export function frameNode(bytes: Uint8Array): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes.length);
  return Buffer.concat([head, bytes]);
}

/** sha2-256 of a node's bytes (the digest its CID and the trailer carry). */
export function nodeDigest(bytes: Uint8Array): Buffer {
  return createHash("sha256").update(bytes).digest();
}

/**
 * The whole tree of a pack from its node area (`nodes`, starting at pack offset `nodesOffset`) and
 * the root digest of its trailer: every entry with its path, parents before children, siblings by
 * name. Throws {@link DirectoryError} on anything unsafe or inconsistent (module comment).
 */
export function readTree(nodes: Uint8Array, rootDigest: Uint8Array, nodesOffset: number, maxEntries = MAX_ENTRIES): TreeEntry[] {
  const byDigest = new Map<string, Uint8Array>();
  for (let at = 0; at < nodes.length; ) {
    if (at + 4 > nodes.length) throw new DirectoryError("the node area ends inside a frame");
    const length = Buffer.from(nodes.buffer, nodes.byteOffset + at, 4).readUInt32BE(0);
    if (at + 4 + length > nodes.length) throw new DirectoryError("a node runs past the node area");
    const bytes = nodes.subarray(at + 4, at + 4 + length);
    byDigest.set(nodeDigest(bytes).toString("hex"), bytes);
    at += 4 + length;
  }
  const root = byDigest.get(Buffer.from(rootDigest).toString("hex"));
  if (root === undefined) throw new DirectoryError("the root node named by the trailer is not in the node area");
  const out: TreeEntry[] = [];
  // Each node is decoded once, however often it is linked.
  const decoded = new Map<Uint8Array, NodeEntry[]>();
  const walk = (bytes: Uint8Array, at: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new DirectoryError(`deeper than ${MAX_DEPTH} levels`, at);
    let entries = decoded.get(bytes);
    if (entries === undefined) decoded.set(bytes, (entries = decodeDirectoryNode(bytes, at)));
    for (const e of entries) {
      if (out.length >= maxEntries) throw new DirectoryError(`more than ${maxEntries} entries`);
      const path = at === "" ? e.name : `${at}/${e.name}`;
      if (Buffer.byteLength(path, "utf8") > MAX_PATH_BYTES) throw new DirectoryError(`a path is at most ${MAX_PATH_BYTES} bytes`, path);
      if (e.kind === "file" && e.offset + e.length > nodesOffset) throw new DirectoryError(`its bytes [${e.offset}, ${e.offset + e.length}) run past the file area (${nodesOffset} bytes)`, path);
      if (e.kind === "symlink") checkSymlinkTarget(path, e.target);
      out.push(e.kind === "file" ? { kind: e.kind, path, mode: e.mode, mtime: e.mtime, size: e.size, offset: e.offset, length: e.length, ...(e.compression !== undefined ? { compression: e.compression } : {}), cid: e.cid } : e.kind === "dir" ? { kind: e.kind, path, mode: e.mode, mtime: e.mtime, link: e.link } : { kind: e.kind, path, target: e.target });
      if (e.kind === "dir") {
        const child = byDigest.get(Buffer.from(e.link.multihash.digest).toString("hex"));
        if (child === undefined) throw new DirectoryError(`its node ${e.link} is not in the pack`, path);
        walk(child, path, depth + 1);
      }
    }
  };
  walk(root, "", 0);
  const regions = out.filter((e): e is TreeEntry & { kind: "file" } => e.kind === "file" && e.length > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < regions.length; i++) {
    if (regions[i]!.offset < regions[i - 1]!.offset + regions[i - 1]!.length) throw new DirectoryError(`its bytes overlap those of ${JSON.stringify(regions[i - 1]!.path)}`, regions[i]!.path);
  }
  return out;
}

/** The CID of the root node named by a trailer's digest. */
export function rootCidOf(rootDigest: Uint8Array): CID {
  return CID.createV1(DAG_JSON_CODEC, Digest.create(sha256.code, rootDigest));
}
