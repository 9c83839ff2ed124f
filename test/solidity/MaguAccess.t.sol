// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {DeployedMaguAccess as MaguAccess} from "./utils/Deployed.sol";
import {IMaguAccess} from "../../contracts/interfaces/IMaguAccess.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";
import {ReentrantToken} from "./utils/ReentrantToken.sol";

/// @notice A stand-in MaguRegistry for what MaguAccess reads (owners and memberships), where an
/// owner can change: MaguRegistry has no ownership transfer yet, and MaguAccess must follow the
/// current owner when it gets one.
contract OwnerBook {
    mapping(uint256 magu => address) public ownerOf;
    mapping(uint256 magu => mapping(address => bool)) public isMember;

    function setOwner(uint256 magu, address owner) external {
        ownerOf[magu] = owner;
    }

    function setMember(uint256 magu, address member) external {
        isMember[magu][member] = true;
    }

    function maguInfo(MaguId magu) external view returns (IMaguRegistry.MaguInfo memory info) {
        info.owner = ownerOf[MaguId.unwrap(magu)];
    }

    function membership(MaguId magu, address member) external view returns (IMaguRegistry.Membership memory ms) {
        ms.active = isMember[MaguId.unwrap(magu)][member];
    }
}

/// @notice MaguAccess: visibility, grants and their revocation, search prices, deposits with a
/// withdrawal delay, and cumulative vouchers; every failure path, and the attacks on the money
/// played and shown failing.
contract MaguAccessTest is Fixture {
    uint256 internal constant START_TIME = 1_700_000_000;
    uint256 internal constant DEPOSIT = 100 ether;

    address internal client; // the Magu's owner
    address internal payer;
    address internal stranger;
    MaguId internal id;
    address[] internal members;

    function setUp() public override {
        super.setUp();
        vm.warp(START_TIME);
        registerNodes(4, 300 ether);
        client = newActor("client");
        payer = newActor("payer");
        stranger = newActor("stranger");
        id = createMagu(client, vectorParams(3, 2, 8, 10));
        formMagu(id);
        members = membersOf(id);
        deployAccess();
    }

    // ------------------------------------------------------------ helpers

    function _sign(address who, bytes32 digest) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(actorKey[who], digest);
        return abi.encodePacked(r, s, v);
    }

    function _grant(bytes32 grantee, uint8 rights, uint64 expires, uint64 nonce)
        internal
        view
        returns (IMaguAccess.Grant memory)
    {
        return IMaguAccess.Grant({magu: MaguId.unwrap(id), grantee: grantee, rights: rights, expires: expires, nonce: nonce});
    }

    function _grantTo(bytes32 grantee) internal view returns (IMaguAccess.Grant memory) {
        return _grant(grantee, access.RIGHT_READ() | access.RIGHT_SEARCH(), uint64(START_TIME + 1 days), 0);
    }

    function _status(IMaguAccess.Grant memory g, bytes memory sig) internal view returns (uint256) {
        return uint256(access.checkGrant(g, sig));
    }

    function _voucher(address member, uint64 searches, uint256 total) internal view returns (IMaguAccess.Voucher memory) {
        return IMaguAccess.Voucher({magu: MaguId.unwrap(id), member: member, searches: searches, total: total});
    }

    function _signVoucher(address who, IMaguAccess.Voucher memory v) internal view returns (bytes memory) {
        return _sign(who, access.voucherDigest(v));
    }

    function _deposit(address who, uint256 amount) internal {
        fund(who, amount);
        vm.startPrank(who);
        token.approve(address(access), amount);
        access.deposit(id, amount);
        vm.stopPrank();
    }

    function _paid(address member) internal view returns (uint256 paid) {
        (paid,) = access.settled(id, payer, member);
    }

    function _peer(string memory name) internal pure returns (bytes32) {
        return keccak256(bytes(name));
    }

    function _account(address a) internal pure returns (bytes32) {
        return bytes32(uint256(uint160(a)));
    }

    // ------------------------------------------------------------ deployment and digests

    function test_constructor_rejectsZeroFields() public {
        bytes32[3] memory fields = [bytes32("token"), "maguRegistry", "withdrawDelayBlocks"];
        for (uint256 i; i < 3; ++i) {
            IMaguAccess.Config memory c = access.config();
            if (i == 0) c.token = IERC20(address(0));
            if (i == 1) c.maguRegistry = IMaguRegistry(address(0));
            if (i == 2) c.withdrawDelayBlocks = 0;
            bytes memory code = artifactCode("MaguAccess.sol:MaguAccess", abi.encode(c));
            vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessInvalidConfig.selector, fields[i]));
            create(code);
        }
    }

    function test_config_isTheDeployment() public view {
        IMaguAccess.Config memory c = access.config();
        assertEq(address(c.token), address(token), "token");
        assertEq(address(c.maguRegistry), address(magus), "maguRegistry");
        assertEq(c.withdrawDelayBlocks, WITHDRAW_DELAY_BLOCKS, "delay");
        assertEq(access.RIGHT_READ(), 1, "RIGHT_READ");
        assertEq(access.RIGHT_SEARCH(), 2, "RIGHT_SEARCH");
    }

    /// @notice The digests are EIP-712's, with the domain "MuriData Access" version "1" of this
    /// deployment and the type strings the agents sign.
    function test_digests_areEip712() public view {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("MuriData Access"),
                keccak256("1"),
                block.chainid,
                address(access)
            )
        );
        bytes32 grantType = keccak256("Grant(uint256 magu,bytes32 grantee,uint8 rights,uint64 expires,uint64 nonce)");
        bytes32 voucherType = keccak256("Voucher(uint256 magu,address member,uint64 searches,uint256 total)");
        assertEq(access.GRANT_TYPEHASH(), grantType, "grant type");
        assertEq(access.VOUCHER_TYPEHASH(), voucherType, "voucher type");

        IMaguAccess.Grant memory g = _grant(_peer("peer"), 3, 12345, 7);
        bytes32 grantHash = keccak256(abi.encode(grantType, g.magu, g.grantee, g.rights, g.expires, g.nonce));
        assertEq(access.grantDigest(g), keccak256(abi.encodePacked(hex"1901", domain, grantHash)), "grant digest");

        IMaguAccess.Voucher memory v = _voucher(members[0], 4, 9 ether);
        bytes32 voucherHash = keccak256(abi.encode(voucherType, v.magu, v.member, v.searches, v.total));
        assertEq(access.voucherDigest(v), keccak256(abi.encodePacked(hex"1901", domain, voucherHash)), "voucher digest");

        bytes32 readType = keccak256(
            "ReadVoucher(uint256 magu,address member,uint64 fragments,bytes32 reads,uint256 total,uint256 maxUnitPrice)"
        );
        assertEq(access.READ_VOUCHER_TYPEHASH(), readType, "read voucher type");
        IMaguAccess.ReadVoucher memory rv = IMaguAccess.ReadVoucher({
            magu: MaguId.unwrap(id),
            member: members[0],
            fragments: 5,
            reads: keccak256("reads"),
            total: 6 ether,
            maxUnitPrice: 2 ether
        });
        bytes32 readHash =
            keccak256(abi.encode(readType, rv.magu, rv.member, rv.fragments, rv.reads, rv.total, rv.maxUnitPrice));
        assertEq(access.readVoucherDigest(rv), keccak256(abi.encodePacked(hex"1901", domain, readHash)), "read voucher digest");
        // The reads chain's first link, as agents/chain/access.ts extendReads computes it.
        assertEq(_chain(0, _list(0, 1)), keccak256(new bytes(36)), "reads chain: keccak256(previous || uint32 fragment)");
    }

    // ------------------------------------------------------------ owner settings

    function test_setPublic_ownerOnly() public {
        assertFalse(access.isPublic(id), "private by default");
        vm.expectEmit(true, false, false, true, address(access));
        emit IMaguAccess.VisibilitySet(id, true);
        vm.prank(client);
        access.setPublic(id, true);
        assertTrue(access.isPublic(id), "public");
        vm.prank(client);
        access.setPublic(id, false);
        assertFalse(access.isPublic(id), "private again");

        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, id, stranger));
        vm.prank(stranger);
        access.setPublic(id, true);
        // A member is not the owner either.
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, id, members[0]));
        vm.prank(members[0]);
        access.setPublic(id, true);
        // An unknown Magu has no owner: nobody may set it.
        MaguId unknown = MaguId.wrap(99);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, unknown, client));
        vm.prank(client);
        access.setPublic(unknown, true);
        assertFalse(access.isPublic(id), "unchanged by the refused calls");
    }

    function test_revoke_bumpsTheNonce_ownerOnly() public {
        bytes32 grantee = _peer("peer-a");
        assertEq(access.grantNonce(id, grantee), 0, "nonce 0 at first");
        vm.expectEmit(true, true, false, true, address(access));
        emit IMaguAccess.GrantRevoked(id, grantee, 1);
        vm.prank(client);
        access.revoke(id, grantee);
        vm.prank(client);
        access.revoke(id, grantee);
        assertEq(access.grantNonce(id, grantee), 2, "bumped twice");
        assertEq(access.grantNonce(id, _peer("peer-b")), 0, "another grantee untouched");

        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, id, stranger));
        vm.prank(stranger);
        access.revoke(id, grantee);
        assertEq(access.grantNonce(id, grantee), 2, "unchanged");
    }

    function test_setSearchPrice_ownerOnly() public {
        assertEq(access.searchPrice(id), 0, "unset");
        vm.expectEmit(true, false, false, true, address(access));
        emit IMaguAccess.SearchPriceSet(id, 3 ether);
        vm.prank(client);
        access.setSearchPrice(id, 3 ether);
        assertEq(access.searchPrice(id), 3 ether, "set");

        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, id, stranger));
        vm.prank(stranger);
        access.setSearchPrice(id, 0);
        assertEq(access.searchPrice(id), 3 ether, "unchanged");
    }

    // ------------------------------------------------------------ grants

    function test_checkGrant_valid() public view {
        for (uint8 rights = 1; rights <= 3; ++rights) {
            IMaguAccess.Grant memory g = _grant(_peer("peer"), rights, uint64(START_TIME + 1), 0);
            assertEq(_status(g, _sign(client, access.grantDigest(g))), uint256(IMaguAccess.GrantStatus.Valid), "peer");
        }
        IMaguAccess.Grant memory byAccount = _grantTo(_account(stranger));
        assertEq(
            _status(byAccount, _sign(client, access.grantDigest(byAccount))),
            uint256(IMaguAccess.GrantStatus.Valid),
            "account"
        );
    }

    function test_checkGrant_badRights() public view {
        uint8[3] memory bad = [0, 4, 255];
        for (uint256 i; i < 3; ++i) {
            IMaguAccess.Grant memory g = _grant(_peer("peer"), bad[i], uint64(START_TIME + 1), 0);
            assertEq(_status(g, _sign(client, access.grantDigest(g))), uint256(IMaguAccess.GrantStatus.BadRights), "rights");
        }
        // First in the order: a grant with bad rights and no valid signature is BadRights.
        IMaguAccess.Grant memory both = _grant(_peer("peer"), 0, 0, 5);
        assertEq(_status(both, ""), uint256(IMaguAccess.GrantStatus.BadRights), "before the signer");
    }

    function test_checkGrant_notOwner_neverReverts() public view {
        IMaguAccess.Grant memory g = _grantTo(_peer("peer"));
        uint256 notOwner = uint256(IMaguAccess.GrantStatus.NotOwner);
        assertEq(_status(g, _sign(stranger, access.grantDigest(g))), notOwner, "signed by a stranger");
        assertEq(_status(g, _sign(members[0], access.grantDigest(g))), notOwner, "signed by a member");
        // Malformed signatures: empty, short, long, an invalid v, a high s.
        bytes memory good = _sign(client, access.grantDigest(g));
        assertEq(_status(g, ""), notOwner, "empty");
        assertEq(_status(g, new bytes(64)), notOwner, "64 zero bytes");
        assertEq(_status(g, bytes.concat(good, hex"00")), notOwner, "66 bytes");
        assertEq(_status(g, new bytes(65)), notOwner, "65 zero bytes");
        bytes memory badV = bytes.concat(good);
        badV[64] = 0x05;
        assertEq(_status(g, badV), notOwner, "invalid v");
        bytes memory highS = bytes.concat(good);
        for (uint256 i = 32; i < 64; ++i) {
            highS[i] = 0xff;
        }
        assertEq(_status(g, highS), notOwner, "s above n/2");
        // A grant for another (unknown) Magu, even signed by this Magu's owner.
        IMaguAccess.Grant memory other = g;
        other.magu = 99;
        assertEq(_status(other, _sign(client, access.grantDigest(other))), notOwner, "unknown Magu: no owner");
        // Checked before the nonce: a stranger's grant with a stale nonce is NotOwner.
        IMaguAccess.Grant memory stale = _grant(_peer("peer"), 3, uint64(START_TIME + 1), 9);
        assertEq(_status(stale, _sign(stranger, access.grantDigest(stale))), notOwner, "before the nonce");
        // A signature over one grant does not carry to another (another grantee).
        IMaguAccess.Grant memory moved = _grantTo(_peer("other peer"));
        assertEq(_status(moved, good), notOwner, "signature of another grant");
    }

    function test_checkGrant_revoked() public {
        bytes32 grantee = _peer("peer");
        IMaguAccess.Grant memory g = _grantTo(grantee);
        bytes memory sig = _sign(client, access.grantDigest(g));
        assertEq(_status(g, sig), uint256(IMaguAccess.GrantStatus.Valid), "valid first");
        vm.prank(client);
        access.revoke(id, grantee);
        assertEq(_status(g, sig), uint256(IMaguAccess.GrantStatus.Revoked), "stale nonce");
        // A fresh grant at the new nonce is valid; one signed ahead of it is not.
        IMaguAccess.Grant memory fresh = _grant(grantee, 3, uint64(START_TIME + 1 days), 1);
        assertEq(_status(fresh, _sign(client, access.grantDigest(fresh))), uint256(IMaguAccess.GrantStatus.Valid), "fresh");
        IMaguAccess.Grant memory ahead = _grant(grantee, 3, uint64(START_TIME + 1 days), 2);
        assertEq(_status(ahead, _sign(client, access.grantDigest(ahead))), uint256(IMaguAccess.GrantStatus.Revoked), "ahead");
        // Checked before the time: revoked and expired is Revoked.
        IMaguAccess.Grant memory old = _grant(grantee, 3, 1, 0);
        assertEq(_status(old, _sign(client, access.grantDigest(old))), uint256(IMaguAccess.GrantStatus.Revoked), "order");
    }

    function test_checkGrant_expired() public {
        IMaguAccess.Grant memory g = _grant(_peer("peer"), 3, uint64(START_TIME + 10), 0);
        bytes memory sig = _sign(client, access.grantDigest(g));
        vm.warp(START_TIME + 9);
        assertEq(_status(g, sig), uint256(IMaguAccess.GrantStatus.Valid), "a second before");
        vm.warp(START_TIME + 10);
        assertEq(_status(g, sig), uint256(IMaguAccess.GrantStatus.Expired), "at expires");
        vm.warp(START_TIME + 1000);
        assertEq(_status(g, sig), uint256(IMaguAccess.GrantStatus.Expired), "after");
    }

    /// @notice Attack: a grant signed by a Magu's former owner lets nobody in, and the former owner
    /// can no longer change the Magu's settings (the owner is read at each call).
    function test_attack_formerOwnerGrant() public {
        OwnerBook book = new OwnerBook();
        IMaguAccess.Config memory c = access.config();
        c.maguRegistry = IMaguRegistry(address(book));
        MaguAccess other = MaguAccess(deployArtifact("MaguAccess.sol:MaguAccess", abi.encode(c)));
        book.setOwner(1, client);
        IMaguAccess.Grant memory g =
            IMaguAccess.Grant({magu: 1, grantee: _peer("peer"), rights: 3, expires: uint64(START_TIME + 1 days), nonce: 0});
        bytes memory byOld = _sign(client, other.grantDigest(g));
        assertEq(uint256(other.checkGrant(g, byOld)), uint256(IMaguAccess.GrantStatus.Valid), "valid while owner");

        book.setOwner(1, stranger);
        assertEq(uint256(other.checkGrant(g, byOld)), uint256(IMaguAccess.GrantStatus.NotOwner), "former owner's grant");
        assertEq(
            uint256(other.checkGrant(g, _sign(stranger, other.grantDigest(g)))),
            uint256(IMaguAccess.GrantStatus.Valid),
            "the new owner's grant"
        );
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, MaguId.wrap(1), client));
        vm.prank(client);
        other.setPublic(MaguId.wrap(1), true);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, MaguId.wrap(1), client));
        vm.prank(client);
        other.revoke(MaguId.wrap(1), _peer("peer"));
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, MaguId.wrap(1), client));
        vm.prank(client);
        other.setSearchPrice(MaguId.wrap(1), 1);
        simReport("former owner's grant (access)", 0, 0, "refused: grants and settings follow the current owner");
    }

    /// @notice A grant signed for another MaguAccess deployment (or chain) is not valid here.
    function test_checkGrant_boundToTheDeployment() public {
        IMaguAccess.Config memory c = access.config();
        MaguAccess other = MaguAccess(deployArtifact("MaguAccess.sol:MaguAccess", abi.encode(c)));
        IMaguAccess.Grant memory g = _grantTo(_peer("peer"));
        bytes memory sig = _sign(client, other.grantDigest(g));
        assertEq(uint256(other.checkGrant(g, sig)), uint256(IMaguAccess.GrantStatus.Valid), "there");
        assertEq(_status(g, sig), uint256(IMaguAccess.GrantStatus.NotOwner), "not here");
    }

    // ------------------------------------------------------------ deposits and withdrawals

    function test_deposit() public {
        fund(payer, DEPOSIT);
        vm.startPrank(payer);
        token.approve(address(access), DEPOSIT);
        vm.expectRevert(IMaguAccess.AccessZeroAmount.selector);
        access.deposit(id, 0);
        vm.expectEmit(true, true, false, true, address(access));
        emit IMaguAccess.Deposited(id, payer, 60 ether);
        access.deposit(id, 60 ether);
        access.deposit(id, 40 ether);
        vm.stopPrank();
        assertEq(access.balanceOf(id, payer), DEPOSIT, "both deposits");
        assertEq(token.balanceOf(address(access)), DEPOSIT, "held here");
        assertEq(token.balanceOf(payer), 0, "taken from the payer");
        assertEq(access.balanceOf(MaguId.wrap(99), payer), 0, "per Magu");
        assertEq(access.withdrawableAt(id, payer), 0, "no request");
    }

    function test_withdraw_afterTheDelay() public {
        _deposit(payer, DEPOSIT);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessWithdrawNotReady.selector, uint64(0)));
        vm.prank(payer);
        access.withdraw(id);

        uint64 at = uint64(blockNumber()) + WITHDRAW_DELAY_BLOCKS;
        vm.expectEmit(true, true, false, true, address(access));
        emit IMaguAccess.WithdrawRequested(id, payer, at);
        vm.prank(payer);
        access.requestWithdraw(id);
        assertEq(access.withdrawableAt(id, payer), at, "requested");

        vm.roll(at - 1);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessWithdrawNotReady.selector, at));
        vm.prank(payer);
        access.withdraw(id);

        // A deposit after the request does not cancel it, and is withdrawn with the rest.
        _deposit(payer, 5 ether);
        assertEq(access.withdrawableAt(id, payer), at, "still requested");
        vm.roll(at);
        vm.expectEmit(true, true, false, true, address(access));
        emit IMaguAccess.Withdrawn(id, payer, DEPOSIT + 5 ether);
        vm.prank(payer);
        access.withdraw(id);
        assertEq(token.balanceOf(payer), DEPOSIT + 5 ether, "all of it back");
        assertEq(access.balanceOf(id, payer), 0, "empty");
        assertEq(access.withdrawableAt(id, payer), 0, "request cleared");
        assertEq(token.balanceOf(address(access)), 0, "nothing left here");

        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessWithdrawNotReady.selector, uint64(0)));
        vm.prank(payer);
        access.withdraw(id);
    }

    function test_withdraw_secondRequestRestartsTheDelay_emptyBalance() public {
        vm.prank(payer);
        access.requestWithdraw(id);
        skipBlocks(5);
        vm.prank(payer);
        access.requestWithdraw(id);
        uint64 at = uint64(blockNumber()) + WITHDRAW_DELAY_BLOCKS;
        assertEq(access.withdrawableAt(id, payer), at, "from the second request");
        vm.roll(at);
        // Nothing deposited: the request is cleared, nothing moves.
        vm.expectEmit(true, true, false, true, address(access));
        emit IMaguAccess.Withdrawn(id, payer, 0);
        vm.prank(payer);
        access.withdraw(id);
        assertEq(access.withdrawableAt(id, payer), 0, "cleared");
    }

    // ------------------------------------------------------------ settlement

    function test_settle_paysTheDifference() public {
        _deposit(payer, DEPOSIT);
        address member = members[0];
        IMaguAccess.Voucher memory v = _voucher(member, 3, 3 ether);
        // Anyone may send it; only the member is paid.
        vm.expectEmit(true, true, true, true, address(access));
        emit IMaguAccess.SearchSettled(id, payer, member, 3, 3 ether);
        vm.prank(stranger);
        access.settle(v, payer, _signVoucher(payer, v));
        assertEq(token.balanceOf(member), 3 ether, "member paid");
        assertEq(token.balanceOf(stranger), 0, "the sender is not");
        (uint256 paid, uint64 searches) = access.settled(id, payer, member);
        assertEq(paid, 3 ether, "paid so far");
        assertEq(searches, 3, "searches recorded");
        assertEq(access.balanceOf(id, payer), DEPOSIT - 3 ether, "from the deposit");

        // The next voucher is cumulative: it pays only what the first did not.
        IMaguAccess.Voucher memory next = _voucher(member, 10, 10 ether);
        vm.prank(member);
        access.settle(next, payer, _signVoucher(payer, next));
        assertEq(token.balanceOf(member), 10 ether, "10 in all");
        (paid, searches) = access.settled(id, payer, member);
        assertEq(paid, 10 ether, "paid so far");
        assertEq(searches, 10, "searches recorded");
        assertEq(access.balanceOf(id, payer), DEPOSIT - 10 ether, "10 from the deposit");
        assertEq(token.balanceOf(address(access)), DEPOSIT - 10 ether, "held = balances");

        // Another member's vouchers are counted apart.
        IMaguAccess.Voucher memory otherMember = _voucher(members[1], 1, 1 ether);
        access.settle(otherMember, payer, _signVoucher(payer, otherMember));
        assertEq(token.balanceOf(members[1]), 1 ether, "the other member");
        assertEq(_paid(member), 10 ether, "the first unchanged");
    }

    function test_settle_stale() public {
        _deposit(payer, DEPOSIT);
        IMaguAccess.Voucher memory v = _voucher(members[0], 5, 5 ether);
        access.settle(v, payer, _signVoucher(payer, v));
        IMaguAccess.Voucher memory older = _voucher(members[0], 2, 2 ether);
        bytes memory sig = _signVoucher(payer, older);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, 5 ether, 2 ether));
        access.settle(older, payer, sig);
        IMaguAccess.Voucher memory zero = _voucher(members[1], 0, 0);
        sig = _signVoucher(payer, zero);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, 0, 0));
        access.settle(zero, payer, sig);
    }

    function test_settle_badSignature() public {
        _deposit(payer, DEPOSIT);
        IMaguAccess.Voucher memory v = _voucher(members[0], 1, 1 ether);
        bytes memory good = _signVoucher(payer, v);
        // Signed by someone else, named as the payer or not.
        bytes memory byStranger = _signVoucher(stranger, v);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessBadVoucher.selector, stranger));
        access.settle(v, payer, byStranger);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessBadVoucher.selector, payer));
        access.settle(v, stranger, good);
        // Malformed: no valid signer at all.
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessBadVoucher.selector, address(0)));
        access.settle(v, payer, "");
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessBadVoucher.selector, address(0)));
        access.settle(v, address(0), new bytes(65));
        // The signature covers every field: a larger total or another member is another voucher.
        IMaguAccess.Voucher memory more = _voucher(members[0], 1, 2 ether);
        vm.expectRevert();
        access.settle(more, payer, good);
        IMaguAccess.Voucher memory elsewhere = _voucher(members[1], 1, 1 ether);
        vm.expectRevert();
        access.settle(elsewhere, payer, good);
        assertEq(access.balanceOf(id, payer), DEPOSIT, "nothing paid");
    }

    function test_settle_notAMember() public {
        _deposit(payer, DEPOSIT);
        IMaguAccess.Voucher memory v = _voucher(stranger, 1, 1 ether);
        bytes memory sig = _signVoucher(payer, v);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotMember.selector, id, stranger));
        access.settle(v, payer, sig);
    }

    /// @notice A member that left can still settle what it earned while it served.
    function test_settle_formerMember() public {
        _deposit(payer, DEPOSIT);
        address member = members[0];
        IMaguAccess.Voucher memory v = _voucher(member, 2, 2 ether);
        bytes memory sig = _signVoucher(payer, v);
        vm.prank(member);
        magus.leave(id);
        access.settle(v, payer, sig);
        assertEq(token.balanceOf(member), 2 ether, "paid after leaving");
    }

    function test_settle_beyondTheDeposit_paysWhatIsThere() public {
        _deposit(payer, 4 ether);
        address member = members[0];
        IMaguAccess.Voucher memory v = _voucher(member, 6, 6 ether);
        bytes memory sig = _signVoucher(payer, v);
        vm.expectEmit(true, true, true, true, address(access));
        emit IMaguAccess.SearchSettled(id, payer, member, 6, 4 ether);
        access.settle(v, payer, sig);
        assertEq(token.balanceOf(member), 4 ether, "what was there");
        assertEq(_paid(member), 4 ether, "paid so far");
        assertEq(access.balanceOf(id, payer), 0, "empty");
        vm.expectRevert(IMaguAccess.AccessNothingToPay.selector);
        access.settle(v, payer, sig);

        // The rest stays owed: the same voucher pays it once the payer deposits again.
        _deposit(payer, 10 ether);
        access.settle(v, payer, sig);
        assertEq(token.balanceOf(member), 6 ether, "the rest");
        assertEq(access.balanceOf(id, payer), 8 ether, "the deposit keeps the change");
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, 6 ether, 6 ether));
        access.settle(v, payer, sig);
    }

    function test_settle_nothingDeposited() public {
        IMaguAccess.Voucher memory v = _voucher(members[0], 1, 1 ether);
        bytes memory sig = _signVoucher(payer, v);
        vm.expectRevert(IMaguAccess.AccessNothingToPay.selector);
        access.settle(v, payer, sig);
        // A deposit in another Magu does not pay this Magu's vouchers.
        fund(payer, 1 ether);
        vm.startPrank(payer);
        token.approve(address(access), 1 ether);
        access.deposit(MaguId.wrap(99), 1 ether);
        vm.stopPrank();
        vm.expectRevert(IMaguAccess.AccessNothingToPay.selector);
        access.settle(v, payer, sig);
    }

    // ------------------------------------------------------------ attacks on the money

    /// @notice Attack: a member settles the same voucher twice (or replays it later): paid once.
    function test_attack_voucherSettledTwice() public {
        _deposit(payer, DEPOSIT);
        address member = members[0];
        IMaguAccess.Voucher memory v = _voucher(member, 5, 5 ether);
        bytes memory sig = _signVoucher(payer, v);
        access.settle(v, payer, sig);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, 5 ether, 5 ether));
        vm.prank(member);
        access.settle(v, payer, sig);
        skipBlocks(100);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, 5 ether, 5 ether));
        access.settle(v, payer, sig);
        assertEq(token.balanceOf(member), 5 ether, "paid once");
        assertEq(access.balanceOf(id, payer), DEPOSIT - 5 ether, "taken once");
        simReport("voucher replay (access)", 0, 0, "refused: a voucher pays only its total above what was paid");
    }

    /// @notice Attack: a member (or anyone) forges the payer's voucher with its own key: nothing paid.
    function test_attack_forgedVoucher() public {
        _deposit(payer, DEPOSIT);
        address member = members[0];
        IMaguAccess.Voucher memory v = _voucher(member, 1000, DEPOSIT);
        bytes memory forged = _sign(member, access.voucherDigest(v));
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessBadVoucher.selector, member));
        access.settle(v, payer, forged);
        // Signed for another MaguAccess deployment: not this one's digest.
        MaguAccess other = MaguAccess(deployArtifact("MaguAccess.sol:MaguAccess", abi.encode(access.config())));
        bytes memory elsewhere = _sign(payer, other.voucherDigest(v));
        vm.expectRevert();
        access.settle(v, payer, elsewhere);
        assertEq(token.balanceOf(member), 0, "nothing paid");
        assertEq(access.balanceOf(id, payer), DEPOSIT, "deposit intact");
        simReport("forged voucher (access)", 0, 0, "refused: only the payer's EIP-712 signature pays");
    }

    /// @notice Attack: the owner raises the search price after the payer signed: the voucher pays
    /// what it says, never more.
    function test_attack_priceRaisedAfterSigning() public {
        vm.prank(client);
        access.setSearchPrice(id, 1 ether);
        _deposit(payer, DEPOSIT);
        address member = members[0];
        IMaguAccess.Voucher memory v = _voucher(member, 4, 4 ether); // 4 searches at 1
        bytes memory sig = _signVoucher(payer, v);
        vm.prank(client);
        access.setSearchPrice(id, 10 ether);
        access.settle(v, payer, sig);
        assertEq(token.balanceOf(member), 4 ether, "the signed total");
        assertEq(access.balanceOf(id, payer), DEPOSIT - 4 ether, "no more taken");
        simReport("price raised after signing (access)", 0, 0, "refused: a voucher pays its signed total");
    }

    /// @notice Attack: the payer searches, then tries to leave before the members settle. It
    /// cannot withdraw before the delay; a member settling within it is paid first, and the
    /// withdrawal takes only the rest.
    function test_attack_withdrawBeforeSettlement() public {
        _deposit(payer, DEPOSIT);
        address member = members[0];
        IMaguAccess.Voucher memory v = _voucher(member, 30, 30 ether);
        bytes memory sig = _signVoucher(payer, v);
        vm.prank(payer);
        access.requestWithdraw(id);
        uint64 at = access.withdrawableAt(id, payer);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessWithdrawNotReady.selector, at));
        vm.prank(payer);
        access.withdraw(id);

        vm.roll(at - 1); // the member settles in the last block of the delay
        vm.prank(member);
        access.settle(v, payer, sig);
        vm.roll(at);
        vm.prank(payer);
        access.withdraw(id);
        assertEq(token.balanceOf(member), 30 ether, "the member was paid in full");
        assertEq(token.balanceOf(payer), DEPOSIT - 30 ether, "the payer got only the rest");
        simReport(
            "withdraw before settlement (access)",
            delta(DEPOSIT, token.balanceOf(payer)),
            int256(token.balanceOf(member)),
            "refused: the delay lets members settle first"
        );
    }

    /// @notice Attack: the payer signs its own deposit over to an address of its own, to leave
    /// without the delay: only members can be paid.
    function test_attack_selfVoucher() public {
        _deposit(payer, DEPOSIT);
        address alt = newActor("payer-alt");
        IMaguAccess.Voucher memory v = _voucher(alt, 0, DEPOSIT);
        bytes memory sig = _signVoucher(payer, v);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotMember.selector, id, alt));
        access.settle(v, payer, sig);
        IMaguAccess.Voucher memory self = _voucher(payer, 0, DEPOSIT);
        sig = _signVoucher(payer, self);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotMember.selector, id, payer));
        access.settle(self, payer, sig);
        assertEq(access.balanceOf(id, payer), DEPOSIT, "the deposit stays for the members");
        simReport("self-voucher to skip the delay (access)", 0, 0, "refused: vouchers pay only members");
    }

    /// @notice A token that calls back cannot re-enter deposit, withdraw, settle or settleRead.
    function test_reentrancy_guarded() public {
        ReentrantToken bad = new ReentrantToken();
        OwnerBook book = new OwnerBook();
        MaguAccess guarded = MaguAccess(
            deployArtifact(
                "MaguAccess.sol:MaguAccess",
                abi.encode(
                    IMaguAccess.Config({token: IERC20(address(bad)), maguRegistry: IMaguRegistry(address(book)), withdrawDelayBlocks: 5})
                )
            )
        );
        MaguId m = MaguId.wrap(1);
        address member = members[0];
        book.setMember(1, member);
        bad.mint(payer, 10 ether);
        vm.startPrank(payer);
        bad.approve(address(guarded), 10 ether);
        guarded.deposit(m, 5 ether);
        vm.stopPrank();

        IMaguAccess.Voucher memory v = IMaguAccess.Voucher({magu: 1, member: member, searches: 1, total: 1 ether});
        bytes memory sig = _sign(payer, guarded.voucherDigest(v));
        bytes4 reentered = ReentrancyGuard.ReentrancyGuardReentrantCall.selector;
        // settle's transfer calls settle again.
        bad.arm(address(guarded), abi.encodeCall(IMaguAccess.settle, (v, payer, sig)));
        vm.expectRevert(reentered);
        guarded.settle(v, payer, sig);
        // settleRead's transfer calls settleRead again.
        uint32[] memory one = _list(0, 1);
        IMaguAccess.ReadVoucher memory rv = IMaguAccess.ReadVoucher({
            magu: 1, member: member, fragments: 1, reads: _chain(0, one), total: 1 ether, maxUnitPrice: 1 ether
        });
        bytes memory rsig = _sign(payer, guarded.readVoucherDigest(rv));
        bad.arm(address(guarded), abi.encodeCall(IMaguAccess.settleRead, (rv, payer, rsig, one)));
        vm.expectRevert(reentered);
        guarded.settleRead(rv, payer, rsig, one);
        // deposit's transferFrom calls withdraw.
        bad.arm(address(guarded), abi.encodeCall(IMaguAccess.withdraw, (m)));
        vm.expectRevert(reentered);
        vm.prank(payer);
        guarded.deposit(m, 1 ether);
        // withdraw's transfer calls deposit.
        vm.prank(payer);
        guarded.requestWithdraw(m);
        skipBlocks(5);
        bad.arm(address(guarded), abi.encodeCall(IMaguAccess.deposit, (m, 1 ether)));
        vm.expectRevert(reentered);
        vm.prank(payer);
        guarded.withdraw(m);
        assertEq(guarded.balanceOf(m, payer), 5 ether, "nothing moved");
    }

    // ------------------------------------------------------------ paid reads

    uint256 internal constant BASE = 1 ether;
    /// @dev The fragment most tests read; its placement group is itself (a vector Magu, r = 2).
    uint32 internal constant F = 0;

    /// @dev What a reader's client keeps per member: its cumulative read voucher so far.
    struct ReadAccount {
        uint64 fragments;
        bytes32 reads;
        uint256 total;
    }

    mapping(bytes32 key => ReadAccount) internal _readAccounts;

    function _list(uint32 fragment, uint256 n) internal pure returns (uint32[] memory l) {
        l = new uint32[](n);
        for (uint256 i; i < n; ++i) {
            l[i] = fragment;
        }
    }

    /// @dev The reads hash chain from `h` over `served` (IMaguAccess.ReadVoucher).
    function _chain(bytes32 h, uint32[] memory served) internal pure returns (bytes32) {
        for (uint256 i; i < served.length; ++i) {
            h = keccak256(abi.encodePacked(h, served[i]));
        }
        return h;
    }

    function _readVoucher(address member, uint64 fragments, bytes32 reads, uint256 total, uint256 maxUnitPrice)
        internal
        view
        returns (IMaguAccess.ReadVoucher memory)
    {
        return IMaguAccess.ReadVoucher({
            magu: MaguId.unwrap(id),
            member: member,
            fragments: fragments,
            reads: reads,
            total: total,
            maxUnitPrice: maxUnitPrice
        });
    }

    function _signRead(address who, IMaguAccess.ReadVoucher memory v) internal view returns (bytes memory) {
        return _sign(who, access.readVoucherDigest(v));
    }

    /// @dev `reader` reads `served` from `member` at `unit` each (at most `max`) and `member`
    /// settles the voucher at once; returns what it was paid.
    function _readAndSettle(address reader, address member, uint32[] memory served, uint256 unit, uint256 max)
        internal
        returns (uint256 paid)
    {
        ReadAccount storage r = _readAccounts[keccak256(abi.encode(reader, member))];
        r.fragments += uint64(served.length);
        r.reads = _chain(r.reads, served);
        r.total += unit * served.length;
        IMaguAccess.ReadVoucher memory v = _readVoucher(member, r.fragments, r.reads, r.total, max);
        uint256 before = token.balanceOf(member);
        vm.prank(member);
        access.settleRead(v, reader, _signRead(reader, v), served);
        return token.balanceOf(member) - before;
    }

    /// @dev The two holders of `fragment`.
    function _holders(uint256 fragment) internal view returns (address a, address b) {
        address[] memory h = magus.holders(id, fragment);
        return (h[0], h[1]);
    }

    /// @dev The member of the Magu that does not hold `fragment`.
    function _nonHolder(uint256 fragment) internal view returns (address) {
        (address a, address b) = _holders(fragment);
        for (uint256 i; i < members.length; ++i) {
            if (members[i] != a && members[i] != b) return members[i];
        }
        revert("no non-holder");
    }

    /// @dev The Magu with 8 fragments committed and a base read price.
    function _priced() internal {
        commitData(id, 7, 8);
        vm.prank(client);
        access.setReadPrice(id, BASE);
    }

    function _mult(uint256 fragment, address member) internal view returns (uint256 m) {
        (m,,) = access.readMultiplier(id, fragment, member);
    }

    function test_setReadPrice_ownerOnly() public {
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotOwner.selector, id, stranger));
        vm.prank(stranger);
        access.setReadPrice(id, BASE);
        commitData(id, 7, 8);
        vm.expectEmit(true, true, true, true, address(access));
        emit IMaguAccess.ReadPriceSet(id, BASE);
        vm.prank(client);
        access.setReadPrice(id, BASE);
        assertEq(access.readPrice(id), BASE, "base price");
        assertEq(access.readUnitPrice(id, F, members[0]), BASE, "x1 with every slot held and no demand");
        assertEq(access.readUnitPrice(id, access.NO_FRAGMENT(), members[0]), BASE, "a document is read at the base price");
        assertEq(access.readUnitPrice(id, 8, members[0]), BASE, "so is a fragment not committed");
    }

    function test_settleRead_paysTheDifference_andCountsDemandPerFragment() public {
        _priced();
        _deposit(payer, DEPOSIT);
        (address a, address b) = _holders(F);
        uint32[] memory served = _list(F, 3);
        bytes32 reads = _chain(0, served);
        IMaguAccess.ReadVoucher memory v = _readVoucher(a, 3, reads, 3 ether, 2 ether);
        vm.expectEmit(true, true, true, true, address(access));
        emit IMaguAccess.ReadSettled(id, payer, a, 3, 3 ether, 3);
        vm.prank(stranger); // anyone may send it; only the member is paid
        access.settleRead(v, payer, _signRead(payer, v), served);
        assertEq(token.balanceOf(a), 3 ether, "member paid");
        (uint256 paid, uint64 fragments, bytes32 settledReads) = access.readSettled(id, payer, a);
        assertEq(paid, 3 ether, "paid so far");
        assertEq(fragments, 3, "fragments recorded");
        assertEq(settledReads, reads, "reads chain recorded");
        assertEq(access.readEarned(a), 3 ether, "read earnings");
        (uint256 others, uint256 own) = access.readDemand(id, F, a);
        assertEq(others, 0, "a's own reads are not others' demand for a");
        assertEq(own, 3 * access.DEMAND_UNIT(), "3 base-price fragments at a's slot");
        (others, own) = access.readDemand(id, F, b);
        assertEq(others, 3 * access.DEMAND_UNIT(), "for b they are");
        assertEq(_mult(F, a), 10_000, "a member's own reads do not raise its own multiplier");
        assertEq(_mult(F, b), 15_000, "the fragment's other holder gets the demand bonus");
        assertEq(access.readUnitPrice(id, F, b), 1.5 ether, "unit price = base x the fragment's multiplier");
        for (uint256 g = 1; g < 8; ++g) {
            assertEq(_mult(g, b), 10_000, "other fragments have no demand");
        }

        // Cumulative: the next voucher pays only the rest and lists only the reads since; a
        // document read is paid and adds no demand.
        uint32[] memory more = new uint32[](2);
        more[0] = F;
        more[1] = access.NO_FRAGMENT();
        IMaguAccess.ReadVoucher memory next = _readVoucher(a, 5, _chain(reads, more), 5.3 ether, 2 ether);
        access.settleRead(next, payer, _signRead(payer, next), more);
        assertEq(token.balanceOf(a), 5.3 ether, "5.3 in all");
        assertEq(access.balanceOf(id, payer), DEPOSIT - 5.3 ether, "from the deposit");
        (, own) = access.readDemand(id, F, a);
        assertEq(own, 3 * access.DEMAND_UNIT() + 11_500, "half of 2.3 on the fragment, none for the document");
        assertEq(_paid(a), 0, "search vouchers untouched");
        assertEq(token.balanceOf(address(access)), DEPOSIT - 5.3 ether, "held = balances");
    }

    function test_settleRead_replayAndStale() public {
        _priced();
        _deposit(payer, DEPOSIT);
        (address a,) = _holders(F);
        uint32[] memory served = _list(F, 4);
        IMaguAccess.ReadVoucher memory v = _readVoucher(a, 4, _chain(0, served), 4 ether, BASE);
        bytes memory sig = _signRead(payer, v);
        access.settleRead(v, payer, sig, served);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, 4 ether, 4 ether));
        access.settleRead(v, payer, sig, served);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, 4 ether, 4 ether));
        access.settleRead(v, payer, sig, new uint32[](0));
        uint32[] memory two = _list(F, 2);
        IMaguAccess.ReadVoucher memory older = _readVoucher(a, 2, _chain(0, two), 2 ether, BASE);
        sig = _signRead(payer, older);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, 4 ether, 2 ether));
        access.settleRead(older, payer, sig, two);
        // A search voucher's signature does not pass for a read voucher (another EIP-712 type).
        IMaguAccess.Voucher memory search = _voucher(a, 6, 6 ether);
        bytes memory searchSig = _signVoucher(payer, search);
        IMaguAccess.ReadVoucher memory same = _readVoucher(a, 6, _chain(0, _list(F, 6)), 6 ether, BASE);
        vm.expectRevert();
        access.settleRead(same, payer, searchSig, _list(F, 6));
        assertEq(token.balanceOf(a), 4 ether, "paid once");
    }

    /// @notice The fragments listed must be exactly those the reader signed, in order, beyond the
    /// ones settled: a member cannot move the demand to another fragment.
    function test_settleRead_readsMustMatchTheVoucher() public {
        _priced();
        _deposit(payer, DEPOSIT);
        (address a,) = _holders(F);
        uint32[] memory served = new uint32[](3);
        (served[0], served[1], served[2]) = (F, 1, 2);
        bytes32 reads = _chain(0, served);
        IMaguAccess.ReadVoucher memory v = _readVoucher(a, 3, reads, 3 ether, BASE);
        bytes memory sig = _signRead(payer, v);
        uint32[] memory reordered = new uint32[](3);
        (reordered[0], reordered[1], reordered[2]) = (F, 2, 1);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessReadsMismatch.selector, bytes32(0), 0, reads, 3));
        access.settleRead(v, payer, sig, reordered);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessReadsMismatch.selector, bytes32(0), 0, reads, 3));
        access.settleRead(v, payer, sig, _list(5, 3));
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessReadsMismatch.selector, bytes32(0), 0, reads, 2));
        access.settleRead(v, payer, sig, _list(F, 2));
        access.settleRead(v, payer, sig, served);
        // The next settlement lists only what follows the settled chain.
        uint32[] memory more = _list(3, 1);
        IMaguAccess.ReadVoucher memory next = _readVoucher(a, 4, _chain(reads, more), 4 ether, BASE);
        sig = _signRead(payer, next);
        uint32[] memory all = new uint32[](4);
        (all[0], all[1], all[2], all[3]) = (F, 1, 2, 3);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessReadsMismatch.selector, reads, 3, next.reads, 4));
        access.settleRead(next, payer, sig, all);
        access.settleRead(next, payer, sig, more);
        assertEq(token.balanceOf(a), 4 ether, "both paid");
        (uint256 others,) = access.readDemand(id, 5, a);
        assertEq(others, 0, "no demand on the fragment the member tried to name");
    }

    function test_settleRead_overTheReadersMaxPrice() public {
        _priced();
        _deposit(payer, DEPOSIT);
        (address a,) = _holders(F);
        uint32[] memory two = _list(F, 2);
        // 2 fragments at most 1 each: a total of 2.5 is more than the reader agreed to.
        IMaguAccess.ReadVoucher memory v = _readVoucher(a, 2, _chain(0, two), 2.5 ether, BASE);
        bytes memory sig = _signRead(payer, v);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessReadOverMax.selector, 2.5 ether, 2, BASE));
        access.settleRead(v, payer, sig, two);
        IMaguAccess.ReadVoucher memory none = _readVoucher(a, 0, 0, 1, BASE);
        sig = _signRead(payer, none);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessReadOverMax.selector, 1, 0, BASE));
        access.settleRead(none, payer, sig, new uint32[](0));
        IMaguAccess.ReadVoucher memory atMax = _readVoucher(a, 2, _chain(0, two), 2 ether, BASE);
        access.settleRead(atMax, payer, _signRead(payer, atMax), two);
        assertEq(token.balanceOf(a), 2 ether, "at the max is paid");
    }

    function test_settleRead_refusals() public {
        _priced();
        _deposit(payer, DEPOSIT);
        uint32[] memory one = _list(F, 1);
        bytes32 reads = _chain(0, one);
        IMaguAccess.ReadVoucher memory v = _readVoucher(members[0], 1, reads, 1 ether, BASE);
        bytes memory sig = _signRead(stranger, v);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessBadVoucher.selector, stranger));
        access.settleRead(v, payer, sig, one);
        IMaguAccess.ReadVoucher memory outsider = _readVoucher(stranger, 1, reads, 1 ether, BASE);
        sig = _signRead(payer, outsider);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessNotMember.selector, id, stranger));
        access.settleRead(outsider, payer, sig, one);
        sig = _signRead(stranger, v);
        vm.expectRevert(IMaguAccess.AccessNothingToPay.selector);
        access.settleRead(v, stranger, sig, one);
    }

    /// @notice A fragment's multiplier: x1 at rest, up by its own group's vacancies (a vacancy
    /// elsewhere does not count) and by the other holders' paid reads (halving every
    /// DEMAND_HALF_LIFE_BLOCKS even when settled often), never above x2.
    function test_readMultiplier_rarityDemandDecayAndCap() public {
        _priced();
        (address a, address b) = _holders(F);
        address c = _nonHolder(F);
        assertEq(_mult(F, a), 10_000, "x1 at rest");
        _deposit(payer, DEPOSIT);
        uint64 half = access.DEMAND_HALF_LIFE_BLOCKS();
        vm.roll((block.number / half + 1) * half);
        // 40 base-price fragments paid to b for F: a's demand bonus stops at +50 %.
        _readAndSettle(payer, b, _list(F, 40), BASE, BASE);
        (uint256 m, uint256 rarity, uint256 demand) = access.readMultiplier(id, F, a);
        assertEq(demand, 5_000, "demand bonus capped");
        assertEq(rarity, 0, "no vacancy");
        assertEq(m, 15_000, "x1.5");
        // Settled every 100 blocks, demand still halves every 300.
        for (uint256 i; i < 3; ++i) {
            skipBlocks(half / 3);
            _readAndSettle(payer, b, _list(F, 1), 0.01 ether, BASE);
        }
        (uint256 others,) = access.readDemand(id, F, a);
        assertEq(others, (400_200 >> 1) + 100, "halved once in 300 blocks");
        skipBlocks(uint256(half) * 20);
        (others,) = access.readDemand(id, F, a);
        assertEq(others, 0, "forgotten");
        assertEq(_mult(F, a), 10_000, "no demand bonus");
        // A member that holds no replica of F leaves: F is no rarer.
        vm.prank(c);
        magus.leave(id);
        assertEq(_mult(F, a), 10_000, "a vacancy elsewhere");
        // F's other holder leaves: half of F's holders are vacant.
        vm.prank(b);
        magus.leave(id);
        (m, rarity,) = access.readMultiplier(id, F, a);
        assertEq(rarity, 2_500, "one of two holders vacant");
        assertEq(m, 12_500, "x1.25");
        // Reads b served before it left still count as demand.
        _readAndSettle(payer, b, _list(F, 40), BASE, BASE);
        assertEq(_mult(F, a), 17_500, "rarity and demand add up");
    }

    /// @notice The demand bonus is earned by the other holders' reads and fades as the member's own
    /// paid reads reach 1.5 times theirs.
    function test_readMultiplier_ownReadsUseUpTheBonus() public {
        _priced();
        _deposit(payer, DEPOSIT);
        (address a, address b) = _holders(F);
        _readAndSettle(payer, b, _list(F, 2), BASE, BASE);
        assertEq(_mult(F, a), 15_000, "2 paid at b: full bonus for a");
        _readAndSettle(payer, a, _list(F, 2), 1.25 ether, 2 * BASE);
        // others 2, own 2.5: room 3 - 2.5 = 0.5 of a base-price fragment, +25 %.
        assertEq(_mult(F, a), 12_500, "half the bonus left");
        _readAndSettle(payer, a, _list(F, 1), 1.25 ether, 2 * BASE);
        assertEq(_mult(F, a), 10_000, "used up");
        assertEq(_mult(F, b), 15_000, "b's bonus comes from a's reads");
    }

    /// @notice Whatever is paid to which holder and however many slots are vacant, every
    /// fragment's multiplier and unit price stay within x2.
    function testFuzz_readMultiplier_neverAboveTheCap(uint256 paidRaw, uint256 ownRaw, uint8 leavers, uint8 fragmentRaw)
        public
    {
        _priced();
        uint256 f = fragmentRaw % 8;
        (address a, address b) = _holders(f);
        _deposit(payer, DEPOSIT);
        uint256 amount = bound(paidRaw, 1, DEPOSIT / 2);
        _readAndSettle(payer, b, _list(uint32(f), 1), amount, amount);
        uint256 own = bound(ownRaw, 0, DEPOSIT / 2);
        if (own > 0) _readAndSettle(payer, a, _list(uint32(f), 1), own, own);
        for (uint256 i = 1; i <= leavers % 3; ++i) {
            vm.prank(members[i]);
            magus.leave(id);
        }
        for (uint256 i; i < members.length; ++i) {
            for (uint256 g; g < 8; ++g) {
                assertLe(_mult(g, members[i]), access.MAX_READ_MULTIPLIER_BPS(), "multiplier bounded");
                assertLe(access.readUnitPrice(id, g, members[i]), 2 * BASE, "unit price bounded");
            }
        }
    }

    /// @notice Attack: inflate demand with a voucher that claims many fragments for a tiny total.
    /// Demand counts what was paid, spread over the fragments listed: the multiplier does not move.
    function test_attack_demandFromClaimedFragments() public {
        _priced();
        _deposit(payer, DEPOSIT);
        (address a, address b) = _holders(F);
        uint32[] memory claimed = _list(F, 200);
        IMaguAccess.ReadVoucher memory v = _readVoucher(b, 200, _chain(0, claimed), 1 wei, 1 wei);
        access.settleRead(v, payer, _signRead(payer, v), claimed);
        (uint256 others,) = access.readDemand(id, F, a);
        assertEq(others, 0, "1 wei for 200 fragments is no demand");
        assertEq(_mult(F, a), 10_000, "x1");
        simReport("demand from claimed fragments (reads)", 0, 0, "refused: demand counts tokens paid");
    }

    /// @notice Attack: a member pays itself for reads from its own deposit - a payer that is a
    /// member would drain its deposit ahead of the other members it owes, without the delay.
    function test_attack_selfPayment() public {
        _priced();
        (address member, address other) = _holders(F);
        _deposit(member, 10 ether);
        uint32[] memory ten = _list(F, 10);
        IMaguAccess.ReadVoucher memory v = _readVoucher(member, 10, _chain(0, ten), 10 ether, BASE);
        bytes memory sig = _signRead(member, v);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessSelfPayment.selector, member));
        access.settleRead(v, member, sig, ten);
        // The member it owes is still paid from that deposit.
        IMaguAccess.ReadVoucher memory owed = _readVoucher(other, 10, _chain(0, ten), 10 ether, BASE);
        access.settleRead(owed, member, _signRead(member, owed), ten);
        assertEq(token.balanceOf(other), 10 ether, "the other member paid");
        simReport("self-payment to skip the delay (reads)", 0, 0, "refused: a payer never pays itself");
    }

    /// @notice Attack: a node farms reads by serving its own fragment to a second account of its
    /// own, to earn and to raise the fragment's demand so honest readers pay it more. Nothing is
    /// minted for a read, so its money only goes round (minus gas), and demand settled at a
    /// member's own slot never raises that member's multiplier. An honest reader's voucher caps
    /// what it pays at the reader's own max.
    function test_attack_selfServingFarm() public {
        _priced();
        (address node, address other) = _holders(F);
        address sybil = newActor("sybil-reader");
        _deposit(sybil, 50 ether);
        uint256 supply = token.totalSupply();
        uint256 nodeRewards = rewards.claimable(node);
        uint256 before = token.balanceOf(node) + token.balanceOf(sybil) + access.balanceOf(id, sybil);
        // 50 "reads" of its own fragment, redeemed.
        _readAndSettle(sybil, node, _list(F, 50), BASE, BASE);
        uint256 after_ = token.balanceOf(node) + token.balanceOf(sybil) + access.balanceOf(id, sybil);
        assertEq(after_, before, "the node's money only went round");
        assertEq(token.totalSupply(), supply, "nothing minted for reads");
        assertEq(rewards.claimable(node), nodeRewards, "no reward credited");
        assertEq(_mult(F, node), 10_000, "its own reads bought it no bonus");
        assertEq(_mult(F, other), 15_000, "they raised the other holder's");

        // The honest reader signed for at most the base price: a total above it is refused on
        // chain, and the node is paid exactly what the reader agreed to.
        _deposit(payer, DEPOSIT);
        uint32[] memory ten = _list(F, 10);
        IMaguAccess.ReadVoucher memory inflated = _readVoucher(node, 10, _chain(0, ten), 15 ether, BASE);
        bytes memory sig = _signRead(payer, inflated);
        vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessReadOverMax.selector, 15 ether, 10, BASE));
        access.settleRead(inflated, payer, sig, ten);
        IMaguAccess.ReadVoucher memory honest = _readVoucher(node, 10, _chain(0, ten), 10 ether, BASE);
        access.settleRead(honest, payer, _signRead(payer, honest), ten);
        assertEq(access.balanceOf(id, payer), DEPOSIT - 10 ether, "the reader paid its own max");
        simReport("self-serving read farm (reads)", delta(before, after_), 0, "no gain: readers pay, nothing minted");
    }

    /// @notice Attack: a member buys demand for its fragment where it counts - reads of the same
    /// fragment from the other holder, through a second account - then serves honest readers at
    /// the raised price. Had the bonus followed the other holders' demand alone, the 2 base-price
    /// fragments it paid would have earned it +50 % on all 20 honest reads (10 base); the bonus
    /// fades as its own paid reads reach 1.5 times the others', so it earns 1 and loses 1.
    function test_attack_buyDemandAtTheOtherHolder() public {
        _priced();
        (address node, address other) = _holders(F);
        address sybil = newActor("sybil-reader");
        _deposit(sybil, 2 ether);
        _deposit(payer, DEPOSIT);
        uint256 start = token.balanceOf(node) + token.balanceOf(sybil) + access.balanceOf(id, sybil);
        _readAndSettle(sybil, other, _list(F, 2), BASE, BASE);
        assertEq(_mult(F, node), 15_000, "demand bought");
        uint256 earned;
        uint256 unlimited; // what an others-only rule would have paid
        for (uint256 i; i < 20; ++i) {
            (uint256 others,) = access.readDemand(id, F, node);
            unlimited += others >= access.DEMAND_UNIT() ? 1.5 ether : BASE;
            earned += _readAndSettle(payer, node, _list(F, 1), access.readUnitPrice(id, F, node), 2 * BASE);
        }
        assertEq(unlimited, 30 ether, "without the limit: +50 % on every read");
        assertEq(earned, 21 ether, "with it: +50 % on two reads");
        uint256 end = token.balanceOf(node) - 20 ether + token.balanceOf(sybil) + access.balanceOf(id, sybil);
        int256 pnl = delta(start, end);
        assertEq(pnl, -1 ether, "the node lost what the bonus did not bring back");
        // The honest side: the other holder was paid 2, the reader paid 1 above the base price.
        simReport("bought demand at the other holder (reads)", pnl, 1 ether, "loses: 1 paid elsewhere buys a bonus on 1.5 own");
    }
}
