/**
 * Transactions the commands send: wait for the receipt (a reverted receipt is an error), top up
 * the token allowance only when needed, check the MURI balance before spending it, and wait for
 * blocks (mining them on a dev chain that can).
 */
import type { Address, Hash } from "viem";
import type { CliContext } from "./context.js";
import { signerOf } from "./context.js";
import { CliError } from "./errors.js";
import { formatMuri } from "./values.js";

const RECEIPT_POLL_MS = 100;
const RECEIPT_TIMEOUT_MS = 120_000;
const BLOCK_POLL_MS = 500;

/** Waits for the receipt of `hash`; throws when it reverted. */
export async function confirm(ctx: CliContext, hash: Hash, what: string) {
  const receipt = await ctx.publicClient.waitForTransactionReceipt({
    hash,
    pollingInterval: RECEIPT_POLL_MS,
    timeout: RECEIPT_TIMEOUT_MS,
  });
  if (receipt.status !== "success")
    throw new CliError("ERR_TX_REVERTED", `${what} reverted in block ${receipt.blockNumber} (tx ${hash})`);
  return receipt;
}

/** Fails with one clear line when the signer holds less than `amount` MURI. */
export async function requireMuri(ctx: CliContext, amount: bigint, purpose: string): Promise<void> {
  const { account } = signerOf(ctx);
  const balance = await ctx.read.token.read.balanceOf([account]);
  if (balance < amount) {
    throw new CliError(
      "ERR_INSUFFICIENT_MURI",
      `account ${account} holds ${formatMuri(balance)} MURI, ${purpose} needs ${formatMuri(
        amount
      )}: get MURI from the deployer or a faucet first`
    );
  }
}

/** Approves `spender` for `amount` unless the allowance already covers it. Returns the tx hash when sent. */
export async function ensureAllowance(ctx: CliContext, spender: Address, amount: bigint): Promise<Hash | undefined> {
  const { account, contracts } = signerOf(ctx);
  const allowance = await ctx.read.token.read.allowance([account, spender]);
  if (allowance >= amount) return undefined;
  const hash = await contracts.token.write.approve([spender, amount]);
  await confirm(ctx, hash, "MuriToken.approve");
  return hash;
}

/**
 * Resolves once the chain head is at least `target`. On a dev chain (hardhat/anvil) the missing
 * blocks are mined with `hardhat_mine` or `evm_mine`; otherwise it polls until `timeoutMs`.
 */
export async function waitForBlock(ctx: CliContext, target: bigint, timeoutMs: number): Promise<bigint> {
  let head = await ctx.publicClient.getBlockNumber({ cacheTime: 0 });
  if (head >= target) return head;
  if (await tryMine(ctx, target - head)) {
    head = await ctx.publicClient.getBlockNumber({ cacheTime: 0 });
    if (head >= target) return head;
  }
  const deadline = Date.now() + timeoutMs;
  while (head < target) {
    if (Date.now() >= deadline) {
      throw new CliError(
        "ERR_BLOCK_TIMEOUT",
        `chain at ${ctx.rpcUrl} stayed at block ${head} for ${Math.round(
          timeoutMs / 1000
        )} s, waiting for block ${target}: is it producing blocks?`
      );
    }
    await new Promise((r) => setTimeout(r, BLOCK_POLL_MS));
    head = await ctx.publicClient.getBlockNumber({ cacheTime: 0 });
  }
  return head;
}

async function tryMine(ctx: CliContext, blocks: bigint): Promise<boolean> {
  const request = ctx.publicClient.request as (args: { method: string; params?: unknown[] }) => Promise<unknown>;
  try {
    await request({ method: "hardhat_mine", params: [`0x${blocks.toString(16)}`] });
    return true;
  } catch {
    // not hardhat; try the older evm_mine (hardhat, anvil, ganache)
  }
  try {
    for (let i = 0n; i < blocks; i++) await request({ method: "evm_mine", params: [] });
    return true;
  } catch {
    return false;
  }
}
