// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Identifier of a Magu (a dataset and its member group). Ids start at 1; 0 means none.
type MaguId is uint256;

using {eq as ==} for MaguId global;

function eq(MaguId a, MaguId b) pure returns (bool) {
    return MaguId.unwrap(a) == MaguId.unwrap(b);
}
