// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IMaguRegistry} from "./IMaguRegistry.sol";
import {MaguId} from "../types/MaguId.sol";

/// @title IMaguAccess
/// @notice Who may read and search a Magu, and how its members are paid for off-chain searches.
///
/// A Magu is private by default: its members serve fragments, index and searches only to peers
/// holding a grant, an EIP-712 `Grant` the Magu's owner signed off-chain (members check it with
/// `checkGrant`). The owner may make the Magu public, and revoke every grant given to one grantee
/// by bumping that grantee's nonce.
///
/// Off-chain searches are paid from deposits: a payer deposits per Magu, and after each search
/// gives the member that answered an EIP-712 `Voucher`, "I owe `member` a cumulative `total` for
/// `searches` searches". The member keeps only the latest voucher and settles it whenever it likes:
/// one transaction pays all the searches since the last one, and a replayed or older voucher pays
/// nothing. A payer leaves with `requestWithdraw`, then `withdraw` after `withdrawDelayBlocks`,
/// which gives members the time to settle what they are owed.
///
/// Reads are paid the same way when the owner sets a read price (`setReadPrice`): the reader signs
/// a cumulative `ReadVoucher` per member, "I owe `member` `total` for `fragments` fragments served,
/// at most `maxUnitPrice` each, and `reads` is the hash chain of which fragments they were", from
/// the same deposit, and the member redeems it with `settleRead`, listing the fragments served
/// since its last settlement. The price a member asks for a fragment is `readUnitPrice(magu,
/// fragment, member)`: the base price times that fragment's multiplier, at most
/// `MAX_READ_MULTIPLIER_BPS` (2x), which grows with the fragment's rarity (vacant slots among the
/// holders of its placement group: its stripe in a blob Magu, its replicas in a vector Magu) and
/// with its demand (tokens recently paid to the group's *other* holders for reads of the group,
/// halving every `DEMAND_HALF_LIFE_BLOCKS`). Nothing is minted for a read: the reader pays it all,
/// and a member's own settlements never raise its own multiplier, so a member that reads from
/// itself only moves its own money, and one that buys demand pays the other holders for it.
interface IMaguAccess {
    /// @notice Parameters fixed at deployment.
    struct Config {
        IERC20 token;
        IMaguRegistry maguRegistry; // whose owners sign grants and set visibility and price
        uint64 withdrawDelayBlocks; // blocks from requestWithdraw to withdraw: members settle within them
    }

    /// @notice What a Magu's owner signs to let `grantee` in (EIP-712, domain "MuriData Access" version "1").
    /// @dev `magu` is the MaguId as a uint256, as in the EIP-712 type.
    struct Grant {
        uint256 magu;
        bytes32 grantee; // keccak256 of a libp2p peer id's bytes, or bytes32(uint256(uint160(account)))
        uint8 rights; // RIGHT_READ | RIGHT_SEARCH bits, 1..3
        uint64 expires; // unix time (seconds): valid while block.timestamp < expires
        uint64 nonce; // grantNonce(magu, grantee) at signing: revoke bumps it
    }

    /// @notice What a payer signs for a member: "I owe `member` a cumulative `total` tokens for
    /// `searches` searches in Magu `magu`" (EIP-712, domain "MuriData Access" version "1").
    struct Voucher {
        uint256 magu;
        address member;
        uint64 searches;
        uint256 total;
    }

    /// @notice What a reader signs for a member: "I owe `member` a cumulative `total` tokens for
    /// `fragments` fragments of `magu` served to me, at most `maxUnitPrice` per fragment" (EIP-712,
    /// domain "MuriData Access" version "1"). `reads` is the hash chain of the fragments served,
    /// in order: h0 = 0, h(i+1) = keccak256(abi.encodePacked(h(i), uint32 fragment)), the fragment
    /// NO_FRAGMENT for a document (manifest, index). `settleRead` refuses one whose total exceeds
    /// `fragments x maxUnitPrice`.
    struct ReadVoucher {
        uint256 magu;
        address member;
        uint64 fragments;
        bytes32 reads;
        uint256 total;
        uint256 maxUnitPrice;
    }

    /// @notice What `checkGrant` found, the first failing check in this order.
    enum GrantStatus {
        Valid,
        BadRights, // rights is 0 or has bits beyond RIGHT_READ | RIGHT_SEARCH
        NotOwner, // not signed by the Magu's current owner (or the Magu does not exist)
        Revoked, // the nonce is not the grantee's current one
        Expired // expires <= block.timestamp
    }

    /// @notice The owner made the Magu public (anyone may read and search) or private (grants only).
    event VisibilitySet(MaguId indexed magu, bool isPublic);
    /// @notice The owner revoked every grant to `grantee`: the grantee's nonce is now `nonce`.
    event GrantRevoked(MaguId indexed magu, bytes32 indexed grantee, uint64 nonce);
    /// @notice The owner set the price per search its members ask, in token wei.
    event SearchPriceSet(MaguId indexed magu, uint256 price);
    /// @notice `payer` deposited `amount` for searches in `magu`.
    event Deposited(MaguId indexed magu, address indexed payer, uint256 amount);
    /// @notice `payer` may withdraw its deposit in `magu` from block `atBlock`: members settle before.
    event WithdrawRequested(MaguId indexed magu, address indexed payer, uint64 atBlock);
    /// @notice `payer` withdrew the `amount` left of its deposit in `magu`.
    event Withdrawn(MaguId indexed magu, address indexed payer, uint256 amount);
    /// @notice A voucher of `payer` for `searches` searches paid `member` `paid` more.
    event SearchSettled(
        MaguId indexed magu, address indexed payer, address indexed member, uint64 searches, uint256 paid
    );

    /// @notice The owner set the base price per fragment read, in token wei (0: reads are free).
    event ReadPriceSet(MaguId indexed magu, uint256 price);
    /// @notice A read voucher of `payer` for `fragments` fragments paid `member` `paid` more, and
    /// the `served` fragments it listed (those since the last settlement) each added paid / served
    /// to the demand of its placement group at the member's slot.
    event ReadSettled(
        MaguId indexed magu,
        address indexed payer,
        address indexed member,
        uint64 fragments,
        uint256 paid,
        uint256 served
    );

    /// @notice A deployment parameter is zero; `field` names it.
    error AccessInvalidConfig(bytes32 field);
    /// @notice Only the Magu's owner may do this.
    error AccessNotOwner(MaguId magu, address caller);
    /// @notice A deposit of nothing.
    error AccessZeroAmount();
    /// @notice No withdrawal was requested (`atBlock` 0), or it is possible only from `atBlock`.
    error AccessWithdrawNotReady(uint64 atBlock);
    /// @notice The voucher was not signed by the payer; `signer` is who signed it (0: no valid signature).
    error AccessBadVoucher(address signer);
    /// @notice `member` is not and never was a member of the Magu (or was evicted from it): vouchers
    /// pay only members.
    error AccessNotMember(MaguId magu, address member);
    /// @notice The voucher's total is not above what was already paid: nothing more is owed by it.
    error AccessVoucherStale(uint256 paid, uint256 total);
    /// @notice The payer's deposit is empty.
    error AccessNothingToPay();
    /// @notice The read voucher's total exceeds `fragments x maxUnitPrice`: more than the reader
    /// agreed to pay per fragment.
    error AccessReadOverMax(uint256 total, uint64 fragments, uint256 maxUnitPrice);
    /// @notice A read voucher of a payer to itself: it would move its deposit out without the
    /// withdrawal delay, ahead of the members it owes.
    error AccessSelfPayment(address member);
    /// @notice The fragments listed to `settleRead` do not extend the reads already settled
    /// (`settled`, a hash chain of `settledFragments` fragments) to the voucher's `reads`: send
    /// exactly the fragments the voucher counts beyond those, in the order the reader signed them.
    error AccessReadsMismatch(bytes32 settled, uint64 settledFragments, bytes32 reads, uint256 listed);

    /// @notice Makes the Magu public or private. Owner only.
    function setPublic(MaguId magu, bool public_) external;

    /// @notice Revokes every grant given so far to `grantee`, by bumping its nonce. Owner only.
    function revoke(MaguId magu, bytes32 grantee) external;

    /// @notice Sets the price per search members ask, in token wei (enforced off-chain by the
    /// members: the chain only pays vouchers, which carry the total the payer agreed to). Owner only.
    function setSearchPrice(MaguId magu, uint256 price) external;

    /// @notice Deposits `amount` (approved beforehand) for the caller's searches in `magu`. A
    /// deposit does not cancel a withdrawal requested before it.
    function deposit(MaguId magu, uint256 amount) external;

    /// @notice Starts the caller's withdrawal from `magu`: possible from `withdrawDelayBlocks`
    /// blocks on (a second request starts the delay again).
    function requestWithdraw(MaguId magu) external;

    /// @notice Pays the caller what is left of its deposit in `magu`, once the requested
    /// withdrawal is ready, and clears the request.
    function withdraw(MaguId magu) external;

    /// @notice Pays `v.member` from `payer`'s deposit what `payer`'s voucher `v` owes beyond what
    /// it was already paid: v.total minus the paid total, or what the deposit holds if less (the
    /// rest stays owed, a later voucher pays it). Anyone may call it; only `v.member` is paid, and
    /// only if it is a member of the Magu or was one until it left or the Magu ended (an evicted
    /// member's unsettled vouchers are void): a payer cannot sign its deposit over to an address
    /// of its own to leave without the withdrawal delay.
    function settle(Voucher calldata v, address payer, bytes calldata signature) external;

    /// @notice Sets the base price per fragment read, in token wei (0: free reads). Members ask
    /// `readUnitPrice`, this price times the bounded multiplier. Owner only.
    function setReadPrice(MaguId magu, uint256 price) external;

    /// @notice Pays `v.member` from `payer`'s deposit what `payer`'s read voucher owes beyond what
    /// it already paid that member in that Magu (or what the deposit holds if less), as `settle`
    /// does. `served` lists the fragments the voucher counts beyond the last settled one, in order
    /// (it must extend the settled hash chain to `v.reads`); each committed fragment among them
    /// adds paid / served.length, in base-price fragments, to the demand of its placement group at
    /// `v.member`'s slot (documents and unknown fragments add none). Gas is linear in
    /// served.length. Refused when the list does not match (AccessReadsMismatch), the total exceeds
    /// `v.fragments x v.maxUnitPrice` (AccessReadOverMax), `payer` is the member
    /// (AccessSelfPayment), or the member never was one (AccessNotMember).
    function settleRead(ReadVoucher calldata v, address payer, bytes calldata signature, uint32[] calldata served)
        external;

    /// @notice The base price per fragment read set by the owner (0: reads are free).
    function readPrice(MaguId magu) external view returns (uint256);

    /// @notice The read multiplier of `fragment` when `member` serves it, in basis points (10,000 =
    /// x1, at most MAX_READ_MULTIPLIER_BPS), and its two parts: rarity, RARITY_BONUS_BPS x vacant
    /// slots / holders of the fragment's placement group (its stripe's k + m slots, or its r
    /// replicas), and demand, DEMAND_BONUS_BPS x min(o, 1.5 o - own, (h - 1) units) / ((h - 1)
    /// units) with h the group's holders, o the decayed demand of the group at every holder slot
    /// but `member`'s and own at `member`'s (readDemand; a unit is DEMAND_UNIT). x1 for
    /// NO_FRAGMENT (a document) and for a fragment not committed.
    function readMultiplier(MaguId magu, uint256 fragment, address member)
        external
        view
        returns (uint256 multiplierBps, uint256 rarityBps, uint256 demandBps);

    /// @notice What `member` asks for reading `fragment` now: readPrice x readMultiplier / 10,000.
    function readUnitPrice(MaguId magu, uint256 fragment, address member) external view returns (uint256);

    /// @notice The read demand of `fragment`'s placement group now, in DEMAND_UNIT-ths of a
    /// base-price fragment (halved every DEMAND_HALF_LIFE_BLOCKS): `others` at the group's holder
    /// slots but `member`'s (what its multiplier counts), `own` at `member`'s slot.
    function readDemand(MaguId magu, uint256 fragment, address member) external view returns (uint256 others, uint256 own);

    /// @notice What `payer`'s read vouchers paid `member` in `magu`, and the fragments and reads
    /// hash chain of the last one settled.
    function readSettled(MaguId magu, address payer, address member)
        external
        view
        returns (uint256 paid, uint64 fragments, bytes32 reads);

    /// @notice Everything read vouchers paid `member`, over all Magus and payers.
    function readEarned(address member) external view returns (uint256);

    /// @notice The EIP-712 digest of a read voucher (what the reader signs).
    function readVoucherDigest(ReadVoucher calldata v) external view returns (bytes32);

    /// @notice Whether the Magu is public (false by default).
    function isPublic(MaguId magu) external view returns (bool);

    /// @notice The nonce a valid grant to `grantee` must carry.
    function grantNonce(MaguId magu, bytes32 grantee) external view returns (uint64);

    /// @notice The price per search set by the owner, in token wei (0: not set).
    function searchPrice(MaguId magu) external view returns (uint256);

    /// @notice `payer`'s deposit in `magu`.
    function balanceOf(MaguId magu, address payer) external view returns (uint256);

    /// @notice The block from which `payer` may withdraw from `magu` (0: no request).
    function withdrawableAt(MaguId magu, address payer) external view returns (uint64);

    /// @notice What `payer`'s vouchers paid `member` in `magu` so far, and the searches of the last
    /// one settled.
    function settled(MaguId magu, address payer, address member) external view returns (uint256 paid, uint64 searches);

    /// @notice The EIP-712 digest of a grant (what the owner signs).
    function grantDigest(Grant calldata g) external view returns (bytes32);

    /// @notice The EIP-712 digest of a voucher (what the payer signs).
    function voucherDigest(Voucher calldata v) external view returns (bytes32);

    /// @notice Checks a signed grant against the current owner, nonce and time; never reverts on a
    /// malformed signature (NotOwner).
    function checkGrant(Grant calldata g, bytes calldata signature) external view returns (GrantStatus);

    /// @notice The configuration.
    function config() external view returns (Config memory);
}
