/**
 * Which SHA-256 backend the Merkle trees use (agents/data/hash-backend.ts): the native addon when
 * it is built and passes its self-test, node:crypto otherwise or when MURI_SHA256_BACKEND=node.
 * A broken addon must fall back, never be trusted, so the self-test must notice a backend wrong
 * on any one shape; and the active backend's sha256Many must equal node:crypto however the
 * messages' lengths group (all in lanes, none, some).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { hashBackend, MIN_LANES_GROUP, NATIVE_ADDON_PATH, nodeCryptoBackend, selfTest, setHashBackend, sha256ManySplit, type HashBackend } from "../../../agents/data/hash-backend.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** The name of the backend a fresh process picks with `env` added. */
function pickedIn(env: Record<string, string>): string {
  const script = 'const { hashBackend } = await import("./agents/data/hash-backend.ts"); process.stdout.write(hashBackend().name);';
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "MURI_SHA256_BACKEND"));
  return execFileSync(process.execPath, ["--import", "./bin/ts-register.mjs", "--input-type=module", "-e", script], { cwd: ROOT, env: { ...clean, ...env }, encoding: "utf8" });
}

/** `backend` with one primitive wrong when `when` holds for its arguments (the first output byte flipped). */
function wrongWhen(backend: HashBackend, which: "hashLeaves" | "hashPairs" | "sha256Many", when: (arg: number) => boolean): HashBackend {
  return {
    name: `${backend.name} (wrong ${which})`,
    hashLeaves: (data, size, out) => {
      backend.hashLeaves(data, size, out);
      if (which === "hashLeaves" && when(size)) out[0]! ^= 1;
    },
    hashPairs: (nodes, pairs, out) => {
      backend.hashPairs(nodes, pairs, out);
      if (which === "hashPairs" && when(pairs)) out[0]! ^= 1;
    },
    sha256Many: (messages, out) => {
      backend.sha256Many(messages, out);
      if (which === "sha256Many" && when(messages.length)) out[out.length - 1]! ^= 1;
    },
  };
}

describe("hash backends", () => {
  it("the native addon is used when built; MURI_SHA256_BACKEND=node forces node:crypto", () => {
    const native = /^native-(avx512|avx2|scalar)$/;
    if (existsSync(NATIVE_ADDON_PATH)) {
      // scripts/node22.sh builds it on this class of machine: one that is there but not used failed its self-test.
      assert.match(pickedIn({}), native);
      if (process.env.MURI_SHA256_BACKEND !== "node") assert.match(hashBackend().name, native);
    } else {
      assert.equal(pickedIn({}), "node:crypto");
    }
    assert.equal(pickedIn({ MURI_SHA256_BACKEND: "node" }), "node:crypto");
    assert.equal(nodeCryptoBackend.name, "node:crypto");
  });

  it("the self-test passes node:crypto and the active backend, and refuses one wrong on any single shape", () => {
    assert.equal(selfTest(nodeCryptoBackend), true);
    assert.equal(selfTest(hashBackend()), true);
    // Leaves: empty, one byte, one whole leaf, several with a partial last one.
    for (const size of [0, 1, 1024, 3000, 5000]) assert.equal(selfTest(wrongWhen(nodeCryptoBackend, "hashLeaves", (s) => s === size)), false, `leaves wrong at size ${size}`);
    assert.equal(selfTest(wrongWhen(nodeCryptoBackend, "hashPairs", () => true)), false, "pairs wrong");
    assert.equal(selfTest(wrongWhen(nodeCryptoBackend, "sha256Many", () => true)), false, "sha256Many wrong");
    // Wrong only on inputs that are not all zero bytes, or only on messages that are not empty:
    // the self-test's inputs must be neither.
    const onData: HashBackend = {
      ...nodeCryptoBackend,
      name: "wrong on data",
      hashLeaves: (data, size, out) => {
        nodeCryptoBackend.hashLeaves(data, size, out);
        if (data.subarray(0, size).some((b) => b !== 0)) out[0]! ^= 1;
      },
    };
    assert.equal(selfTest(onData), false, "leaves wrong on non-zero data");
    const onLength: HashBackend = {
      ...nodeCryptoBackend,
      name: "wrong on long messages",
      sha256Many: (messages, out) => {
        nodeCryptoBackend.sha256Many(messages, out);
        messages.forEach((m, i) => {
          if (m.length > 1000) out[32 * i]! ^= 1;
        });
      },
    };
    assert.equal(selfTest(onLength), false, "sha256Many wrong on messages over 1000 bytes");
  });

  it("setHashBackend replaces the backend in use and gives back the one before", () => {
    const first = hashBackend();
    const other: HashBackend = { ...nodeCryptoBackend, name: "another" };
    assert.equal(setHashBackend(other), first);
    try {
      assert.equal(hashBackend(), other);
    } finally {
      assert.equal(setHashBackend(first), other);
    }
    assert.equal(hashBackend(), first);
  });

  it("the native sha256Many gets the messages in groups of three or more equal lengths, in one call; node:crypto the rest", () => {
    assert.equal(MIN_LANES_GROUP, 3);
    const data = Buffer.from(Array.from({ length: 4000 }, (_, i) => (i * 31 + 5) & 0xff));
    const calls: number[][] = [];
    // A recording stand-in for the addon: node:crypto's answers, and which lengths it was given.
    const addon = {
      sha256Many: (messages: readonly Uint8Array[], out: Uint8Array) => {
        calls.push(messages.map((m) => m.length));
        nodeCryptoBackend.sha256Many(messages, out);
      },
    };
    const run = (lengths: number[]): number[][] => {
      calls.length = 0;
      const messages = lengths.map((n, i) => data.subarray(i, i + n));
      const out = Buffer.alloc(32 * messages.length, 0xaa);
      sha256ManySplit(addon, messages, out);
      assert.deepEqual(out, Buffer.concat(messages.map((m) => createHash("sha256").update(m).digest())), lengths.join(","));
      return calls.map((c) => [...c]);
    };
    assert.deepEqual(run([64, 64, 64, 100, 100, 100, 100]), [[64, 64, 64, 100, 100, 100, 100]], "all in groups of 3+: one call with all");
    assert.deepEqual(run([17, 64, 17, 64, 64, 5, 17]), [[17, 64, 17, 64, 64, 17]], "the groups of 3+ in one call, in order; the lone 5 hashed here");
    assert.deepEqual(run([1, 2, 2, 3, 3, 4]), [], "no group of 3: the addon is not called");
  });

  it("sha256Many of the active backend equals node:crypto for messages all in lanes, none, and some", () => {
    const data = Buffer.from(Array.from({ length: 9000 }, (_, i) => (i * 197 + 11) & 0xff));
    const shapes: Record<string, number[]> = {
      "all in lanes (every length three or more times)": [64, 64, 64, 64, 100, 100, 100, 0, 0, 0],
      "none (every length once)": [0, 1, 55, 56, 63, 64, 65, 1000, 4096],
      "some (two 17s, four 64s)": [17, 64, 17, 64, 64, 64, 3000],
      "one message": [33],
    };
    for (const [what, lengths] of Object.entries(shapes)) {
      const messages = lengths.map((n, i) => data.subarray(i * 7, i * 7 + n));
      const expected = Buffer.concat(messages.map((m) => createHash("sha256").update(m).digest()));
      for (const backend of [nodeCryptoBackend, hashBackend()]) {
        const out = Buffer.alloc(32 * messages.length, 0xaa);
        backend.sha256Many(messages, out);
        assert.deepEqual(out, expected, `${backend.name}: ${what}`);
      }
    }
  });
});
