/**
 * The defaults of the storage and vector clients, in a module of their own: `muri magu create`,
 * the HTTP API's OpenAPI document and the CLI's help read them without loading libp2p.
 */
/** Default erasure parameters and Magu terms of `put`. */
export const CLIENT_DEFAULTS = {
  k: 3,
  m: 2,
  members: 5,
  durationPeriods: 100n,
  pricePerFragmentPeriod: 10n ** 12n,
  /** Pushes in flight at once. */
  pushConcurrency: 6,
  /** Deadline of one push or fetch, ms. */
  transferTimeoutMs: 20_000,
  /** Deadline of a manifest fetch from one member, ms. */
  manifestTimeoutMs: 5_000,
  /** How long `status` waits for a member to serve the manifest before calling it unreachable, ms. */
  statusTimeoutMs: 3_000,
  /** Attempts per push before `put` fails. */
  pushAttempts: 3,
  /** Attempts of a fetch a holder refuses as busy before the get gives up on that holder. */
  busyRetries: 10,
  /** Longest wait for the two blocks before formMagu, ms. */
  formWaitMs: 60_000,
  /**
   * Bytes of encoded shards a client keeps in memory while they wait for their push (all its puts
   * together; a pushed shard frees its room); beyond it they wait in the staging store on disk.
   */
  memoryStagingBytes: 2 ** 30,
  /** The same for `muri serve`, whose puts run beside its reads and searches: its memory stays near idle + this. */
  serveStagingBytes: 256 * 2 ** 20,
} as const;

/** Defaults of the vector client. */
export const VECTOR_CLIENT_DEFAULTS = {
  /** Bytes per vector fragment (whole records; smaller than a blob fragment so search spreads over members). */
  fragmentSize: 256 * 1024,
  pushConcurrency: 6,
  pushAttempts: 3,
  /** Fragments committed and delivered together (see add). */
  commitGroup: 8,
  transferTimeoutMs: 20_000,
  searchTimeoutMs: 10_000,
  /** Blocks after the dispute deadline the client waits for someone else to finalize. */
  finalizeGraceBlocks: 2n,
  /** Longest an on-chain search may take. */
  onchainTimeoutMs: 180_000,
} as const;
