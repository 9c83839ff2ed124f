/** Input files of the benchmarks that move whole files (bench/helia.ts, bench/wan.ts). */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";

const MIB = 1024 * 1024;

/** SHA-256 of a file, hex: how a benchmark checks that a file came back byte for byte. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Writes `bytes` random bytes to `path`, 4 MiB at a time. */
export async function randomFileOf(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  for (let left = bytes; left > 0; left -= 4 * MIB) {
    if (!out.write(randomBytes(Math.min(4 * MIB, left)))) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}
