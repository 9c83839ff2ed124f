/** `muri unstake`: request to unbond part of the free stake (withdrawable after the unbonding period). */
import type { Command } from "../command.js";
import { signerOf } from "../context.js";
import { CliError } from "../errors.js";
import { confirm } from "../tx.js";
import { formatMuri, parseMuri } from "../values.js";

export const unstakeCommand: Command = {
  path: ["unstake"],
  summary: "start unbonding stake; `muri withdraw` pays it out after the unbonding period",
  usage: "muri unstake --amount MURI",
  help: ["  --amount MURI        stake to unbond, in MURI (at most the stake not locked by Magus)"],
  options: { amount: { type: "string" } },
  signs: true,
  prepare(args) {
    const amount = parseMuri(args.required("amount", "the stake to unbond in MURI, e.g. --amount 100"), "--amount");
    return async (ctx) => {
      const { account, contracts } = signerOf(ctx);
      const before = await ctx.read.nodeRegistry.read.nodeInfo([account]);
      if (!before.registered)
        throw new CliError("ERR_NOT_REGISTERED", `account ${account} is not a registered node: nothing to unstake`);
      const free = before.stake - before.locked;
      if (amount > free) {
        throw new CliError(
          "ERR_STAKE_LOCKED",
          `account ${account} can unstake at most ${formatMuri(free)} MURI (stake ${formatMuri(
            before.stake
          )}, locked ${formatMuri(before.locked)})`
        );
      }
      const hash = await contracts.nodeRegistry.write.requestUnstake([amount]);
      await confirm(ctx, hash, "NodeRegistry.requestUnstake");
      const info = await ctx.read.nodeRegistry.read.nodeInfo([account]);
      return {
        json: {
          account,
          amount,
          stake: info.stake,
          unbonding: info.unbonding,
          releaseBlock: info.unbondingReleaseBlock,
          tx: hash,
        },
        text: [
          `unbonding ${formatMuri(info.unbonding)} MURI of ${account}; withdraw from block ${
            info.unbondingReleaseBlock
          }`,
          `stake ${formatMuri(info.stake)} MURI`,
        ],
      };
    };
  },
};
