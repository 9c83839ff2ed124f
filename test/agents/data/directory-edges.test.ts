/**
 * Directory nodes and packs (data/directory.ts) fed malformed bytes: each rule refuses by its own
 * reason and names where in the tree (`path`), before the final canonical-form check would refuse
 * the node anyway. Nodes are written by hand (what a writer holding the key could send); the limits
 * of readTree (depth, path length, frames, the node area's size) are played at their edges.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  checkName,
  checkSymlinkTarget,
  decodeDirectoryNode,
  decodeTrailer,
  DirectoryError,
  encodeDirectoryNode,
  encodeTrailer,
  fileCidOfDigest,
  frameNode,
  MAX_DEPTH,
  MAX_NODES_BYTES,
  MAX_PATH_BYTES,
  nodeDigest,
  readTree,
  TRAILER_SIZE,
  type NodeEntry,
} from "../../../agents/data/directory.js";
import { canonicalDagJson, type DagValue } from "../../../agents/data/manifest.js";

const cidOf = (s: string) => fileCidOfDigest(createHash("sha256").update(s).digest());
const link = (s: string) => ({ "/": cidOf(s).toString() });
const fileDag = (name: string, over: Record<string, unknown> = {}) => ({ kind: "file", name, mode: 0o644, mtime: 0, size: 1, offset: 0, length: 1, compression: "none", cid: link(name), ...over });
const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), "utf8");
const node = (entries: unknown[]): Buffer => json({ type: "muri/dir", version: 1, entries });

/** Asserts `fn` throws DirectoryError with exactly `reason` and `path`. */
function refuses(fn: () => unknown, reason: string | RegExp, path: string | undefined): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DirectoryError, String(e));
    if (typeof reason === "string") assert.equal(e.context.reason, reason);
    else assert.match(e.context.reason, reason);
    assert.equal(e.context.path, path, e.message);
    assert.equal(e.code, "ERR_DIRECTORY_INVALID");
    assert.equal(e.message, path === undefined ? `invalid directory: ${e.context.reason}` : `invalid directory entry ${JSON.stringify(path)}: ${e.context.reason}`);
    return true;
  });
}

describe("directory nodes: each malformed part by its reason and path", () => {
  it("the node itself: UTF-8 JSON, a map, its keys, type and version, a list of entries", () => {
    for (const at of ["", "sub"]) {
      const where = at || undefined;
      refuses(() => decodeDirectoryNode(Buffer.from([0xff, 0x7b]), at), /^a node is not UTF-8 JSON \(/, where);
      refuses(() => decodeDirectoryNode(json([1]), at), "a node is not a map", where);
      refuses(() => decodeDirectoryNode(json(null), at), "a node is not a map", where);
      refuses(() => decodeDirectoryNode(json({ type: "muri/dir", version: 1 }), at), "keys [type,version], expected [entries,type,version]", at || "(root)");
      refuses(() => decodeDirectoryNode(json({ type: "muri/dir", version: 2, entries: [] }), at), "not a muri/dir version 1 node", where);
      refuses(() => decodeDirectoryNode(json({ type: "muri/file", version: 1, entries: [] }), at), "not a muri/dir version 1 node", where);
      refuses(() => decodeDirectoryNode(json({ type: "muri/dir", version: 1, entries: {} }), at), "entries must be a list", where);
      refuses(() => decodeDirectoryNode(node([7]), at), "an entry must be a map", `${at}${at ? "/" : ""}[0]`);
      refuses(() => decodeDirectoryNode(node([fileDag("a"), null]), at), "an entry must be a map", `${at}${at ? "/" : ""}[1]`);
      refuses(() => decodeDirectoryNode(node([{ ...fileDag("a"), name: 5 }]), at), "a name must be a non-empty string", `${at}${at ? "/" : ""}[0]`);
      // Valid JSON of the right shape but not canonical (spaces): refused last.
      const { bytes } = encodeDirectoryNode([]);
      refuses(() => decodeDirectoryNode(Buffer.from(JSON.stringify(JSON.parse(bytes.toString()), null, 1)), at), "a node is not in canonical DAG-JSON form", where);
    }
  });

  it("file, dir and symlink entries: integers, compression, links, targets", () => {
    const one = (entry: unknown) => () => decodeDirectoryNode(node([entry]), "d");
    refuses(one(fileDag("a", { size: 1.5 })), "size must be an integer in [0, 9007199254740991], got 1.5", "d/a");
    refuses(one(fileDag("a", { length: -1 })), "length must be an integer in [0, 9007199254740991], got -1", "d/a");
    refuses(one(fileDag("a", { mtime: "0" })), 'mtime must be an integer in [0, 9007199254740991], got "0"', "d/a");
    refuses(one(fileDag("a", { offset: 2 ** 53 })), "offset must be an integer in [0, 9007199254740991], got 9007199254740992", "d/a");
    refuses(one(fileDag("a", { mode: 512 })), "mode must be an integer in [0, 511], got 512", "d/a");
    refuses(one(fileDag("a", { compression: undefined })), "keys [cid,kind,length,mode,mtime,name,offset,size], expected [cid,compression,kind,length,mode,mtime,name,offset,size]", "d/a");
    refuses(one(fileDag("a", { compression: null })), "compression must be none, gzip or zstd, got null", "d/a");
    for (const bad of ["bafy", { "/": 5 }, { "/": cidOf("a").toString(), x: 1 }, null, [link("a")]]) refuses(one(fileDag("a", { cid: bad })), "cid must be a link", "d/a");
    refuses(one(fileDag("a", { cid: { "/": "nope" } })), 'cid "nope" is not a CID', "d/a");
    // A link of another codec (a dag-json node where a raw file belongs).
    refuses(one(fileDag("a", { cid: { "/": encodeDirectoryNode([]).cid.toString() } })), "cid must be a CIDv1 sha2-256 link (codec 0x55)", "d/a");
    refuses(one({ kind: "dir", name: "s", mode: 0o755, mtime: 0, link: link("x") }), "link must be a CIDv1 sha2-256 link (codec 0x129)", "d/s");
    refuses(one({ kind: "symlink", name: "l", target: 5 }), "a symlink target must be a string", "d/l");
    refuses(one({ kind: "symlink", name: "l", target: "t", mode: 1 }), "keys [kind,mode,name,target], expected [kind,name,target]", "d/l");
    refuses(one({ kind: 5, name: "x" }), "kind must be file, dir or symlink, got 5", "d/x");
    // A compressed file keeps its compression and may be shorter than its size; an uncompressed one has none.
    const [gz] = decodeDirectoryNode(encodeDirectoryNode([{ kind: "file", name: "z", mode: 0o600, mtime: 5, size: 100, offset: 0, length: 40, compression: "gzip", cid: cidOf("z") }]).bytes);
    assert.deepEqual([gz!.kind, (gz as NodeEntry & { compression?: string }).compression], ["file", "gzip"]);
    const [plain] = decodeDirectoryNode(encodeDirectoryNode([{ kind: "file", name: "p", mode: 0o600, mtime: 5, size: 3, offset: 0, length: 3, cid: cidOf("p") }]).bytes);
    assert.equal("compression" in plain!, false);
  });

  it("entries sorted by their UTF-8 bytes, each name once, named at the second", () => {
    const a = canonicalDagJson(fileDag("a") as DagValue);
    const b = canonicalDagJson(fileDag("b") as DagValue);
    const raw = (parts: Buffer[]) => Buffer.concat([Buffer.from('{"entries":['), ...parts.flatMap((p, i) => (i ? [Buffer.from(","), p] : [p])), Buffer.from('],"type":"muri/dir","version":1}')]);
    refuses(() => decodeDirectoryNode(raw([b, a]), "d"), "entries must be sorted by name, each name once", "d/a");
    refuses(() => decodeDirectoryNode(raw([a, a]), ""), "entries must be sorted by name, each name once", "a");
    assert.equal(decodeDirectoryNode(raw([a, b])).length, 2);
    assert.throws(() => encodeDirectoryNode([{ kind: "symlink", name: "x", target: "a" }, { kind: "symlink", name: "x", target: "b" }]), (e: unknown) => e instanceof DirectoryError && e.context.reason === "two entries have this name" && e.context.path === "x");
  });

  it("names and symlink targets at their limits", () => {
    refuses(() => checkName("\uD800x"), "a name must be valid UTF-8", "\uD800x");
    refuses(() => checkName(7, "d/[0]"), "a name must be a non-empty string", "d/[0]");
    for (const bad of ["", 5, "a\0b"]) refuses(() => checkSymlinkTarget("l", bad), "a symlink target must be a non-empty string without NUL", "l");
    const long = `${"a/".repeat(MAX_PATH_BYTES / 2)}`; // exactly MAX_PATH_BYTES bytes
    assert.equal(checkSymlinkTarget("l", long.slice(0, MAX_PATH_BYTES)), long.slice(0, MAX_PATH_BYTES));
    refuses(() => checkSymlinkTarget("l", `${long}b`), `a symlink target is at most ${MAX_PATH_BYTES} bytes`, "l");
  });
});

describe("directory packs: trailer, frames, depth and path limits", () => {
  const digest = nodeDigest(Buffer.from("root"));
  it("the trailer's node area: its start inside the pack, its size at most MAX_NODES_BYTES", () => {
    const size = MAX_NODES_BYTES + TRAILER_SIZE + 10;
    assert.deepEqual(decodeTrailer(encodeTrailer(10, digest), size), { nodesOffset: 10, rootDigest: digest });
    refuses(() => decodeTrailer(encodeTrailer(9, digest), size), `the node area is ${MAX_NODES_BYTES + 1} bytes, more than ${MAX_NODES_BYTES}`, undefined);
    refuses(() => decodeTrailer(encodeTrailer(100, digest), 100 + TRAILER_SIZE - 1), `the node area starts at 100, past its end 99`, undefined);
    assert.equal(decodeTrailer(encodeTrailer(100, digest), 100 + TRAILER_SIZE).nodesOffset, 100, "an empty node area ending where it starts");
    refuses(() => decodeTrailer(Buffer.alloc(TRAILER_SIZE), 1000), "the pack has no muri-dir trailer", undefined);
  });

  it("frames: a length cut short, a node past the area", () => {
    const root = encodeDirectoryNode([]).bytes;
    const area = frameNode(root);
    assert.deepEqual(readTree(area, nodeDigest(root), 0), []);
    refuses(() => readTree(Buffer.concat([area, Buffer.from([0, 0, 1])]), nodeDigest(root), 0), "the node area ends inside a frame", undefined);
    refuses(() => readTree(area.subarray(0, area.length - 1), nodeDigest(root), 0), "a node runs past the node area", undefined);
  });

  it("depth: MAX_DEPTH levels of directories are read, one more is refused at its path", () => {
    const chain = (levels: number): { bytes: Buffer; root: Buffer } => {
      const nodes: Buffer[] = [];
      let child = encodeDirectoryNode([]);
      nodes.push(child.bytes);
      for (let i = 0; i < levels; i++) {
        child = encodeDirectoryNode([{ kind: "dir", name: "d", mode: 0o755, mtime: 0, link: child.cid }]);
        nodes.push(child.bytes);
      }
      return { bytes: Buffer.concat(nodes.map((n) => frameNode(n))), root: nodeDigest(child.bytes) };
    };
    const ok = chain(MAX_DEPTH);
    assert.equal(readTree(ok.bytes, ok.root, 0).length, MAX_DEPTH);
    const deep = chain(MAX_DEPTH + 1);
    refuses(() => readTree(deep.bytes, deep.root, 0), `deeper than ${MAX_DEPTH} levels`, Array(MAX_DEPTH + 1).fill("d").join("/"));
  });

  it("file regions: ending exactly at the file area and touching one another is fine, one byte more is not", () => {
    const nodeOf = (entries: NodeEntry[]) => encodeDirectoryNode(entries).bytes;
    const f = (name: string, offset: number, length: number): NodeEntry => ({ kind: "file", name, mode: 0o644, mtime: 0, size: length, offset, length, cid: cidOf(name) });
    const read = (entries: NodeEntry[], fileArea: number) => {
      const bytes = nodeOf(entries);
      return readTree(frameNode(bytes), nodeDigest(bytes), fileArea);
    };
    assert.deepEqual(read([f("a", 0, 10), f("b", 10, 10)], 20).map((e) => e.path), ["a", "b"]);
    refuses(() => read([f("a", 0, 10), f("b", 10, 11)], 20), "its bytes [10, 21) run past the file area (20 bytes)", "b");
    refuses(() => read([f("a", 0, 11), f("b", 10, 10)], 20), 'its bytes overlap those of "a"', "b");
    // Empty files take no region: any offset inside the area, even a shared one.
    assert.equal(read([f("a", 0, 10), f("b", 5, 0), f("c", 5, 0)], 10).length, 3);
    // Regions are compared in offset order, not name order.
    refuses(() => read([f("a", 10, 10), f("b", 0, 11)], 20), 'its bytes overlap those of "b"', "a");
  });

  it("readTree's entries: a compressed file keeps its compression, dirs and symlinks their own fields; exactly maxEntries is allowed", () => {
    const sub = encodeDirectoryNode([]);
    const entries: NodeEntry[] = [
      { kind: "file", name: "a", mode: 0o600, mtime: 7, size: 100, offset: 0, length: 40, compression: "zstd", cid: cidOf("a") },
      { kind: "file", name: "b", mode: 0o644, mtime: 8, size: 5, offset: 40, length: 5, cid: cidOf("b") },
      { kind: "dir", name: "d", mode: 0o755, mtime: 9, link: sub.cid },
      { kind: "symlink", name: "l", target: "a" },
    ];
    const root = encodeDirectoryNode(entries).bytes;
    const bytes = Buffer.concat([frameNode(sub.bytes), frameNode(root)]);
    const plain = (list: readonly object[]) => list.map((e) => JSON.parse(JSON.stringify(e)) as unknown);
    assert.deepEqual(plain(readTree(bytes, nodeDigest(root), 45)), plain([
      { kind: "file", path: "a", mode: 0o600, mtime: 7, size: 100, offset: 0, length: 40, compression: "zstd", cid: cidOf("a") },
      { kind: "file", path: "b", mode: 0o644, mtime: 8, size: 5, offset: 40, length: 5, cid: cidOf("b") },
      { kind: "dir", path: "d", mode: 0o755, mtime: 9, link: sub.cid },
      { kind: "symlink", path: "l", target: "a" },
    ]));
    assert.equal(readTree(bytes, nodeDigest(root), 45, 4).length, 4);
    refuses(() => readTree(bytes, nodeDigest(root), 45, 3), "more than 3 entries", undefined);
    // Keys of the right number but not the right names.
    refuses(() => decodeDirectoryNode(node([{ kind: "dir", name: "s", mode: 0o755, mtime: 0, lnk: link("x") }])), "keys [kind,lnk,mode,mtime,name], expected [kind,link,mode,mtime,name]", "s");
  });

  it("a path of exactly MAX_PATH_BYTES is read; one byte more is refused", () => {
    // 20 directories named by 200 bytes (201 with the slash), then a file of 76 bytes: 4,096.
    const name = "n".repeat(200);
    const dirs = 20;
    const build = (fileName: string) => {
      const nodes: Buffer[] = [];
      let child = encodeDirectoryNode([{ kind: "file", name: fileName, mode: 0o644, mtime: 0, size: 0, offset: 0, length: 0, cid: cidOf("f") }]);
      nodes.push(child.bytes);
      for (let i = 0; i < dirs; i++) {
        child = encodeDirectoryNode([{ kind: "dir", name, mode: 0o755, mtime: 0, link: child.cid }]);
        nodes.push(child.bytes);
      }
      return { bytes: Buffer.concat(nodes.map((n) => frameNode(n))), root: nodeDigest(child.bytes) };
    };
    const prefix = dirs * 201;
    const exact = build("f".repeat(MAX_PATH_BYTES - prefix));
    const tree = readTree(exact.bytes, exact.root, 0);
    assert.equal(Buffer.byteLength(tree.at(-1)!.path), MAX_PATH_BYTES);
    const over = build("f".repeat(MAX_PATH_BYTES - prefix + 1));
    assert.throws(() => readTree(over.bytes, over.root, 0), (e: unknown) => e instanceof DirectoryError && e.context.reason === `a path is at most ${MAX_PATH_BYTES} bytes`);
  });
});
