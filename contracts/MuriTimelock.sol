// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title MuriTimelock
/// @notice Holds DEFAULT_ADMIN_ROLE of MuriToken, NodeRegistry and MaguRegistry once deployed: any
/// role change (a new minter, slasher or module) is scheduled in public and runs only after
/// `minDelay` seconds, so nobody - the deployer included - can grant itself minting or slashing
/// without everyone seeing it coming and having time to leave (unstake, withdraw, claim).
/// OpenZeppelin's TimelockController, unchanged; its own admin role is not kept by anyone.
contract MuriTimelock is TimelockController {
    /// @param minDelay seconds between scheduling an operation and executing it
    /// @param proposers accounts that may schedule (and cancel) operations
    /// @param executors accounts that may execute ready operations (address(0): anyone)
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
