/**
 * The signed messages of a batch's delivery (docs/ARCHITECTURE.md, "Deliver, acknowledge, commit"),
 * as EIP-712 typed data in MaguRegistry's domain ("MuriData", version "1", the chain id, the
 * MaguRegistry address):
 * - `Proposal`: the Magu's owner asks the members to take a batch before it is committed (root and
 *   count it will commit, the CID of the batch's index document). A member takes pending data only
 *   under a proposal its owner signed.
 * - `Open`: the owner lets one libp2p peer (`pusher`, its peer id bytes) push the batch's fragments
 *   before their root is known (the client pushes while it encodes); a member keeps at most the
 *   batch's new fragment count of them, and only those the later proposal assigns it.
 * - `Ack`: a member holds and verified everything placement gives it up to `fragmentCount`; the
 *   commit carries these, and MaguRegistry checks them (`ackDigest`).
 */
import { recoverTypedDataAddress, type Address, type Hex, type TypedDataDomain } from "viem";

/** The EIP-712 domain of MaguRegistry on `chainId`. */
export function batchDomain(chainId: number, maguRegistry: Address): TypedDataDomain {
  return { name: "MuriData", version: "1", chainId, verifyingContract: maguRegistry };
}

export const ACK_TYPES = {
  Ack: [
    { name: "magu", type: "uint256" },
    { name: "batch", type: "uint32" },
    { name: "root", type: "bytes32" },
    { name: "fragmentCount", type: "uint32" },
    { name: "member", type: "address" },
  ],
} as const;

export const PROPOSAL_TYPES = {
  Proposal: [
    { name: "magu", type: "uint256" },
    { name: "batch", type: "uint32" },
    { name: "root", type: "bytes32" },
    { name: "fragmentCount", type: "uint32" },
    { name: "indexCid", type: "bytes" },
  ],
} as const;

export const OPEN_TYPES = {
  Open: [
    { name: "magu", type: "uint256" },
    { name: "batch", type: "uint32" },
    { name: "fragmentCount", type: "uint32" },
    { name: "pusher", type: "bytes" },
  ],
} as const;

/** What an owner opens: `fragmentCount` is the Magu's count after the batch; `pusher` the peer id bytes, hex. */
export interface BatchOpen {
  magu: bigint;
  batch: number;
  fragmentCount: number;
  pusher: Hex;
}

/** What a member acknowledges. */
export interface BatchAck {
  magu: bigint;
  batch: number;
  root: Hex;
  fragmentCount: number;
  member: Address;
}

/** What an owner proposes. `indexCid` is the index document's CID bytes, hex. */
export interface BatchProposal {
  magu: bigint;
  batch: number;
  root: Hex;
  fragmentCount: number;
  indexCid: Hex;
}

/** The typed data of an acknowledgement (for `signTypedData`). */
export function ackTypedData(domain: TypedDataDomain, ack: BatchAck) {
  return { domain, types: ACK_TYPES, primaryType: "Ack" as const, message: ack };
}

/** The typed data of a proposal (for `signTypedData`). */
export function proposalTypedData(domain: TypedDataDomain, proposal: BatchProposal) {
  return { domain, types: PROPOSAL_TYPES, primaryType: "Proposal" as const, message: proposal };
}

/** The typed data of an opening (for `signTypedData`). */
export function openTypedData(domain: TypedDataDomain, open: BatchOpen) {
  return { domain, types: OPEN_TYPES, primaryType: "Open" as const, message: open };
}

/** The address that signed `signature` over `open` (throws on a malformed signature). */
export function openSigner(domain: TypedDataDomain, open: BatchOpen, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ ...openTypedData(domain, open), signature });
}

/** The address that signed `signature` over `proposal` (throws on a malformed signature). */
export function proposalSigner(domain: TypedDataDomain, proposal: BatchProposal, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ ...proposalTypedData(domain, proposal), signature });
}

/** The address that signed `signature` over `ack` (throws on a malformed signature). */
export function ackSigner(domain: TypedDataDomain, ack: BatchAck, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({ ...ackTypedData(domain, ack), signature });
}
