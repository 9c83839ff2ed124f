// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IChallengeManager} from "../../../contracts/interfaces/IChallengeManager.sol";
import {IMaguAccess} from "../../../contracts/interfaces/IMaguAccess.sol";
import {IMaguRegistry} from "../../../contracts/interfaces/IMaguRegistry.sol";
import {IMuriToken} from "../../../contracts/interfaces/IMuriToken.sol";
import {INodeRegistry} from "../../../contracts/interfaces/INodeRegistry.sol";
import {IRewards} from "../../../contracts/interfaces/IRewards.sol";
import {ISearchMarket} from "../../../contracts/interfaces/ISearchMarket.sol";

// The deployed contracts as the Solidity tests see them: each contract's interface plus the public
// constants and inherited functions (access control, permit) it also has. The tests deploy the
// contracts from their artifacts (`deployArtifact`, built with the production settings) and call
// them through these types, so the test build never compiles the contracts themselves: an
// unoptimized via-IR compile of all of them was most of the test build (~230 s of wasm solc).
// A function missing here fails the test build, never a test.

interface DeployedNodeRegistry is INodeRegistry, IAccessControl {
    function MODULE_ROLE() external view returns (bytes32);
    function SLASHER_ROLE() external view returns (bytes32);
    function REPUTATION_ROLE() external view returns (bytes32);
    function REPUTATION_BOUND() external view returns (int64);
    function REPUTATION_RELIABLE() external view returns (int64);
    function REPUTATION_EXCLUDED() external view returns (int64);
}

interface DeployedMaguRegistry is IMaguRegistry, IAccessControl {
    function CHALLENGE_ROLE() external view returns (bytes32);
    function MAX_DIMENSION() external view returns (uint32);
    function SEATS_PER_FORM() external view returns (uint256);
    function FRAGMENT_BYTES() external view returns (uint64);
    function ACK_TYPEHASH() external view returns (bytes32);
}

interface DeployedChallengeManager is IChallengeManager {
    function MAX_TRIES() external view returns (uint256);
    function REPUTATION_PROOF() external view returns (int64);
    function REPUTATION_MISS() external view returns (int64);
}

interface DeployedMuriToken is IMuriToken, IERC20Permit, IAccessControl {
    function MINTER_ROLE() external view returns (bytes32);
}

interface DeployedMaguAccess is IMaguAccess {
    function RIGHT_READ() external view returns (uint8);
    function RIGHT_SEARCH() external view returns (uint8);
    function GRANT_TYPEHASH() external view returns (bytes32);
    function VOUCHER_TYPEHASH() external view returns (bytes32);
    function READ_VOUCHER_TYPEHASH() external view returns (bytes32);
    function MAX_READ_MULTIPLIER_BPS() external view returns (uint256);
    function DEMAND_HALF_LIFE_BLOCKS() external view returns (uint64);
    function DEMAND_UNIT() external view returns (uint256);
    function DEMAND_OWN_RATIO_BPS() external view returns (uint256);
    function NO_FRAGMENT() external view returns (uint32);
}

interface DeployedRewards is IRewards {
    function REPUTATION_REWARD_BOUND() external view returns (int256);
    function REPUTATION_REWARD_SCALE() external view returns (int256);
}

interface DeployedSearchMarket is ISearchMarket {}
