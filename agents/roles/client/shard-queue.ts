/**
 * The hand-over between a put's encoder and its pushes: the encoder adds each shard as it is staged,
 * a few workers push them as they come, so pushing overlaps encoding (docs/ARCHITECTURE.md,
 * "Deliver, acknowledge, commit"). Only positions are queued; the bytes stay in the stage.
 */
export class ShardQueue<T> {
  private readonly items: T[] = [];
  private head = 0;
  private ended = false;
  private aborted = false;
  private waiters: Array<() => void> = [];

  /** Queues one item (ignored once ended or aborted). */
  add(item: T): void {
    if (this.ended || this.aborted) return;
    this.items.push(item);
    this.wake();
  }

  /** No more items: workers finish what is queued, then stop. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Workers stop after their current item; what is still queued is dropped. */
  abort(): void {
    this.aborted = true;
    this.wake();
  }

  /** The next item, waiting for one; undefined once ended and drained, or aborted. */
  async next(): Promise<T | undefined> {
    for (;;) {
      if (this.aborted) return undefined;
      if (this.head < this.items.length) {
        const item = this.items[this.head]!;
        this.items[this.head++] = undefined as T; // let the item go
        return item;
      }
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Runs `fn` on every item of `queue` with `concurrency` workers; resolves when the queue is done. */
export async function drainQueue<T>(queue: ShardQueue<T>, concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  const worker = async (): Promise<void> => {
    for (let item = await queue.next(); item !== undefined; item = await queue.next()) await fn(item);
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
}
