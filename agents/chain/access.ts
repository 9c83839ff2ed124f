/**
 * Who may read and search a private Magu, as EIP-712 typed data in MaguAccess's domain
 * ("MuriData Access", version "1", the chain id, the MaguAccess address):
 * - `Grant`: the Magu's owner lets `grantee` read (fragments, documents) and/or search it until
 *   `expires` (unix seconds). `grantee` is keccak256 of a libp2p peer id's bytes, or an account
 *   left-padded to 32 bytes. `nonce` is MaguAccess `grantNonce(magu, grantee)` when signed; the
 *   owner's `revoke(magu, grantee)` raises it, so every grant to that grantee stops being valid.
 *   MaguAccess `checkGrant` says whether a grant is valid now (members ask it).
 * - `Holder`: an account that was granted access names the libp2p peer that uses it (signed by the
 *   account, short-lived), so a member can tie the connection's peer to the grant's account.
 * - `Voucher`: a payer owes `member` a cumulative `total` for `searches` searches of `magu`;
 *   MaguAccess `settle` pays the part not paid yet from the payer's deposit.
 * - `ReadVoucher`: a reader owes `member` a cumulative `total` for `fragments` fragments of `magu`
 *   served, at most `maxUnitPrice` per fragment, and `reads` is the hash chain of which ones
 *   (`extendReads`; a document is `NO_FRAGMENT`); MaguAccess `settleRead` pays it the same way and
 *   takes the fragments served since the last settlement, which feed each fragment's demand.
 *
 * A grant travels as one string (`encodeGrantToken`), so a user can paste it.
 */
import { concat, getAddress, hexToBytes, isAddress, isHex, keccak256, numberToHex, pad, recoverTypedDataAddress, type Address, type Hex, type PublicClient, type TypedDataDomain } from "viem";
import { peerIdFromString } from "@libp2p/peer-id";

/** The chain's time, unix seconds: the latest block's timestamp (grants expire by it, not by a local clock). */
export async function chainTime(publicClient: Pick<PublicClient, "getBlock">): Promise<number> {
  return Number((await publicClient.getBlock({ blockTag: "latest" })).timestamp);
}

/**
 * `read` at most once per `maxAgeMs` (the promise is shared; a failed read is not kept), for the
 * chain clock the access code checks expiries against on every request.
 */
export function readAtMostEvery<T>(maxAgeMs: number, read: () => Promise<T>, now: () => number = Date.now): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (last !== undefined && now() - last.at < maxAgeMs) return last.value;
    const entry = { at: now(), value: read() };
    entry.value.catch(() => {
      if (last === entry) last = undefined;
    });
    last = entry;
    return entry.value;
  };
}

/** MaguAccess rights bits. */
export const RIGHT_READ = 1;
export const RIGHT_SEARCH = 2;
export const RIGHTS_ALL = RIGHT_READ | RIGHT_SEARCH;

/** MaguAccess `GrantStatus`, by its enum value. */
export const GRANT_STATUS = ["valid", "rights out of range", "not signed by the Magu's owner", "revoked", "expired"] as const;

export function accessDomain(chainId: number, maguAccess: Address): TypedDataDomain {
  return { name: "MuriData Access", version: "1", chainId, verifyingContract: maguAccess };
}

export const GRANT_TYPES = {
  Grant: [
    { name: "magu", type: "uint256" },
    { name: "grantee", type: "bytes32" },
    { name: "rights", type: "uint8" },
    { name: "expires", type: "uint64" },
    { name: "nonce", type: "uint64" },
  ],
} as const;

export const HOLDER_TYPES = {
  Holder: [
    { name: "magu", type: "uint256" },
    { name: "peer", type: "bytes32" },
    { name: "expires", type: "uint64" },
  ],
} as const;

export const VOUCHER_TYPES = {
  Voucher: [
    { name: "magu", type: "uint256" },
    { name: "member", type: "address" },
    { name: "searches", type: "uint64" },
    { name: "total", type: "uint256" },
  ],
} as const;

export const READ_VOUCHER_TYPES = {
  ReadVoucher: [
    { name: "magu", type: "uint256" },
    { name: "member", type: "address" },
    { name: "fragments", type: "uint64" },
    { name: "reads", type: "bytes32" },
    { name: "total", type: "uint256" },
    { name: "maxUnitPrice", type: "uint256" },
  ],
} as const;

export interface Grant {
  magu: bigint;
  grantee: Hex;
  rights: number;
  expires: bigint;
  nonce: bigint;
}

export interface SignedGrant extends Grant {
  signature: Hex;
}

/** An account's statement that `peer` (a grantee hash of a peer id) acts for it on `magu`. */
export interface Holder {
  magu: bigint;
  peer: Hex;
  expires: bigint;
}

export interface Voucher {
  magu: bigint;
  member: Address;
  searches: bigint;
  total: bigint;
}

export interface ReadVoucher {
  magu: bigint;
  member: Address;
  fragments: bigint;
  /** Hash chain of the fragments read, in order (`extendReads`). */
  reads: Hex;
  total: bigint;
  maxUnitPrice: bigint;
}

/** What a read of a document (a manifest, an index) is listed as in a read voucher: MaguAccess NO_FRAGMENT. */
export const NO_FRAGMENT = 0xffff_ffff;

/** The reads hash chain before any read. */
export const NO_READS: Hex = `0x${"00".repeat(32)}`;

/** The reads hash chain `reads` extended by `fragments`: h' = keccak256(h ‖ uint32 fragment), as MaguAccess checks it. */
export function extendReads(reads: Hex, fragments: readonly number[]): Hex {
  let h = reads;
  for (const f of fragments) {
    if (!Number.isInteger(f) || f < 0 || f > NO_FRAGMENT) throw new RangeError(`a read fragment must be a uint32, got ${f}`);
    h = keccak256(concat([h, numberToHex(f, { size: 4 })]));
  }
  return h;
}

/** Something that signs EIP-712 typed data with an account (a viem wallet client and its account). */
export type TypedSigner = (typed: { domain: TypedDataDomain; types: Record<string, readonly { name: string; type: string }[]>; primaryType: string; message: Record<string, unknown> }) => Promise<Hex>;

/** The grantee of a libp2p peer id (string form). */
export function peerGrantee(peerId: string): Hex {
  return keccak256(peerIdFromString(peerId).toMultihash().bytes);
}

/** The grantee of an account. */
export function accountGrantee(account: Address): Hex {
  return pad(getAddress(account), { size: 32 }).toLowerCase() as Hex;
}

/** The grantee a CLI argument names: an account (0x + 40 hex) or a libp2p peer id. */
export function parseGrantee(value: string): { grantee: Hex; kind: "account" | "peer"; label: string } {
  if (isAddress(value)) return { grantee: accountGrantee(value), kind: "account", label: getAddress(value) };
  try {
    return { grantee: peerGrantee(value), kind: "peer", label: value };
  } catch {
    throw new Error(`--to must be an account (0x and 40 hex digits) or a libp2p peer id (12D3Koo...), got ${JSON.stringify(value)}`);
  }
}

/** The account a grantee names, or undefined when it names a peer (its first 12 bytes are zero). */
export function granteeAccount(grantee: Hex): Address | undefined {
  const bytes = hexToBytes(grantee);
  if (bytes.length !== 32 || bytes.subarray(0, 12).some((b) => b !== 0)) return undefined;
  return getAddress(`0x${Buffer.from(bytes.subarray(12)).toString("hex")}`);
}

export async function signGrant(sign: TypedSigner, domain: TypedDataDomain, grant: Grant): Promise<SignedGrant> {
  const signature = await sign({ domain, types: GRANT_TYPES, primaryType: "Grant", message: { ...grant } });
  return { ...grant, signature };
}

export async function signHolder(sign: TypedSigner, domain: TypedDataDomain, holder: Holder): Promise<Hex> {
  return sign({ domain, types: HOLDER_TYPES, primaryType: "Holder", message: { ...holder } });
}

export async function signVoucher(sign: TypedSigner, domain: TypedDataDomain, voucher: Voucher): Promise<Hex> {
  return sign({ domain, types: VOUCHER_TYPES, primaryType: "Voucher", message: { ...voucher } });
}

export async function signReadVoucher(sign: TypedSigner, domain: TypedDataDomain, voucher: ReadVoucher): Promise<Hex> {
  return sign({ domain, types: READ_VOUCHER_TYPES, primaryType: "ReadVoucher", message: { ...voucher } });
}

export function recoverReadVoucher(domain: TypedDataDomain, voucher: ReadVoucher, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ domain, types: READ_VOUCHER_TYPES, primaryType: "ReadVoucher", message: voucher, signature });
}

export function recoverHolder(domain: TypedDataDomain, holder: Holder, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ domain, types: HOLDER_TYPES, primaryType: "Holder", message: holder, signature });
}

export function recoverVoucher(domain: TypedDataDomain, voucher: Voucher, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ domain, types: VOUCHER_TYPES, primaryType: "Voucher", message: voucher, signature });
}

const TOKEN_PREFIX = "muri-grant-";

/** A grant as one pasteable string: the chain and MaguAccess it is for, then the signed grant. */
export function encodeGrantToken(chainId: number, maguAccess: Address, g: SignedGrant): string {
  const body = {
    v: 1,
    chainId,
    contract: maguAccess,
    magu: g.magu.toString(),
    grantee: g.grantee,
    rights: g.rights,
    expires: g.expires.toString(),
    nonce: g.nonce.toString(),
    signature: g.signature,
  };
  return TOKEN_PREFIX + Buffer.from(JSON.stringify(body)).toString("base64url");
}

/** Parses a grant token; the error names what is wrong. */
export function decodeGrantToken(token: string): { chainId: number; contract: Address; grant: SignedGrant } {
  const t = token.trim();
  if (!t.startsWith(TOKEN_PREFIX)) throw new Error(`a grant token starts with "${TOKEN_PREFIX}" (what \`muri magu grant\` prints)`);
  let b: Record<string, unknown>;
  try {
    // base64url read as base64: the browser's Buffer (the light client's) knows no "base64url".
    const b64 = t.slice(TOKEN_PREFIX.length).replace(/-/g, "+").replace(/_/g, "/");
    b = JSON.parse(Buffer.from(b64.padEnd(Math.ceil(b64.length / 4) * 4, "="), "base64").toString("utf8")) as Record<string, unknown>;
  } catch {
    throw new Error("the grant token is damaged (not base64url JSON): copy it again whole");
  }
  const dec = (field: string): bigint => {
    const v = b[field];
    if (typeof v !== "string" || !/^[0-9]{1,78}$/.test(v)) throw new Error(`grant token: ${field} must be a decimal string`);
    return BigInt(v);
  };
  if (b.v !== 1) throw new Error(`grant token version ${JSON.stringify(b.v)} is not supported (expected 1)`);
  if (!Number.isSafeInteger(b.chainId)) throw new Error("grant token: chainId must be an integer");
  if (typeof b.contract !== "string" || !isAddress(b.contract)) throw new Error("grant token: contract must be an address");
  if (typeof b.grantee !== "string" || !isHex(b.grantee) || b.grantee.length !== 66) throw new Error("grant token: grantee must be 32 bytes of hex");
  if (!Number.isInteger(b.rights) || (b.rights as number) < 1 || (b.rights as number) > RIGHTS_ALL) throw new Error("grant token: rights must be 1 (read), 2 (search) or 3");
  if (typeof b.signature !== "string" || !isHex(b.signature)) throw new Error("grant token: signature must be hex");
  return {
    chainId: b.chainId as number,
    contract: getAddress(b.contract),
    grant: { magu: dec("magu"), grantee: b.grantee as Hex, rights: b.rights as number, expires: dec("expires"), nonce: dec("nonce"), signature: b.signature as Hex },
  };
}

/** Rights as words ("read+search"). */
export function rightsLabel(rights: number): string {
  return [rights & RIGHT_READ ? "read" : "", rights & RIGHT_SEARCH ? "search" : ""].filter(Boolean).join("+") || "none";
}

/** Parses `--rights` ("read", "search", "read,search", "all"). */
export function parseRights(value: string): number {
  let rights = 0;
  for (const word of value.split(/[,+ ]+/).filter(Boolean)) {
    if (word === "read") rights |= RIGHT_READ;
    else if (word === "search") rights |= RIGHT_SEARCH;
    else if (word === "all") rights |= RIGHTS_ALL;
    else throw new Error(`--rights: unknown right ${JSON.stringify(word)} (use read, search, or read,search)`);
  }
  if (rights === 0) throw new Error("--rights must name read, search or both");
  return rights;
}
