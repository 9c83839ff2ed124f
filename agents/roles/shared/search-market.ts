/**
 * SearchMarket helpers shared by the client (`muri search --onchain`) and the validator: the
 * revealed lists a `finalize` needs, finalizing a task, and reading its answer.
 */
import { parseEventLogs, type Address, type Hex } from "viem";
import { describeError, searchMarketAbi, type MuriContracts, type MuriPublicClient, type MuriWalletClient } from "../../chain/index.js";
import { decodeHit, type HitEntry } from "../../data/vectors.js";

type ReadContracts = MuriContracts<MuriPublicClient> | MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
type WriteContracts = MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;

const RECEIPT_TIMEOUT_MS = 60_000;

/** A committer's revealed list (empty when it did not reveal or was disputed), in commit order. */
export interface CommitterList {
  member: Address;
  revealed: boolean;
  disputed: boolean;
  entries: Hex[];
}

/** Every committer of `task` with the list finalize must be given for it. */
export async function committerLists(contracts: ReadContracts, publicClient: MuriPublicClient, task: bigint): Promise<CommitterList[]> {
  const market = contracts.searchMarket;
  const info = await market.read.task([task]);
  const committers = await market.read.committers([task]);
  const logs = await publicClient.getContractEvents({
    address: market.address,
    abi: searchMarketAbi,
    eventName: "ResultRevealed",
    args: { task },
    fromBlock: info.submitBlock,
    toBlock: info.revealDeadline,
  });
  const byMember = new Map<string, Hex[]>();
  for (const log of logs) byMember.set(log.args.member!.toLowerCase(), [...log.args.entries!]);
  const out: CommitterList[] = [];
  for (const member of committers) {
    const state = await market.read.memberTask([task, member]);
    const entries = state.revealed && !state.disputed ? byMember.get(member.toLowerCase()) : undefined;
    if (state.revealed && !state.disputed && entries === undefined) throw new Error(`task ${task}: no ResultRevealed event found for ${member}`);
    out.push({ member, revealed: state.revealed, disputed: state.disputed, entries: entries ?? [] });
  }
  return out;
}

/** A finalized task's answer. */
export interface TaskAnswer {
  task: bigint;
  result: HitEntry[];
  credits: bigint;
  payPerCredit: bigint;
  refund: bigint;
  block: bigint;
}

/** The answer of `task` if it is finalized (from its TaskFinalized event). */
export async function taskAnswer(contracts: ReadContracts, publicClient: MuriPublicClient, task: bigint): Promise<TaskAnswer | undefined> {
  const market = contracts.searchMarket;
  const info = await market.read.task([task]);
  if (!info.finalized) return undefined;
  const logs = await publicClient.getContractEvents({
    address: market.address,
    abi: searchMarketAbi,
    eventName: "TaskFinalized",
    args: { task },
    fromBlock: info.disputeDeadline,
  });
  const log = logs[0];
  if (log === undefined) throw new Error(`task ${task} is finalized but its TaskFinalized event was not found`);
  return {
    task,
    result: log.args.result!.map((w) => decodeHit(w)),
    credits: log.args.credits!,
    payPerCredit: log.args.payPerCredit!,
    refund: log.args.refund!,
    block: log.blockNumber,
  };
}

/**
 * Finalizes `task` (after its dispute deadline). Returns false when someone else finalized it
 * first; throws other failures with the contract's reason.
 */
export async function finalizeTask(contracts: WriteContracts, publicClient: MuriPublicClient, task: bigint): Promise<boolean> {
  const market = contracts.searchMarket;
  const lists = await committerLists(contracts, publicClient, task);
  let hash: Hex;
  try {
    hash = await market.write.finalize([task, lists.map((l) => l.entries)]);
  } catch (err) {
    if ((await market.read.task([task])).finalized) return false;
    throw new Error(`SearchMarket.finalize(${task}) failed: ${describeError(err)}`, { cause: err });
  }
  const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 200, timeout: RECEIPT_TIMEOUT_MS });
  if (receipt.status !== "success") {
    if ((await market.read.task([task])).finalized) return false;
    throw new Error(`SearchMarket.finalize(${task}) reverted (tx ${hash})`);
  }
  return parseEventLogs({ abi: searchMarketAbi, logs: receipt.logs, eventName: "TaskFinalized" }).length > 0;
}

/**
 * Which of `fragments` of `magu` `member` is placed on (`MaguRegistry.holders`, the rule
 * SearchMarket's NotHolder falsehood applies): an entry from any other was copied, not searched.
 * One chain read per distinct fragment.
 */
export async function placedFragments(contracts: Pick<ReadContracts, "maguRegistry">, magu: bigint, member: Address, fragments: Iterable<number>): Promise<Set<number>> {
  const placed = new Set<number>();
  for (const f of new Set(fragments)) {
    const holding = await contracts.maguRegistry.read.holders([magu, BigInt(f)]);
    if (holding.some((h) => h.toLowerCase() === member.toLowerCase())) placed.add(f);
  }
  return placed;
}
