/**
 * Directories on the client's disk (roles/client/folder.ts) through the real encoder and decoder
 * (in memory, no network): pack a tree, encrypt it as one file, list it reading only its trailer
 * and nodes, restore it whole (bytes, modes, empty files and directories, symlinks) and one entry
 * of it fetching only that entry's fragments; and the refusals: special files, symlinks leaving
 * the tree, a non-empty target without --force, and a crafted pack whose names or links would
 * write outside the target.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { CONTENT_DIRECTORY } from "../../../agents/data/crypto.js";
import { DirectoryError, encodeTrailer, fileCidOfDigest, frameNode, nodeDigest } from "../../../agents/data/directory.js";
import { canonicalDagJson } from "../../../agents/data/manifest.js";
import { decodeFile, decodeRange, encodeToMemory, memoryFetcher, type ShardFetcher } from "../../../agents/data/pipeline.js";
import { snapshotTree } from "./e2e-helpers.js";
import { FolderError, packDirectory, prepareTarget, readPackTree, restoreTree, safeJoin, scanDirectory, sequentialEntries, subtree, writeEntry } from "../../../agents/roles/client/folder.js";

const secret = Buffer.alloc(32, 0x11);
let dir: string;

/** A tree with nested folders, empty files, an empty directory, a symlink inside, odd modes, 200 small files and two larger ones. */
async function makeTree(root: string): Promise<void> {
  await mkdir(join(root, "a/b/c"), { recursive: true });
  await mkdir(join(root, "empty-dir"));
  await mkdir(join(root, "small"));
  await writeFile(join(root, "empty.txt"), "");
  await writeFile(join(root, "a/b/c/empty"), "");
  await writeFile(join(root, "a/readme.md"), "muri ".repeat(5000));
  await writeFile(join(root, "a/b/random.bin"), randomBytes(300_000));
  await writeFile(join(root, "big.log"), "line of a log file\n".repeat(200_000));
  await chmod(join(root, "a/b/random.bin"), 0o600);
  await writeFile(join(root, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  for (let i = 0; i < 200; i++) await writeFile(join(root, "small", `f${String(i).padStart(3, "0")}.txt`), `file ${i} `.repeat(1 + (i % 50)));
  await symlink("a/readme.md", join(root, "link-to-readme"));
  await chmod(join(root, "a/b/c"), 0o555);
}

/** Counts the shards a fetcher is asked for. */
function counting(fetch: ShardFetcher): ShardFetcher & { count: number } {
  const f = (async (cid, where) => {
    f.count++;
    return fetch(cid, where);
  }) as ShardFetcher & { count: number };
  f.count = 0;
  return f;
}

describe("folders: pack, encrypt, list, restore", () => {
  let src: string;
  let enc: Awaited<ReturnType<typeof encodeToMemory>>;
  let packSize: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-folder-"));
    src = join(dir, "src");
    await mkdir(src);
    await makeTree(src);
    const pack = join(dir, "tree.pack");
    const t0 = performance.now();
    const stats = await packDirectory(src, pack, "auto");
    packSize = stats.packSize;
    console.log(`# packed ${stats.files} files (${stats.bytes} bytes) into ${stats.packSize} bytes, ${stats.compressed} compressed, ${Math.round(performance.now() - t0)} ms`);
    assert.equal(stats.files, 206);
    assert.equal(stats.symlinks, 1);
    assert.ok(stats.compressed >= 2 && stats.compressed < stats.files, "auto compresses the text, not the random file or the empty ones");
    assert.ok(stats.packSize < stats.bytes / 2, "the text compressed");
    enc = await encodeToMemory(await readFile(pack), { secret, k: 3, m: 2, content: CONTENT_DIRECTORY });
    // 206 files in one pack: a handful of shards, not a Magu (or a stripe) per file.
    console.log(`# ${enc.manifest.shards.length} shards for the whole tree`);
    assert.ok(enc.manifest.shards.length <= 10);
  });

  after(async () => {
    execFileSync("chmod", ["-R", "u+w", dir]); // the read-only a/b/c, here and in the restored copies
    await rm(dir, { recursive: true, force: true });
  });

  it("scanDirectory sees what packDirectory stores, reading no file", async () => {
    const scan = await scanDirectory(src);
    assert.equal(scan.files, 206);
    assert.equal(scan.directories, 5);
    assert.equal(scan.symlinks, 1);
  });

  it("lists the tree from its trailer and nodes alone", async () => {
    const fetch = counting(memoryFetcher(enc.shards));
    const tree = await readPackTree(packSize, (offset, length) => decodeRange(enc.manifest, fetch, { secret, offset, length }));
    assert.ok(fetch.count < enc.manifest.shards.length, `listing fetched ${fetch.count} of ${enc.manifest.shards.length} shards`);
    const byPath = new Map(tree.map((e) => [e.path, e]));
    assert.equal(byPath.get("a/b/c/empty")?.kind, "file");
    assert.equal(byPath.get("empty-dir")?.kind, "dir");
    const random = byPath.get("a/b/random.bin");
    assert.ok(random?.kind === "file" && random.size === 300_000 && random.mode === 0o600 && random.compression === undefined);
    const log = byPath.get("big.log");
    assert.ok(log?.kind === "file" && log.compression === "zstd" && log.length < log.size / 10);
    assert.deepEqual(byPath.get("link-to-readme"), { kind: "symlink", path: "link-to-readme", target: "a/readme.md" });
    assert.ok(tree.findIndex((e) => e.path === "a") < tree.findIndex((e) => e.path === "a/readme.md"), "parents first");
  });

  it("restores the whole tree byte for byte with modes, from one sequential read", async () => {
    const tree = await readPackTree(packSize, (offset, length) => decodeRange(enc.manifest, memoryFetcher(enc.shards), { secret, offset, length }));
    const out = join(dir, "out");
    await prepareTarget(out, false);
    const stats = await restoreTree(tree, out, sequentialEntries(decodeFile(enc.manifest, memoryFetcher(enc.shards), { secret })), false);
    assert.equal(stats.files, 206);
    assert.deepEqual(await snapshotTree(out), await snapshotTree(src));
    assert.equal(Math.round((await stat(join(out, "run.sh"))).mtimeMs), Math.round((await stat(join(src, "run.sh"))).mtimeMs), "mtime restored (ms; stat gives it back as seconds and nanoseconds in a double, 323.999 for 324)");
    // Again into the same, now non-empty, directory: refused without force, done with it.
    await assert.rejects(prepareTarget(out, false), (err: unknown) => err instanceof FolderError && err.code === "ERR_OUTPUT_EXISTS" && /--force/.test(err.message));
    await writeFile(join(out, "small/f000.txt"), "changed");
    await prepareTarget(out, true);
    await restoreTree(tree, out, sequentialEntries(decodeFile(enc.manifest, memoryFetcher(enc.shards), { secret })), true);
    assert.deepEqual(await snapshotTree(out), await snapshotTree(src));
  });

  it("one file, or one subdirectory, fetching only the fragments that hold it", async () => {
    const tree = await readPackTree(packSize, (offset, length) => decodeRange(enc.manifest, memoryFetcher(enc.shards), { secret, offset, length }));
    const fetch = counting(memoryFetcher(enc.shards));
    const range = (offset: number, length: number) => decodeRange(enc.manifest, fetch, { secret, offset, length });
    const one = subtree(tree, "small/f007.txt")!;
    assert.equal(one.entry.kind, "file");
    const dest = join(dir, "f007.txt");
    await writeEntry(one.entry as never, range((one.entry as { offset: number }).offset, (one.entry as { length: number }).length), dest, false);
    assert.deepEqual(await readFile(dest), await readFile(join(src, "small/f007.txt")));
    assert.equal(fetch.count, 1, "one small file: one fragment");
    await assert.rejects(writeEntry(one.entry as never, range(0, 0), dest, false), /exists: pass --force/);
    const sub = subtree(tree, "a/")!;
    const out = join(dir, "only-a");
    await prepareTarget(out, false);
    await restoreTree(sub.entries, out, (e) => range(e.offset, e.length), false);
    const all = await snapshotTree(src);
    const expected = Object.fromEntries(Object.entries(all).filter(([p]) => p.startsWith("a/")).map(([p, v]) => [p.slice(2), v]));
    assert.deepEqual(await snapshotTree(out), expected);
  });
});

describe("folders: refusals", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "muri-folder-bad-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("a FIFO, a symlink leaving the tree, an unreadable directory: named, nothing packed", async () => {
    const fifoTree = join(root, "fifo");
    await mkdir(fifoTree);
    execFileSync("mkfifo", [join(fifoTree, "pipe")]);
    await assert.rejects(scanDirectory(fifoTree), (err: unknown) => err instanceof FolderError && err.code === "ERR_DIR_SPECIAL_FILE" && /pipe is a FIFO/.test(err.message));
    const linkTree = join(root, "links");
    await mkdir(join(linkTree, "d"), { recursive: true });
    await symlink("../../outside", join(linkTree, "d", "up"));
    await assert.rejects(packDirectory(linkTree, join(root, "links.pack")), (err: unknown) => err instanceof FolderError && err.code === "ERR_DIR_SYMLINK_OUTSIDE" && /up is a symlink to \.\.\/\.\.\/outside/.test(err.message));
    await rm(join(linkTree, "d", "up"));
    await symlink("/etc/passwd", join(linkTree, "abs"));
    await assert.rejects(scanDirectory(linkTree), (err: unknown) => err instanceof FolderError && err.code === "ERR_DIR_SYMLINK_OUTSIDE");
    await assert.rejects(scanDirectory(join(root, "missing")), (err: unknown) => err instanceof FolderError && err.code === "ERR_DIR_UNREADABLE" && /ENOENT/.test(err.message));
    if (process.getuid?.() !== 0) {
      // Root reads through permissions, so this part needs an ordinary user.
      const locked = join(root, "locked");
      await mkdir(join(locked, "inner"), { recursive: true });
      await chmod(join(locked, "inner"), 0o000);
      await assert.rejects(scanDirectory(locked), (err: unknown) => err instanceof FolderError && err.code === "ERR_DIR_UNREADABLE" && /EACCES/.test(err.message));
      await chmod(join(locked, "inner"), 0o755);
    }
  });

  it("a crafted pack naming ../escape is refused before any write; safeJoin refuses it too", async () => {
    // The attack: a pack (someone else's, shared) whose node names a file "../escape".
    const content = Buffer.from("owned");
    const node = canonicalDagJson({
      type: "muri/dir",
      version: 1,
      entries: [{ kind: "file", name: "../escape", mode: 0o644, mtime: 0, size: 5, offset: 0, length: 5, compression: "none", cid: fileCidOfDigest(createHash("sha256").update(content).digest()) }],
    });
    const pack = Buffer.concat([content, frameNode(node), encodeTrailer(content.length, nodeDigest(node))]);
    const enc = await encodeToMemory(pack, { secret, k: 2, m: 1, content: CONTENT_DIRECTORY });
    const target = join(root, "target");
    await mkdir(target);
    // Unchecked, the entry's path would be written beside the target, not in it.
    assert.ok(relative(target, join(target, "../escape")).startsWith(".."));
    await assert.rejects(
      readPackTree(pack.length, (offset, length) => decodeRange(enc.manifest, memoryFetcher(enc.shards), { secret, offset, length })),
      (err: unknown) => err instanceof DirectoryError && /cannot contain '\/'/.test(err.message),
    );
    assert.throws(() => safeJoin(target, "../escape"), DirectoryError);
    assert.throws(() => safeJoin(target, "a/../../escape"), DirectoryError);
    await assert.rejects(stat(join(root, "escape")), /ENOENT/, "nothing was written outside the target");
  });

  it("a symlink that stays inside the tree but leaves the subtree asked for is refused at restore", async () => {
    const tree = [
      { kind: "dir" as const, path: "d", mode: 0o755, mtime: 0, link: fileCidOfDigest(Buffer.alloc(32)) },
      { kind: "symlink" as const, path: "d/up", target: "../secret" },
    ];
    const sub = subtree(tree as never, "d")!;
    const out = join(root, "sub-out");
    await prepareTarget(out, false);
    await assert.rejects(
      restoreTree(sub.entries, out, () => (async function* () {})(), false),
      /leaves the tree/,
    );
    await assert.rejects(lstat(join(out, "up")), /ENOENT/);
  });

  it("a directory in the target where a file goes, or a symlink where a directory goes, is not written through", async () => {
    const out = join(root, "in-the-way");
    await mkdir(join(out, "elsewhere"), { recursive: true });
    await symlink(join(root, "outside-dir"), join(out, "d"));
    await mkdir(join(root, "outside-dir"));
    const tree = [{ kind: "dir" as const, path: "d", mode: 0o755, mtime: 0, link: fileCidOfDigest(Buffer.alloc(32)) }];
    await assert.rejects(restoreTree(tree as never, out, () => (async function* () {})(), true), (err: unknown) => err instanceof FolderError && err.code === "ERR_OUTPUT_UNSAFE");
    assert.deepEqual(await readdir(join(root, "outside-dir")), []);
  });
});
