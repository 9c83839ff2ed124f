/**
 * The light client page's entry (bundled by ../bundle.ts): reads where the chain is from the
 * serving dashboard (`/api/light.json`: RPC URL, chain id, contract addresses; which RPC to believe
 * can be overridden with `?rpc=URL`), opens the IndexedDB cache and the libp2p node, and exposes
 * `globalThis.muriLight` for the page's form (index.html) and for scripts and tests.
 */
import { FragmentCache, type CachedFragment } from "../fragment-cache.js";
import { LightClient, type HeldSearchOptions, type HeldSearchResult, type LightConfig, type LightMagu, type LightSearchOptions, type LightSearchResult } from "../light-client.js";

export interface MuriLight {
  client: LightClient;
  /** Magu `id` as the chain has it (JSON-friendly: ids as strings). */
  magu(id: string): Promise<Omit<LightMagu, "id"> & { id: string }>;
  /** Searches the members, proven against the root on chain. */
  search(id: string, query: number[], k: number, options?: LightSearchOptions): Promise<LightSearchResult>;
  /** Fetches (or reads from the cache) every fragment of the Magu; returns how many. */
  hold(id: string): Promise<number>;
  /** Searches the fragments held in IndexedDB: an exact scan, or the graph index past GRAPH_MIN_COMPONENTS (rows x dim). */
  searchHeld(id: string, query: number[], k: number, options?: HeldSearchOptions): Promise<HeldSearchResult>;
  /**
   * Takes a grant token for a private Magu (`muri magu grant ID --to X`): to this page's peer
   * (`peerId()`), or to an account whose private key `accountKey` is given (kept in memory only).
   */
  grant(token: string, accountKey?: string): Promise<{ magu: string; kind: string; grantee: string; expires: string }>;
  /** Takes the account that pays for searches and reads of Magus with a price (its key stays in memory); its address. */
  payer(accountKey: string): string;
  /** This page's libp2p peer id (a grant may name it; new on every load). */
  peerId(): string;
  /** Fragment fetches over the network, cache hits, and fragment reads prepaid (with their wei) since the page loaded. */
  stats(): { fragmentFetches: number; cacheHits: number; readsPaid: number; readWei: string };
  /** What the cache holds. */
  held(): Promise<CachedFragment[]>;
}

async function main(): Promise<MuriLight> {
  const response = await fetch("/api/light.json");
  if (!response.ok) throw new Error(`/api/light.json answered ${response.status}`);
  const config = (await response.json()) as LightConfig;
  const params = new URL((globalThis as unknown as { location: { href: string } }).location.href).searchParams;
  const rpc = params.get("rpc");
  if (rpc !== null) config.rpcUrl = rpc;
  const maxMiB = Number(params.get("cacheMiB") ?? "64");
  const cache = await FragmentCache.open({ maxBytes: maxMiB * 2 ** 20 });
  const client = await LightClient.start(config, cache);
  const magus = new Map<string, Promise<LightMagu>>();
  // The view is read once per page: a Magu that grows needs a reload (or a new `magu` read).
  const magu = (id: string): Promise<LightMagu> => {
    let m = magus.get(id);
    if (m === undefined) magus.set(id, (m = client.magu(BigInt(id))));
    m.catch(() => magus.delete(id));
    return m;
  };
  return {
    client,
    magu: async (id) => ({ ...(await magu(id)), id }),
    search: async (id, query, k, options) => client.search(await magu(id), query, k, options),
    hold: async (id) => {
      const m = await magu(id);
      for (let f = 0; f < m.fragmentCount; f++) await client.fragment(m, f);
      return m.fragmentCount;
    },
    searchHeld: async (id, query, k, options) => client.searchHeld(await magu(id), query, k, options),
    grant: async (token, accountKey) => {
      const g = await client.useGrant(token, accountKey as `0x${string}` | undefined);
      return { magu: g.magu.toString(), kind: g.kind, grantee: g.grantee, expires: g.expires.toString() };
    },
    payer: (accountKey) => client.usePayer(accountKey as `0x${string}`),
    peerId: () => client.libp2p.peerId.toString(),
    stats: () => ({ ...client.stats }),
    held: () => cache.list(),
  };
}

const ready = main();
(globalThis as { muriLight?: Promise<MuriLight> }).muriLight = ready;
