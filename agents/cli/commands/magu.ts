/**
 * `muri magu create`: approve the escrow and the formation deposit, request a Magu once recent
 * stake changes weigh in, wait for its selection window (mining to it on a dev chain) and form it.
 * `muri magu status ID`: its record and members.
 */
import { getAddress, isAddress, parseEventLogs, type Address } from "viem";
import { formInWindow, maguRegistryAbi, settledRequestBlock } from "../../chain/index.js";
import type { Command, CommandArgs } from "../command.js";
import { signerOf, type CliContext } from "../context.js";
import { CliError, UsageError } from "../errors.js";
import { confirm, ensureAllowance, requireMuri, waitForBlock } from "../tx.js";
import { CLIENT_DEFAULTS } from "../../roles/client/client.js";
import { formatMuri, parseBytes, parseInteger, parseMuri } from "../values.js";
import { VECTOR_CLIENT_DEFAULTS } from "../../roles/client/vector-client.js";
import { FRAGMENT_SIZE } from "../../data/constants.js";
import { ENCRYPTION_OVERHEAD } from "../../data/crypto.js";
import { stripesFor } from "../../data/manifest.js";
import { describeBytes } from "../../store/index.js";
import { METRIC_CODE } from "../../data/vector-manifest.js";
import { isVectorMetric, VECTOR_METRICS } from "../../data/vectors.js";

export const MAGU_KINDS = ["blob", "vector"] as const;
export const MAGU_STATUSES = ["none", "requested", "active", "ended", "cancelled"] as const;
/** Metric names by MaguRegistry `Metric` code (0: a blob Magu's none). */
const METRIC_NAMES = ["none", ...VECTOR_METRICS] as const;
/** How long `magu create` waits for its selection window on a chain it cannot mine. */
const FORM_WAIT_MS = 120_000;
/** A formMagu landing after the window asks again (a new deposit); at most this many windows. */
const FORM_ATTEMPTS = 3;
/** `magu create` without --fragments: a blob Magu pays for this many stripes, a vector Magu for this many fragments. */
const DEFAULT_BLOB_STRIPES = 4n;
const DEFAULT_VECTOR_FRAGMENTS = 64n;
const U8 = 255n;
const U32 = 2n ** 32n - 1n;
const U64 = 2n ** 64n - 1n;

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
    const { defaulted, dataBytes, ...params } = parseMaguParams(args);
    const makePublic = args.flag("public");
    if (args.flag("dry-run")) return (ctx) => dryRun(ctx, params, dataBytes);
    return async (ctx) => {
      const stored =
        params.kind === 1 ? BigInt(params.maxFragments) * BigInt(params.replication) : BigInt(params.maxFragments);
      const escrow = params.pricePerFragmentPeriod * stored * params.durationPeriods;
      const chosen: Record<string, string> = {
        "--fragments": String(params.maxFragments),
        "--periods": String(params.durationPeriods),
        "--price": formatMuri(params.pricePerFragmentPeriod),
      };
      const registry = ctx.deployment.contracts.maguRegistry;
      const { account, contracts } = signerOf(ctx);
      const { formationDeposit } = await ctx.read.maguRegistry.read.config();
      await requireMuri(ctx, escrow + formationDeposit, "the Magu's escrow and formation deposit");
      await ensureAllowance(ctx, registry, escrow + formationDeposit);
      // A request sees only stake changes made an epoch before it: let recent ones settle.
      await waitForBlock(ctx, await settledRequestBlock(ctx.read), FORM_WAIT_MS);

      const createHash = await contracts.maguRegistry.write.createMagu([params]);
      const receipt = await confirm(ctx, createHash, "MaguRegistry.createMagu");
      const requested = parseEventLogs({ abi: maguRegistryAbi, logs: receipt.logs, eventName: "MaguRequested" })[0];
      if (!requested)
        throw new CliError("ERR_NO_EVENT", `MaguRegistry.createMagu (tx ${createHash}) emitted no MaguRequested event`);
      const id = requested.args.magu;
      let publicHash: `0x${string}` | undefined;
      if (makePublic) {
        publicHash = await contracts.maguAccess.write.setPublic([id, true]);
        await confirm(ctx, publicHash, "MaguAccess.setPublic");
      }

      let formHash: `0x${string}` | undefined;
      await formInWindow(
        {
          read: ctx.read,
          head: () => ctx.publicClient.getBlockNumber({ cacheTime: 0 }),
          waitForBlock: async (block) => void (await waitForBlock(ctx, block, FORM_WAIT_MS)),
          form: async () => {
            formHash = await contracts.maguRegistry.write.formMagu([id]);
            await confirm(ctx, formHash, "MaguRegistry.formMagu");
          },
          approveDeposit: async () => void (await ensureAllowance(ctx, registry, formationDeposit)),
        },
        id,
        FORM_ATTEMPTS
      );
      const info = await ctx.read.maguRegistry.read.maguInfo([id]);
      if (info.status !== 2) {
        throw new CliError(
          "ERR_NOT_FORMED",
          `Magu ${id} is ${
            MAGU_STATUSES[info.status] ?? info.status
          } after ${FORM_ATTEMPTS} attempts to form it: run muri magu status ${id}`
        );
      }
      return {
        json: {
          id,
          owner: account,
          kind: MAGU_KINDS[params.kind],
          escrow,
          formationDeposit,
          params: {
            members: params.members,
            maxFragments: params.maxFragments,
            durationPeriods: params.durationPeriods,
            pricePerFragmentPeriod: params.pricePerFragmentPeriod,
            ...(params.kind === 0
              ? { dataShards: params.dataShards, parityShards: params.parityShards }
              : { replication: params.replication, dimension: params.dimension, metric: METRIC_NAMES[params.metric] }),
          },
          defaulted,
          visibility: makePublic ? "public" : "private",
          status: MAGU_STATUSES[info.status],
          members: info.members,
          startPeriod: info.startPeriod,
          endPeriod: info.endPeriod,
          txs: { create: createHash, form: formHash, ...(publicHash !== undefined ? { setPublic: publicHash } : {}) },
        },
        text: [
          `Magu ${id} formed (${MAGU_KINDS[params.kind]}, ${makePublic ? "public" : "private"}, escrow ${formatMuri(escrow)} MURI, periods ${
            info.startPeriod
          }..${info.endPeriod})`,
          ...(defaulted.length > 0
            ? [
                `  defaults used: ${defaulted
                  .map((o) => `${o} ${chosen[o]}`)
                  .join(" ")} (escrow = price x ${stored} fragment copies x periods)`,
              ]
            : []),
          ...info.members.map((m, i) => `  member ${i}: ${m}`),
        ],
      };
    };
  },
};

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

function parseMaguParams(args: CommandArgs) {
  const kindArg = args.required("kind", "blob or vector").toLowerCase();
  const kind = MAGU_KINDS.indexOf(kindArg as (typeof MAGU_KINDS)[number]);
  if (kind < 0) throw new UsageError(`--kind: "${kindArg}" is not a Magu kind: use blob or vector`);
  const fragmentsArg = args.string("fragments");
  const sizeArg = args.string("size");
  if (sizeArg !== undefined && fragmentsArg !== undefined) throw new UsageError("give --size (the data) or --fragments, not both");
  const size = sizeArg === undefined ? undefined : parseBytes(sizeArg, "--size");
  if (size !== undefined && size > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`--size: ${sizeArg} is too large`);
  const dataBytes = size === undefined ? undefined : Number(size);
  const periodsArg = args.string("periods");
  const periods =
    periodsArg === undefined ? CLIENT_DEFAULTS.durationPeriods : parseInteger(periodsArg, "--periods", { max: U64, min: 1n });
  const priceArg = args.string("price");
  const price = priceArg === undefined ? CLIENT_DEFAULTS.pricePerFragmentPeriod : parseMuri(priceArg, "--price");
  const defaulted = [
    ...(fragmentsArg === undefined && sizeArg === undefined ? ["--fragments"] : []),
    ...(periodsArg === undefined ? ["--periods"] : []),
    ...(priceArg === undefined ? ["--price"] : []),
  ];
  const opt = (name: string, max: bigint, fallback: bigint) => {
    const v = args.string(name);
    return v === undefined ? fallback : parseInteger(v, `--${name}`, { max });
  };
  const fragmentsOr = (fallback: bigint) =>
    fragmentsArg === undefined ? fallback : parseInteger(fragmentsArg, "--fragments", { max: U32, min: 1n });
  if (kind === 0) {
    for (const o of ["replication", "dim", "metric"]) {
      if (args.values[o] !== undefined)
        throw new UsageError(`--${o} applies to vector Magus only: drop it or use --kind vector`);
    }
    const dataShards = opt("data-shards", U8, 1n);
    const parityShards = opt("parity-shards", U8, 1n);
    const width = dataShards + parityShards;
    const members = opt("members", U8, width);
    if (width > members) throw new UsageError(`--members: ${members} is fewer than data + parity shards (${width})`);
    // A file of --size bytes: stripes of K fragments of FRAGMENT_SIZE - 28 plaintext bytes each.
    const sized = dataBytes === undefined ? undefined : BigInt(stripesFor(dataBytes, FRAGMENT_SIZE - ENCRYPTION_OVERHEAD, Number(dataShards))) * width;
    const fragments = sized ?? fragmentsOr(DEFAULT_BLOB_STRIPES * width);
    if (fragments % width !== 0n)
      throw new UsageError(`--fragments: ${fragments} is not a multiple of data + parity shards (${width})`);
    return {
      kind,
      metric: 0,
      dimension: 0,
      members: Number(members),
      replication: 0,
      dataShards: Number(dataShards),
      parityShards: Number(parityShards),
      maxFragments: Number(fragments),
      durationPeriods: periods,
      pricePerFragmentPeriod: price,
      defaulted,
      dataBytes,
    };
  }
  for (const o of ["data-shards", "parity-shards"]) {
    if (args.values[o] !== undefined)
      throw new UsageError(`--${o} applies to blob Magus only: drop it or use --kind blob`);
  }
  const dim = parseInteger(args.required("dim", "the vector dimension, e.g. --dim 128"), "--dim", { max: U32 });
  const metricArg = (args.string("metric") ?? "l2").toLowerCase();
  if (!isVectorMetric(metricArg)) throw new UsageError(`--metric: "${metricArg}" is not a metric: use ${VECTOR_METRICS.join(", ")}`);
  const metric = METRIC_CODE[metricArg];
  const replication = opt("replication", U8, 1n);
  const members = opt("members", U8, replication);
  if (replication > members) throw new UsageError(`--replication: ${replication} is more than --members ${members}`);
  return {
    kind,
    metric,
    dimension: Number(dim),
    members: Number(members),
    replication: Number(replication),
    dataShards: 0,
    parityShards: 0,
    maxFragments:
      dataBytes === undefined ? Number(fragmentsOr(DEFAULT_VECTOR_FRAGMENTS)) : Math.max(1, Math.ceil(dataBytes / VECTOR_CLIENT_DEFAULTS.fragmentSize)),
    durationPeriods: periods,
    pricePerFragmentPeriod: price,
    defaulted,
    dataBytes,
  };
}

/** Registered nodes `magu create --dry-run` reads to count who could be drafted. */
const DRY_RUN_NODE_SCAN = 256;

type MaguParamsArg = Omit<ReturnType<typeof parseMaguParams>, "defaulted" | "dataBytes">;

/**
 * `magu create --dry-run`: what the Magu would need and cost, read from the chain, nothing sent.
 * Each member's share is BitDust's supplier quota: the data x (K + M) / K (a blob's parity; R for a
 * vector Magu's replicas) / members; the registry reserves whole fragments of FRAGMENT_BYTES of each
 * member's registered capacity, and drafts only nodes with that much free (NodeRegistry.drawNodes).
 */
async function dryRun(ctx: CliContext, params: MaguParamsArg, dataBytes: number | undefined) {
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
