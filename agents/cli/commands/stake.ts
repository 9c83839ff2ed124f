/** `muri stake`: register as a node (approve + register) or add stake when already registered. */
import { toHex } from "viem";
import type { Command } from "../command.js";
import { signerOf } from "../context.js";
import { UsageError } from "../errors.js";
import { confirm, ensureAllowance, requireMuri } from "../tx.js";
import {
  formatBytes,
  formatMuri,
  parseBytes,
  parseMultiaddr,
  parseMuri,
  parsePeerId,
  parseRoles,
  roleNames,
} from "../values.js";

const DEFAULT_CAPACITY = "10GiB";

export const stakeCommand: Command = {
  path: ["stake"],
  summary: "register this account as a node with a stake, or add stake if it is registered",
  usage: "muri stake --amount MURI [--capacity SIZE] [--roles node,validator] [--peer-id ID] [--multiaddr ADDR ...]",
  help: [
    "  --amount MURI        stake to add, in MURI (e.g. 1000 or 0.5); registration needs the registry's minimum",
    `  --capacity SIZE      storage offered, bytes or with a unit (e.g. 10GiB; default ${DEFAULT_CAPACITY}); registration only`,
    "  --roles LIST         node, validator or node,validator (default node); registration only",
    "  --peer-id ID         libp2p peer id (12D3KooW…) or 0x bytes (default: a placeholder the node sets later)",
    "  --multiaddr ADDR     a multiaddr the node listens on; repeat for several (at most 8)",
  ],
  options: {
    amount: { type: "string" },
    capacity: { type: "string" },
    roles: { type: "string" },
    "peer-id": { type: "string" },
    multiaddr: { type: "string", multiple: true },
  },
  signs: true,
  prepare(args) {
    const amount = parseMuri(args.required("amount", "the stake in MURI, e.g. --amount 1000"), "--amount");
    const capacityArg = args.string("capacity");
    const capacity = parseBytes(capacityArg ?? DEFAULT_CAPACITY, "--capacity");
    const roles = parseRoles(args.string("roles") ?? "node", "--roles");
    const peerIdArg = args.string("peer-id");
    const multiaddrs = args.strings("multiaddr").map((a) => parseMultiaddr(a, "--multiaddr"));
    if (multiaddrs.length > 8) throw new UsageError("--multiaddr: at most 8 addresses, got " + multiaddrs.length);

    return async (ctx) => {
      const { account, contracts } = signerOf(ctx);
      const registry = ctx.deployment.contracts.nodeRegistry;
      const before = await ctx.read.nodeRegistry.read.nodeInfo([account]);
      await requireMuri(ctx, amount, before.registered ? "adding stake" : "registering");
      await ensureAllowance(ctx, registry, amount);

      let action: "registered" | "added";
      let hash;
      if (!before.registered) {
        const peerId = peerIdArg !== undefined ? parsePeerId(peerIdArg, "--peer-id") : toHex(`unset:${account}`);
        hash = await contracts.nodeRegistry.write.register([amount, roles, capacity, peerId, multiaddrs]);
        await confirm(ctx, hash, "NodeRegistry.register");
        action = "registered";
      } else {
        hash = await contracts.nodeRegistry.write.addStake([amount]);
        await confirm(ctx, hash, "NodeRegistry.addStake");
        action = "added";
      }
      const info = await ctx.read.nodeRegistry.read.nodeInfo([account]);
      const ignored = before.registered
        ? ["capacity", "roles", "peer-id", "multiaddr"].filter((o) => args.values[o] !== undefined)
        : [];
      return {
        json: {
          action,
          account,
          amount,
          stake: info.stake,
          locked: info.locked,
          roles: roleNames(info.roles),
          capacity: info.capacity,
          tx: hash,
          ...(ignored.length ? { ignored } : {}),
        },
        text: [
          action === "registered"
            ? `registered ${account} as ${roleNames(info.roles).join(",")} with ${formatMuri(
                amount
              )} MURI, capacity ${formatBytes(info.capacity)}`
            : `added ${formatMuri(amount)} MURI to the stake of ${account}`,
          `stake ${formatMuri(info.stake)} MURI (locked ${formatMuri(info.locked)})`,
          ...(ignored.length ? [`already registered: ${ignored.map((o) => `--${o}`).join(", ")} left unchanged`] : []),
        ],
      };
    };
  },
};
