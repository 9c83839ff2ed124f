// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title PlacementLib
/// @notice Rendezvous (highest-random-weight) placement of fragments on member slots
/// (docs/ENCODING.md). score = keccak256(abi.encode(maguId, group, slot)). A member replaced in
/// its slot takes over exactly that slot's fragments; nothing else moves.
library PlacementLib {
    /// @notice The score of `slot` for `group` in Magu `maguId`.
    function score(uint256 maguId, uint256 group, uint256 slot) internal pure returns (uint256 s) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, maguId)
            mstore(add(ptr, 0x20), group)
            mstore(add(ptr, 0x40), slot)
            s := keccak256(ptr, 0x60)
        }
    }

    /// @notice Position of `slot` in the ranking of `group` (0 = highest score), among `slots` slots.
    /// @dev Ties go to the lower slot index.
    function rankOf(uint256 maguId, uint256 group, uint256 slots, uint256 slot) internal pure returns (uint256 rank) {
        uint256 own = score(maguId, group, slot);
        for (uint256 s; s < slots; ++s) {
            if (s == slot) continue;
            uint256 other = score(maguId, group, s);
            if (other > own || (other == own && s < slot)) ++rank;
        }
    }

    /// @notice The first `count` slots of the ranking of `group`, highest score first.
    function topSlots(uint256 maguId, uint256 group, uint256 slots, uint256 count)
        internal
        pure
        returns (uint256[] memory top)
    {
        uint256[] memory scores = new uint256[](slots);
        for (uint256 s; s < slots; ++s) {
            scores[s] = score(maguId, group, s);
        }
        top = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            uint256 best = type(uint256).max;
            for (uint256 s; s < slots; ++s) {
                if (_taken(top, i, s)) continue;
                if (best == type(uint256).max || scores[s] > scores[best]) best = s;
            }
            top[i] = best;
        }
    }

    /// @notice Whether `slot` holds fragment `fragment`.
    /// @param replication replicas per fragment (vector Magu), or 0 for a blob Magu.
    /// @param stripeWidth data + parity shards per stripe (blob Magu), ignored for vector Magus.
    function holds(
        uint256 maguId,
        uint256 fragment,
        uint256 slots,
        uint256 replication,
        uint256 stripeWidth,
        uint256 slot
    ) internal pure returns (bool) {
        if (replication != 0) return rankOf(maguId, fragment, slots, slot) < replication;
        return rankOf(maguId, fragment / stripeWidth, slots, slot) == fragment % stripeWidth;
    }

    function _taken(uint256[] memory top, uint256 filled, uint256 slot) private pure returns (bool) {
        for (uint256 j; j < filled; ++j) {
            if (top[j] == slot) return true;
        }
        return false;
    }
}
