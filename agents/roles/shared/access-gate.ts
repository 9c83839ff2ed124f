/**
 * Who a node or validator serves a Magu's data to (docs/ARCHITECTURE.md, "Who may read and search
 * a Magu"). A Magu is private unless its owner made it public (MaguAccess `setPublic`). Fragments,
 * documents, the vector index document and searches of a private Magu go only to:
 * - its members (their peer ids as NodeRegistry holds them): they repair from each other;
 * - active validators (they audit fragments and check search answers);
 * - a peer that presented a valid grant (`op: "access"` on `/muri/search/3.0.0`): an EIP-712
 *   `Grant` signed by the Magu's owner, naming this peer or an account the peer holds (with the
 *   account's `Holder` statement), with the right asked for, not expired, not revoked.
 * Anyone else is refused with an `AccessDeniedError` naming what is missing.
 *
 * A presented grant is checked on chain (MaguAccess `checkGrant`: owner's signature, nonce,
 * expiry) and kept in memory; it is checked again after `grantRecheckMs`, and dropped at once when
 * the node's follower sees `GrantRevoked` for its grantee (`revoked`). Rosters (members,
 * validators) and visibility are read from the chain and cached; a peer that is not on a roster
 * makes it re-read at most every `rosterRefreshMs`, and the node's follower drops a Magu's roster
 * when its members change, so a newly drafted member is served.
 */
import type { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { peerIdFromMultihash } from "@libp2p/peer-id";
import type { Address, Hex, TypedDataDomain } from "viem";
import {
  GRANT_STATUS,
  accessDomain,
  chainTime,
  RIGHTS_ALL,
  RIGHT_READ,
  RIGHT_SEARCH,
  granteeAccount,
  peerGrantee,
  readAtMostEvery,
  recoverHolder,
  rightsLabel,
  type Deployment,
  type SignedGrant,
  type MuriContracts,
  type MuriPublicClient,
} from "../../chain/index.js";
import { silentLogger, type Logger } from "../../store/logger.js";

/** NodeRegistry's role bit of a validator. */
const ROLE_VALIDATOR = 2;
/** Peers whose grants are remembered at most (the least recently presented are forgotten first). */
const MAX_GRANT_PEERS = 10_000;

export class AccessDeniedError extends Error {
  static readonly code = "ERR_ACCESS_DENIED";
  readonly code = AccessDeniedError.code;
  constructor(
    readonly context: { magu: bigint; peer: string; need: string; reason: string },
  ) {
    super(`Magu ${context.magu} is private: ${context.reason}`);
    this.name = "AccessDeniedError";
  }
}

/** A grant presentation that is not valid: the message says why. */
export class InvalidGrantError extends Error {
  static readonly code = "ERR_INVALID_GRANT";
  readonly code = InvalidGrantError.code;
  constructor(readonly context: { magu: bigint; peer: string; reason: string }) {
    super(`grant for Magu ${context.magu} refused: ${context.reason}`);
    this.name = "InvalidGrantError";
  }
}

export interface AccessGateInit {
  /** MaguAccess's EIP-712 domain (Holder statements are checked against it). */
  domain: TypedDataDomain;
  /** How long a checked grant is trusted before it is checked on chain again (default 15 s). */
  grantRecheckMs?: number;
  /** How long rosters and visibility are cached (default 30 s). */
  rosterTtlMs?: number;
  /** Shortest time between two reads of a Magu's members forced by an unknown peer (default 500 ms). */
  rosterRefreshMs?: number;
  /**
   * Shortest time between two reads of the validators forced by an unknown peer (default 5 s): the
   * read walks every registered node, so a stranger's requests must not repeat it often.
   */
  validatorRefreshMs?: number;
  /** Clock, ms (tests). */
  now?: () => number;
}

export interface AccessGateComponents {
  contracts: MuriContracts<MuriPublicClient>;
  /** The Magu a stored CID belongs to (fragments and documents); undefined: not a Magu's data. */
  maguOf(cid: CID): bigint | undefined | Promise<bigint | undefined>;
  /**
   * The chain's time, unix seconds (the latest block's timestamp): expiries are chain time, as
   * MaguAccess checks them. Default: this machine's clock.
   */
  chainNow?: () => Promise<number>;
  logger?: Logger;
}

interface Kept {
  grant: SignedGrant;
  /** Chain time (unix seconds) the grant, or its holder statement, stops being valid. */
  until: number;
  /** When it was last checked on chain, by this machine's clock (ms). */
  checkedAt: number;
}

interface Cached<T> {
  value: T;
  at: number;
}

/** The answer to `op: "access"`. */
export interface AccessAnswer {
  ok: true;
  magu: string;
  rights: number;
  /** Chain time (unix seconds) the grant lapses. */
  expires: string;
  /** Milliseconds it has left, by the chain's clock now (a client's clock may differ from the chain's). */
  ttlMs: number;
}

export interface AccessGate {
  /** Throws AccessDeniedError unless `peer` may use `need` (any of its bits) on `magu`. */
  check(peer: string, magu: bigint, need: number): Promise<void>;
  /** Whether `peer` is a member of `magu` or a validator (they read without grants or payment). */
  insider(peer: string, magu: bigint): Promise<boolean>;
  /** The fragment protocol's serve policy: undefined serves `cid` to `peer`, else the reason. */
  serveReason(peer: string, cid: CID): Promise<string | undefined>;
  /** Handles `op: "access"` (undefined: another op). */
  handleRequest(request: unknown, peer: string): Promise<AccessAnswer | undefined>;
  /** GrantRevoked seen: drop the grants of `grantee` on `magu` at once. */
  revoked(magu: bigint, grantee: Hex): void;
  /** VisibilitySet seen: read the Magu's visibility again. */
  visibilityChanged(magu: bigint): void;
  /** MemberJoined or MemberLeft seen: read the Magu's members again at the next check. */
  membersChanged(magu: bigint): void;
  /** What the gate did since it started (for `/metrics` and tests). */
  stats(): { granted: number; refused: number; grants: number };
}

export function createAccessGate(init: AccessGateInit, components: AccessGateComponents): AccessGate {
  const log = components.logger ?? silentLogger;
  const { maguRegistry, nodeRegistry, maguAccess } = components.contracts;
  const now = init.now ?? Date.now;
  const recheckMs = init.grantRecheckMs ?? 15_000;
  const ttl = init.rosterTtlMs ?? 30_000;
  const refreshMs = init.rosterRefreshMs ?? 500;
  const validatorRefreshMs = init.validatorRefreshMs ?? 5_000;
  const counts = { granted: 0, refused: 0 };
  /** peer -> Magu -> kept grant. */
  const grants = new Map<string, Map<bigint, Kept>>();
  const publics = new Map<bigint, Cached<Promise<boolean>>>();
  const members = new Map<bigint, Cached<Promise<Set<string>>>>();
  let validators: Cached<Promise<Set<string>>> | undefined;
  const peerOf = new Map<Address, Cached<string | undefined>>();

  /** A cached read: fresh within `maxAge`; `force` re-reads it if the last read is older than `minAge`. */
  const cached = <T>(entry: Cached<Promise<T>> | undefined, read: () => Promise<T>, force: boolean, minAge = refreshMs, maxAge = ttl): Cached<Promise<T>> => {
    const age = entry === undefined ? Infinity : now() - entry.at;
    if (entry !== undefined && age < maxAge && !(force && age >= minAge)) return entry;
    const fresh = { value: read(), at: now() };
    // A failed read is not kept: the next check reads again.
    fresh.value.catch(() => {
      fresh.at = -Infinity;
    });
    return fresh;
  };

  const registeredPeer = async (account: Address): Promise<string | undefined> => {
    const key = account.toLowerCase() as Address;
    const hit = peerOf.get(key);
    if (hit !== undefined && now() - hit.at < ttl) return hit.value;
    const info = await nodeRegistry.read.nodeInfo([account]);
    let peer: string | undefined;
    try {
      peer = info.peerId.length > 2 ? peerIdFromMultihash(Digest.decode(Buffer.from(info.peerId.slice(2), "hex"))).toString() : undefined;
    } catch {
      peer = undefined;
    }
    peerOf.set(key, { value: peer, at: now() });
    return peer;
  };

  const readMembers = async (magu: bigint): Promise<Set<string>> => {
    const info = await maguRegistry.read.maguInfo([magu]);
    const peers = await Promise.all(info.members.filter((a) => !/^0x0{40}$/i.test(a)).map(registeredPeer));
    return new Set(peers.filter((p): p is string => p !== undefined));
  };

  const readValidators = async (): Promise<Set<string>> => {
    const n = await nodeRegistry.read.nodeCount();
    const out = new Set<string>();
    for (let i = 0n; i < n; i++) {
      const account = await nodeRegistry.read.nodeAt([i]);
      if (!(await nodeRegistry.read.isActive([account, ROLE_VALIDATOR]))) continue;
      const peer = await registeredPeer(account);
      if (peer !== undefined) out.add(peer);
    }
    return out;
  };

  const isPublic = async (magu: bigint): Promise<boolean> => {
    const entry = cached(publics.get(magu), () => maguAccess.read.isPublic([magu]), false);
    publics.set(magu, entry);
    return entry.value;
  };

  const onRoster = async (peer: string, magu: bigint): Promise<boolean> => {
    let m = cached(members.get(magu), () => readMembers(magu), false);
    members.set(magu, m);
    if ((await m.value).has(peer)) return true;
    validators = cached(validators, readValidators, false, validatorRefreshMs, Math.max(ttl, validatorRefreshMs));
    if ((await validators.value).has(peer)) return true;
    // Not on either roster as cached: read both again (rate-limited) before refusing.
    m = cached(m, () => readMembers(magu), true);
    members.set(magu, m);
    if ((await m.value).has(peer)) return true;
    validators = cached(validators, readValidators, true, validatorRefreshMs, Math.max(ttl, validatorRefreshMs));
    return (await validators.value).has(peer);
  };

  const readChainTime = components.chainNow ?? (async () => Math.floor(now() / 1000));
  /** The chain's time, read at most once a second (every kept grant is checked against it). */
  const chainNow = readAtMostEvery(1_000, readChainTime, now);

  /**
   * Checks `grant` (and the holder statement for an account grantee) for `peer`; returns when it
   * lapses, in chain seconds.
   */
  const verify = async (peer: string, grant: SignedGrant, holder?: { expires: bigint; signature: Hex }): Promise<number> => {
    const refuse = (reason: string): never => {
      throw new InvalidGrantError({ magu: grant.magu, peer, reason });
    };
    const mine = peerGrantee(peer);
    let until = Number(grant.expires);
    if (grant.grantee.toLowerCase() !== mine) {
      const account = granteeAccount(grant.grantee);
      if (account === undefined) refuse(`it names another peer (grantee ${grant.grantee}), not ${peer}`);
      if (holder === undefined) refuse(`it names account ${account}: present it with that account's holder statement for this peer`);
      const signer = await recoverHolder(init.domain, { magu: grant.magu, peer: mine, expires: holder!.expires }, holder!.signature).catch(() => undefined);
      if (signer === undefined || signer.toLowerCase() !== account!.toLowerCase()) refuse(`the holder statement is not signed by ${account} for peer ${peer}`);
      if (Number(holder!.expires) <= (await chainNow())) refuse("the holder statement expired");
      until = Math.min(until, Number(holder!.expires));
    }
    const status = await maguAccess.read.checkGrant([{ magu: grant.magu, grantee: grant.grantee, rights: grant.rights, expires: grant.expires, nonce: grant.nonce }, grant.signature]);
    if (status !== 0) refuse(GRANT_STATUS[status] ?? `status ${status}`);
    return until;
  };

  const keep = (peer: string, grant: SignedGrant, until: number): void => {
    let byMagu = grants.get(peer);
    if (byMagu === undefined) {
      if (grants.size >= MAX_GRANT_PEERS) grants.delete(grants.keys().next().value!);
      byMagu = new Map();
    } else {
      grants.delete(peer);
    }
    grants.set(peer, byMagu);
    byMagu.set(grant.magu, { grant, until, checkedAt: now() });
  };

  const granted = async (peer: string, magu: bigint, need: number): Promise<string | undefined> => {
    const kept = grants.get(peer)?.get(magu);
    if (kept === undefined) return "this peer is not a member, a validator or the holder of a grant";
    if ((kept.grant.rights & need) === 0) return `its grant gives ${rightsLabel(kept.grant.rights)}, not ${rightsLabel(need)}`;
    if (kept.until <= (await chainNow())) {
      grants.get(peer)?.delete(magu);
      return "its grant expired";
    }
    if (now() - kept.checkedAt >= recheckMs) {
      const status = await maguAccess.read.checkGrant([
        { magu, grantee: kept.grant.grantee, rights: kept.grant.rights, expires: kept.grant.expires, nonce: kept.grant.nonce },
        kept.grant.signature,
      ]);
      if (status !== 0) {
        grants.get(peer)?.delete(magu);
        return `its grant is ${GRANT_STATUS[status] ?? `invalid (status ${status})`}`;
      }
      kept.checkedAt = now();
    }
    return undefined;
  };

  const reasonFor = async (peer: string, magu: bigint, need: number): Promise<string | undefined> => {
    if (await isPublic(magu)) return undefined;
    if (await onRoster(peer, magu)) return undefined;
    return granted(peer, magu, need);
  };

  const gate: AccessGate = {
    async check(peer, magu, need) {
      const reason = await reasonFor(peer, magu, need);
      if (reason === undefined) {
        counts.granted++;
        return;
      }
      counts.refused++;
      throw new AccessDeniedError({
        magu,
        peer,
        need: rightsLabel(need),
        reason: `${reason}; ask its owner for \`muri magu grant ${magu} --to ${peer} --rights ${rightsLabel(need).replace("+", ",")}\``,
      });
    },

    insider: onRoster,

    async serveReason(peer, cid) {
      const magu = await components.maguOf(cid);
      // Not a Magu's data that this node knows of: nothing to give away, but nothing to serve either.
      if (magu === undefined) return undefined;
      try {
        await gate.check(peer, magu, RIGHT_READ);
        return undefined;
      } catch (err) {
        if (err instanceof AccessDeniedError) return err.message;
        throw err;
      }
    },

    async handleRequest(raw, peer) {
      const r = raw as { op?: unknown; magu?: unknown; grant?: unknown; holder?: unknown } | undefined;
      if (r?.op !== "access") return undefined;
      const grant = parseGrant(r.magu, r.grant);
      const holder = r.holder === undefined ? undefined : parseHolder(r.holder);
      const until = await verify(peer, grant, holder);
      const ttlMs = Math.max(0, (until - (await chainNow())) * 1000);
      keep(peer, grant, until);
      log.info("grant accepted", { magu: grant.magu.toString(), peer, rights: rightsLabel(grant.rights), ttlS: Math.round(ttlMs / 1000) });
      return { ok: true, magu: grant.magu.toString(), rights: grant.rights, expires: String(until), ttlMs };
    },

    revoked(magu, grantee) {
      const g = grantee.toLowerCase();
      for (const byMagu of grants.values()) {
        const kept = byMagu.get(magu);
        if (kept !== undefined && kept.grant.grantee.toLowerCase() === g) byMagu.delete(magu);
      }
    },

    visibilityChanged(magu) {
      publics.delete(magu);
    },

    membersChanged(magu) {
      members.delete(magu);
    },

    stats() {
      let n = 0;
      for (const byMagu of grants.values()) n += byMagu.size;
      return { ...counts, grants: n };
    },
  };
  return gate;
}

/** The gate of an agent (node or validator) on `deployment`, for the data its magu-sync keeps. */
export function createAgentAccessGate(
  deployment: Pick<Deployment, "chainId" | "contracts">,
  components: Omit<AccessGateComponents, "chainNow"> & { publicClient: Pick<MuriPublicClient, "getBlock"> },
): AccessGate {
  const { publicClient, ...rest } = components;
  return createAccessGate({ domain: accessDomain(deployment.chainId, deployment.contracts.maguAccess) }, { ...rest, chainNow: () => chainTime(publicClient) });
}

/** Parses the `grant` of an access request; throws naming the field. */
function parseGrant(magu: unknown, raw: unknown): SignedGrant {
  const g = raw as Record<string, unknown> | undefined;
  const dec = (v: unknown, field: string): bigint => {
    if (typeof v !== "string" || !/^[0-9]{1,78}$/.test(v)) throw new Error(`${field} must be a decimal string`);
    return BigInt(v);
  };
  if (typeof g !== "object" || g === null) throw new Error("grant must be an object (the signed grant)");
  if (typeof g.grantee !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(g.grantee)) throw new Error("grant.grantee must be 32 bytes of hex");
  if (!Number.isInteger(g.rights) || (g.rights as number) < 1 || (g.rights as number) > RIGHTS_ALL) throw new Error("grant.rights must be 1, 2 or 3");
  if (typeof g.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(g.signature)) throw new Error("grant.signature must be a 65-byte signature");
  return {
    magu: dec(magu, "magu"),
    grantee: g.grantee as Hex,
    rights: g.rights as number,
    expires: dec(g.expires, "grant.expires"),
    nonce: dec(g.nonce, "grant.nonce"),
    signature: g.signature as Hex,
  };
}

function parseHolder(raw: unknown): { expires: bigint; signature: Hex } {
  const h = raw as Record<string, unknown> | undefined;
  if (typeof h !== "object" || h === null) throw new Error("holder must be an object");
  if (typeof h.expires !== "string" || !/^[0-9]{1,20}$/.test(h.expires)) throw new Error("holder.expires must be a decimal string");
  if (typeof h.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(h.signature)) throw new Error("holder.signature must be a 65-byte signature");
  return { expires: BigInt(h.expires), signature: h.signature as Hex };
}

/** The rights a `/muri/search/3.0.0` request needs, or undefined when it is not about one Magu's data. */
export function rightsFor(request: unknown): { magu: bigint; need: number } | undefined {
  const r = request as { op?: unknown; magu?: unknown } | undefined;
  if (typeof r?.magu !== "string" || !/^[1-9][0-9]{0,77}$/.test(r.magu)) return undefined;
  // `prove` gives only the records of hits this node returned to the same peer (vector-service.ts).
  if (r.op === "search" || r.op === "prove") return { magu: BigInt(r.magu), need: RIGHT_SEARCH };
  if (r.op === "manifest") return { magu: BigInt(r.magu), need: RIGHT_READ | RIGHT_SEARCH };
  return undefined;
}
