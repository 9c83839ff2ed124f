/**
 * `muri status`: the network at a glance from the chain alone: which network it is (chain id,
 * MaguRegistry, deployment block and its hash: what the client directory keys its records by),
 * nodes, Magus, current period and epoch, what each node can claim, and proofs passed/missed
 * (ProofSubmitted/ProofMissed events), what each node earned serving reads (MaguAccess `readEarned`)
 * and the read multiplier of each priced Magu it holds (x1..x2); and what the client directory
 * keeps for this network.
 * With `--metrics URL` (repeatable), also the health of each agent's event followers, read from the
 * agent's `/metrics` (`muri node|validator --metrics-port N`): a stuck or lagging follower shows.
 */
import { zeroAddress, type Address } from "viem";
import { describeNetwork, readNetworkIdentity } from "../../chain/index.js";
import { summarizeClientDir } from "../../roles/client/client-record.js";
import type { Command } from "../command.js";
import type { CliContext } from "../context.js";
import { CLIENT_DIR_HELP, clientDir } from "../devnet/storage-client.js";
import { formatBytes, formatMuri, formatPeerId, roleNames } from "../values.js";
import { readMagu } from "./magu.js";
import { formatAgentHealth, readAgentHealth } from "../agent-health.js";
import { UsageError } from "../errors.js";

function parseHttpUrl(value: string, option: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${option}: ${value} is not a URL; give an agent's metrics URL, e.g. http://127.0.0.1:9464/metrics`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`${option}: ${value} is not an http(s) URL`);
  return url.toString();
}

/** More than this many nodes or Magus are summarised, not listed (a CLI is not an explorer). */
const MAX_LISTED = 200;
/** Fragments of a priced Magu whose read multipliers are read (its first ones). */
const READ_FRAGMENTS_LISTED = 32;
/** Highest multipliers printed per priced Magu. */
const READ_FRAGMENTS_SHOWN = 3;

export const statusCommand: Command = {
  path: ["status"],
  summary: "nodes, Magus, current period and epoch, claimable rewards and proofs, from the chain",
  usage: "muri status [--metrics URL]...",
  help: [CLIENT_DIR_HELP, "  --metrics URL        an agent's /metrics (muri node|validator --metrics-port N): its event followers' health; repeatable"],
  options: { "client-dir": { type: "string" }, metrics: { type: "string", multiple: true } },
  signs: false,
  prepare(args) {
    const dir = clientDir(args);
    const metricsUrls = args.strings("metrics").map((u) => parseHttpUrl(u, "--metrics"));
    return async (ctx) => {
      const agents = await Promise.all(metricsUrls.map((u) => readAgentHealth(u)));
      const r = ctx.read;
      const [block, period, epoch, slotCount, nodeCount, maguCount, network, rewardScale, rewardBound] = await Promise.all([
        ctx.publicClient.getBlockNumber({ cacheTime: 0 }),
        r.maguRegistry.read.currentPeriod(),
        r.rewards.read.currentEpoch(),
        r.nodeRegistry.read.nodeCount(),
        r.nodeRegistry.read.registeredCount(),
        r.maguRegistry.read.maguCount(),
        readNetworkIdentity(ctx.publicClient, ctx.deployment, ctx.rpcUrl),
        r.rewards.read.REPUTATION_REWARD_SCALE(),
        r.rewards.read.REPUTATION_REWARD_BOUND(),
      ]);
      // Rewards scales a node's share of the epoch emission by (scale + reputation) / scale.
      const rewardFactor = (reputation: bigint): number => {
        const r = reputation > rewardBound ? rewardBound : reputation < -rewardBound ? -rewardBound : reputation;
        return Number(rewardScale + r) / Number(rewardScale);
      };
      const client = await summarizeClientDir(dir, network);
      const proofs = await countProofs(ctx, block);
      // Slots of nodes that left are empty (address 0) until a new node takes them.
      const listedSlots = slotCount > BigInt(MAX_LISTED) ? MAX_LISTED : Number(slotCount);
      const addresses = (await Promise.all(Array.from({ length: listedSlots }, (_, i) => r.nodeRegistry.read.nodeAt([BigInt(i)])))).filter(
        (a) => a !== zeroAddress
      );
      const listedNodes = addresses.length;
      const nodes = await Promise.all(
        addresses.map(async (address) => {
          const [info, rewards, payments, [weight, queuedWeight], readEarned] = await Promise.all([
            r.nodeRegistry.read.nodeInfo([address]),
            r.rewards.read.claimable([address]),
            r.maguRegistry.read.claimable([address]),
            r.nodeRegistry.read.selectionWeight([address]),
            r.maguAccess.read.readEarned([address]),
          ]);
          const p = proofs?.get(address.toLowerCase());
          return {
            address,
            roles: roleNames(info.roles),
            stake: info.stake,
            locked: info.locked,
            unbonding: info.unbonding,
            reputation: info.reputation,
            // What the node weighs in member selection (stake scaled by its reputation's tier), and
            // what it will weigh once its queued changes reach the tree.
            selectionWeight: { effective: weight, queued: queuedWeight },
            // What its reputation multiplies its share of the epoch emission by (x3/4 .. x5/4).
            rewardFactor: rewardFactor(info.reputation),
            capacity: info.capacity,
            usedCapacity: info.usedCapacity,
            peerId: formatPeerId(info.peerId),
            multiaddrs: info.multiaddrs,
            claimable: { rewards, payments },
            // What read vouchers paid it (readers' deposits, never the emission).
            readEarned,
            ...(proofs ? { proofs: { passed: p?.passed ?? 0, missed: p?.missed ?? 0 } } : {}),
          };
        })
      );
      const listedMagus = maguCount > BigInt(MAX_LISTED) ? MAX_LISTED : Number(maguCount);
      const magus = await Promise.all(
        Array.from({ length: listedMagus }, async (_, i) => {
          const m = await readMagu(ctx, maguCount - BigInt(i)); // newest first
          const readPrice = await r.maguAccess.read.readPrice([m.id]);
          // A priced Magu: each of its first fragments' multiplier, as each holder asks it.
          const sampled = readPrice === 0n ? 0 : Math.min(m.fragmentCount, READ_FRAGMENTS_LISTED);
          const fragments = (
            await Promise.all(
              Array.from({ length: sampled }, async (_, f) => {
                const holders = (await r.maguRegistry.read.holders([m.id, BigInt(f)])).filter((a) => a !== zeroAddress);
                return Promise.all(
                  holders.map(async (member) => {
                    const [multiplierBps, rarityBps, demandBps] = await r.maguAccess.read.readMultiplier([m.id, BigInt(f), member]);
                    return { fragment: f, member, multiplierBps, rarityBps, demandBps };
                  }),
                );
              }),
            )
          ).flat();
          return {
            id: m.id,
            kind: m.kind,
            status: m.status,
            owner: m.owner,
            members: m.members.filter((x) => x.active).map((x) => x.address),
            fragments: m.fragmentCount,
            maxFragments: m.params.maxFragments,
            startPeriod: m.startPeriod,
            endPeriod: m.endPeriod,
            // Paid reads: base price per fragment (0: free) and, for its first fragments, each
            // holder's bounded multiplier (x1..x2: rarity among the fragment's holders, demand).
            read: { price: readPrice, sampledFragments: sampled, fragments },
          };
        })
      );
      const mult = (bps: bigint): string => `x${Number(bps) / 10_000}`;
      const maxBps = (list: readonly { multiplierBps: bigint }[]): bigint => list.reduce((a, x) => (x.multiplierBps > a ? x.multiplierBps : a), 10_000n);
      /** The priced Magus a node holds fragments of, with its highest multiplier there ("read up to x1.25 on 3"). */
      const heldReads = (address: Address): string[] =>
        magus.flatMap((m) => {
          const own = m.read.fragments.filter((x) => x.member.toLowerCase() === address.toLowerCase());
          return m.read.price > 0n && own.length > 0 ? [`up to ${mult(maxBps(own))} on ${m.id}`] : [];
        });
      /** A priced Magu's multipliers: range, then the highest few with their parts. */
      const readLine = (m: (typeof magus)[number]): string => {
        const list = m.read.fragments;
        if (list.length === 0) return ` read ${formatMuri(m.read.price)} MURI/fragment (no fragments yet; x1 to x2)`;
        const low = list.reduce((a, x) => (x.multiplierBps < a ? x.multiplierBps : a), 20_000n);
        const top = [...list].sort((a, b) => (b.multiplierBps === a.multiplierBps ? a.fragment - b.fragment : b.multiplierBps > a.multiplierBps ? 1 : -1)).slice(0, READ_FRAGMENTS_SHOWN);
        return (
          ` read ${formatMuri(m.read.price)} MURI/fragment ${mult(low)}..${mult(maxBps(list))} over ${m.read.sampledFragments === m.fragments ? "its" : "the first"} ${m.read.sampledFragments} fragments (cap x2); highest: ` +
          top.map((x) => `fragment ${x.fragment} ${mult(x.multiplierBps)} at ${x.member.slice(0, 10)} (rarity +${Number(x.rarityBps) / 100}%, demand +${Number(x.demandBps) / 100}%)`).join(", ")
        );
      };
      const text = [
        `chain ${ctx.deployment.chainId} at ${ctx.rpcUrl}, block ${block}, period ${period}, epoch ${epoch}`,
        `network: ${describeNetwork(network)}`,
        `client directory ${dir}: records of ${client.magus.length} Magus in ${client.networkDir}` +
          (client.otherNetworks.length > 0 ? `; records of ${client.otherNetworks.length} other networks` : "") +
          (client.legacyMagus.length > 0 ? `; old-layout records of Magus ${client.legacyMagus.join(", ")} (adopted on first use if they prove to be this network's)` : "") +
          (client.spareMagus.length > 0 ? `; spare Magus ${client.spareMagus.join(", ")} (paid and empty: a cut upload's, filled by the next streamed put of the same size and options)` : ""),
        `nodes (${nodeCount}):`,
        ...(nodes.length === 0 ? ["  none registered"] : []),
        ...nodes.map(
          (n) =>
            `  ${n.address} ${n.roles.join(",")} stake ${formatMuri(n.stake)} locked ${formatMuri(n.locked)} rep ${
              n.reputation
            } weight ${formatMuri(n.selectionWeight.effective)}` +
            (n.selectionWeight.queued !== n.selectionWeight.effective ? ` (-> ${formatMuri(n.selectionWeight.queued)})` : "") +
            ` reward x${n.rewardFactor} ` +
            `capacity ${formatBytes(n.capacity)} claimable ${formatMuri(n.claimable.rewards + n.claimable.payments)}` +
            (n.proofs ? ` proofs ${n.proofs.passed} passed ${n.proofs.missed} missed` : "") +
            ` reads earned ${formatMuri(n.readEarned)}` +
            (heldReads(n.address).length > 0 ? ` (read ${heldReads(n.address).join(", ")})` : "")
        ),
        ...(nodeCount > BigInt(listedNodes) ? [`  … ${nodeCount - BigInt(listedNodes)} more`] : []),
        `Magus (${maguCount}):`,
        ...(magus.length === 0 ? ["  none"] : []),
        ...magus.map(
          (m) =>
            `  ${m.id} ${m.kind} ${m.status} members ${m.members.length} fragments ${m.fragments}/${m.maxFragments} periods ${m.startPeriod}..${m.endPeriod}` +
            (m.read.price > 0n ? readLine(m) : "")
        ),
        ...(maguCount > BigInt(listedMagus) ? [`  … ${maguCount - BigInt(listedMagus)} more`] : []),
        ...formatAgentHealth(agents),
      ];
      return {
        json: {
          chainId: ctx.deployment.chainId,
          rpcUrl: ctx.rpcUrl,
          network,
          client: { dir, ...client },
          block,
          period,
          epoch,
          nodeCount,
          maguCount,
          nodes,
          magus,
          ...(agents.length > 0 ? { agents } : {}),
        },
        text,
      };
    };
  },
};

/** Proofs per member since the deployment block, or undefined when the RPC will not serve the logs. */
async function countProofs(
  ctx: CliContext,
  toBlock: bigint
): Promise<Map<string, { passed: number; missed: number }> | undefined> {
  const range = { fromBlock: ctx.deployment.deployBlock, toBlock };
  try {
    const [submitted, missed] = await Promise.all([
      ctx.read.challengeManager.getEvents.ProofSubmitted({}, range),
      ctx.read.challengeManager.getEvents.ProofMissed({}, range),
    ]);
    const counts = new Map<string, { passed: number; missed: number }>();
    const bump = (member: Address | undefined, key: "passed" | "missed") => {
      if (!member) return;
      const c = counts.get(member.toLowerCase()) ?? { passed: 0, missed: 0 };
      c[key]++;
      counts.set(member.toLowerCase(), c);
    };
    for (const e of submitted) bump(e.args.member, "passed");
    for (const e of missed) bump(e.args.member, "missed");
    return counts;
  } catch {
    return undefined; // a public RPC may cap log ranges; the rest of the status still stands
  }
}
