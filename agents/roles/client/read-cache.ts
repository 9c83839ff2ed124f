/**
 * The HTTP API's read cache (`muri serve --cache SIZE`): whole files a GET decoded, kept as plain
 * files under `<client-dir>/http/cache` so later reads (ranges too) are served from disk without a
 * fragment fetched. Bounded: its files take at most `budgetBytes` together, the least recently read
 * removed first; a file larger than the budget is never kept (it is streamed to the reader only,
 * which also spares a second write of every byte). A file being sent is not removed under its
 * reader: when the files being read alone pass the budget, the cache stays above it until those
 * reads end.
 *
 * Each file is filled once: readers that come while it is being written wait for it. The directory
 * is emptied at start (the entries are not remembered across restarts).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";

export interface CachedFile {
  path: string;
  size: number;
}

interface Entry {
  /** Settles once the file is complete (rejects when it could not be written). */
  file: Promise<CachedFile>;
  /** Bytes once complete; 0 while it is written. */
  size: number;
  /** Reads in progress; an entry is never removed while it has any. */
  readers: number;
  /** Order of the last read (higher = more recent). */
  used: number;
}

export class ReadCache {
  private readonly entries = new Map<string, Entry>();
  private clock = 0;
  private bytes = 0;

  /** `dir`: the cache's directory (created and emptied by the caller); `budgetBytes`: 0 keeps nothing. */
  constructor(
    readonly dir: string,
    readonly budgetBytes: number,
  ) {
    if (!Number.isSafeInteger(budgetBytes) || budgetBytes < 0) throw new RangeError(`cache budget must be a whole number of bytes, got ${budgetBytes}`);
  }

  /** Bytes of the complete files kept. */
  get size(): number {
    return this.bytes;
  }

  /** Whether `key` is kept or being written. */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Whether a file of `size` bytes would be kept. */
  admits(size: number): boolean {
    return size <= this.budgetBytes;
  }

  /** Where the file of `key` is (or will be) written. */
  pathOf(key: string): string {
    return join(this.dir, key);
  }

  /**
   * Starts keeping `key`: `write(path)` writes the file and resolves to its size. Readers of `key`
   * meanwhile wait for it. A failed write forgets the entry (and removes what was written).
   */
  fill(key: string, write: (path: string) => Promise<number>): Promise<CachedFile> {
    const existing = this.entries.get(key);
    if (existing !== undefined) return existing.file;
    const path = this.pathOf(key);
    const entry: Entry = { file: undefined as unknown as Promise<CachedFile>, size: 0, readers: 0, used: ++this.clock };
    entry.file = write(path).then(
      async (size) => {
        if (this.entries.get(key) === entry) {
          entry.size = size;
          this.bytes += size;
          await this.evict();
        }
        return { path, size };
      },
      async (err: unknown) => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
        await rm(path, { force: true });
        throw err;
      },
    );
    entry.file.catch(() => undefined);
    this.entries.set(key, entry);
    return entry.file;
  }

  /** Runs `read` over the kept file of `key` (waiting for it if it is being written), which stays until `read` ends; undefined when `key` is not kept. */
  async read<T>(key: string, read: (file: CachedFile) => Promise<T>): Promise<T | undefined> {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    entry.readers++;
    entry.used = ++this.clock;
    try {
      return await read(await entry.file);
    } finally {
      entry.readers--;
      if (entry.readers === 0) await this.evict();
    }
  }

  /** Removes the least recently read complete files not being read until the kept bytes fit the budget. */
  private async evict(): Promise<void> {
    while (this.bytes > this.budgetBytes) {
      let victim: [string, Entry] | undefined;
      for (const [key, e] of this.entries) {
        if (e.readers > 0 || e.size === 0) continue;
        if (victim === undefined || e.used < victim[1].used) victim = [key, e];
      }
      if (victim === undefined) return;
      const [key, e] = victim;
      this.entries.delete(key);
      this.bytes -= e.size;
      await rm(this.pathOf(key), { force: true });
    }
  }
}
