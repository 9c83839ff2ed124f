/**
 * A node's capacity (store/capacity.ts): a share of the disk or a size, resolved against the real
 * filesystem of its directory (statfs, compared with df), and the CLI's `--capacity` parsing.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CapacityError, CAPACITY_UNIT_BYTES, diskSpace, resolveCapacity } from "../../../agents/store/index.js";
import { parseCapacity } from "../../../agents/cli/values.js";
import { UsageError } from "../../../agents/cli/errors.js";

const MiB = 1 << 20;
const GiB = 1 << 30;

describe("capacity", () => {
  it("diskSpace reads the directory's filesystem as df does", async () => {
    const dir = await mkdtemp(join(tmpdir(), "muri-capacity-"));
    try {
      const space = await diskSpace(dir);
      const [total, avail] = execFileSync("df", ["-B1", "--output=size,avail", dir], { encoding: "utf8" }).trim().split("\n")[1]!.trim().split(/\s+/).map(Number);
      assert.equal(space.totalBytes, total);
      // Other processes write meanwhile: within 1% of the filesystem.
      assert.ok(Math.abs(space.freeBytes - avail!) < total! / 100, `statfs ${space.freeBytes} vs df ${avail}`);
      assert.ok(space.freeBytes > 0 && space.freeBytes <= space.totalBytes);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a share is of the free space plus what the node stores, in whole MiB, capped by maxBytes", () => {
    const disk = { dir: "/d", freeBytes: 10 * GiB + 123, storedBytes: 2 * GiB };
    assert.equal(resolveCapacity({ percent: 50 }, disk), 6 * GiB);
    assert.equal(resolveCapacity({ percent: 100 }, disk), 12 * GiB);
    assert.equal(resolveCapacity({ percent: 12.5 }, disk), 1.5 * GiB);
    assert.equal(resolveCapacity({ percent: 50, maxBytes: 4 * GiB }, disk), 4 * GiB);
    // 1% of 300 MiB is 3 MiB; 0.7% would be 2.1 MiB -> 2 MiB (whole fragments).
    assert.equal(resolveCapacity({ percent: 0.7 }, { dir: "/d", freeBytes: 300 * MiB, storedBytes: 0 }), 2 * MiB);
  });

  it("a size must fit the free space plus what is stored; the error names the numbers", () => {
    const disk = { dir: "/srv/muri", freeBytes: 20 * GiB, storedBytes: 1 * GiB };
    assert.equal(resolveCapacity({ bytes: 21 * GiB }, disk), 21 * GiB, "what is stored counts: it is already there");
    assert.throws(
      () => resolveCapacity({ bytes: 22 * GiB }, disk),
      (err: unknown) => {
        assert.ok(err instanceof CapacityError);
        assert.equal(err.code, "ERR_CAPACITY");
        assert.equal(
          err.message,
          "capacity 22 GiB does not fit: the filesystem of /srv/muri has 20 GiB free and the node stores 1 GiB there, so it can hold at most 21 GiB: give a smaller size or a share of the disk (e.g. 50%)",
        );
        return true;
      },
    );
  });

  it("below one fragment is refused: a node that cannot hold one is never drafted", () => {
    assert.throws(() => resolveCapacity({ percent: 10 }, { dir: "/d", freeBytes: 5 * MiB, storedBytes: 0 }), /capacity 10% is 512 KiB, below one fragment \(1 MiB\): the filesystem of \/d has 5 MiB free/);
    assert.throws(() => resolveCapacity({ bytes: CAPACITY_UNIT_BYTES - 1 }, { dir: "/d", freeBytes: GiB, storedBytes: 0 }), CapacityError);
    assert.throws(() => resolveCapacity({ percent: 0 }, { dir: "/d", freeBytes: GiB, storedBytes: 0 }), /more than 0% and at most 100%/);
  });

  it("--capacity takes a percentage or a size of at least 1 MiB", () => {
    assert.deepEqual(parseCapacity("50%", "--capacity"), { percent: 50 });
    assert.deepEqual(parseCapacity(" 12.5 % ", "--capacity"), { percent: 12.5 });
    assert.deepEqual(parseCapacity("100%", "--capacity"), { percent: 100 });
    assert.deepEqual(parseCapacity("20GiB", "--capacity"), { bytes: 20 * GiB });
    assert.deepEqual(parseCapacity("1MiB", "--capacity"), { bytes: MiB });
    for (const bad of ["0%", "101%", "-5%", "abc%", "%", "1e2%"]) {
      assert.throws(() => parseCapacity(bad, "--capacity"), (err: unknown) => err instanceof UsageError && /^--capacity: ".*" is not a share of the disk: use a percentage above 0 and at most 100, e.g. 50%$/.test(err.message), bad);
    }
    assert.throws(() => parseCapacity("512KiB", "--capacity"), /--capacity: 512KiB is less than one fragment \(1 MiB\)/);
    assert.throws(() => parseCapacity("lots", "--capacity"), /--capacity: "lots" is not a size/);
  });
});
