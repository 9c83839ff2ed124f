import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { extractTar, TarError } from "../../../agents/roles/client/http-tar.js";

/** One ustar header (and its data blocks) as an attacker would write it. */
function entry(name: string, type: string, data: Buffer = Buffer.alloc(0), link = ""): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, "utf8");
  h.write("0000644\0", 100, "latin1");
  h.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124, "latin1");
  h.write("00000000000\0", 136, "latin1");
  h.write(type, 156, "latin1");
  h.write(link, 157, 100, "utf8");
  h.write("ustar\x0000", 257, "latin1");
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
  return Buffer.concat([h, data, Buffer.alloc(Math.ceil(data.length / 512) * 512 - data.length)]);
}
const END = Buffer.alloc(1024);
/** `bytes` as a body arriving in pieces of 1000 bytes. */
async function* body(bytes: Buffer): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += 1000) yield bytes.subarray(i, i + 1000);
}

describe("http-tar: a directory upload unpacked as hostile input", () => {
  const dirs: string[] = [];
  const fresh = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), "muri-tar-"));
    dirs.push(d);
    return d;
  };
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("unpacks what tar -c writes: nested directories, a long name (pax or GNU), an empty file, a symlink inside the tree, modes", async () => {
    const src = await fresh();
    const long = `${"d".repeat(60)}/${"n".repeat(120)}.bin`;
    await mkdir(join(src, "a", "b"), { recursive: true });
    await mkdir(join(src, "d".repeat(60)));
    const big = randomBytes(300_001);
    await writeFile(join(src, "a", "b", "big.bin"), big);
    await writeFile(join(src, "a", "empty"), "");
    await writeFile(join(src, long), "long name");
    await writeFile(join(src, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    await symlink("b/big.bin", join(src, "a", "link"));
    for (const format of ["pax", "gnu"]) {
      const archive = execFileSync("tar", ["-c", `--format=${format}`, "-f", "-", "-C", src, "."], { maxBuffer: 1 << 26 });
      const out = await fresh();
      const stats = await extractTar(body(archive), out);
      assert.deepEqual(stats, { files: 4, directories: 3, symlinks: 1, bytes: big.length + 9 + 10 }, format);
      assert.ok((await readFile(join(out, "a", "b", "big.bin"))).equals(big));
      assert.equal(await readFile(join(out, long), "utf8"), "long name");
      assert.equal(await readlink(join(out, "a", "link")), "b/big.bin");
      assert.equal((await lstat(join(out, "run.sh"))).mode & 0o777, 0o755);
      assert.deepEqual((await readdir(out)).sort(), ["a", "d".repeat(60), "run.sh"]);
    }
  });

  it("refuses paths that leave the tree, links out of it, duplicates, hard links, devices, bad checksums and a cut archive, writing nothing outside", async () => {
    const refuses = async (archive: Buffer, pattern: RegExp): Promise<void> => {
      const out = await fresh();
      const root = join(out, "root");
      await mkdir(root);
      await assert.rejects(extractTar(body(archive), root), (err: unknown) => err instanceof TarError && pattern.test(err.message), pattern.source);
      assert.deepEqual(await readdir(out), ["root"], "nothing beside the root");
    };
    await refuses(Buffer.concat([entry("../evil", "0", Buffer.from("x")), END]), /would leave its directory/);
    await refuses(Buffer.concat([entry("a/../../evil", "0", Buffer.from("x")), END]), /would leave its directory/);
    await refuses(Buffer.concat([entry("up", "2", Buffer.alloc(0), "../.."), entry("up/x", "0", Buffer.from("x")), END]), /leaves the tree|climb|outside|above/);
    await refuses(Buffer.concat([entry("abs", "2", Buffer.alloc(0), "/etc"), END]), /absolute/);
    await refuses(Buffer.concat([entry("a", "0", Buffer.from("1")), entry("a", "0", Buffer.from("2")), END]), /given twice/);
    await refuses(Buffer.concat([entry("a", "0", Buffer.from("1")), entry("a/b", "0", Buffer.from("2")), END]), /directory is needed/);
    await refuses(Buffer.concat([entry("h", "1", Buffer.alloc(0), "a"), END]), /hard link/);
    await refuses(Buffer.concat([entry("dev", "3"), END]), /character device/);
    const bad = entry("a", "0", Buffer.from("1"));
    bad[0] = "b".charCodeAt(0);
    await refuses(Buffer.concat([bad, END]), /checksum/);
    await refuses(entry("a", "0", randomBytes(2000)).subarray(0, 1200), /ends inside/);
    await refuses(entry("a", "0", Buffer.from("x")), /end blocks/);
    await refuses(Buffer.alloc(0), /empty/);
    // A leading "/" is dropped (as tar -x does): the file lands inside the root.
    const out = await fresh();
    await extractTar(body(Buffer.concat([entry("/etc/x", "0", Buffer.from("inside")), END])), out);
    assert.equal(await readFile(join(out, "etc", "x"), "utf8"), "inside");
  });
});
