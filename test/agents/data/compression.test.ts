/**
 * Compression before encryption (data/compression.ts) and the content code sealed beside a file's
 * size (crypto.ts): what `auto` chooses, that explicit compression of incompressible data barely
 * grows it, streaming round trips, the decompressed-size guard, and that the content code is
 * invisible in the manifest but read back by the secret's holder.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, it } from "node:test";
import * as zlib from "node:zlib";
import {
  AUTO_MIN_SAVING,
  CompressionUnavailableError,
  DecompressedSizeError,
  ZSTD_AVAILABLE,
  chooseCompression,
  compressSync,
  compressionOfContent,
  compressor,
  contentOf,
  decompressor,
  parseCompressionChoice,
  requireAvailable,
  sizeLimit,
} from "../../../agents/data/compression.js";
import { CONTENT_DIRECTORY, CONTENT_GZIP, CONTENT_RAW, CONTENT_ZSTD, openSealedSize, sealFileSize } from "../../../agents/data/crypto.js";
import { ManifestSealError } from "../../../agents/data/errors.js";
import { encodeToMemory, memoryFetcher, openManifest, decodeToBuffer } from "../../../agents/data/pipeline.js";

const secret = Buffer.alloc(32, 0x5a);
/** Text-like, compressible bytes. */
const text = (n: number): Buffer => {
  const words = ["muri", "stores", "fragments", "of", "files", "on", "members", "who", "prove", "them", "every", "period"];
  const out: string[] = [];
  let x = 7;
  for (let length = 0; length < n; length += out[out.length - 1]!.length + 1) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push(words[x % words.length]!);
  }
  return Buffer.from(out.join(" ").slice(0, n));
};

async function through(input: Buffer, ...stages: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await (pipeline as unknown as (...s: unknown[]) => Promise<void>)(Readable.from([input]), ...stages, async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) out.push(c);
  });
  return Buffer.concat(out);
}

describe("compression", () => {
  it("this project's Node 22 has zstd in node:zlib, so zstd is what auto uses", () => {
    assert.equal(typeof (zlib as { zstdCompress?: unknown }).zstdCompress, "function", `${process.version} lacks zlib.zstdCompress`);
    assert.equal(ZSTD_AVAILABLE, true);
  });

  it("on a Node without zstd, zstd is refused with what to do; gzip is not", () => {
    assert.throws(
      () => requireAvailable("zstd", false),
      (err: unknown) =>
        err instanceof CompressionUnavailableError &&
        err.code === "ERR_COMPRESSION_UNAVAILABLE" &&
        err.context.compression === "zstd" &&
        err.message === `zstd is not in this Node's zlib (${process.version}; zstd needs Node >= 22.15): use --compress=gzip, or a newer Node to read it`,
    );
    requireAvailable("gzip", false);
    requireAvailable("zstd", true);
    requireAvailable("zstd");
  });

  it("auto keeps compression for compressible data and stores incompressible data as it is", () => {
    const t = chooseCompression("auto", text(300_000));
    assert.equal(t.compression, "zstd");
    assert.ok(t.ratio < 0.5, `text ratio ${t.ratio}`);
    const r = chooseCompression("auto", randomBytes(300_000));
    assert.equal(r.compression, undefined);
    assert.ok(r.ratio > 1 - AUTO_MIN_SAVING);
    assert.deepEqual(chooseCompression("auto", Buffer.alloc(0)), { compression: undefined, ratio: 1 }, "an empty file is not compressed (and no ratio is measured)");
    assert.deepEqual(chooseCompression("none", text(1000)), { compression: undefined, ratio: 1 });
    assert.equal(chooseCompression("gzip", randomBytes(1000)).compression, "gzip", "an explicit choice is obeyed");
  });

  it("explicit compression of incompressible data grows it by less than 0.1 %", async () => {
    const input = randomBytes(4 * 1024 * 1024);
    for (const alg of ["zstd", "gzip"] as const) {
      const packed = await through(input, compressor(alg));
      assert.ok(packed.length < input.length * 1.001, `${alg}: ${packed.length} for ${input.length}`);
      assert.ok((await through(packed, decompressor(alg))).equals(input), `${alg} round trip`);
    }
  });

  it("compressSync and the streams agree; a bomb stops at the recorded size", async () => {
    const input = text(200_000);
    for (const alg of ["zstd", "gzip"] as const) assert.ok((await through(compressSync(alg, input), decompressor(alg))).equals(input));
    const bomb = compressSync("zstd", Buffer.alloc(64 * 1024 * 1024));
    assert.ok(bomb.length < 64 * 1024, "64 MiB of zeros compress to a few KiB");
    await assert.rejects(through(bomb, decompressor("zstd"), sizeLimit(1000)), (err: unknown) => err instanceof DecompressedSizeError && err.context.expected === 1000);
  });

  it("sizeLimit passes exactly the recorded size and stops at the first byte past it, naming both", async () => {
    const input = text(5000);
    assert.ok((await through(input, sizeLimit(5000))).equals(input), "exactly the limit passes");
    await assert.rejects(through(input, sizeLimit(4999)), (err: unknown) => {
      assert.ok(err instanceof DecompressedSizeError, String(err));
      assert.equal(err.code, "ERR_DECOMPRESSED_SIZE");
      assert.equal(err.message, "decompressed 5000 bytes, 4999 recorded");
      assert.deepEqual(err.context, { expected: 4999, actual: 5000 });
      return true;
    });
  });

  it("--compress values are parsed, a bad one named", () => {
    assert.equal(parseCompressionChoice("gzip"), "gzip");
    assert.throws(() => parseCompressionChoice("foo"), /compress.*must be one of auto, zstd, gzip, none/);
    assert.equal(contentOf(undefined), CONTENT_RAW);
    assert.equal(compressionOfContent(contentOf("zstd")), "zstd");
    assert.equal(compressionOfContent(contentOf("gzip")), "gzip");
    assert.equal(compressionOfContent(CONTENT_DIRECTORY), undefined);
  });
});

describe("content codes sealed beside the size", () => {
  const fileId = randomBytes(32);

  it("round trip; code 0 is what every manifest before had (a plain uint64 size)", () => {
    for (const content of [CONTENT_RAW, CONTENT_GZIP, CONTENT_ZSTD, CONTENT_DIRECTORY]) {
      assert.deepEqual(openSealedSize(secret, fileId, sealFileSize(secret, fileId, 123_456, content)), { size: 123_456, content });
    }
    assert.equal(sealFileSize(secret, fileId, 99), sealFileSize(secret, fileId, 99, CONTENT_RAW));
    assert.throws(() => sealFileSize(secret, fileId, 1, 4), /content code/);
  });

  it("a seal that does not open is refused, whatever its code", () => {
    const sealed = Buffer.from(sealFileSize(secret, fileId, 5, CONTENT_DIRECTORY), "hex");
    sealed[12]! ^= 0x07; // the content byte's ciphertext: the tag no longer matches
    assert.throws(() => openSealedSize(secret, fileId, sealed.toString("hex")), ManifestSealError);
  });

  it("a file encoded with a content code decodes byte for byte and says its code; members see the same manifest shape", async () => {
    const input = text(50_000);
    const zipped = compressSync("zstd", input);
    const enc = await encodeToMemory(zipped, { secret, k: 2, m: 1, content: CONTENT_ZSTD });
    const plain = await encodeToMemory(zipped, { secret, k: 2, m: 1 });
    assert.deepEqual(Object.keys(JSON.parse(enc.manifestBytes.toString())), Object.keys(JSON.parse(plain.manifestBytes.toString())));
    assert.equal(enc.manifestBytes.length, plain.manifestBytes.length, "the content code adds nothing a member can see");
    const opened = openManifest(enc.manifest, secret);
    assert.equal(opened.content, CONTENT_ZSTD);
    assert.equal(openManifest(plain.manifest, secret).content, CONTENT_RAW);
    const back = await decodeToBuffer(enc.manifest, memoryFetcher(enc.shards), { secret });
    assert.ok((await through(back, decompressor("zstd"))).equals(input));
  });
});
