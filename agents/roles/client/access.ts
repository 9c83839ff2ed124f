/**
 * A client's side of access to private Magus (roles/shared/access-gate.ts): before it reads or
 * searches a private Magu on a member, it presents a grant (`op: "access"` on
 * `/muri/search/3.0.0`) once per member, renewed before it lapses:
 * - the Magu's owner signs a grant to its own libp2p peer for the session (an hour);
 * - anyone else presents a grant token the owner gave them (`muri magu grant`, passed as
 *   `--grant`); a grant to an account comes with the account's `Holder` statement for this peer.
 * A public Magu needs nothing. A client without a credential presents nothing: the member's
 * refusal says what is missing.
 *
 * Paid reads (roles/node/read-meter.ts): when a Magu has a read price, each fragment read from a
 * member is prepaid with a cumulative `ReadVoucher` (`op: "read-pay"`), one fragment at a time,
 * naming the fragment (its index, NO_FRAGMENT for a manifest) in the voucher's reads hash chain,
 * after asking the member where this account stands (`op: "read-meter"`: a new process continues
 * the count). Each fragment costs what the chain quotes for it from that member (MaguAccess
 * `readUnitPrice(magu, fragment, member)`: the base price times the fragment's multiplier). The
 * voucher's `maxUnitPrice` is `maxReadPrice`, or by default the chain's cap (the base price x
 * MAX_READ_MULTIPLIER_BPS, x2): a fragment quoted above it is refused with ERR_READ_PAYMENT rather
 * than paid.
 */
import type { PeerId } from "@libp2p/interface";
import type { Address, Hex, TypedDataDomain } from "viem";
import {
  RIGHTS_ALL,
  accessDomain,
  chainTime,
  decodeGrantToken,
  granteeAccount,
  peerGrantee,
  readAtMostEvery,
  signGrant,
  signHolder,
  extendReads,
  NO_FRAGMENT,
  NO_READS,
  signReadVoucher,
  type Deployment,
  type MuriContracts,
  type MuriPublicClient,
  type MuriWalletClient,
  type SignedGrant,
  type SigningChainClients,
  type TypedSigner,
} from "../../chain/index.js";
import { RemoteRefusedError, searchRequest, type P2PNode } from "../../p2p/index.js";

/** How long the owner's own session grant lasts. */
const SESSION_GRANT_S = 3_600;
/** A presentation is renewed when it has less than this left (chain seconds). */
const RENEW_BEFORE_S = 60;
/** How long a Magu's visibility is trusted. */
const VISIBILITY_TTL_MS = 30_000;

/** A member refused the grant this client presented. */
export class AccessRefusedError extends Error {
  readonly code = "ERR_ACCESS_REFUSED";
  constructor(
    readonly context: { magu: bigint; peer: string; reason: string },
  ) {
    super(`member ${context.peer} refused access to Magu ${context.magu}: ${context.reason}`);
    this.name = "AccessRefusedError";
  }
}

/** Whether `err` is a refusal for want of access (the member's gate, or a refused grant). */
export function isAccessRefusal(err: unknown): boolean {
  if (err instanceof AccessRefusedError) return true;
  const message = (err as Error | undefined)?.message ?? "";
  return /access denied|is private:/.test(message);
}

/** A member refused this client's read payment (no deposit, a price above the reader's max, ...). */
export class ReadPaymentRefusedError extends Error {
  readonly code = "ERR_READ_PAYMENT";
  constructor(readonly context: { magu: bigint; peer: string; reason: string }) {
    super(`member ${context.peer} refused to serve Magu ${context.magu}: ${context.reason}`);
    this.name = "ReadPaymentRefusedError";
  }
}

/** Whether `err` is a refusal for want of payment for reads. */
export function isReadPaymentRefusal(err: unknown): boolean {
  return err instanceof ReadPaymentRefusedError || /charges for reads/.test((err as Error | undefined)?.message ?? "");
}

/** Whether `err` is a member's refusal of an unpaid search (search-meter.ts). */
export function isPaymentRefusal(err: unknown): boolean {
  return /charges for searches/.test((err as Error | undefined)?.message ?? "");
}

export interface ClientAccessInit {
  deployment: Pick<Deployment, "chainId" | "contracts">;
  /** This client's account (the owner of its own Magus). */
  account: Address;
  /** Signs EIP-712 data with `account`. */
  sign: TypedSigner;
  /** Grant tokens given to this client (`muri magu grant` output). */
  grants?: readonly string[];
  /** The most this client pays per fragment read, in wei (default: the chain's cap, x2 the base price). */
  maxReadPrice?: bigint;
}

export interface ClientAccessComponents {
  /** The chain's time, unix seconds (the latest block's timestamp): grants expire by it. */
  chainNow(): Promise<number>;
  /** Read or write handles (only reads are used). */
  contracts:
    | Pick<MuriContracts<MuriPublicClient>, "maguRegistry" | "maguAccess">
    | Pick<MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>, "maguRegistry" | "maguAccess">;
  p2p: Pick<P2PNode, "libp2p" | "peerId">;
}

export class ClientAccess {
  private readonly domain: TypedDataDomain;
  private readonly tokens = new Map<bigint, SignedGrant>();
  /** `${peer}/${magu}` -> chain time (unix seconds) the presentation lapses. */
  private readonly presented = new Map<string, number>();
  /** The chain's time, read at most once a second: grants expire by it, not by this machine's clock. */
  private readonly chainNow: () => Promise<number>;
  private readonly visibility = new Map<bigint, { at: number; value: Promise<boolean> }>();
  private readonly credentials = new Map<bigint, Promise<Credential | undefined>>();
  /** Per Magu: its base read price and the most this client pays per fragment. */
  private readonly readTerms = new Map<bigint, Promise<{ base: bigint; max: bigint }>>();
  /** `${peer}/${magu}`: this account's standing with that member, and the fragments prepaid there. */
  private readonly readState = new Map<string, { fragments: bigint; reads: Hex; total: bigint; credits: Map<number, number>; lock: Promise<unknown> }>();

  constructor(
    private readonly init: ClientAccessInit,
    private readonly c: ClientAccessComponents,
  ) {
    this.domain = accessDomain(init.deployment.chainId, init.deployment.contracts.maguAccess);
    this.chainNow = readAtMostEvery(1_000, c.chainNow);
    for (const token of init.grants ?? []) {
      const { chainId, contract, grant } = decodeGrantToken(token);
      if (chainId !== init.deployment.chainId || contract.toLowerCase() !== init.deployment.contracts.maguAccess.toLowerCase()) {
        throw new Error(`--grant for Magu ${grant.magu} is for chain ${chainId} (MaguAccess ${contract}), not this network (chain ${init.deployment.chainId})`);
      }
      this.tokens.set(grant.magu, grant);
    }
  }

  /** Presents this client's credential for `magu` to `peer` unless the Magu is public or it was presented. */
  async ensure(peer: PeerId, magu: bigint): Promise<void> {
    const key = `${peer.toString()}/${magu}`;
    if (await this.isPublic(magu)) return;
    const now = await this.chainNow();
    if ((this.presented.get(key) ?? 0) - RENEW_BEFORE_S > now) return;
    let credential = await this.credential(magu);
    if (credential === undefined) return;
    if (credential.until - RENEW_BEFORE_S <= now) {
      this.credentials.delete(magu);
      credential = await this.credential(magu);
      if (credential === undefined) return;
    }
    const request = {
      op: "access",
      magu: magu.toString(),
      grant: { grantee: credential.grant.grantee, rights: credential.grant.rights, expires: credential.grant.expires.toString(), nonce: credential.grant.nonce.toString(), signature: credential.grant.signature },
      ...(credential.holder !== undefined ? { holder: { expires: credential.holder.expires.toString(), signature: credential.holder.signature } } : {}),
    };
    const answer = (await searchRequest(this.c.p2p.libp2p, peer, request, { what: "access" })) as { ok?: boolean; expires?: string; error?: string };
    if (answer?.ok !== true) {
      // A refused self-grant may be stale (a revocation raised the nonce): sign again next time.
      this.credentials.delete(magu);
      throw new AccessRefusedError({ magu, peer: peer.toString(), reason: answer?.error ?? "malformed answer" });
    }
    this.presented.set(key, Number(answer.expires ?? 0));
  }

  /**
   * Runs `read` on `peer` after presenting this client's credential; when the member refuses it for
   * want of access although one was presented (the member restarted and forgot it, or it lapsed
   * early by the chain's clock), presents again and runs it once more.
   */
  async read<T>(peer: PeerId, magu: bigint, read: () => Promise<T>, member?: Address, fragment: number = NO_FRAGMENT): Promise<T> {
    await this.ensure(peer, magu);
    const paid = member === undefined ? async () => read() : () => this.paidRead(peer, member, magu, read, fragment);
    try {
      return await paid();
    } catch (err) {
      const key = `${peer.toString()}/${magu}`;
      if (!isAccessRefusal(err) || !this.presented.has(key)) throw err;
      this.presented.delete(key);
      await this.ensure(peer, magu);
      return paid();
    }
  }

  /** Fragments this client paid for by read vouchers in this process, per Magu. */
  readonly readsPaid = new Map<bigint, { fragments: bigint; wei: bigint }>();

  /** Runs `read` (one fetch of `fragment` from `member`) after prepaying it when the Magu charges for reads. */
  private async paidRead<T>(peer: PeerId, member: Address, magu: bigint, read: () => Promise<T>, fragment: number): Promise<T> {
    const terms = await this.readTermsOf(magu);
    if (terms.base === 0n) return read();
    const key = `${peer.toString()}/${magu}`;
    await this.prepay(peer, member, magu, key, terms.max, fragment);
    const st = this.readState.get(key)!;
    const take = () => {
      const left = st.credits.get(fragment) ?? 0;
      if (left <= 1) st.credits.delete(fragment);
      else st.credits.set(fragment, left - 1);
    };
    try {
      const value = await read();
      take();
      return value;
    } catch (err) {
      // Refused before the charge (busy, access): the credit is still there; otherwise unknown.
      const before = err instanceof RemoteRefusedError && /^busy|access denied: .*is private/.test(err.context.reason);
      if (!before) take();
      throw err;
    }
  }

  private readTermsOf(magu: bigint): Promise<{ base: bigint; max: bigint }> {
    let t = this.readTerms.get(magu);
    if (t === undefined) {
      const a = this.c.contracts.maguAccess;
      t = Promise.all([a.read.readPrice([magu]), a.read.MAX_READ_MULTIPLIER_BPS()]).then(([base, cap]) => ({ base, max: this.init.maxReadPrice ?? (base * cap) / 10_000n }));
      this.readTerms.set(magu, t);
      t.catch(() => this.readTerms.delete(magu));
    }
    return t;
  }

  /** Makes sure `fragment` is prepaid at `peer` (one voucher at a time per member). */
  private async prepay(peer: PeerId, member: Address, magu: bigint, key: string, max: bigint, fragment: number): Promise<void> {
    let st = this.readState.get(key);
    if (st === undefined) {
      st = { fragments: 0n, reads: NO_READS, total: 0n, credits: new Map(), lock: Promise.resolve() };
      // A member that cannot say where this account stands is asked again by the next read.
      st.lock = this.readMeter(peer, magu, key).catch((err: unknown) => {
        this.readState.delete(key);
        throw err;
      });
      this.readState.set(key, st);
    }
    const state = st;
    const run = state.lock.then(async () => {
      if ((state.credits.get(fragment) ?? 0) > 0) return;
      for (let attempt = 0; ; attempt++) {
        const unit = await this.c.contracts.maguAccess.read.readUnitPrice([magu, BigInt(fragment), member]);
        const what = fragment === NO_FRAGMENT ? "a document" : `fragment ${fragment}`;
        if (unit > max) {
          throw new ReadPaymentRefusedError({ magu, peer: peer.toString(), reason: `Magu ${magu} charges for reads: ${unit} wei for ${what} now, above this client's maximum ${max} (--max-read-price)` });
        }
        const voucher = { magu, member, fragments: state.fragments + 1n, reads: extendReads(state.reads, [fragment]), total: state.total + unit, maxUnitPrice: max };
        const signature = await signReadVoucher(this.init.sign, this.domain, voucher);
        const answer = (await searchRequest(this.c.p2p.libp2p, peer, {
          op: "read-pay",
          magu: magu.toString(),
          voucher: { payer: this.init.account, fragments: voucher.fragments.toString(), reads: voucher.reads, total: voucher.total.toString(), maxUnitPrice: max.toString(), served: [fragment], signature },
        }, { what: "read-pay" })) as { ok?: boolean; credit?: string; error?: string };
        if (answer?.ok === true) {
          state.fragments = voucher.fragments;
          state.reads = voucher.reads;
          state.total = voucher.total;
          state.credits.set(fragment, (state.credits.get(fragment) ?? 0) + 1);
          const sum = this.readsPaid.get(magu) ?? { fragments: 0n, wei: 0n };
          this.readsPaid.set(magu, { fragments: sum.fragments + 1n, wei: sum.wei + unit });
          return;
        }
        // The price moved (demand) or the member's count differs: ask where we stand, once.
        if (attempt === 0 && /must be at least|the next is|must extend|above the reader's maximum/.test(answer?.error ?? "")) {
          await this.readMeter(peer, magu, key);
          continue;
        }
        throw new ReadPaymentRefusedError({ magu, peer: peer.toString(), reason: answer?.error ?? "malformed answer" });
      }
    });
    state.lock = run.catch(() => undefined);
    await run;
  }

  /** Asks `peer` where this account stands (`op: "read-meter"`) and records it. */
  private async readMeter(peer: PeerId, magu: bigint, key: string): Promise<void> {
    const m = (await searchRequest(this.c.p2p.libp2p, peer, { op: "read-meter", magu: magu.toString(), payer: this.init.account }, { what: "read-meter" })) as {
      ok?: boolean;
      fragments?: string;
      reads?: string;
      total?: string;
      error?: string;
    };
    if (m?.ok !== true) throw new ReadPaymentRefusedError({ magu, peer: peer.toString(), reason: m?.error ?? "malformed answer" });
    const st = this.readState.get(key)!;
    st.fragments = BigInt(m.fragments ?? "0");
    st.reads = (m.reads ?? NO_READS) as Hex;
    st.total = BigInt(m.total ?? "0");
    // Which fragments a previous process prepaid here is not known: they are paid again if read.
    st.credits.clear();
  }

  /** Presents to every peer given, in parallel; a peer that cannot be reached is left to the read that follows. */
  async ensureAll(peers: readonly PeerId[], magu: bigint): Promise<void> {
    const results = await Promise.allSettled(peers.map((p) => this.ensure(p, magu)));
    const refused = results.find((r): r is PromiseRejectedResult => r.status === "rejected" && r.reason instanceof AccessRefusedError);
    if (refused !== undefined) throw refused.reason;
  }

  private isPublic(magu: bigint): Promise<boolean> {
    const hit = this.visibility.get(magu);
    if (hit !== undefined && Date.now() - hit.at < VISIBILITY_TTL_MS) return hit.value;
    const value = this.c.contracts.maguAccess.read.isPublic([magu]);
    this.visibility.set(magu, { at: Date.now(), value });
    value.catch(() => this.visibility.delete(magu));
    return value;
  }

  private credential(magu: bigint): Promise<Credential | undefined> {
    let c = this.credentials.get(magu);
    if (c === undefined) {
      c = this.makeCredential(magu);
      this.credentials.set(magu, c);
      c.catch(() => this.credentials.delete(magu));
    }
    return c;
  }

  private async makeCredential(magu: bigint): Promise<Credential | undefined> {
    // Expiries are chain time: MaguAccess checks them against block.timestamp.
    const now = await this.chainNow();
    const given = this.tokens.get(magu);
    if (given !== undefined) {
      const account = granteeAccount(given.grantee);
      if (account === undefined) return { grant: given, until: Number(given.expires) };
      if (account.toLowerCase() !== this.init.account.toLowerCase()) {
        throw new Error(`the grant for Magu ${magu} names account ${account}; this client is ${this.init.account}: run it with that account's key`);
      }
      const expires = BigInt(Math.min(Number(given.expires), now + SESSION_GRANT_S));
      const signature = await signHolder(this.init.sign, this.domain, { magu, peer: peerGrantee(this.c.p2p.peerId.toString()), expires });
      return { grant: given, holder: { expires, signature }, until: Number(expires) };
    }
    const info = await this.c.contracts.maguRegistry.read.maguInfo([magu]);
    if (info.owner.toLowerCase() !== this.init.account.toLowerCase()) return undefined;
    const grantee = peerGrantee(this.c.p2p.peerId.toString());
    const nonce = await this.c.contracts.maguAccess.read.grantNonce([magu, grantee]);
    const expires = BigInt(now + SESSION_GRANT_S);
    const grant = await signGrant(this.init.sign, this.domain, { magu, grantee, rights: RIGHTS_ALL, expires, nonce: BigInt(nonce) });
    return { grant, until: Number(expires) };
  }
}

/** The access of a client whose account signs with `clients` (its own Magus) and that holds `grants`. */
export function createClientAccess(
  init: { deployment: ClientAccessInit["deployment"]; grants?: readonly string[]; maxReadPrice?: bigint },
  clients: Pick<SigningChainClients, "account" | "walletClient" | "publicClient">,
  components: Omit<ClientAccessComponents, "chainNow">,
): ClientAccess {
  return new ClientAccess(
    {
      deployment: init.deployment,
      account: clients.account.address,
      sign: (typed) => clients.walletClient.signTypedData({ account: clients.account, ...typed } as never),
      grants: init.grants,
      maxReadPrice: init.maxReadPrice,
    },
    { ...components, chainNow: () => chainTime(clients.publicClient) },
  );
}

interface Credential {
  grant: SignedGrant;
  holder?: { expires: bigint; signature: Hex };
  /** When the credential lapses, chain time (unix seconds). */
  until: number;
}
