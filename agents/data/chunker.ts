/**
 * Splitting bytes into fragments without holding the whole input: an async generator that
 * yields fragments of exactly `size` bytes (the last one shorter, none for an empty input).
 */
import { open } from "node:fs/promises";
import { FRAGMENT_SIZE } from "./constants.js";
import { InvalidParameterError } from "./errors.js";

/** What can be chunked: a file path, bytes, or a (async) iterable of byte pieces (e.g. a Readable). */
export type ByteSource = string | Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Options of {@link chunk}. */
export interface ChunkOptions {
  /** Fragment size in bytes (default FRAGMENT_SIZE). */
  readonly size?: number;
  /**
   * Yield borrowed views instead of owned copies: a fragment is only valid until the generator is
   * resumed (it may point into the caller's piece or into a buffer reused for the next fragment).
   * Saves one copy and one allocation per fragment for consumers that use each fragment at once.
   */
  readonly borrow?: boolean;
}

function fragmentSize(options?: ChunkOptions): number {
  const size = options?.size ?? FRAGMENT_SIZE;
  if (!Number.isSafeInteger(size) || size < 1) throw new InvalidParameterError("size", size, "must be a positive integer");
  return size;
}

/**
 * Yields the fragments of `source` in order. Each yielded buffer is freshly allocated and owned by
 * the caller. Memory use is one fragment plus one incoming piece.
 */
export async function* chunk(source: ByteSource, options?: ChunkOptions): AsyncGenerator<Buffer, void, undefined> {
  const size = fragmentSize(options);
  const borrow = options?.borrow === true;
  const view = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  if (typeof source === "string") {
    yield* chunkFile(source, options);
    return;
  }
  if (source instanceof Uint8Array) {
    for (let offset = 0; offset < source.length; offset += size) {
      const part = source.subarray(offset, Math.min(offset + size, source.length));
      yield borrow ? view(part) : Buffer.from(part);
    }
    return;
  }
  let current: Buffer | undefined;
  let filled = 0;
  for await (const piece of source as AsyncIterable<Uint8Array>) {
    const bytes = typeof piece === "string" ? Buffer.from(piece) : piece;
    let offset = 0;
    while (offset < bytes.length) {
      // Whole fragments straight out of a large piece.
      if (filled === 0 && bytes.length - offset >= size) {
        const part = bytes.subarray(offset, offset + size);
        yield borrow ? view(part) : Buffer.from(part);
        offset += size;
        continue;
      }
      current ??= Buffer.allocUnsafe(size);
      const n = Math.min(size - filled, bytes.length - offset);
      current.set(bytes.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === size) {
        yield current;
        if (!borrow) current = undefined;
        filled = 0;
      }
    }
  }
  if (filled > 0) yield current!.subarray(0, filled);
}

/** Yields the fragments of the file at `path`, reading each straight into its own buffer. */
export async function* chunkFile(path: string, options?: ChunkOptions): AsyncGenerator<Buffer, void, undefined> {
  const size = fragmentSize(options);
  const handle = await open(path, "r");
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(size);
      let filled = 0;
      while (filled < size) {
        const { bytesRead } = await handle.read(buffer, filled, size - filled, null);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled > 0) yield filled === size ? buffer : buffer.subarray(0, filled);
      if (filled < size) return;
    }
  } finally {
    await handle.close();
  }
}
