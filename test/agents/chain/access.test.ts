/**
 * chain/access.ts without a chain: grantees, rights, grant tokens and the typed data signatures
 * (checked against MaguAccess's own digests in test/solidity/MaguAccess.t.sol and, end to end, in
 * test/agents/roles/e2e-access.test.ts).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { keccak256, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  accessDomain,
  accountGrantee,
  decodeGrantToken,
  encodeGrantToken,
  granteeAccount,
  parseGrantee,
  parseRights,
  peerGrantee,
  recoverHolder,
  recoverReadVoucher,
  recoverVoucher,
  rightsLabel,
  signGrant,
  signHolder,
  signReadVoucher,
  extendReads,
  NO_FRAGMENT,
  NO_READS,
  signVoucher,
  type TypedSigner,
} from "../../../agents/chain/access.js";

const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" as Hex;
const account = privateKeyToAccount(KEY);
const sign: TypedSigner = (typed) => account.signTypedData(typed as never);
const domain = accessDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");

describe("chain/access", () => {
  test("a peer's grantee is keccak256 of its peer id bytes; an account's is the address padded, and the two are told apart", async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair("Ed25519"));
    assert.equal(peerGrantee(peer.toString()), keccak256(peer.toMultihash().bytes));
    const g = accountGrantee(account.address);
    assert.equal(g.length, 66);
    assert.equal(granteeAccount(g), account.address);
    assert.equal(granteeAccount(peerGrantee(peer.toString())), undefined);
    assert.deepEqual(parseGrantee(account.address).kind, "account");
    assert.deepEqual(parseGrantee(peer.toString()).kind, "peer");
    assert.throws(() => parseGrantee("not-a-peer"), /--to must be an account .* or a libp2p peer id/);
  });

  test("rights parse from words and print back", () => {
    assert.equal(parseRights("read"), 1);
    assert.equal(parseRights("search"), 2);
    assert.equal(parseRights("read,search"), 3);
    assert.equal(parseRights("all"), 3);
    assert.equal(rightsLabel(3), "read+search");
    assert.throws(() => parseRights("write"), /unknown right "write"/);
    assert.throws(() => parseRights(""), /must name read, search or both/);
  });

  test("a grant token round-trips, and a damaged one fails naming the problem", async () => {
    const grant = await signGrant(sign, domain, { magu: 7n, grantee: accountGrantee(account.address), rights: 3, expires: 2_000_000_000n, nonce: 2n });
    const token = encodeGrantToken(31337, domain.verifyingContract!, grant);
    const back = decodeGrantToken(`  ${token}\n`);
    assert.equal(back.chainId, 31337);
    assert.deepEqual(back.grant, grant);
    assert.throws(() => decodeGrantToken("grant-xyz"), /starts with "muri-grant-"/);
    assert.throws(() => decodeGrantToken("muri-grant-!!!"), /damaged/);
    const body = JSON.parse(Buffer.from(token.slice("muri-grant-".length), "base64url").toString()) as Record<string, unknown>;
    const forged = (patch: Record<string, unknown>) => `muri-grant-${Buffer.from(JSON.stringify({ ...body, ...patch })).toString("base64url")}`;
    assert.throws(() => decodeGrantToken(forged({ rights: 4 })), /rights must be 1 \(read\), 2 \(search\) or 3/);
    assert.throws(() => decodeGrantToken(forged({ magu: "-1" })), /magu must be a decimal string/);
    assert.throws(() => decodeGrantToken(forged({ v: 2 })), /version 2 is not supported/);
  });

  test("the reads hash chain is keccak256(previous || uint32 fragment), as MaguAccess checks it", () => {
    // Shared vector with test/solidity/MaguAccess.t.sol's _chain: keccak256(abi.encodePacked(bytes32 0, uint32 0)).
    assert.equal(extendReads(NO_READS, [0]), keccak256(`0x${"00".repeat(36)}`));
    assert.equal(extendReads(extendReads(NO_READS, [1]), [2]), extendReads(NO_READS, [1, 2]), "extends step by step");
    assert.notEqual(extendReads(NO_READS, [1, 2]), extendReads(NO_READS, [2, 1]), "order counts");
    assert.throws(() => extendReads(NO_READS, [2 ** 32]), /a read fragment must be a uint32/);
  });

  test("holder statements, search and read vouchers recover to their signer, and to someone else once changed", async () => {
    const holder = { magu: 7n, peer: keccak256("0x01"), expires: 2_000_000_000n };
    const hs = await signHolder(sign, domain, holder);
    assert.equal(await recoverHolder(domain, holder, hs), account.address);
    assert.notEqual(await recoverHolder(domain, { ...holder, magu: 8n }, hs), account.address);
    const voucher = { magu: 7n, member: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" as const, searches: 3n, total: 30n };
    const vs = await signVoucher(sign, domain, voucher);
    assert.equal(await recoverVoucher(domain, voucher, vs), account.address);
    assert.notEqual(await recoverVoucher(domain, { ...voucher, total: 31n }, vs), account.address);
    const read = { magu: 7n, member: voucher.member, fragments: 3n, reads: extendReads(NO_READS, [0, 4, NO_FRAGMENT]), total: 30n, maxUnitPrice: 10n };
    const rs = await signReadVoucher(sign, domain, read);
    assert.equal(await recoverReadVoucher(domain, read, rs), account.address);
    assert.notEqual(await recoverReadVoucher(domain, { ...read, maxUnitPrice: 11n }, rs), account.address, "the reader's max is signed");
    assert.notEqual(await recoverReadVoucher(domain, { ...read, reads: extendReads(NO_READS, [0, 5, NO_FRAGMENT]) }, rs), account.address, "which fragments were read is signed");
    assert.notEqual(await recoverVoucher(domain, { magu: 7n, member: voucher.member, searches: 3n, total: 30n }, rs), account.address, "a read voucher is no search voucher");
  });
});
