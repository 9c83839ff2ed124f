// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IMaguAccess} from "./interfaces/IMaguAccess.sol";
import {IMaguRegistry} from "./interfaces/IMaguRegistry.sol";
import {PlacementLib} from "./libraries/PlacementLib.sol";
import {MaguId} from "./types/MaguId.sol";

/// @title MaguAccess
/// @notice Holds the payers' search deposits, per Magu, and each Magu's visibility, search price
/// and grant nonces (rules in IMaguAccess). Grants are checked, never stored: the owner signs them
/// off-chain and members ask `checkGrant`; the owner of a Magu is read from MaguRegistry at each
/// call, so a grant is only as good as its signer's current ownership.
/// Vouchers are cumulative: each settles the difference between its total and what the payer
/// already paid that member in that Magu, so one transaction pays any number of searches and a
/// replayed, reordered or older voucher pays nothing more.
/// Reads are paid from the same deposits by cumulative read vouchers (`settleRead`), at a price per
/// fragment of the owner's base price times that fragment's multiplier, bounded by
/// MAX_READ_MULTIPLIER_BPS, which rises with the vacant slots among the holders of the fragment's
/// placement group (rarity) and with the tokens recently paid to the group's other holders for
/// its reads (demand, kept per group and holder slot). Nothing is minted for reads and no reward
/// reads these counters.
/// @dev Invariant: token.balanceOf(this) >= Σ balanceOf(magu, payer), with equality unless someone
/// sent tokens here directly. settle and settleRead move tokens from a balance to a member,
/// withdraw to its payer.
contract MaguAccess is IMaguAccess, ReentrancyGuard, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice Grant right: fetch the Magu's fragments and index.
    uint8 public constant RIGHT_READ = 1;
    /// @notice Grant right: ask the Magu's members for searches.
    uint8 public constant RIGHT_SEARCH = 2;

    /// @notice EIP-712 type of a grant (domain "MuriData Access" version "1").
    bytes32 public constant GRANT_TYPEHASH =
        // solhint-disable-next-line gas-small-strings
        keccak256("Grant(uint256 magu,bytes32 grantee,uint8 rights,uint64 expires,uint64 nonce)");
    /// @notice EIP-712 type of a voucher (domain "MuriData Access" version "1").
    bytes32 public constant VOUCHER_TYPEHASH =
        // solhint-disable-next-line gas-small-strings
        keccak256("Voucher(uint256 magu,address member,uint64 searches,uint256 total)");

    /// @notice EIP-712 type of a read voucher (domain "MuriData Access" version "1").
    bytes32 public constant READ_VOUCHER_TYPEHASH =
        // solhint-disable-next-line gas-small-strings
        keccak256(
            "ReadVoucher(uint256 magu,address member,uint64 fragments,bytes32 reads,uint256 total,uint256 maxUnitPrice)"
        );

    /// @notice The read multiplier's unit: 10,000 basis points = x1.
    uint256 public constant MULTIPLIER_ONE_BPS = 10_000;
    /// @notice Bonus of a fragment whose group's holder slots are all vacant (linear in the vacant
    /// share): +50 %.
    uint256 public constant RARITY_BONUS_BPS = 5_000;
    /// @notice Bonus of a fragment whose group's other holders were recently paid a base-price
    /// fragment each (demand DEMAND_UNIT x (holders - 1)): +50 %.
    uint256 public constant DEMAND_BONUS_BPS = 5_000;
    /// @notice A member's demand bonus fades as its own demand nears this share of the other
    /// holders' (x1.5): each base-price fragment bought at the others earns a bonus on at most 1.5
    /// of its own, +50 % each, so 0.75 for 1 paid.
    uint256 public constant DEMAND_OWN_RATIO_BPS = 15_000;
    /// @notice Demand is counted in DEMAND_UNIT-ths of a base-price fragment.
    uint256 public constant DEMAND_UNIT = 10_000;
    /// @notice The fragment a document read (manifest, index) is listed as: no group, no demand.
    uint32 public constant NO_FRAGMENT = type(uint32).max;
    /// @notice The read multiplier never exceeds x2.
    uint256 public constant MAX_READ_MULTIPLIER_BPS = 20_000;
    /// @notice Demand halves every this many blocks (about an hour of 12-second blocks), at block
    /// numbers that are multiples of it, so every demand record decays in step.
    uint64 public constant DEMAND_HALF_LIFE_BLOCKS = 300;

    /// @dev A payer's deposit in one Magu and its requested withdrawal (one word).
    struct Account {
        uint192 balance;
        uint64 withdrawableAt; // 0: no request
    }

    /// @dev What one payer's vouchers paid one member in one Magu (one word).
    struct Paid {
        uint192 total;
        uint64 searches; // of the last voucher settled
    }

    /// @dev What one payer's read vouchers paid one member in one Magu (two words).
    struct ReadPaid {
        uint192 total;
        uint64 fragments; // of the last voucher settled
        bytes32 reads; // its hash chain of the fragments read
    }

    /// @dev Read demand of one placement group at one holder slot: DEMAND_UNIT-ths of base-price
    /// fragments paid, as of half-life number `epoch` (block / DEMAND_HALF_LIFE_BLOCKS), halved
    /// once per half-life since.
    struct Demand {
        uint192 units;
        uint64 epoch;
    }

    IERC20 private immutable _token;
    IMaguRegistry private immutable _magus;
    uint64 private immutable _withdrawDelayBlocks;

    mapping(MaguId magu => bool) private _public;
    mapping(MaguId magu => uint256) private _searchPrice;
    mapping(MaguId magu => mapping(bytes32 grantee => uint64)) private _grantNonce;
    mapping(MaguId magu => mapping(address payer => Account)) private _accounts;
    mapping(MaguId magu => mapping(address payer => mapping(address member => Paid))) private _paid;
    mapping(MaguId magu => uint256) private _readPrice;
    mapping(MaguId magu => mapping(address payer => mapping(address member => ReadPaid))) private _readPaid;
    mapping(MaguId magu => mapping(uint256 group => mapping(uint256 slot => Demand))) private _demand;
    mapping(address member => uint256) private _readEarned;

    /// @param cfg deployment parameters (see IMaguAccess.Config)
    constructor(Config memory cfg) EIP712("MuriData Access", "1") {
        if (address(cfg.token) == address(0)) revert AccessInvalidConfig("token");
        if (address(cfg.maguRegistry) == address(0)) revert AccessInvalidConfig("maguRegistry");
        // Without a delay a payer could search, then withdraw before any voucher is settled.
        if (cfg.withdrawDelayBlocks == 0) revert AccessInvalidConfig("withdrawDelayBlocks");
        _token = cfg.token;
        _magus = cfg.maguRegistry;
        _withdrawDelayBlocks = cfg.withdrawDelayBlocks;
    }

    // ---------------------------------------------------------------- owner

    /// @inheritdoc IMaguAccess
    function setPublic(MaguId magu, bool public_) external {
        _onlyOwner(magu);
        _public[magu] = public_;
        emit VisibilitySet(magu, public_);
    }

    /// @inheritdoc IMaguAccess
    function revoke(MaguId magu, bytes32 grantee) external {
        _onlyOwner(magu);
        uint64 nonce = _grantNonce[magu][grantee] + 1;
        _grantNonce[magu][grantee] = nonce;
        emit GrantRevoked(magu, grantee, nonce);
    }

    /// @inheritdoc IMaguAccess
    function setSearchPrice(MaguId magu, uint256 price) external {
        _onlyOwner(magu);
        _searchPrice[magu] = price;
        emit SearchPriceSet(magu, price);
    }

    /// @inheritdoc IMaguAccess
    function setReadPrice(MaguId magu, uint256 price) external {
        _onlyOwner(magu);
        _readPrice[magu] = price;
        emit ReadPriceSet(magu, price);
    }

    // ---------------------------------------------------------------- payers

    /// @inheritdoc IMaguAccess
    function deposit(MaguId magu, uint256 amount) external nonReentrant {
        if (amount == 0) revert AccessZeroAmount();
        Account storage a = _accounts[magu][msg.sender];
        a.balance = SafeCast.toUint192(a.balance + amount);
        emit Deposited(magu, msg.sender, amount);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc IMaguAccess
    function requestWithdraw(MaguId magu) external {
        uint64 atBlock = uint64(block.number) + _withdrawDelayBlocks;
        _accounts[magu][msg.sender].withdrawableAt = atBlock;
        emit WithdrawRequested(magu, msg.sender, atBlock);
    }

    /// @inheritdoc IMaguAccess
    function withdraw(MaguId magu) external nonReentrant {
        Account storage a = _accounts[magu][msg.sender];
        uint64 atBlock = a.withdrawableAt;
        if (atBlock == 0 || block.number < atBlock) revert AccessWithdrawNotReady(atBlock);
        uint256 amount = a.balance;
        delete _accounts[magu][msg.sender];
        emit Withdrawn(magu, msg.sender, amount);
        if (amount > 0) _token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- members

    /// @inheritdoc IMaguAccess
    function settle(Voucher calldata v, address payer, bytes calldata signature) external nonReentrant {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(voucherDigest(v), signature);
        if (err != ECDSA.RecoverError.NoError || signer != payer) revert AccessBadVoucher(signer);
        MaguId magu = MaguId.wrap(v.magu);
        Paid storage p = _paid[magu][payer][v.member];
        uint256 paid = p.total;
        uint256 amount = _debit(magu, payer, v.member, paid, v.total);
        // paid + amount <= v.total, which may not fit: checked.
        p.total = SafeCast.toUint192(paid + amount);
        p.searches = v.searches;
        emit SearchSettled(magu, payer, v.member, v.searches, amount);
        _token.safeTransfer(v.member, amount);
    }

    /// @inheritdoc IMaguAccess
    function settleRead(ReadVoucher calldata v, address payer, bytes calldata signature, uint32[] calldata served)
        external
        nonReentrant
    {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(readVoucherDigest(v), signature);
        if (err != ECDSA.RecoverError.NoError || signer != payer) revert AccessBadVoucher(signer);
        // The reader's own cap: never more than maxUnitPrice per fragment on average.
        if (v.fragments == 0 || Math.ceilDiv(v.total, v.fragments) > v.maxUnitPrice) {
            revert AccessReadOverMax(v.total, v.fragments, v.maxUnitPrice);
        }
        if (payer == v.member) revert AccessSelfPayment(payer);
        MaguId magu = MaguId.wrap(v.magu);
        ReadPaid storage p = _readPaid[magu][payer][v.member];
        uint256 paid = p.total;
        (uint256 amount, uint256 slot) = _debitMember(magu, payer, v.member, paid, v.total);
        _checkReads(p, v, served);
        p.total = SafeCast.toUint192(paid + amount);
        p.fragments = v.fragments;
        p.reads = v.reads;
        _readEarned[v.member] += amount;
        // Demand counts tokens paid, spread over the fragments listed, not the fragments claimed:
        // a voucher for many fragments at a tiny total raises it by what it really paid.
        _recordDemand(magu, slot, amount, served);
        emit ReadSettled(magu, payer, v.member, v.fragments, amount, served.length);
        _token.safeTransfer(v.member, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMaguAccess
    function isPublic(MaguId magu) external view returns (bool) {
        return _public[magu];
    }

    /// @inheritdoc IMaguAccess
    function grantNonce(MaguId magu, bytes32 grantee) external view returns (uint64) {
        return _grantNonce[magu][grantee];
    }

    /// @inheritdoc IMaguAccess
    function searchPrice(MaguId magu) external view returns (uint256) {
        return _searchPrice[magu];
    }

    /// @inheritdoc IMaguAccess
    function balanceOf(MaguId magu, address payer) external view returns (uint256) {
        return _accounts[magu][payer].balance;
    }

    /// @inheritdoc IMaguAccess
    function withdrawableAt(MaguId magu, address payer) external view returns (uint64) {
        return _accounts[magu][payer].withdrawableAt;
    }

    /// @inheritdoc IMaguAccess
    function settled(MaguId magu, address payer, address member) external view returns (uint256 paid, uint64 searches) {
        Paid storage p = _paid[magu][payer][member];
        return (p.total, p.searches);
    }

    /// @inheritdoc IMaguAccess
    function readPrice(MaguId magu) external view returns (uint256) {
        return _readPrice[magu];
    }

    /// @inheritdoc IMaguAccess
    function readMultiplier(MaguId magu, uint256 fragment, address member)
        public
        view
        returns (uint256 multiplierBps, uint256 rarityBps, uint256 demandBps)
    {
        multiplierBps = MULTIPLIER_ONE_BPS;
        IMaguRegistry.MaguInfo memory info = _magus.maguInfo(magu);
        if (fragment >= info.fragmentCount || info.members.length == 0) return (multiplierBps, 0, 0);
        (uint256 group, uint256[] memory slots) = _holderSlots(magu, info, fragment);
        uint256 h = slots.length;
        uint256 vacant;
        for (uint256 i; i < h; ++i) {
            if (info.members[slots[i]] == address(0)) ++vacant;
        }
        rarityBps = (RARITY_BONUS_BPS * vacant) / h;
        if (h > 1) {
            (uint256 others, uint256 own) = _groupDemand(magu, group, slots, _slotOf(magu, member));
            // The bonus is earned by the other holders' paid reads, and only while this member's
            // own paid reads stay below DEMAND_OWN_RATIO_BPS of them: buying demand at the others
            // costs more than the bonus it can bring (docs/ARCHITECTURE.md, "Paid reads").
            uint256 room = Math.mulDiv(others, DEMAND_OWN_RATIO_BPS, MULTIPLIER_ONE_BPS);
            room = room > own ? room - own : 0;
            uint256 scale = (h - 1) * DEMAND_UNIT;
            uint256 d = Math.min(Math.min(others, room), scale);
            demandBps = (DEMAND_BONUS_BPS * d) / scale;
        }
        multiplierBps += rarityBps + demandBps;
        if (multiplierBps > MAX_READ_MULTIPLIER_BPS) multiplierBps = MAX_READ_MULTIPLIER_BPS;
    }

    /// @inheritdoc IMaguAccess
    function readUnitPrice(MaguId magu, uint256 fragment, address member) external view returns (uint256) {
        uint256 base = _readPrice[magu];
        if (base == 0) return 0;
        (uint256 multiplierBps,,) = readMultiplier(magu, fragment, member);
        return Math.mulDiv(base, multiplierBps, MULTIPLIER_ONE_BPS);
    }

    /// @inheritdoc IMaguAccess
    function readDemand(MaguId magu, uint256 fragment, address member) external view returns (uint256 others, uint256 own) {
        IMaguRegistry.MaguInfo memory info = _magus.maguInfo(magu);
        if (fragment >= info.fragmentCount || info.members.length == 0) return (0, 0);
        (uint256 group, uint256[] memory slots) = _holderSlots(magu, info, fragment);
        return _groupDemand(magu, group, slots, _slotOf(magu, member));
    }

    /// @inheritdoc IMaguAccess
    function readSettled(MaguId magu, address payer, address member)
        external
        view
        returns (uint256 paid, uint64 fragments, bytes32 reads)
    {
        ReadPaid storage p = _readPaid[magu][payer][member];
        return (p.total, p.fragments, p.reads);
    }

    /// @inheritdoc IMaguAccess
    function readEarned(address member) external view returns (uint256) {
        return _readEarned[member];
    }

    /// @inheritdoc IMaguAccess
    function readVoucherDigest(ReadVoucher calldata v) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(READ_VOUCHER_TYPEHASH, v.magu, v.member, v.fragments, v.reads, v.total, v.maxUnitPrice)
            )
        );
    }

    /// @inheritdoc IMaguAccess
    function grantDigest(Grant calldata g) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(GRANT_TYPEHASH, g.magu, g.grantee, g.rights, g.expires, g.nonce)));
    }

    /// @inheritdoc IMaguAccess
    function voucherDigest(Voucher calldata v) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, v.magu, v.member, v.searches, v.total)));
    }

    /// @inheritdoc IMaguAccess
    function checkGrant(Grant calldata g, bytes calldata signature) external view returns (GrantStatus) {
        if (g.rights == 0 || g.rights > (RIGHT_READ | RIGHT_SEARCH)) return GrantStatus.BadRights;
        MaguId magu = MaguId.wrap(g.magu);
        address owner = _magus.maguInfo(magu).owner;
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(grantDigest(g), signature);
        if (owner == address(0) || err != ECDSA.RecoverError.NoError || signer != owner) return GrantStatus.NotOwner;
        if (g.nonce != _grantNonce[magu][g.grantee]) return GrantStatus.Revoked;
        if (g.expires <= block.timestamp) return GrantStatus.Expired;
        return GrantStatus.Valid;
    }

    /// @inheritdoc IMaguAccess
    function config() external view returns (Config memory) {
        return Config({token: _token, maguRegistry: _magus, withdrawDelayBlocks: _withdrawDelayBlocks});
    }

    // ---------------------------------------------------------------- internals

    /// @dev What a voucher of `payer` to `member` for a cumulative `total`, of which `paid` was
    /// paid, pays now: `total - paid`, or what the deposit holds if less, taken from the deposit.
    function _debit(MaguId magu, address payer, address member, uint256 paid, uint256 total)
        private
        returns (uint256 amount)
    {
        (amount,) = _debitMember(magu, payer, member, paid, total);
    }

    /// @dev `_debit`, also returning the member's slot.
    function _debitMember(MaguId magu, address payer, address member, uint256 paid, uint256 total)
        private
        returns (uint256 amount, uint256 slot)
    {
        // Only a member (sitting, or one that left or saw the Magu end) can be paid: else a payer
        // could sign its deposit over to an address of its own and leave without the delay.
        IMaguRegistry.Membership memory ms = _magus.membership(magu, member);
        if (!ms.active && ms.leftAfter == 0) revert AccessNotMember(magu, member);
        slot = ms.slot;
        if (total <= paid) revert AccessVoucherStale(paid, total);
        Account storage a = _accounts[magu][payer];
        uint256 balance = a.balance;
        if (balance == 0) revert AccessNothingToPay();
        uint256 owed = total - paid;
        amount = owed < balance ? owed : balance;
        // amount <= balance < 2^192.
        a.balance = uint192(balance - amount);
    }

    /// @dev Reverts unless `served` extends `p`'s settled hash chain to `v.reads` with exactly the
    /// fragments `v` counts beyond it.
    function _checkReads(ReadPaid storage p, ReadVoucher calldata v, uint32[] calldata served) private view {
        bytes32 h = p.reads;
        uint64 settledFragments = p.fragments;
        uint256 n = served.length;
        if (v.fragments < settledFragments || n != v.fragments - settledFragments) {
            revert AccessReadsMismatch(h, settledFragments, v.reads, n);
        }
        for (uint256 i; i < n; ++i) {
            h = keccak256(abi.encodePacked(h, served[i]));
        }
        if (h != v.reads) revert AccessReadsMismatch(p.reads, settledFragments, v.reads, n);
    }

    /// @dev Adds `amount` tokens, in DEMAND_UNIT-ths of base-price fragments and spread evenly over
    /// `served`, to the demand of each listed fragment's placement group at `slot`. Documents and
    /// fragments not committed add nothing.
    function _recordDemand(MaguId magu, uint256 slot, uint256 amount, uint32[] calldata served) private {
        uint256 n = served.length;
        uint256 base = _readPrice[magu];
        // With no base price (reads made free after the voucher was signed) nothing counts.
        if (n == 0 || base == 0) return;
        uint256 each = Math.mulDiv(amount, DEMAND_UNIT, base * n);
        if (each == 0) return;
        IMaguRegistry.MaguInfo memory info = _magus.maguInfo(magu);
        IMaguRegistry.MaguParams memory params = info.params;
        uint256 width = params.replication == 0 ? uint256(params.dataShards) + params.parityShards : 1;
        uint64 epoch = uint64(block.number / DEMAND_HALF_LIFE_BLOCKS);
        for (uint256 i; i < n; ++i) {
            uint256 f = served[i];
            if (f >= info.fragmentCount) continue;
            Demand storage d = _demand[magu][f / width][slot];
            d.units = SafeCast.toUint192(_decayedDemand(d) + each);
            d.epoch = epoch;
        }
    }

    /// @dev The placement group of `fragment` (its stripe in a blob Magu, itself in a vector one)
    /// and the slots holding the group (k + m, or r).
    function _holderSlots(MaguId magu, IMaguRegistry.MaguInfo memory info, uint256 fragment)
        private
        pure
        returns (uint256 group, uint256[] memory slots)
    {
        IMaguRegistry.MaguParams memory params = info.params;
        uint256 count = params.replication;
        group = fragment;
        if (count == 0) {
            count = uint256(params.dataShards) + params.parityShards;
            group = fragment / count;
        }
        slots = PlacementLib.topSlots(MaguId.unwrap(magu), group, info.members.length, count);
    }

    /// @dev The decayed demand of `group` summed over `slots` but `own`, and at `own`.
    function _groupDemand(MaguId magu, uint256 group, uint256[] memory slots, uint256 own)
        private
        view
        returns (uint256 others, uint256 ownDemand)
    {
        mapping(uint256 slot => Demand) storage bySlot = _demand[magu][group];
        for (uint256 i; i < slots.length; ++i) {
            uint256 units = _decayedDemand(bySlot[slots[i]]);
            if (slots[i] == own) ownDemand = units;
            else others += units;
        }
    }

    /// @dev `member`'s slot in the Magu while it sits there; else no slot (type(uint256).max).
    function _slotOf(MaguId magu, address member) private view returns (uint256) {
        IMaguRegistry.Membership memory ms = _magus.membership(magu, member);
        return ms.active ? ms.slot : type(uint256).max;
    }

    /// @dev `d.units` halved once per half-life boundary crossed since `d.epoch`.
    function _decayedDemand(Demand storage d) private view returns (uint256) {
        uint256 halvings = block.number / DEMAND_HALF_LIFE_BLOCKS - d.epoch;
        return halvings >= 192 ? 0 : uint256(d.units) >> halvings;
    }

    /// @dev Reverts unless the caller is the Magu's current owner (an unknown Magu has none).
    function _onlyOwner(MaguId magu) private view {
        if (_magus.maguInfo(magu).owner != msg.sender) revert AccessNotOwner(magu, msg.sender);
    }
}
