// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title ReentrantToken
/// @notice A malicious ERC-20: once armed, its next transfer (or transferFrom) calls `target`
/// with `data` before moving the tokens, and bubbles up the callee's revert. Used to check that
/// the registries' token-moving functions cannot be re-entered.
contract ReentrantToken is ERC20 {
    address public target;
    bytes public data;
    bool public armed;
    uint256 public reentries;

    constructor() ERC20("Reentrant", "REENT") {}

    /// @notice Anyone may mint (test token).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms a one-shot callback into `target_` with `data_` on the next transfer.
    function arm(address target_, bytes calldata data_) external {
        target = target_;
        data = data_;
        armed = true;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (armed && from != address(0)) {
            armed = false;
            ++reentries;
            (bool ok, bytes memory ret) = target.call(data);
            if (!ok) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
        super._update(from, to, value);
    }
}
