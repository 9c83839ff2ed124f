// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {IMuriToken} from "./interfaces/IMuriToken.sol";

/// @title MuriToken
/// @notice MURI, the ERC-20 with EIP-2612 permit for stake, fees and rewards. New tokens come only
/// from MINTER_ROLE holders (the Rewards contract, once per epoch). A dev network gives the
/// deployer `initialSupply` to fund nodes and clients; production deployments pass 0.
contract MuriToken is IMuriToken, ERC20, ERC20Permit, AccessControl {
    /// @notice Role allowed to mint emissions.
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin receives DEFAULT_ADMIN_ROLE (grants MINTER_ROLE to Rewards)
    /// @param initialHolder receives `initialSupply`
    constructor(address admin, address initialHolder, uint256 initialSupply)
        ERC20("MuriData", "MURI")
        ERC20Permit("MuriData")
    {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (initialSupply > 0) _mint(initialHolder, initialSupply);
    }

    /// @inheritdoc IMuriToken
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
