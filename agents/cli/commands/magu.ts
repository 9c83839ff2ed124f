/**
 * `muri magu create`: approve the escrow and the formation deposit, request a Magu once recent
 * stake changes weigh in, wait for its selection window (mining to it on a dev chain) and form it
 * (roles/client/magu-create.ts, shared with `muri serve`'s POST /v1/magus; this file reads the
 * options and supplies the CLI's transaction helpers).
 * `muri magu status ID`: its record and members.
 */
import { getAddress, isAddress, type Address } from "viem";
import type { Command, CommandArgs } from "../command.js";
import { signerOf, type CliContext } from "../context.js";
import { CliError, UsageError } from "../errors.js";
import { confirm, ensureAllowance, requireMuri, waitForBlock } from "../tx.js";
import { CLIENT_DEFAULTS, VECTOR_CLIENT_DEFAULTS } from "../../roles/client/defaults.js";
import { formatMuri, parseBytes, parseInteger, parseMuri } from "../values.js";
import {
  createMagu,
  DEFAULT_BLOB_STRIPES,
  DEFAULT_VECTOR_FRAGMENTS,
  FORM_WAIT_MS,
  MAGU_KINDS,
  MAGU_STATUSES,
  maguParams,
  METRIC_NAMES,
  storedFragments,
  type MaguChain,
  type MaguOptions,
  type MaguRegistryParams,
} from "../../roles/client/magu-create.js";
import { FRAGMENT_SIZE } from "../../data/constants.js";
import { ENCRYPTION_OVERHEAD } from "../../data/crypto.js";
import { describeBytes } from "../../store/index.js";

export const maguCreateCommand: Command = {
  path: ["magu", "create"],
  summary: "request a Magu (escrowing its price) and form it from staked nodes",
  usage:
    "muri magu create --kind blob|vector [--fragments F --periods P --price MURI] [--members N] " +
    "[--data-shards K --parity-shards M] [--replication R --dim D --metric l2|ip|cosine|hamming] [--public] [--size SIZE] [--dry-run]",
  help: [
    "  --kind blob|vector   blob: erasure-coded files; vector: replicated vector index",
    `  --fragments F        fragments the escrow pays for (default: blob ${DEFAULT_BLOB_STRIPES} stripes of K + M, vector ${DEFAULT_VECTOR_FRAGMENTS}, ~1 MiB each)`,
    `  --periods P          duration in proof periods (default ${CLIENT_DEFAULTS.durationPeriods})`,
    `  --price MURI         price per fragment per period (default ${formatMuri(CLIENT_DEFAULTS.pricePerFragmentPeriod)}; escrow = price x fragments [x R] x periods)`,
    "  --members N          member slots (default: K + M for blob, R for vector)",
    "  --data-shards K      blob: data shards per stripe (default 1)",
    "  --parity-shards M    blob: parity shards per stripe (default 1)",
    "  --replication R      vector: replicas per fragment (default 1)",
    "  --dim D              vector: dimension (required for vector; for hamming the number of bits)",
    "  --metric l2|ip|cosine|hamming",
    "                       vector: distance metric (default l2): l2 squared Euclidean, ip inner product,",
    "                       cosine the angle (the client scales vectors and queries to unit length),",
    "                       hamming the number of differing bits between binary vectors (packed, no quantization)",
    "  --public             anyone may read and search it (default: private - members, validators and grantees only)",
    "  --size SIZE          the data you will store (e.g. 5GiB): sets --fragments to what it encodes to",
    "  --dry-run            send nothing: print the members, the space each needs (data x (K+M)/K / members),",
    "                       what the registry reserves of each member's capacity, the escrow, deposit and stake",
    "                       locked, and how many registered nodes could be drafted now",
  ],
  options: {
    kind: { type: "string" },
    fragments: { type: "string" },
    periods: { type: "string" },
    price: { type: "string" },
    members: { type: "string" },
    "data-shards": { type: "string" },
    "parity-shards": { type: "string" },
    replication: { type: "string" },
    dim: { type: "string" },
    metric: { type: "string" },
    public: { type: "boolean" },
    size: { type: "string" },
    "dry-run": { type: "boolean" },
  },
  signs: true,
  prepare(args) {
    const { defaulted, dataBytes, ...params } = maguParams(cliMaguOptions(args));
    const makePublic = args.flag("public");
    if (args.flag("dry-run")) return (ctx) => dryRun(ctx, params, dataBytes);
    return async (ctx) => {
      const stored = storedFragments(params);
      const chosen: Record<string, string> = {
        "--fragments": String(params.maxFragments),
        "--periods": String(params.durationPeriods),
        "--price": formatMuri(params.pricePerFragmentPeriod),
      };
      const made = await createMagu(cliMaguChain(ctx), { ...params, defaulted }, makePublic);
      return {
        json: made,
        text: [
          `Magu ${made.id} formed (${made.kind}, ${made.visibility}, escrow ${formatMuri(made.escrow)} MURI, periods ${made.startPeriod}..${made.endPeriod})`,
          ...(defaulted.length > 0
            ? [`  defaults used: ${defaulted.map((o) => `${o} ${chosen[o]}`).join(" ")} (escrow = price x ${stored} fragment copies x periods)`]
            : []),
          ...made.members.map((m, i) => `  member ${i}: ${m}`),
        ],
      };
    };
  },
};

/** `magu create`'s options as the shared creation reads them: `--name` strings, refused as usage errors. */
function cliMaguOptions(args: CommandArgs): MaguOptions {
  return {
    label: (o) => `--${o}`,
    has: (o) => args.values[o] !== undefined,
    string: (o) => args.string(o),
    required: (o, hint) => args.required(o, hint),
    integer: (o, range) => {
      const v = args.string(o);
      return v === undefined ? undefined : parseInteger(v, `--${o}`, range);
    },
    muri: (o) => {
      const v = args.string(o);
      return v === undefined ? undefined : parseMuri(v, `--${o}`);
    },
    bytes: (o) => {
      const v = args.string(o);
      return v === undefined ? undefined : parseBytes(v, `--${o}`);
    },
    fail: (_o, message) => {
      throw new UsageError(message);
    },
  };
}

/** The signer's chain with the CLI's transaction helpers (tx.ts): what a creation sends through. */
export function cliMaguChain(ctx: CliContext): MaguChain {
  const { account, contracts } = signerOf(ctx);
  return {
    account,
    read: ctx.read,
    write: contracts,
    registry: ctx.deployment.contracts.maguRegistry,
    head: () => ctx.publicClient.getBlockNumber({ cacheTime: 0 }),
    waitForBlock: async (block) => void (await waitForBlock(ctx, block, FORM_WAIT_MS)),
    confirm: (hash, what) => confirm(ctx, hash, what),
    requireMuri: (amount, purpose) => requireMuri(ctx, amount, purpose),
    ensureAllowance: (spender, amount) => ensureAllowance(ctx, spender, amount),
  };
}

export const maguFireCommand: Command = {
  path: ["magu", "fire"],
  summary: "replace a member of your Magu: it is paid for what it proved, the slot is redrawn",
  usage: "muri magu fire ID MEMBER",
  help: [
    "  ID                   the Magu id (yours)",
    "  MEMBER               the member's address (muri magu status ID lists them)",
    "  The member keeps its stake and is paid for its proven periods; you pay the newcomer's repair",
    "  bounty and forfeit a formation deposit (what a redraw costs, so firing cannot grind selection).",
  ],
  options: {},
  positionals: ["ID", "MEMBER"],
  signs: true,
  prepare(args) {
    const id = parseInteger(args.positionals[0]!, "ID", { max: 2n ** 256n - 1n });
    const raw = args.positionals[1]!;
    if (!isAddress(raw)) throw new UsageError(`MEMBER: "${raw}" is not an address (0x and 40 hex digits; muri magu status ${id} lists the members)`);
    const member = getAddress(raw);
    return async (ctx) => {
      const magu = await readMagu(ctx, id);
      const { account, contracts } = signerOf(ctx);
      if (magu.owner.toLowerCase() !== account.toLowerCase()) {
        throw new CliError("ERR_MAGU_NOT_OWNER", `Magu ${id} belongs to ${magu.owner}, not to ${account}: only its owner may fire a member`);
      }
      const seat = magu.members.find((m) => m.active && m.address.toLowerCase() === member.toLowerCase());
      if (seat === undefined) throw new CliError("ERR_NOT_MEMBER", `${member} is not an active member of Magu ${id}: muri magu status ${id} lists them`);
      const { formationDeposit, repairBounty } = await ctx.read.maguRegistry.read.config();
      const cost = formationDeposit + repairBounty;
      await requireMuri(ctx, cost, "the repair bounty and the forfeited formation deposit");
      await ensureAllowance(ctx, ctx.deployment.contracts.maguRegistry, cost);
      const hash = await contracts.maguRegistry.write.fire([id, member]);
      await confirm(ctx, hash, "MaguRegistry.fire");
      const paid = await ctx.read.maguRegistry.read.claimable([member]);
      return {
        json: { id, member, slot: seat.slot, repairBounty, forfeitedDeposit: formationDeposit, tx: hash },
        text: [
          `fired ${member} from slot ${seat.slot} of Magu ${id}: it keeps its stake (claimable now ${formatMuri(paid)} MURI)`,
          `  you paid ${formatMuri(repairBounty)} MURI repair bounty (to the newcomer) + ${formatMuri(formationDeposit)} MURI forfeited deposit; validators redraw the slot in its selection window`,
        ],
      };
    };
  },
};

export const maguStatusCommand: Command = {
  path: ["magu", "status"],
  summary: "show a Magu: kind, status, parameters, data, and each member's proofs",
  usage: "muri magu status ID",
  help: ["  ID                   the Magu id (from muri magu create or muri status)"],
  options: {},
  positionals: ["ID"],
  signs: false,
  prepare(args) {
    const id = parseInteger(args.positionals[0]!, "ID", { max: 2n ** 256n - 1n });
    return async (ctx) => {
      const magu = await readMagu(ctx, id);
      const p = magu.params;
      return {
        json: magu,
        text: [
          `Magu ${id}: ${magu.kind}, ${magu.status}, ${magu.visibility}, owner ${magu.owner}`,
          magu.visibility === "public"
            ? "  public: its members serve and search it for anyone"
            : `  private: served to its members, validators and grantees only (muri magu grant ${id} --to ...)`,
          magu.kind === "blob"
            ? `  ${p.members} members, k=${p.dataShards} m=${p.parityShards}, ${p.maxFragments} fragments paid for ${
                p.durationPeriods
              } periods at ${formatMuri(p.pricePerFragmentPeriod)} MURI`
            : `  ${p.members} members, replication ${p.replication}, dim ${p.dimension} ${p.metric}, ${
                p.maxFragments
              } fragments paid for ${p.durationPeriods} periods at ${formatMuri(p.pricePerFragmentPeriod)} MURI`,
          `  periods ${magu.startPeriod}..${magu.endPeriod}, escrow ${formatMuri(magu.escrow)} MURI, data: ${
            magu.fragmentCount
          } fragments in ${magu.batches} batches, root ${magu.root}`,
          ...magu.members.map(
            (m) =>
              `  member ${m.slot}: ${m.address}${m.active ? "" : " (left)"} joined period ${m.joinPeriod}, proved ${
                m.provedPeriods
              } periods, ${m.misses} misses`
          ),
        ],
      };
    };
  },
};

/** A Magu's record with names instead of enum numbers; fails with "no Magu ID" for an unknown id. */
export async function readMagu(ctx: CliContext, id: bigint) {
  const info = await ctx.read.maguRegistry.read.maguInfo([id]);
  if (info.status === 0) {
    const count = await ctx.read.maguRegistry.read.maguCount();
    throw new CliError(
      "ERR_MAGU_UNKNOWN",
      `no Magu ${id} (MaguUnknown): ${count === 0n ? "none exists yet" : `ids run from 1 to ${count}`}`
    );
  }
  const members = await Promise.all(
    info.members.map(async (address: Address) => ({
      address,
      ...(await ctx.read.maguRegistry.read.membership([id, address])),
    }))
  );
  const p = info.params;
  return {
    id,
    owner: info.owner,
    kind: MAGU_KINDS[p.kind] ?? String(p.kind),
    status: MAGU_STATUSES[info.status] ?? String(info.status),
    visibility: (await ctx.read.maguAccess.read.isPublic([id])) ? ("public" as const) : ("private" as const),
    params: {
      members: p.members,
      dataShards: p.dataShards,
      parityShards: p.parityShards,
      replication: p.replication,
      dimension: p.dimension,
      metric: METRIC_NAMES[p.metric] ?? String(p.metric),
      maxFragments: p.maxFragments,
      durationPeriods: p.durationPeriods,
      pricePerFragmentPeriod: p.pricePerFragmentPeriod,
    },
    root: info.root,
    fragmentCount: info.fragmentCount,
    batches: info.batches,
    requestBlock: info.requestBlock,
    startPeriod: info.startPeriod,
    endPeriod: info.endPeriod,
    escrow: info.escrow,
    payPerSlotPeriod: info.payPerSlotPeriod,
    members,
  };
}

/** Registered nodes `magu create --dry-run` reads to count who could be drafted. */
const DRY_RUN_NODE_SCAN = 256;


/**
 * `magu create --dry-run`: what the Magu would need and cost, read from the chain, nothing sent.
 * Each member's share is BitDust's supplier quota: the data x (K + M) / K (a blob's parity; R for a
 * vector Magu's replicas) / members; the registry reserves whole fragments of FRAGMENT_BYTES of each
 * member's registered capacity, and drafts only nodes with that much free (NodeRegistry.drawNodes).
 */
async function dryRun(ctx: CliContext, params: MaguRegistryParams, dataBytes: number | undefined) {
  const blob = params.kind === 0;
  const width = blob ? params.dataShards + params.parityShards : 1;
  const stored = blob ? BigInt(params.maxFragments) : BigInt(params.maxFragments) * BigInt(params.replication);
  const escrow = params.pricePerFragmentPeriod * stored * params.durationPeriods;
  const [{ formationDeposit, stakePerMember }, fragmentBytes, { minStake }, count] = await Promise.all([
    ctx.read.maguRegistry.read.config(),
    ctx.read.maguRegistry.read.FRAGMENT_BYTES(),
    ctx.read.nodeRegistry.read.config(),
    ctx.read.nodeRegistry.read.nodeCount(),
  ]);
  // The data the fragments hold: --size, else what they can hold at most.
  const data =
    dataBytes ??
    (blob
      ? (params.maxFragments / width) * params.dataShards * (FRAGMENT_SIZE - ENCRYPTION_OVERHEAD)
      : params.maxFragments * VECTOR_CLIENT_DEFAULTS.fragmentSize);
  const expansion = blob ? (params.dataShards + params.parityShards) / params.dataShards : params.replication;
  const perMember = Math.ceil((data * expansion) / params.members);
  const reserved = ((stored + BigInt(params.members) - 1n) / BigInt(params.members)) * fragmentBytes;
  const needStake = minStake + stakePerMember;
  const scanned = count < BigInt(DRY_RUN_NODE_SCAN) ? Number(count) : DRY_RUN_NODE_SCAN;
  let eligible = 0;
  let registered = 0;
  for (let i = 0; i < scanned; i++) {
    const node = await ctx.read.nodeRegistry.read.nodeAt([BigInt(i)]);
    const [info, [, weight]] = await Promise.all([ctx.read.nodeRegistry.read.nodeInfo([node]), ctx.read.nodeRegistry.read.selectionWeight([node])]);
    if (!info.registered || (info.roles & 1) === 0) continue;
    registered++;
    // The weight it will have once queued changes apply (a request's draw sees those made before it).
    const freeStake = info.stake > info.locked ? info.stake - info.locked : 0n;
    if (weight > 0n && info.capacity - info.usedCapacity >= reserved && freeStake >= needStake) eligible++;
  }
  const shape = blob
    ? `K ${params.dataShards} + M ${params.parityShards}, ${params.maxFragments} fragments (${params.maxFragments / width} stripes)`
    : `replication ${params.replication}, ${params.maxFragments} fragments x ${params.replication} copies`;
  const formula = blob ? `data x (K+M)/K / members = ${describeBytes(data)} x ${width}/${params.dataShards} / ${params.members}` : `data x R / members = ${describeBytes(data)} x ${params.replication} / ${params.members}`;
  return {
    json: {
      dryRun: true,
      kind: MAGU_KINDS[params.kind],
      members: params.members,
      maxFragments: params.maxFragments,
      storedFragments: stored,
      durationPeriods: params.durationPeriods,
      dataBytes: data,
      perMemberBytes: perMember,
      reservedPerMemberBytes: reserved,
      escrow,
      formationDeposit,
      total: escrow + formationDeposit,
      stakePerMember,
      eligibleNodes: eligible,
      registeredNodes: registered,
      scannedNodes: scanned,
    },
    text: [
      `dry run, nothing sent: a ${MAGU_KINDS[params.kind]} Magu of ${params.members} members, ${shape}, for ${params.durationPeriods} periods`,
      `  data ${describeBytes(data)}${dataBytes === undefined ? " (the most its fragments hold; --size SIZE for yours)" : ""}`,
      `  each member needs ${describeBytes(perMember)} (${formula}); the registry reserves ${describeBytes(Number(reserved))} of its capacity`,
      `  cost: escrow ${formatMuri(escrow)} MURI (price x ${stored} fragment copies x ${params.durationPeriods} periods) + formation deposit ${formatMuri(
        formationDeposit
      )} MURI (refunded when it forms) = ${formatMuri(escrow + formationDeposit)} MURI`,
      `  each member locks ${formatMuri(stakePerMember)} MURI of its stake`,
      `  nodes that could be drafted now: ${eligible} of ${registered} registered${scanned < Number(count) ? ` (of the first ${scanned} read)` : ""} (free capacity >= ${describeBytes(
        Number(reserved)
      )}, free stake >= ${formatMuri(needStake)} MURI)${eligible < params.members ? `: fewer than the ${params.members} members` : ""}`,
    ],
  };
}
