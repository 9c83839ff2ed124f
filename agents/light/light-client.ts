/**
 * The browser light client (issue 16): it reads a vector Magu's root from the chain, talks to the
 * Magu's members over libp2p WebSockets, searches them, and returns only hits proven against that
 * root; it keeps the fragments it fetched in IndexedDB (fragment-cache.ts) and answers searches
 * over what it holds in the browser: an exact scan, or a graph index (HNSW in WebAssembly) past
 * GRAPH_MIN_COMPONENTS held components, rows x dim (held-index.ts).
 *
 * Trust: the chain (its JSON-RPC, which the user chooses) is the only source believed. The Magu's
 * root, fragment count, members, dimension and metric are `MaguRegistry.maguInfo`; the members'
 * addresses to dial are their `NodeRegistry` registrations. A member's answer is checked exactly
 * as `VectorClient.search` checks one (docs/SEARCH.md, "Verified off-chain answers"): the vector
 * index document must fold to the root on chain; every hit must be on a fragment placed on that
 * member and carry no deleted id; every hit of the merged top k is proven (its 1024-byte leaves and
 * their paths to the fragment root, the record's id, the canonical distance recomputed from the
 * record and the query). One hit that does not prove drops the member's whole answer (`rejected`);
 * the other holders' answers cover its fragments. A fetched fragment must hash to its committed
 * fragment root before it is kept. What the page's own code does cannot be checked by the page:
 * it is as trustworthy as the server it came from (a devnet's, a node's, or a copy you host).
 *
 * A private Magu is searched with a grant token (`useGrant`), presented to each member before the
 * page's first request there, as `muri` presents one; a Magu with a search or read price with
 * vouchers and read vouchers signed by the paying account `usePayer` takes.
 *
 * It imports agents/data and the search wire's pure codecs; browser-only APIs (IndexedDB,
 * WebSockets) come through libp2p and fragment-cache.ts. bundle.ts builds it for the browser.
 */
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { identify } from "@libp2p/identify";
import type { Libp2p } from "@libp2p/interface";
import { peerIdFromMultihash } from "@libp2p/peer-id";
import { webSockets } from "@libp2p/websockets";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { createPublicClient, http, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { maguAccessAbi, maguRegistryAbi, nodeRegistryAbi } from "../chain/abis.js";
import { accessDomain, chainTime, decodeGrantToken, extendReads, granteeAccount, NO_READS, peerGrantee, readAtMostEvery, signHolder, signReadVoucher, signVoucher, type SignedGrant, type TypedSigner } from "../chain/access.js";
import { cidOfFragmentRoot } from "../data/cid.js";
import { verifyHitProof, type HitProof } from "../data/hit-proof.js";
import { fragmentRoot, maguRoot } from "../data/merkle.js";
import { holdersVector } from "../data/placement.js";
import { decodeVectorManifest, deletedIds, manifestScaleExp, METRIC_BY_CODE, type VectorManifest } from "../data/vector-manifest.js";
import {
  COSINE_SCALE_EXP,
  compareHits,
  encodeVector,
  normalizeVector,
  packBits,
  quantize,
  recordSize,
  scaleOfExp,
  type HitEntry,
  type VectorMetric,
  type VectorValues,
} from "../data/vectors.js";
import { FRAGMENT_PROTOCOL, RESPONSE_HEADER_BYTES } from "../p2p/constants.js";
import { decodeResponseHeader, encodeRequestHeader, Op, Status, statusName } from "../p2p/framing.js";
import { searchRequest } from "../p2p/search-protocol.js";
import { StreamReader } from "../p2p/stream-io.js";
import { decodeProveAnswer, decodeSearchAnswer } from "../roles/shared/search-wire.js";
import type { FragmentCache } from "./fragment-cache.js";
import { GRAPH_MIN_COMPONENTS, HeldGraph, HeldRows, scanHeld } from "./held-index.js";

/** Where the chain is and which contracts to read (the dashboard's `/api/light.json`). */
export interface LightConfig {
  rpcUrl: string;
  chainId: number;
  contracts: { nodeRegistry: Address; maguRegistry: Address; maguAccess: Address };
}

/** A Magu as the chain has it. */
export interface LightMagu {
  id: bigint;
  dim: number;
  metric: VectorMetric;
  replication: number;
  members: Address[];
  root: string;
  fragmentCount: number;
  public: boolean;
}

/** A proven hit. */
export interface LightHit {
  id: string;
  /** The canonical (integer) distance, as a decimal string. */
  canonical: string;
  /** The distance in the floats' units (canonical / 2^(2·scale)). */
  distance: number;
  fragment: number;
  position: number;
}

export interface LightSearchResult {
  hits: LightHit[];
  /** Members whose answer was dropped because a hit did not prove, with why. */
  rejected: { member: string; reason: string }[];
  /** Members that failed otherwise (unreachable, refused). */
  failed: { member: string; reason: string }[];
  /** Fragments no accepted answer covered. */
  uncovered: number[];
  verified: boolean;
  /** On a Magu with a search price: the vouchers members took in this search (cumulative counts and totals, wei). */
  paid?: { member: string; searches: string; total: string }[];
  ms: number;
}

/** How searchHeld searches (see there). */
export interface HeldSearchOptions {
  method?: "auto" | "scan" | "graph";
  /** The graph's effort (candidates ranked exactly); default GRAPH_DEFAULT_EF. */
  ef?: number;
}

export interface HeldSearchResult {
  hits: LightHit[];
  /** Fragments searched, and the vector records they hold. */
  fragments: number;
  records: number;
  /** Which answered: the exact scan, or the graph index (approximate: its candidates ranked exactly). */
  method: "scan" | "graph";
  exact: boolean;
  ms: number;
}

export interface LightSearchOptions {
  /** Prove every top-k hit (default true). */
  verify?: boolean;
  /**
   * Test hook: the answer of this member (an address) claims its best hit 1 closer than it is, as a
   * lying member's would (docs/SEARCH.md: such a hit does not prove and the member is rejected).
   */
  tamper?: string;
}

/** Counters a page (and its test) reads. */
export interface LightStats {
  /** Fragments fetched from members over the network. */
  fragmentFetches: number;
  /** Fragments served from the IndexedDB cache. */
  cacheHits: number;
  /** Fragment reads this page prepaid with read vouchers, and what they cost (wei, decimal). */
  readsPaid: number;
  readWei: string;
}

const KIND_VECTOR = 1;
const STATUS_ACTIVE = 2;
const ZERO_ADDRESS = /^0x0{40}$/i;
/** A Holder statement lasts at most this long (chain seconds), and is renewed a minute before. */
const HOLDER_S = 3_600;
const RENEW_BEFORE_S = 60;
const TIMEOUT_MS = 20_000;
const MAX_FRAGMENT_BYTES = 1 << 20;

export class LightClient {
  readonly stats: LightStats = { fragmentFetches: 0, cacheHits: 0, readsPaid: 0, readWei: "0" };
  private readonly chain;
  private readonly documents = new Map<string, Promise<{ manifest: VectorManifest; roots: Uint8Array[]; deleted: ReadonlySet<bigint> }>>();
  private readonly addresses = new Map<string, Multiaddr[]>();
  private readonly held = new Map<bigint, HeldSet>();
  /** Grants taken by useGrant, per Magu (with the account's signer for a grant to an account). */
  private readonly grants = new Map<bigint, { grant: SignedGrant; sign?: TypedSigner }>();
  /** `${member}/${magu}`: until when (chain time) the member accepted this page's grant. */
  private readonly presented = new Map<string, number>();
  /** The account paying for searches (usePayer), and where it stands with each member (`${magu}/${member}`). */
  private payer: { address: Address; sign: TypedSigner } | undefined;
  private readonly meters = new Map<string, { searches: bigint; total: bigint }>();
  private readonly meterLocks = new Map<string, Promise<unknown>>();
  /** `${magu}/${member}`: where the payer stands there on paid reads, and the fragments prepaid but not yet fetched. */
  private readonly readMeters = new Map<string, ReadMeterState>();
  /** MaguAccess's MAX_READ_MULTIPLIER_BPS (a constant), read once. */
  private readCapBps: Promise<bigint> | undefined;
  /** MaguAccess's EIP-712 domain (grants, Holder statements, vouchers). */
  private readonly domain;
  /** The chain's time (grants expire by it), read at most once a second. */
  private readonly chainNow;

  private constructor(
    readonly config: LightConfig,
    readonly libp2p: Libp2p,
    readonly cache: FragmentCache,
  ) {
    this.chain = createPublicClient({ transport: http(config.rpcUrl) });
    this.domain = accessDomain(config.chainId, config.contracts.maguAccess);
    this.chainNow = readAtMostEvery(1_000, () => chainTime(this.chain));
  }

  static async start(config: LightConfig, cache: FragmentCache): Promise<LightClient> {
    const libp2p = await createLibp2p({
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // libp2p in a browser refuses to dial private addresses by default; a devnet is all loopback.
      connectionGater: { denyDialMultiaddr: async () => false },
      services: { identify: identify() },
    });
    const chainId = await createPublicClient({ transport: http(config.rpcUrl) }).getChainId();
    if (chainId !== config.chainId) {
      await libp2p.stop();
      throw new Error(`the RPC at ${config.rpcUrl} serves chain ${chainId}, the deployment is on chain ${config.chainId}`);
    }
    return new LightClient(config, libp2p, cache);
  }

  async stop(): Promise<void> {
    await this.libp2p.stop();
  }

  /** Magu `id` as the chain has it (a vector Magu, active). */
  async magu(id: bigint): Promise<LightMagu> {
    const info = await this.chain.readContract({ address: this.config.contracts.maguRegistry, abi: maguRegistryAbi, functionName: "maguInfo", args: [id] });
    if (info.params.kind !== KIND_VECTOR) throw new Error(`Magu ${id} is not a vector Magu`);
    if (info.status !== STATUS_ACTIVE) throw new Error(`Magu ${id} is not active (status ${info.status})`);
    const metric = METRIC_BY_CODE[info.params.metric];
    if (metric === undefined) throw new Error(`Magu ${id} has metric code ${info.params.metric}, unknown to this page`);
    const isPublic = await this.chain.readContract({ address: this.config.contracts.maguAccess, abi: maguAccessAbi, functionName: "isPublic", args: [id] });
    return {
      id,
      dim: info.params.dimension,
      metric,
      replication: info.params.replication,
      members: [...info.members],
      root: info.root.toLowerCase(),
      fragmentCount: Number(info.fragmentCount),
      public: isPublic,
    };
  }

  /** The WebSocket multiaddrs member `address` registered on chain (with its peer id). */
  private async dialable(address: Address): Promise<Multiaddr[]> {
    const known = this.addresses.get(address.toLowerCase());
    if (known !== undefined) return known;
    const info = await this.chain.readContract({ address: this.config.contracts.nodeRegistry, abi: nodeRegistryAbi, functionName: "nodeInfo", args: [address] });
    const peerId = peerIdFromMultihash(Digest.decode(Buffer.from(info.peerId.slice(2), "hex"))).toString();
    const ws = info.multiaddrs.filter((a) => /\/wss?(\/|$)/.test(a)).map((a) => multiaddr(a.includes("/p2p/") ? a : `${a}/p2p/${peerId}`));
    if (ws.length === 0) throw new Error(`member ${address} registered no WebSocket address (its node needs --listen /ip4/.../tcp/PORT/ws)`);
    this.addresses.set(address.toLowerCase(), ws);
    return ws;
  }

  private async ask(m: LightMagu, member: Address, request: Record<string, unknown>, what: string): Promise<unknown> {
    await this.present(m, member);
    return searchRequest(this.libp2p, await this.dialable(member), request, { limits: { timeoutMs: TIMEOUT_MS }, what });
  }

  /**
   * Takes a grant token for a private Magu (`muri magu grant ID --to X` prints it): a grant to this
   * page's libp2p peer (its id is `libp2p.peerId`, new on every load), or to an account, whose
   * private key `accountKey` then signs the Holder statement that this page's peer acts for it. The
   * key stays in this page's memory; nothing but that signature leaves it. The grant is presented
   * to each member before the first request of the Magu, and again before it lapses.
   */
  async useGrant(token: string, accountKey?: Hex): Promise<{ magu: bigint; kind: "peer" | "account"; grantee: string; expires: bigint }> {
    let decoded;
    try {
      decoded = decodeGrantToken(token.trim());
    } catch (err) {
      throw new Error(`token: not a grant token (${(err as Error).message}); muri magu grant prints one`, { cause: err });
    }
    const { chainId, contract, grant } = decoded;
    if (chainId !== this.config.chainId || contract.toLowerCase() !== this.config.contracts.maguAccess.toLowerCase()) {
      throw new Error(`token: the grant for Magu ${grant.magu} is for chain ${chainId} (MaguAccess ${contract}), not this page's (chain ${this.config.chainId}, MaguAccess ${this.config.contracts.maguAccess})`);
    }
    const account = granteeAccount(grant.grantee);
    let sign: TypedSigner | undefined;
    if (account === undefined) {
      const me = this.libp2p.peerId.toString();
      if (grant.grantee.toLowerCase() !== peerGrantee(me).toLowerCase()) {
        throw new Error(`token: the grant for Magu ${grant.magu} names another peer; this page is peer ${me} (a new one on every load): grant to it, or to an account and give that account's key`);
      }
    } else {
      if (accountKey === undefined) throw new Error(`accountKey: the grant for Magu ${grant.magu} names account ${account}; give that account's private key to sign for this page`);
      const signer = accountSigner(accountKey);
      if (signer.address.toLowerCase() !== account.toLowerCase()) throw new Error(`accountKey: it is account ${signer.address}'s, the grant names ${account}`);
      sign = signer.sign;
    }
    this.grants.set(grant.magu, { grant, sign });
    for (const key of this.presented.keys()) if (key.endsWith(`/${grant.magu}`)) this.presented.delete(key);
    return { magu: grant.magu, kind: account === undefined ? "peer" : "account", grantee: account ?? this.libp2p.peerId.toString(), expires: grant.expires };
  }

  /** Presents this page's grant for `m` to `member` (nothing for a public Magu, or without a grant). */
  private async present(m: LightMagu, member: Address): Promise<void> {
    if (m.public) return;
    const held = this.grants.get(m.id);
    if (held === undefined) return; // the member's refusal says the Magu is private
    const key = `${member.toLowerCase()}/${m.id}`;
    const now = await this.chainNow();
    if ((this.presented.get(key) ?? 0) - RENEW_BEFORE_S > now) return;
    const { grant, sign } = held;
    let holder: { expires: string; signature: Hex } | undefined;
    if (sign !== undefined) {
      const expires = BigInt(Math.min(Number(grant.expires), now + HOLDER_S));
      const signature = await signHolder(sign, this.domain, { magu: m.id, peer: peerGrantee(this.libp2p.peerId.toString()), expires });
      holder = { expires: expires.toString(), signature };
    }
    const request = {
      op: "access",
      magu: m.id.toString(),
      grant: { grantee: grant.grantee, rights: grant.rights, expires: grant.expires.toString(), nonce: grant.nonce.toString(), signature: grant.signature },
      ...(holder !== undefined ? { holder } : {}),
    };
    const answer = (await searchRequest(this.libp2p, await this.dialable(member), request, { limits: { timeoutMs: TIMEOUT_MS }, what: "access" })) as { ok?: boolean; expires?: string; error?: string };
    if (answer?.ok !== true) throw new Error(`refused the grant: ${answer?.error ?? "malformed answer"}`);
    this.presented.set(key, Number(answer.expires ?? 0));
  }

  /** The Magu's vector index document, from the first member whose copy folds to the root on chain. */
  document(m: LightMagu): Promise<{ manifest: VectorManifest; roots: Uint8Array[]; deleted: ReadonlySet<bigint> }> {
    const key = `${m.id}/${m.root}`;
    let doc = this.documents.get(key);
    if (doc === undefined) {
      doc = (async () => {
        const failures: string[] = [];
        for (const member of m.members) {
          if (ZERO_ADDRESS.test(member)) continue;
          try {
            const answer = (await this.ask(m, member, { op: "manifest", magu: m.id.toString() }, "manifest")) as { ok?: boolean; cid?: string; doc?: string; error?: string };
            if (answer?.ok !== true || typeof answer.cid !== "string" || typeof answer.doc !== "string") throw new Error(answer?.error ?? "malformed answer");
            const manifest = decodeVectorManifest(Buffer.from(answer.doc, "base64"), CID.parse(answer.cid));
            const roots = manifest.fragments.map((f) => Buffer.from(f.root, "hex"));
            if (manifest.maguId !== m.id || roots.length !== m.fragmentCount || `0x${maguRoot(roots).toString("hex")}` !== m.root) {
              throw new Error(`its document (${roots.length} fragments) does not fold to the root on chain`);
            }
            return { manifest, roots, deleted: deletedIds(manifest) };
          } catch (err) {
            failures.push(`${member}: ${(err as Error).message}`);
          }
        }
        throw new Error(`no member gave Magu ${m.id}'s document: ${failures.join("; ")}`);
      })();
      this.documents.set(key, doc);
      doc.catch(() => this.documents.delete(key));
    }
    return doc;
  }

  /** The query as the Magu's members compare it (quantized at the Magu's scale, or packed bits). */
  async quantizeQuery(m: LightMagu, query: readonly number[]): Promise<{ values: VectorValues; scaleExp: number | null }> {
    if (m.metric === "hamming") return { values: packBits(query, m.dim), scaleExp: null };
    if (query.length !== m.dim) throw new Error(`the query has ${query.length} components, Magu ${m.id}'s dimension is ${m.dim}`);
    const scaleExp = m.metric === "cosine" ? COSINE_SCALE_EXP : manifestScaleExp((await this.document(m)).manifest);
    const values = m.metric === "cosine" ? normalizeVector(query) : query;
    return { values: quantize(values, m.dim, 0, scaleOfExp(scaleExp)), scaleExp };
  }

  /**
   * The top `k` of Magu `m` for `query`, asked of every member (exact search), proven against the
   * root on chain (see the module comment).
   */
  async search(m: LightMagu, query: readonly number[], k: number, options: LightSearchOptions = {}): Promise<LightSearchResult> {
    const started = performance.now();
    const verify = options.verify !== false;
    const { values, scaleExp } = await this.quantizeQuery(m, query);
    const doc = await this.document(m);
    const holders = Array.from({ length: m.fragmentCount }, (_, f) => holdersVector(m.id, f, m.members.length, m.replication).map((s) => m.members[s]!.toLowerCase()));
    const members = m.members.filter((a) => !ZERO_ADDRESS.test(a));
    const request = { op: "search", magu: m.id.toString(), query: `0x${encodeVector(values).toString("hex")}`, k, exact: true };
    const price = await this.chain.readContract({ address: this.config.contracts.maguAccess, abi: maguAccessAbi, functionName: "searchPrice", args: [m.id] });
    if (price > 0n && this.payer === undefined) {
      throw new Error(`Magu ${m.id} charges ${price} wei of MURI per search and member: give this page the key of an account with a deposit there (usePayer; muri magu deposit ${m.id} MURI)`);
    }
    const answers = new Map<string, { member: Address; fragments: number[]; hits: HitEntry[] }>();
    const rejected: LightSearchResult["rejected"] = [];
    const failed: LightSearchResult["failed"] = [];
    const paid: NonNullable<LightSearchResult["paid"]> = [];
    await Promise.all(
      members.map(async (member) => {
        try {
          const raw = price === 0n ? await this.ask(m, member, request, "search") : await this.paidSearch(m, member, price, request, paid);
          if (!(raw instanceof Uint8Array)) throw new Error((raw as { error?: string } | undefined)?.error ?? "malformed answer");
          const answer = decodeSearchAnswer(raw, 1, k);
          const hits = answer.hits[0]!;
          if (options.tamper?.toLowerCase() === member.toLowerCase() && hits.length > 0) hits[0] = { ...hits[0]!, distance: hits[0]!.distance - 1n };
          answers.set(member.toLowerCase(), { member, fragments: answer.fragments, hits });
        } catch (err) {
          failed.push({ member, reason: (err as Error).message });
        }
      }),
    );
    const reject = (member: string, reason: string): void => {
      const a = answers.get(member);
      answers.delete(member);
      rejected.push({ member: a?.member ?? member, reason });
    };
    // Checks that cost no hashing, on every hit: placed on the member, not deleted.
    for (const [key, a] of [...answers]) {
      const bad = a.hits.find((h) => h.fragment >= m.fragmentCount || !holders[h.fragment]!.includes(key) || doc.deleted.has(h.id));
      if (bad !== undefined) reject(key, bad.fragment >= m.fragmentCount ? `hit on fragment ${bad.fragment}, past the ${m.fragmentCount} committed` : doc.deleted.has(bad.id) ? `returned id ${bad.id}, which the owner deleted` : `hit on fragment ${bad.fragment}, which is not placed on it`);
    }
    const merge = (): { hit: HitEntry; member: string }[] => {
      const best = new Map<bigint, { hit: HitEntry; member: string }>();
      for (const [key, a] of answers) {
        for (const hit of a.hits) {
          const seen = best.get(hit.id);
          if (seen === undefined || compareHits(hit, seen.hit) < 0) best.set(hit.id, { hit, member: key });
        }
      }
      return [...best.values()].sort((x, y) => compareHits(x.hit, y.hit)).slice(0, k);
    };
    const proven = new Set<string>();
    const hitKey = (member: string, h: HitEntry): string => `${member}/${h.distance}/${h.id}/${h.fragment}/${h.position}`;
    let top = merge();
    // Prove the merged top k; a member whose hit does not prove is dropped and the merge redone.
    for (let round = 0; verify && round <= members.length; round++) {
      const wanted = new Map<string, HitEntry[]>();
      for (const { hit, member } of top) if (!proven.has(hitKey(member, hit))) wanted.set(member, [...(wanted.get(member) ?? []), hit]);
      if (wanted.size === 0) break;
      await Promise.all(
        [...wanted].map(async ([member, hits]) => {
          try {
            const raw = await this.ask(m, answers.get(member)!.member, { op: "prove", magu: m.id.toString(), hits: hits.map((h) => [h.fragment, h.position]) }, "prove");
            if (!(raw instanceof Uint8Array)) throw new Error(`prove: ${(raw as { error?: string } | undefined)?.error ?? "malformed answer"}`);
            const items = decodeProveAnswer(raw, hits.length);
            hits.forEach((hit, i) => {
              const item = items[i]!;
              if ("error" in item) throw new Error(`no proof of its hit at fragment ${hit.fragment} position ${hit.position}: ${item.error}`);
              const error = this.disprove(hit, item.proof, doc.roots[hit.fragment]!, values, m);
              if (error !== undefined) throw new Error(error);
              proven.add(hitKey(member, hit));
            });
          } catch (err) {
            reject(member, (err as Error).message);
          }
        }),
      );
      top = merge();
    }
    const covered = new Set<number>();
    for (const a of answers.values()) for (const f of a.fragments) covered.add(f);
    const scale = scaleExp === null ? 1 : 2 ** (2 * scaleExp);
    return {
      hits: top.filter(({ hit, member }) => !verify || proven.has(hitKey(member, hit))).map(({ hit }) => lightHit(hit, scale)),
      rejected,
      failed,
      uncovered: Array.from({ length: m.fragmentCount }, (_, f) => f).filter((f) => !covered.has(f)),
      verified: verify,
      ...(price > 0n ? { paid } : {}),
      ms: performance.now() - started,
    };
  }

  /**
   * Takes the account that pays for searches and reads of Magus with a search or read price
   * (MaguAccess `searchPrice`, `readPrice`): its key signs one cumulative `Voucher` per member and
   * search, as `muri search` does, and a `ReadVoucher` before each fragment fetch (prepayRead); the
   * account must have a deposit in the Magu (`muri magu deposit`). The key stays in this page's
   * memory.
   */
  usePayer(accountKey: Hex): Address {
    this.payer = accountSigner(accountKey);
    this.meters.clear();
    return this.payer.address;
  }

  /**
   * Prepays fragment `index` at `member` when Magu `m` has a read price (MaguAccess `readPrice`):
   * the payer's next cumulative `ReadVoucher` there (`op: "read-pay"`; one fragment more, the reads
   * chain extended by it, the chain's quote `readUnitPrice` more, at most `maxUnitPrice` = the base
   * price x MAX_READ_MULTIPLIER_BPS), as `muri get` prepays; where the account stands is asked first
   * (`op: "read-meter"`), and again once when the member's count or price differs. Nothing on a
   * Magu without a read price, or while a credit for the fragment is left from a fetch that failed.
   */
  private async prepayRead(m: LightMagu, member: Address, index: number): Promise<void> {
    const base = await this.chain.readContract({ address: this.config.contracts.maguAccess, abi: maguAccessAbi, functionName: "readPrice", args: [m.id] });
    if (base === 0n) return;
    const payer = this.payer;
    if (payer === undefined) throw new Error(`Magu ${m.id} charges ${base} wei of MURI per fragment read (times its demand multiplier): give this page the key of an account with a deposit there (usePayer; muri magu deposit ${m.id} MURI)`);
    const key = `${m.id}/${member.toLowerCase()}`;
    const run = async (): Promise<void> => {
      let st = this.readMeters.get(key);
      if (st === undefined) st = await this.readMeter(m, member, payer.address);
      if ((st.credits.get(index) ?? 0) > 0) return;
      // A failed read is asked again next time.
      this.readCapBps ??= this.chain.readContract({ address: this.config.contracts.maguAccess, abi: maguAccessAbi, functionName: "MAX_READ_MULTIPLIER_BPS" }).catch((err: unknown) => {
        this.readCapBps = undefined;
        throw err;
      });
      const max = (base * (await this.readCapBps)) / 10_000n;
      for (let attempt = 0; ; attempt++) {
        const unit = await this.chain.readContract({ address: this.config.contracts.maguAccess, abi: maguAccessAbi, functionName: "readUnitPrice", args: [m.id, BigInt(index), member] });
        if (unit > max) throw new Error(`Magu ${m.id} quotes ${unit} wei for fragment ${index} at ${member}, above the chain's cap ${max}`);
        const voucher = { magu: m.id, member, fragments: st.fragments + 1n, reads: extendReads(st.reads, [index]), total: st.total + unit, maxUnitPrice: max };
        const signature = await signReadVoucher(payer.sign, this.domain, voucher);
        const answer = (await this.ask(m, member, {
          op: "read-pay",
          magu: m.id.toString(),
          voucher: { payer: payer.address, fragments: voucher.fragments.toString(), reads: voucher.reads, total: voucher.total.toString(), maxUnitPrice: max.toString(), served: [index], signature },
        }, "read-pay")) as { ok?: boolean; error?: string };
        if (answer?.ok === true) {
          Object.assign(st, { fragments: voucher.fragments, reads: voucher.reads, total: voucher.total });
          st.credits.set(index, (st.credits.get(index) ?? 0) + 1);
          this.stats.readsPaid++;
          this.stats.readWei = (BigInt(this.stats.readWei) + unit).toString();
          return;
        }
        // The price moved (demand) or the member's count differs: ask where we stand, once.
        if (attempt === 0 && /must be at least|the next is|must extend|above the reader's maximum/.test(answer?.error ?? "")) {
          st = await this.readMeter(m, member, payer.address);
          continue;
        }
        throw new Error(`${member} refused the read voucher: ${answer?.error ?? "malformed answer"}`);
      }
    };
    const mine = (this.meterLocks.get(`read/${key}`) ?? Promise.resolve()).then(run, run);
    this.meterLocks.set(`read/${key}`, mine.catch(() => undefined));
    await mine;
  }

  /** Where the payer stands with `member` on reads of `m` (`op: "read-meter"`), recorded. */
  private async readMeter(m: LightMagu, member: Address, payer: Address): Promise<ReadMeterState> {
    const r = (await this.ask(m, member, { op: "read-meter", magu: m.id.toString(), payer }, "read-meter")) as { ok?: boolean; fragments?: string; reads?: string; total?: string; error?: string };
    if (r?.ok !== true) throw new Error(`read-meter: ${r?.error ?? "malformed answer"}`);
    // Which fragments an earlier page prepaid there is not known: they are paid again if read.
    const st: ReadMeterState = { fragments: BigInt(r.fragments ?? "0"), reads: (r.reads ?? NO_READS) as Hex, total: BigInt(r.total ?? "0"), credits: new Map() };
    this.readMeters.set(`${m.id}/${member.toLowerCase()}`, st);
    return st;
  }

  /** A fetch of fragment `index` from `member` took its prepaid credit there. */
  private takeReadCredit(m: LightMagu, member: Address, index: number): void {
    const st = this.readMeters.get(`${m.id}/${member.toLowerCase()}`);
    const left = st?.credits.get(index) ?? 0;
    if (left <= 1) st?.credits.delete(index);
    else st!.credits.set(index, left - 1);
  }

  /**
   * `request` sent to `member` with the payer's next voucher there: one search and one `price`
   * more than the last it took (asked with `op: "meter"` the first time), one paid search per
   * member at a time so the member sees the vouchers in order.
   */
  private async paidSearch(m: LightMagu, member: Address, price: bigint, request: Record<string, unknown>, paid: NonNullable<LightSearchResult["paid"]>): Promise<unknown> {
    const payer = this.payer!;
    const key = `${m.id}/${member.toLowerCase()}`;
    const run = async (again = true): Promise<unknown> => {
      let state = this.meters.get(key);
      if (state === undefined) {
        const meter = (await this.ask(m, member, { op: "meter", magu: m.id.toString(), payer: payer.address }, "meter")) as { ok?: boolean; searches?: string; total?: string; error?: string };
        if (meter?.ok !== true || typeof meter.searches !== "string" || typeof meter.total !== "string") throw new Error(`meter: ${meter?.error ?? "malformed answer"}`);
        state = { searches: BigInt(meter.searches), total: BigInt(meter.total) };
      }
      const voucher = { magu: m.id, member, searches: state.searches + 1n, total: state.total + price };
      const signature = await signVoucher(payer.sign, this.domain, voucher);
      const answer = await this.ask(m, member, { ...request, voucher: { payer: payer.address, searches: voucher.searches.toString(), total: voucher.total.toString(), signature } }, "search");
      // The member keeps the voucher only with an answer; after a refusal ask it where we stand,
      // and once more at once when the refusal is about the count (a member that had not yet seen
      // the price answered an earlier search without keeping its voucher).
      if (answer instanceof Uint8Array) {
        this.meters.set(key, { searches: voucher.searches, total: voucher.total });
        paid.push({ member, searches: voucher.searches.toString(), total: voucher.total.toString() });
        return answer;
      }
      this.meters.delete(key);
      const error = (answer as { error?: unknown } | undefined)?.error;
      return again && typeof error === "string" && error.includes('ask op "meter"') ? run(false) : answer;
    };
    const mine = (this.meterLocks.get(key) ?? Promise.resolve()).then(() => run(), () => run());
    this.meterLocks.set(key, mine.catch(() => undefined));
    return mine;
  }

  /** Why `hit` does not prove against `root`, or undefined when it does. */
  private disprove(hit: HitEntry, proof: HitProof, root: Uint8Array, query: VectorValues, m: LightMagu): string | undefined {
    return verifyHitProof(hit, proof, root, query, m.metric, m.dim).error;
  }

  /**
   * Fragment `index` of Magu `m`: from the cache when held (its bytes checked against the root
   * again), else fetched from a holder over `/muri/fragment/1.0.0`, checked, and kept.
   */
  async fragment(m: LightMagu, index: number): Promise<Uint8Array> {
    const doc = await this.document(m);
    const root = doc.roots[index];
    if (root === undefined) throw new Error(`Magu ${m.id} has ${doc.roots.length} fragments, not ${index + 1}`);
    const cid = cidOfFragmentRoot(root);
    const held = await this.cache.get(cid.toString());
    if (held !== undefined && Buffer.from(fragmentRoot(held)).equals(Buffer.from(root))) {
      this.stats.cacheHits++;
      return held;
    }
    const failures: string[] = [];
    for (const slot of holdersVector(m.id, index, m.members.length, m.replication)) {
      const member = m.members[slot]!;
      if (ZERO_ADDRESS.test(member)) continue;
      try {
        this.stats.fragmentFetches++;
        await this.prepayRead(m, member, index);
        const bytes = await this.fetchFrom(m, member, cid);
        this.takeReadCredit(m, member, index);
        if (!Buffer.from(fragmentRoot(bytes)).equals(Buffer.from(root))) throw new Error("its bytes do not hash to the committed fragment root");
        await this.cache.put(cid.toString(), m.id.toString(), index, bytes, recordSize(m.dim, m.metric));
        return bytes;
      } catch (err) {
        failures.push(`${member}: ${(err as Error).message}`);
      }
    }
    throw new Error(`no holder gave fragment ${index} of Magu ${m.id}: ${failures.join("; ")}`);
  }

  private async fetchFrom(m: LightMagu, member: Address, cid: CID): Promise<Uint8Array> {
    await this.present(m, member);
    const signal = AbortSignal.timeout(TIMEOUT_MS);
    const stream = await this.libp2p.dialProtocol(await this.dialable(member), FRAGMENT_PROTOCOL, { signal });
    try {
      const reader = new StreamReader(stream, { highWaterMark: 2 * MAX_FRAGMENT_BYTES });
      stream.send(encodeRequestHeader({ op: Op.Fetch, cid, length: MAX_FRAGMENT_BYTES }));
      const header = decodeResponseHeader(await reader.readExactly(RESPONSE_HEADER_BYTES, "response header", TIMEOUT_MS, signal), MAX_FRAGMENT_BYTES);
      const body = await reader.readExactly(header.length, "response body", TIMEOUT_MS, signal);
      if (header.status !== Status.Ok) throw new Error(`${statusName(header.status)}: ${new TextDecoder().decode(body)}`);
      return body;
    } finally {
      await stream.close().catch(() => stream.abort(new Error("closing")));
    }
  }

  /**
   * The held records of `m`, decoded (held-index.ts): rebuilt when the fragments held change (a
   * fragment fetched or evicted), kept otherwise. Only fragments whose CID is the root the Magu's
   * document commits to are read, a page at a time; the rows stay in memory while the page is open
   * (at most the cache's bound).
   */
  private async heldOf(m: LightMagu): Promise<HeldSet> {
    const doc = await this.document(m);
    const rs = recordSize(m.dim, m.metric);
    const held = (await this.cache.list(m.id.toString())).filter((f) => cidOfFragmentRoot(doc.roots[f.index] ?? new Uint8Array(32)).toString() === f.cid);
    const key = `${m.root}:${held.map((f) => f.cid).sort().join()}`;
    const known = this.held.get(m.id);
    if (known !== undefined && known.key === key) return known;
    known?.building?.abort();
    const rows = (async () => {
      const out = new HeldRows(m.dim, m.metric);
      for (const f of held) {
        for (let p = 0; p < f.pages; p++) {
          const page = await this.cache.page(f.cid, p);
          if (page === undefined) break; // evicted meanwhile: the next search sees the new set
          out.addRecords(page, f.index, (p * f.pageBytes) / rs, doc.deleted);
        }
      }
      return out;
    })();
    const set: HeldSet = { key, fragments: held.length, rows };
    this.held.set(m.id, set);
    rows.catch(() => this.held.get(m.id) === set && this.held.delete(m.id));
    return set;
  }

  /** The graph over `set` (HeldGraph), its build started on the first call. */
  private graphOf(set: HeldSet): Promise<HeldGraph> {
    if (set.graph === undefined) {
      const building = new AbortController();
      set.building = building;
      set.graph = set.rows.then((rows) => HeldGraph.build(rows, { signal: building.signal }));
      set.graph.then(
        (g) => (set.ready = g),
        () => (set.graph = undefined),
      );
    }
    return set.graph;
  }

  /**
   * The top `k` over the fragments of `m` this browser holds, with no network: an exact scan of the
   * held records, or (l2, ip and cosine Magus past GRAPH_MIN_COMPONENTS, rows x dim) the graph index
   * once it is built in the background (held-index.ts). `method` forces one: `"scan"`, or
   * `"graph"` (waits for the build); `ef` is the graph's effort. Control and deleted records are
   * skipped. `fragments` is how many fragments were searched, `records` how many records they hold.
   */
  async searchHeld(m: LightMagu, query: readonly number[], k: number, options: HeldSearchOptions = {}): Promise<HeldSearchResult> {
    const started = performance.now();
    const method = options.method ?? "auto";
    if (method !== "auto" && method !== "scan" && method !== "graph") throw new Error(`method: ${String(method)} is not auto, scan or graph`);
    if (method === "graph" && m.metric === "hamming") throw new Error(`method: Magu ${m.id} is a Hamming Magu, which has no graph index here (use scan)`);
    if (!Number.isInteger(k) || k < 1) throw new Error(`k: ${k} is not a positive integer`);
    const { values, scaleExp } = await this.quantizeQuery(m, query);
    const set = await this.heldOf(m);
    const rows = await set.rows;
    let graph: HeldGraph | undefined;
    if (method === "graph") graph = await this.graphOf(set);
    else if (method === "auto" && m.metric !== "hamming" && rows.count * m.dim >= GRAPH_MIN_COMPONENTS) {
      void this.graphOf(set).catch(() => undefined); // scanned until it is ready
      graph = set.ready;
    }
    const hits = graph === undefined ? scanHeld(rows, values, k) : graph.search(values as Int16Array, k, options.ef);
    const scale = scaleExp === null ? 1 : 2 ** (2 * scaleExp);
    return {
      hits: hits.map((h) => lightHit(h, scale)),
      fragments: set.fragments,
      records: rows.count,
      method: graph === undefined ? "scan" : "graph",
      exact: graph === undefined,
      ms: performance.now() - started,
    };
  }
}

/** The payer's standing with one member on paid reads (the member's `op: "read-meter"`, then this page's vouchers). */
interface ReadMeterState {
  fragments: bigint;
  reads: Hex;
  total: bigint;
  credits: Map<number, number>;
}

/** A Magu's held records (LightClient.heldOf) and the graph over them, once asked for. */
interface HeldSet {
  /** The Magu's root and the CIDs of the fragments read. */
  key: string;
  fragments: number;
  rows: Promise<HeldRows>;
  graph?: Promise<HeldGraph>;
  ready?: HeldGraph;
  building?: AbortController;
}

/** The address of the account `accountKey` and a signer of its typed data (the key stays in this closure). */
function accountSigner(accountKey: Hex): { address: Address; sign: TypedSigner } {
  let account;
  try {
    account = privateKeyToAccount(accountKey);
  } catch (err) {
    throw new Error(`accountKey: not a private key (${(err as Error).message}); 0x and 64 hex digits`, { cause: err });
  }
  return { address: account.address, sign: (typed) => account.signTypedData(typed as never) };
}

function lightHit(hit: HitEntry, scale: number): LightHit {
  return { id: hit.id.toString(), canonical: hit.distance.toString(), distance: Number(hit.distance) / scale, fragment: hit.fragment, position: hit.position };
}
