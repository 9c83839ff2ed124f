/**
 * The light client's fragment cache in the browser's IndexedDB: bounded and paged.
 *
 * - **Paged.** A fragment (up to 1 MiB) is kept as pages of whole records (`pageBytes`: the most
 *   records that fit 64 KiB), so a search over what is held reads one page at a time and never
 *   holds more than a page per fragment in memory, and no record straddles two pages.
 * - **Bounded.** At most `maxBytes` of fragments (default 64 MiB); storing one more evicts the
 *   least recently used until it fits, and opening the cache with a smaller bound evicts down to
 *   it. A fragment larger than the bound is not kept. "Recently" is a counter, not the clock, so
 *   two uses in the same millisecond still have an order.
 *
 * Stores: `fragments` (key: the fragment's CID; its Magu, index, size, page layout, last use) and
 * `pages` (key: [CID, page number]). Fragments enter only after they proved against their
 * committed root (light-client.ts, which checks a whole fragment read back again).
 */

/** The few IndexedDB types used here (the project's TypeScript has no DOM library). */
interface IdbRequest<T> {
  result: T;
  error: unknown;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  onupgradeneeded: (() => void) | null;
}
interface IdbStore {
  put(value: unknown, key?: unknown): IdbRequest<unknown>;
  get(key: unknown): IdbRequest<unknown>;
  getAll(): IdbRequest<unknown[]>;
  delete(key: unknown): IdbRequest<unknown>;
}
interface IdbTransaction {
  objectStore(name: string): IdbStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  error: unknown;
}
interface IdbDatabase {
  createObjectStore(name: string, options?: { keyPath?: string }): IdbStore;
  transaction(stores: string[], mode: "readonly" | "readwrite"): IdbTransaction;
  close(): void;
}
interface IdbFactory {
  open(name: string, version: number): IdbOpenRequest;
}

/** What the cache knows of a fragment it holds. */
export interface CachedFragment {
  cid: string;
  magu: string;
  index: number;
  size: number;
  /** Bytes per page (whole records). */
  pageBytes: number;
  pages: number;
  /** When it was last used: a counter (the cache's own order), not a time. */
  usedAt: number;
}

export interface FragmentCacheInit {
  /** Database name (default `muri-light`). */
  name?: string;
  /** Most bytes of fragments kept (default 64 MiB). */
  maxBytes?: number;
  /** Record size of the fragments stored, to cut pages at record boundaries. */
  recordBytes?: number;
}

export const DEFAULT_CACHE_BYTES = 64 << 20;
const TARGET_PAGE_BYTES = 64 << 10;

function done<T>(req: IdbRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error instanceof Error ? req.error : new Error(String(req.error)));
  });
}

function committed(tx: IdbTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error instanceof Error ? tx.error : new Error(`IndexedDB transaction failed: ${String(tx.error)}`));
  });
}

export class FragmentCache {
  private constructor(
    private readonly db: IdbDatabase,
    readonly maxBytes: number,
    /** The last use's number. */
    private clock: number,
  ) {}

  static async open(init: FragmentCacheInit = {}): Promise<FragmentCache> {
    const factory = (globalThis as { indexedDB?: IdbFactory }).indexedDB;
    if (factory === undefined) throw new Error("this browser has no IndexedDB: the light client cannot keep fragments");
    const req = factory.open(init.name ?? "muri-light", 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore("fragments", { keyPath: "cid" });
      req.result.createObjectStore("pages");
    };
    const db = await done(req);
    const maxBytes = init.maxBytes ?? DEFAULT_CACHE_BYTES;
    const held = (await done(db.transaction(["fragments"], "readonly").objectStore("fragments").getAll())) as CachedFragment[];
    const cache = new FragmentCache(db, maxBytes, held.reduce((n, f) => Math.max(n, f.usedAt), 0));
    await cache.evict(0);
    return cache;
  }

  /** Evicts the least recently used fragments until `room` more bytes fit (none is `keep`). */
  private async evict(room: number, keep?: string): Promise<void> {
    const held = await this.list();
    let used = held.reduce((n, f) => n + (f.cid === keep ? 0 : f.size), 0);
    const out = held.filter((f) => {
      if (used + room <= this.maxBytes || f.cid === keep) return false;
      used -= f.size;
      return true;
    });
    if (out.length === 0) return;
    const tx = this.db.transaction(["fragments", "pages"], "readwrite");
    for (const f of out) {
      tx.objectStore("fragments").delete(f.cid);
      for (let p = 0; p < f.pages; p++) tx.objectStore("pages").delete([f.cid, p]);
    }
    await committed(tx);
  }

  close(): void {
    this.db.close();
  }

  /** Every fragment held (of one Magu when given), least recently used first. */
  async list(magu?: string): Promise<CachedFragment[]> {
    const all = (await done(this.db.transaction(["fragments"], "readonly").objectStore("fragments").getAll())) as CachedFragment[];
    return all.filter((f) => magu === undefined || f.magu === magu).sort((a, b) => a.usedAt - b.usedAt);
  }

  /** Bytes and fragments held. */
  async usage(): Promise<{ fragments: number; bytes: number }> {
    const all = await this.list();
    return { fragments: all.length, bytes: all.reduce((n, f) => n + f.size, 0) };
  }

  async has(cid: string): Promise<boolean> {
    return (await done(this.db.transaction(["fragments"], "readonly").objectStore("fragments").get(cid))) !== undefined;
  }

  /**
   * Keeps `bytes` as fragment `cid` (`index` of Magu `magu`), evicting the least recently used
   * fragments until it fits; a fragment larger than the bound is not kept (returns false).
   */
  async put(cid: string, magu: string, index: number, bytes: Uint8Array, recordBytes: number): Promise<boolean> {
    if (bytes.length > this.maxBytes) return false;
    await this.evict(bytes.length, cid);
    const pageBytes = Math.max(recordBytes, Math.floor(TARGET_PAGE_BYTES / recordBytes) * recordBytes);
    const pages = Math.max(1, Math.ceil(bytes.length / pageBytes));
    const tx = this.db.transaction(["fragments", "pages"], "readwrite");
    const pageStore = tx.objectStore("pages");
    for (let p = 0; p < pages; p++) pageStore.put(bytes.slice(p * pageBytes, Math.min(bytes.length, (p + 1) * pageBytes)), [cid, p]);
    const meta: CachedFragment = { cid, magu, index, size: bytes.length, pageBytes, pages, usedAt: ++this.clock };
    tx.objectStore("fragments").put(meta);
    await committed(tx);
    return true;
  }

  /** Page `page` of fragment `cid` (whole records), or undefined when it is not held. */
  async page(cid: string, page: number): Promise<Uint8Array | undefined> {
    const bytes = await done(this.db.transaction(["pages"], "readonly").objectStore("pages").get([cid, page]));
    return bytes instanceof Uint8Array ? bytes : undefined;
  }

  /** The whole fragment `cid`, or undefined when it is not held (marks it used). */
  async get(cid: string): Promise<Uint8Array | undefined> {
    const meta = (await done(this.db.transaction(["fragments"], "readonly").objectStore("fragments").get(cid))) as CachedFragment | undefined;
    if (meta === undefined) return undefined;
    const out = new Uint8Array(meta.size);
    for (let p = 0; p < meta.pages; p++) {
      const page = await this.page(cid, p);
      if (page === undefined) return undefined;
      out.set(page, p * meta.pageBytes);
    }
    await this.touch(meta);
    return out;
  }

  /** Marks a fragment used now (it is evicted last). */
  async touch(meta: CachedFragment): Promise<void> {
    const tx = this.db.transaction(["fragments"], "readwrite");
    tx.objectStore("fragments").put({ ...meta, usedAt: ++this.clock });
    await committed(tx);
  }
}
