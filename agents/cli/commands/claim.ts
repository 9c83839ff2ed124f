/** `muri claim`: claim what Rewards (epoch emission) and MaguRegistry (storage payments) owe this account. */
import type { Command } from "../command.js";
import { signerOf } from "../context.js";
import { confirm } from "../tx.js";
import { formatMuri } from "../values.js";

export const claimCommand: Command = {
  path: ["claim"],
  summary: "claim rewards (Rewards) and storage payments (MaguRegistry) owed to this account",
  usage: "muri claim",
  help: [],
  options: {},
  signs: true,
  prepare() {
    return async (ctx) => {
      const { account, contracts } = signerOf(ctx);
      const [rewards, payments] = await Promise.all([
        ctx.read.rewards.read.claimable([account]),
        ctx.read.maguRegistry.read.claimable([account]),
      ]);
      const txs: Record<string, string> = {};
      if (rewards > 0n) {
        txs.rewards = await contracts.rewards.write.claim();
        await confirm(ctx, txs.rewards as `0x${string}`, "Rewards.claim");
      }
      if (payments > 0n) {
        txs.maguRegistry = await contracts.maguRegistry.write.claim();
        await confirm(ctx, txs.maguRegistry as `0x${string}`, "MaguRegistry.claim");
      }
      const total = rewards + payments;
      return {
        json: { account, rewards, payments, total, txs },
        text:
          total === 0n
            ? [`nothing to claim for ${account}`]
            : [
                `claimed ${formatMuri(total)} MURI to ${account} (rewards ${formatMuri(
                  rewards
                )}, storage payments ${formatMuri(payments)})`,
              ],
      };
    };
  },
};
