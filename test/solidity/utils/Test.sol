// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {console} from "hardhat/console.sol";
import {Vm} from "./Vm.sol";

/// @title Test
/// @notice A small base for Hardhat 3 Solidity tests (forge-std is not available offline): the
/// cheatcode handle, assertions that revert with a readable message, `bound`, and the target
/// selection functions the invariant fuzzer queries (`targetContracts`, `targetSelectors`,
/// `targetSenders`, `excludeContracts`, `excludeSenders`).
abstract contract Test {
    /// @notice A target contract and the functions of it the invariant fuzzer may call.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// @dev The address EDR (like hevm and forge) serves cheatcodes from.
    address internal constant VM_ADDRESS = address(uint160(uint256(keccak256("hevm cheat code"))));
    Vm internal constant vm = Vm(VM_ADDRESS);

    address[] private _targetContracts;
    address[] private _targetSenders;
    address[] private _excludeContracts;
    address[] private _excludeSenders;
    FuzzSelector[] private _targetSelectors;

    /// @notice Marks this contract as a test contract (ds-test convention; harmless for EDR).
    function IS_TEST() external pure returns (bool) {
        return true;
    }

    // ------------------------------------------------------------ invariant targets

    /// @notice Contracts the invariant fuzzer calls (empty: every contract deployed in setUp).
    function targetContracts() public view returns (address[] memory) {
        return _targetContracts;
    }

    /// @notice Functions the invariant fuzzer calls, per target contract.
    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetSelectors;
    }

    /// @notice Senders the invariant fuzzer uses (empty: random senders).
    function targetSenders() public view returns (address[] memory) {
        return _targetSenders;
    }

    /// @notice Contracts the invariant fuzzer never calls.
    function excludeContracts() public view returns (address[] memory) {
        return _excludeContracts;
    }

    /// @notice Senders the invariant fuzzer never uses.
    function excludeSenders() public view returns (address[] memory) {
        return _excludeSenders;
    }

    function targetContract(address target) internal {
        _targetContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetSelectors.push(selector);
    }

    function targetSender(address sender) internal {
        _targetSenders.push(sender);
    }

    function excludeContract(address target) internal {
        _excludeContracts.push(target);
    }

    function excludeSender(address sender) internal {
        _excludeSenders.push(sender);
    }

    // ------------------------------------------------------------ helpers

    /// @notice Maps `x` into [min, max]; values already inside are kept (so fuzz edge cases survive).
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        uint256 size = max - min;
        if (size == type(uint256).max) return x;
        return min + x % (size + 1);
    }

    /// @notice Private keys of the actors made by `makeAddr` (they sign, e.g. acknowledgements).
    mapping(address actor => uint256 key) internal actorKey;

    /// @notice A deterministic address for a named actor, with a private key, labelled in traces.
    function makeAddr(string memory name) internal returns (address a) {
        // secp256k1's group order: a key must be in [1, n).
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        uint256 key = 1 + uint256(keccak256(abi.encodePacked("muri actor ", name))) % (n - 1);
        a = vm.addr(key);
        actorKey[a] = key;
        vm.label(a, name);
    }

    /// @notice The current block number as the cheatcode sees it (block.number may be cached
    /// by the optimizer across `vm.roll` within one function).
    function blockNumber() internal view returns (uint256) {
        return vm.getBlockNumber();
    }

    /// @notice Moves `blocks` blocks forward.
    function skipBlocks(uint256 blocks) internal {
        vm.roll(vm.getBlockNumber() + blocks);
    }

    // ------------------------------------------------------------ deployment

    /// @notice The creation code of `artifact` ("File.sol:Contract") from the build's artifacts,
    /// followed by the ABI-encoded constructor `args`. Tests deploy the contracts under test from
    /// their artifacts rather than with `new`: they run the exact bytecode that is deployed, and a
    /// test contract does not embed (and the via-IR optimizer does not optimize once more) the
    /// creation code of every contract it deploys, which made the test build several times
    /// slower than the contracts' own.
    function artifactCode(string memory artifact, bytes memory args) internal view returns (bytes memory) {
        return bytes.concat(vm.getCode(artifact), args);
    }

    /// @notice CREATE with `code`; the address, or zero when the constructor reverted (for a test
    /// that expects the revert).
    function create(bytes memory code) internal returns (address deployed) {
        assembly ("memory-safe") {
            deployed := create(0, add(code, 0x20), mload(code))
        }
    }

    /// @notice Deploys `artifact` with constructor `args`; a constructor revert is passed on.
    function deployArtifact(string memory artifact, bytes memory args) internal returns (address deployed) {
        bytes memory code = artifactCode(artifact, args);
        deployed = create(code);
        if (deployed == address(0)) {
            assembly ("memory-safe") {
                let p := mload(0x40)
                returndatacopy(p, 0, returndatasize())
                revert(p, returndatasize())
            }
        }
    }

    // ------------------------------------------------------------ assertions

    function fail(string memory message) internal pure {
        revert(message);
    }

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) revert(string.concat("assertTrue failed: ", message));
    }

    function assertFalse(bool condition, string memory message) internal pure {
        if (condition) revert(string.concat("assertFalse failed: ", message));
    }

    function assertEq(uint256 a, uint256 b, string memory message) internal pure {
        if (a != b) revert(string.concat("assertEq failed: ", message, ": ", toString(a), " != ", toString(b)));
    }

    function assertEq(int256 a, int256 b, string memory message) internal pure {
        if (a != b) revert(string.concat("assertEq failed: ", message, ": ", toString(a), " != ", toString(b)));
    }

    function assertEq(address a, address b, string memory message) internal pure {
        if (a != b) revert(string.concat("assertEq failed: ", message, ": ", toString(a), " != ", toString(b)));
    }

    function assertEq(bytes32 a, bytes32 b, string memory message) internal pure {
        if (a != b) revert(string.concat("assertEq failed: ", message, ": ", toString(a), " != ", toString(b)));
    }

    function assertEq(bool a, bool b, string memory message) internal pure {
        if (a != b) revert(string.concat("assertEq failed: ", message));
    }

    function assertEq(bytes memory a, bytes memory b, string memory message) internal pure {
        if (keccak256(a) != keccak256(b)) revert(string.concat("assertEq(bytes) failed: ", message));
    }

    function assertEq(address[] memory a, address[] memory b, string memory message) internal pure {
        if (keccak256(abi.encode(a)) != keccak256(abi.encode(b))) {
            revert(string.concat("assertEq(address[]) failed: ", message));
        }
    }

    function assertNotEq(uint256 a, uint256 b, string memory message) internal pure {
        if (a == b) revert(string.concat("assertNotEq failed: ", message, ": both ", toString(a)));
    }

    function assertNotEq(address a, address b, string memory message) internal pure {
        if (a == b) revert(string.concat("assertNotEq failed: ", message, ": both ", toString(a)));
    }

    function assertNotEq(bytes32 a, bytes32 b, string memory message) internal pure {
        if (a == b) revert(string.concat("assertNotEq failed: ", message, ": both ", toString(a)));
    }

    function assertGt(uint256 a, uint256 b, string memory message) internal pure {
        if (a <= b) revert(string.concat("assertGt failed: ", message, ": ", toString(a), " <= ", toString(b)));
    }

    function assertGe(uint256 a, uint256 b, string memory message) internal pure {
        if (a < b) revert(string.concat("assertGe failed: ", message, ": ", toString(a), " < ", toString(b)));
    }

    function assertLt(uint256 a, uint256 b, string memory message) internal pure {
        if (a >= b) revert(string.concat("assertLt failed: ", message, ": ", toString(a), " >= ", toString(b)));
    }

    function assertLe(uint256 a, uint256 b, string memory message) internal pure {
        if (a > b) revert(string.concat("assertLe failed: ", message, ": ", toString(a), " > ", toString(b)));
    }

    function assertApproxEqAbs(uint256 a, uint256 b, uint256 maxDelta, string memory message) internal pure {
        uint256 gap = a > b ? a - b : b - a;
        if (gap > maxDelta) {
            revert(
                string.concat(
                    "assertApproxEqAbs failed: ",
                    message,
                    ": ",
                    toString(a),
                    " vs ",
                    toString(b),
                    " (max delta ",
                    toString(maxDelta),
                    ")"
                )
            );
        }
    }

    // ------------------------------------------------------------ attack reports

    /// @notice One row of the attack simulation (`npm run sim`, scripts/sim.ts reads these lines from
    /// the Solidity test output): what the attacker's addresses gained (negative: lost) in MURI wei,
    /// what honest parties gained, and the outcome. Gas is not counted: 0 means it lost its gas.
    function simReport(string memory attack, int256 attackerPnl, int256 honestPnl, string memory outcome)
        internal
        pure
    {
        console.log(string.concat("SIM|", attack, "|", toString(attackerPnl), "|", toString(honestPnl), "|", outcome));
    }

    /// @notice `after_ - before` as a signed amount.
    function delta(uint256 before, uint256 after_) internal pure returns (int256) {
        return after_ >= before ? int256(after_ - before) : -int256(before - after_);
    }

    // ------------------------------------------------------------ formatting

    function toString(uint256 v) internal pure returns (string memory) {
        if (v == 0) return "0";
        uint256 len;
        for (uint256 t = v; t != 0; t /= 10) {
            ++len;
        }
        bytes memory out = new bytes(len);
        for (; v != 0; v /= 10) {
            out[--len] = bytes1(uint8(48 + v % 10));
        }
        return string(out);
    }

    function toString(int256 v) internal pure returns (string memory) {
        if (v >= 0) return toString(uint256(v));
        return string.concat("-", toString(uint256(-(v + 1)) + 1));
    }

    function toString(address a) internal pure returns (string memory) {
        return toHex(abi.encodePacked(a));
    }

    function toString(bytes32 b) internal pure returns (string memory) {
        return toHex(abi.encodePacked(b));
    }

    function toHex(bytes memory data) internal pure returns (string memory) {
        bytes16 digits = "0123456789abcdef";
        bytes memory out = new bytes(2 + data.length * 2);
        out[0] = "0";
        out[1] = "x";
        for (uint256 i; i < data.length; ++i) {
            out[2 + 2 * i] = digits[uint8(data[i]) >> 4];
            out[3 + 2 * i] = digits[uint8(data[i]) & 0x0f];
        }
        return string(out);
    }
}
