// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IMuriToken
/// @notice MURI: the ERC-20 (with EIP-2612 permit) used for stake, fees and rewards.
interface IMuriToken is IERC20 {
    /// @notice Mints `amount` to `to`. Only holders of MINTER_ROLE (the Rewards contract) may call.
    function mint(address to, uint256 amount) external;
}
