/** `muri withdraw`: pay out unbonded stake once its release block has passed. */
import type { Command } from "../command.js";
import { signerOf } from "../context.js";
import { CliError } from "../errors.js";
import { confirm } from "../tx.js";
import { formatMuri } from "../values.js";

export const withdrawCommand: Command = {
  path: ["withdraw"],
  summary: "withdraw unbonded stake after the unbonding period",
  usage: "muri withdraw",
  help: [],
  options: {},
  signs: true,
  prepare() {
    return async (ctx) => {
      const { account, contracts } = signerOf(ctx);
      const info = await ctx.read.nodeRegistry.read.nodeInfo([account]);
      if (info.unbonding === 0n)
        throw new CliError(
          "ERR_NOTHING_UNBONDING",
          `account ${account} has no unbonding stake: run muri unstake first`
        );
      const head = await ctx.publicClient.getBlockNumber({ cacheTime: 0 });
      if (head < info.unbondingReleaseBlock) {
        throw new CliError(
          "ERR_UNBONDING",
          `${formatMuri(info.unbonding)} MURI of ${account} unbonds at block ${
            info.unbondingReleaseBlock
          } (now ${head}): try again then`
        );
      }
      const hash = await contracts.nodeRegistry.write.withdraw();
      await confirm(ctx, hash, "NodeRegistry.withdraw");
      return {
        json: { account, amount: info.unbonding, tx: hash },
        text: [`withdrew ${formatMuri(info.unbonding)} MURI to ${account}`],
      };
    };
  },
};
