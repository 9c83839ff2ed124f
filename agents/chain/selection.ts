/**
 * Forming a Magu within its selection window (see MaguRegistry.selectionWindow): the draw may run
 * only in the selection epoch after the request's, from the block after the seed block on. Before
 * that formMagu reverts MaguTooEarly; after it only the owner may ask again, which forfeits the
 * formation deposit and pays a new one. A stake change weighs in draws two selection epochs after
 * its own, so a request made before recent registrations settle would not see those nodes.
 */

/** The reads formation makes (any typed contract handles with these functions fit). */
export interface SelectionReads {
  nodeRegistry: {
    read: {
      pendingWeightChanges(): Promise<readonly [bigint, bigint, bigint]>;
      config(): Promise<{ selectionEpochBlocks: bigint }>;
    };
  };
  maguRegistry: {
    read: {
      maguInfo(args: readonly [bigint]): Promise<{ status: number; requestBlock: bigint; members: readonly string[] }>;
      selectionWindow(args: readonly [bigint]): Promise<readonly [bigint, bigint]>;
    };
  };
}

/** What formation needs from the chain; the callers bring their own sending and waiting. */
export interface Formation {
  read: SelectionReads;
  /** Resolves once the chain's head is at least `block` (a Hardhat chain may mine to it). */
  waitForBlock(block: bigint): Promise<void>;
  /** The chain's head. */
  head(): Promise<bigint>;
  /** Sends formMagu and resolves when it is mined successfully. */
  form(): Promise<void>;
  /** Approves one more formation deposit for a re-request (the owner's allowance). */
  approveDeposit(): Promise<void>;
}

/** The first block at which a request sees every stake change queued so far (0: none queued). */
export async function settledRequestBlock(read: Pick<SelectionReads, "nodeRegistry">): Promise<bigint> {
  const [queued, , settledFrom] = await read.nodeRegistry.read.pendingWeightChanges();
  if (queued === 0n) return 0n;
  const { selectionEpochBlocks } = await read.nodeRegistry.read.config();
  return settledFrom - selectionEpochBlocks;
}

/**
 * Forms Magu `maguId` in its selection window, asking again (a new deposit) when a window passed
 * before the first formMagu landed, at most `attempts` times. A Magu larger than SEATS_PER_FORM
 * takes several formMagu calls (one per part of its seats); they are not attempts, and one landing
 * after the window activates the Magu with the seats taken (the others become vacancies). Returns
 * the Magu's status afterwards (2: active); a Magu already formed is left alone.
 */
export async function formInWindow(f: Formation, maguId: bigint, attempts = 3): Promise<number> {
  let info = await f.read.maguRegistry.read.maguInfo([maguId]);
  let attempt = 0;
  while (info.status === 1) {
    // Seats taken already: this call continues the same draw (or activates, after the window).
    const seating = info.members.length > 0;
    if (!seating && attempt++ >= attempts) break;
    const [opens, closes] = await f.read.maguRegistry.read.selectionWindow([info.requestBlock]);
    if ((await f.head()) >= closes) {
      // The window passed (or ends with the head: a transaction lands in the next block): with no
      // seat taken, this formMagu asks again, taking a new deposit.
      if (!seating) await f.approveDeposit();
      await f.form();
    } else {
      // Sent once the block before the window is mined, the transaction lands in the window's
      // first block at the earliest: one block sooner than waiting for that block itself.
      await f.waitForBlock(opens - 1n);
      try {
        await f.form();
      } catch (err) {
        if (isTooEarly(err)) {
          // A node that estimates gas against its latest block rather than the next one refuses
          // it one block early: send again once the window's first block is mined.
          await f.waitForBlock(opens);
          await f.form();
        } else {
          // The window closed while the transaction was on its way (a slow or loaded chain): ask
          // again on the next round; any other failure is the caller's.
          const now = await f.read.maguRegistry.read.maguInfo([maguId]);
          if (now.status !== 1 || (await f.head()) < closes) throw err;
        }
      }
    }
    info = await f.read.maguRegistry.read.maguInfo([maguId]);
  }
  return info.status;
}

/** Whether `err` (or one of its causes) is MaguRegistry's MaguTooEarly revert. */
function isTooEarly(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e.message.includes("MaguTooEarly") || (e as { data?: { errorName?: string } }).data?.errorName === "MaguTooEarly") return true;
  }
  return false;
}

/** The reads `refreshFadedReputation` makes (NodeRegistry's typed handle fits). */
export interface ReputationReads {
  read: {
    nodeInfo(args: readonly [`0x${string}`]): Promise<{ registered: boolean; roles: number; stake: bigint; reputation: bigint }>;
    selectionWeight(args: readonly [`0x${string}`]): Promise<readonly [bigint, bigint]>;
    config(): Promise<{ minStake: bigint }>;
    REPUTATION_RELIABLE(): Promise<bigint>;
    REPUTATION_EXCLUDED(): Promise<bigint>;
  };
}

/** NodeRegistry's reputation tiers and minimum stake: fixed at deployment, read once. */
export interface ReputationTiers {
  minStake: bigint;
  reliable: bigint;
  excluded: bigint;
}

export async function readReputationTiers(registry: ReputationReads): Promise<ReputationTiers> {
  const [{ minStake }, reliable, excluded] = await Promise.all([registry.read.config(), registry.read.REPUTATION_RELIABLE(), registry.read.REPUTATION_EXCLUDED()]);
  return { minStake, reliable, excluded };
}

/**
 * A node's selection weight for `stake` and `reputation`, as NodeRegistry computes it: 0 below
 * minStake or at or below `excluded`, half below 0, 5/4 from `reliable`, else the stake.
 */
export function selectionWeightFor(stake: bigint, reputation: bigint, t: ReputationTiers): bigint {
  if (stake < t.minStake || reputation <= t.excluded) return 0n;
  if (reputation < 0n) return stake / 2n;
  if (reputation >= t.reliable) return (stake * 5n) / 4n;
  return stake;
}

/**
 * Sends `refreshReputation` for `node` when its reputation faded into a tier that weighs more than
 * the weight queued for it (a penalty that faded: the node is drafted again, or at full weight).
 * A bonus that faded is left alone: that refresh is for others to send. Returns whether it sent.
 */
export async function refreshFadedReputation(registry: ReputationReads, node: `0x${string}`, tiers: ReputationTiers, refresh: () => Promise<void>): Promise<boolean> {
  const [info, [, queued]] = await Promise.all([registry.read.nodeInfo([node]), registry.read.selectionWeight([node])]);
  if (!info.registered || (info.roles & 1) === 0) return false;
  if (selectionWeightFor(info.stake, info.reputation, tiers) <= queued) return false;
  await refresh();
  return true;
}
