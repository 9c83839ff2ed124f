/**
 * Directory nodes and packs (data/directory.ts): canonical encoding, the name and path rules, and
 * readTree's refusals of hostile packs (traversal, escaping symlinks, overlapping regions, a DAG
 * that would blow up when walked).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  DirectoryError,
  MAX_ENTRIES,
  TRAILER_SIZE,
  checkName,
  checkSymlinkTarget,
  decodeDirectoryNode,
  decodeTrailer,
  encodeDirectoryNode,
  encodeTrailer,
  fileCidOfDigest,
  frameNode,
  nodeDigest,
  readTree,
  type NodeEntry,
} from "../../../agents/data/directory.js";
import { canonicalDagJson, type DagValue } from "../../../agents/data/manifest.js";

const cidOf = (s: string) => fileCidOfDigest(createHash("sha256").update(s).digest());
const file = (name: string, offset: number, size: number): NodeEntry => ({ kind: "file", name, mode: 0o644, mtime: 1_700_000_000_000, size, offset, length: size, cid: cidOf(name) });

/** A node area and trailer digest from nodes given children first (the last is the root). */
function area(nodes: readonly Uint8Array[]): { bytes: Buffer; root: Buffer } {
  return { bytes: Buffer.concat(nodes.map((n) => frameNode(n))), root: nodeDigest(nodes[nodes.length - 1]!) };
}

/** Node bytes written by hand, past encodeDirectoryNode's checks (what an attacker would send). */
const rawNode = (entries: DagValue[]): Buffer => canonicalDagJson({ type: "muri/dir", version: 1, entries });
const rawFile = (name: string, offset: number, size: number): DagValue => ({ kind: "file", name, mode: 0o644, mtime: 0, size, offset, length: size, compression: "none", cid: cidOf(name) });

describe("directory nodes", () => {
  it("encode sorts by name, decode gives the same entries back, and the bytes are canonical", () => {
    const sub = encodeDirectoryNode([file("x", 0, 1)]);
    const entries: NodeEntry[] = [file("b.txt", 1, 10), { kind: "dir", name: "a", mode: 0o755, mtime: 5, link: sub.cid }, { kind: "symlink", name: "c", target: "b.txt" }, file("é", 11, 0)];
    const { bytes, cid } = encodeDirectoryNode(entries);
    const back = decodeDirectoryNode(bytes);
    assert.deepEqual(
      back.map((e) => e.name),
      ["a", "b.txt", "c", "é"],
    );
    assert.equal(encodeDirectoryNode(back).cid.toString(), cid.toString());
    assert.equal(cid.code, 0x0129, "a node is a dag-json document");
    // Whitespace, reordered keys or unsorted entries are not canonical.
    const parsed = JSON.parse(bytes.toString());
    assert.throws(() => decodeDirectoryNode(Buffer.from(JSON.stringify(parsed, null, 1))), /canonical/);
    assert.throws(() => decodeDirectoryNode(rawNode([rawFile("b", 0, 1), rawFile("a", 1, 1)])), /sorted by name/);
    assert.throws(() => decodeDirectoryNode(rawNode([rawFile("a", 0, 1), rawFile("a", 1, 1)])), /sorted by name, each name once/);
    assert.throws(() => encodeDirectoryNode([file("a", 0, 1), file("a", 1, 1)]), /two entries have this name/);
  });

  it("fields are checked: kinds, modes (permission bits only), compression, link codecs", () => {
    const bad: [DagValue, RegExp][] = [
      [{ ...(rawFile("a", 0, 1) as object), kind: "fifo" }, /kind must be file, dir or symlink/],
      [{ ...(rawFile("a", 0, 1) as object), mode: 0o4755 }, /mode must be an integer in \[0, 511\]/],
      [{ ...(rawFile("a", 0, 1) as object), compression: "lz4" }, /compression must be none, gzip or zstd/],
      [{ ...(rawFile("a", 0, 2) as object), length: 1 }, /uncompressed file's length 1 must equal its size 2/],
      [{ ...(rawFile("a", 0, 1) as object), extra: 1 }, /keys \[/],
      [{ kind: "dir", name: "d", mode: 0o755, mtime: 0, link: cidOf("x") }, /link must be a CIDv1 sha2-256 link \(codec 0x129\)/],
    ];
    for (const [entry, why] of bad) assert.throws(() => decodeDirectoryNode(rawNode([entry])), why);
  });

  it("a name is one safe path component", () => {
    for (const ok of ["a", "a b", ".hidden", "..x", "日本", "x".repeat(255)]) assert.equal(checkName(ok), ok);
    for (const [bad, why] of [
      ["", /non-empty/],
      [".", /would leave its directory/],
      ["..", /would leave its directory/],
      ["a/b", /cannot contain '\/'/],
      ["../etc", /cannot contain '\/'/],
      ["a\0b", /NUL/],
      ["x".repeat(256), /at most 255 bytes/],
    ] as const) {
      assert.throws(() => checkName(bad), (err: unknown) => err instanceof DirectoryError && why.test(err.message));
    }
  });

  it("a symlink target must stay inside the tree", () => {
    assert.equal(checkSymlinkTarget("l", "a/b"), "a/b");
    assert.equal(checkSymlinkTarget("d/l", "../a"), "../a");
    assert.equal(checkSymlinkTarget("d/e/l", "../../a"), "../../a");
    assert.throws(() => checkSymlinkTarget("l", "/etc/passwd"), /absolute: it leaves the tree/);
    assert.throws(() => checkSymlinkTarget("l", ".."), /leaves the tree/);
    assert.throws(() => checkSymlinkTarget("d/l", "../../a"), /leaves the tree/);
    assert.throws(() => checkSymlinkTarget("d/l", "x/../../../a"), /leaves the tree/);
  });

  it("the trailer names the node area and the root; a short or foreign one is refused", () => {
    const t = encodeTrailer(1000, Buffer.alloc(32, 7));
    assert.equal(t.length, TRAILER_SIZE);
    assert.deepEqual(decodeTrailer(t, 2000), { nodesOffset: 1000, rootDigest: Buffer.alloc(32, 7) });
    assert.throws(() => decodeTrailer(Buffer.alloc(TRAILER_SIZE), 2000), /no muri-dir trailer/);
    assert.throws(() => decodeTrailer(t, 1000 + TRAILER_SIZE - 1), /past its end/);
  });
});

describe("readTree: a hostile pack is refused before anything is written", () => {
  it("walks a tree: paths, parents before children, the root's hash covering everything", () => {
    const sub = encodeDirectoryNode([file("f", 3, 2)]);
    const root = encodeDirectoryNode([file("a", 0, 3), { kind: "dir", name: "d", mode: 0o700, mtime: 0, link: sub.cid }, { kind: "symlink", name: "l", target: "d/f" }]);
    const { bytes, root: digest } = area([sub.bytes, root.bytes]);
    const tree = readTree(bytes, digest, 5);
    assert.deepEqual(
      tree.map((e) => `${e.kind}:${e.path}`),
      ["file:a", "dir:d", "file:d/f", "symlink:l"],
    );
    // A changed child changes the root's link: the old root no longer finds it.
    const other = encodeDirectoryNode([file("f", 3, 1)]);
    assert.throws(() => readTree(area([other.bytes, root.bytes]).bytes, digest, 5), /its node .* is not in the pack/);
  });

  it("traversal: an entry named ../evil would land outside the target; readTree refuses it", async () => {
    const { join, relative } = await import("node:path");
    const evil = rawNode([rawFile("../evil", 0, 4)]);
    // Without the name rule, a naive restore joins the name under the target and leaves it:
    const landed = join("/tmp/target", "../evil");
    assert.ok(relative("/tmp/target", landed).startsWith(".."), `${landed} is outside the target`);
    const { bytes, root } = area([evil]);
    assert.throws(() => readTree(bytes, root, 4), (err: unknown) => err instanceof DirectoryError && /cannot contain '\/'/.test(err.message));
    assert.throws(() => readTree(area([rawNode([rawFile("..", 0, 4)])]).bytes, nodeDigest(rawNode([rawFile("..", 0, 4)])), 4), /would leave its directory/);
    const link = rawNode([{ kind: "symlink", name: "l", target: "../../etc" }]);
    assert.throws(() => readTree(area([link]).bytes, nodeDigest(link), 0), /leaves the tree/);
  });

  it("file regions must lie in the file area and not overlap", () => {
    const past = rawNode([rawFile("a", 0, 10)]);
    assert.throws(() => readTree(area([past]).bytes, nodeDigest(past), 9), /run past the file area/);
    const overlap = rawNode([rawFile("a", 0, 10), rawFile("b", 5, 10)]);
    assert.throws(() => readTree(area([overlap]).bytes, nodeDigest(overlap), 100), /overlap those of "a"/);
  });

  it("a DAG linking one node twice per level stops at the entry bound instead of walking 2^40 paths", () => {
    let child = rawNode([rawFile("f", 0, 0)]);
    const nodes = [child];
    for (let level = 0; level < 40; level++) {
      const cid = encodeDirectoryNode(decodeDirectoryNode(child)).cid;
      child = rawNode([
        { kind: "dir", name: "a", mode: 0o755, mtime: 0, link: cid },
        { kind: "dir", name: "b", mode: 0o755, mtime: 0, link: cid },
      ]);
      nodes.push(child);
    }
    // The default bound (MAX_ENTRIES) works the same; a smaller one keeps the test short.
    assert.ok(MAX_ENTRIES >= 1_000_000);
    assert.throws(() => readTree(area(nodes).bytes, nodeDigest(child), 0, 50_000), /more than 50000 entries/);
  });

  it("garbage in the node area or a missing root is refused", () => {
    const root = encodeDirectoryNode([]);
    assert.throws(() => readTree(Buffer.from([0, 0, 0, 9, 1]), nodeDigest(root.bytes), 0), /runs past the node area/);
    assert.throws(() => readTree(area([root.bytes]).bytes, Buffer.alloc(32), 0), /root node named by the trailer is not in the node area/);
    const notJson = Buffer.from("{oops");
    assert.throws(() => readTree(area([notJson]).bytes, nodeDigest(notJson), 0), /not UTF-8 JSON/);
  });
});
