/** Shared sizes of the data plane. Must match docs/ENCODING.md and the contracts. */

/** Default fragment size: the unit placed, stored, proven and repaired (1 MiB). */
export const FRAGMENT_SIZE = 1 << 20;

/** Merkle leaf size inside a fragment (1 KiB): a challenge proves one leaf. */
export const LEAF_SIZE = 1024;

/** Multicodec code of raw bytes, used for fragment CIDs. */
export const RAW_CODEC = 0x55;
