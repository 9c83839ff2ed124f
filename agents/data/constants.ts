/** Shared sizes of the data plane. Must match docs/ENCODING.md and the contracts. */

/** Default fragment size: the unit placed, stored, proven and repaired (1 MiB). */
export const FRAGMENT_SIZE = 1 << 20;

/** Merkle leaf size inside a fragment (1 KiB): a challenge proves one leaf. */
export const LEAF_SIZE = 1024;

/** Multicodec code of raw bytes, used for fragment CIDs. */
export const RAW_CODEC = 0x55;

/**
 * Multihash code of a fragment root (docs/ENCODING.md § CIDs): a fragment's CID carries its
 * fragment root as the digest, so one tree hash serves addressing, verification and proofs (as
 * Filecoin's piece CIDs carry their commitment). From the multicodec table's private-use range.
 */
export const FRAGMENT_ROOT_MULTIHASH = 0x300f01;
