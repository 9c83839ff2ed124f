/**
 * Creating a Magu of either kind, shared by `muri magu create` (agents/cli/commands/magu.ts) and
 * the HTTP API's `POST /v1/magus` (http-api.ts): the parameters with their defaults and checks
 * ({@link maguParams}), and the chain steps ({@link createMagu}): check the balance, approve the
 * escrow and the formation deposit, request the Magu once recent stake changes weigh in, make it
 * public when asked, and form it in its selection window.
 *
 * Both callers read options their own way (command-line strings, a JSON body) through a
 * {@link MaguOptions}, which also names an option in a message the caller's way (`--dim`, `dim`) and
 * turns a refusal into the caller's error (a usage error, a 400 problem). The chain steps run
 * through a {@link MaguChain} the caller provides (its transaction helpers: receipts, allowances,
 * waiting for blocks), so the CLI and the daemon send the same transactions in the same order.
 */
import { parseEventLogs, type Address, type Hex, type TransactionReceipt } from "viem";
import { formInWindow, maguRegistryAbi, settledRequestBlock, type MuriContracts, type MuriPublicClient, type MuriWalletClient } from "../../chain/index.js";
import { FRAGMENT_SIZE } from "../../data/constants.js";
import { ENCRYPTION_OVERHEAD } from "../../data/crypto.js";
import { stripesFor } from "../../data/manifest.js";
import { METRIC_CODE } from "../../data/vector-manifest.js";
import { isVectorMetric, VECTOR_METRICS } from "../../data/vectors.js";
import { CLIENT_DEFAULTS, VECTOR_CLIENT_DEFAULTS } from "./defaults.js";

export const MAGU_KINDS = ["blob", "vector"] as const;
export const MAGU_STATUSES = ["none", "requested", "active", "ended", "cancelled"] as const;
/** Metric names by MaguRegistry `Metric` code (0: a blob Magu's none). */
export const METRIC_NAMES = ["none", ...VECTOR_METRICS] as const;
/** Without fragments or a size: a blob Magu pays for this many stripes, a vector Magu for this many fragments. */
export const DEFAULT_BLOB_STRIPES = 4n;
export const DEFAULT_VECTOR_FRAGMENTS = 64n;
/** How long a creation waits for its selection window on a chain it cannot mine. */
export const FORM_WAIT_MS = 120_000;
/** A formMagu landing after the window asks again (a new deposit); at most this many windows. */
const FORM_ATTEMPTS = 3;
const U8 = 255n;
const U32 = 2n ** 32n - 1n;
const U64 = 2n ** 64n - 1n;

/** The options of a Magu creation, by their CLI names (without the dashes). */
export type MaguOption = "kind" | "fragments" | "size" | "periods" | "price" | "members" | "data-shards" | "parity-shards" | "replication" | "dim" | "metric";

/** How a caller reads the options of a creation and reports a bad one. */
export interface MaguOptions {
  /** How a message names `option` (`--dim` on the command line, `dim` in a JSON body). */
  label(option: MaguOption): string;
  /** Whether the caller gave `option` at all. */
  has(option: MaguOption): boolean;
  string(option: MaguOption): string | undefined;
  /** A string option the creation cannot do without; `hint` says what to give. */
  required(option: MaguOption, hint: string): string;
  integer(option: MaguOption, range: { min?: bigint; max: bigint }): bigint | undefined;
  /** An amount of MURI (18 decimals), greater than 0. */
  muri(option: MaguOption): bigint | undefined;
  /** A size in bytes (units allowed where the caller takes them). */
  bytes(option: MaguOption): bigint | undefined;
  /** Refuses the creation: `option` (when one is at fault) and what to do. */
  fail(option: MaguOption | undefined, message: string): never;
}

/** What MaguRegistry.createMagu takes, checked, with the options that were defaulted and the data size given. */
export type MaguParams = ReturnType<typeof maguParams>;
/** The createMagu argument alone. */
export type MaguRegistryParams = Omit<MaguParams, "defaulted" | "dataBytes">;

/**
 * The parameters of a new Magu from `o`, with `muri magu create`'s defaults: fragments from the
 * data size when given (else 4 stripes of a blob Magu, 64 fragments of a vector Magu), periods and
 * price from CLIENT_DEFAULTS, k = m = 1, replication 1, members K + M (blob) or R (vector), metric l2.
 * Options of the other kind are refused.
 */
export function maguParams(o: MaguOptions) {
  const L = (option: MaguOption): string => o.label(option);
  const kindArg = o.required("kind", "blob or vector").toLowerCase();
  const kind = MAGU_KINDS.indexOf(kindArg as (typeof MAGU_KINDS)[number]);
  if (kind < 0) o.fail("kind", `${L("kind")}: "${kindArg}" is not a Magu kind: use blob or vector`);
  const fragmentsGiven = o.has("fragments");
  const sizeGiven = o.has("size");
  if (sizeGiven && fragmentsGiven) o.fail("size", `give ${L("size")} (the data) or ${L("fragments")}, not both`);
  const size = o.bytes("size");
  if (size !== undefined && size > BigInt(Number.MAX_SAFE_INTEGER)) o.fail("size", `${L("size")}: ${o.string("size")} is too large`);
  const dataBytes = size === undefined ? undefined : Number(size);
  const periodsGiven = o.has("periods");
  const periods = o.integer("periods", { max: U64, min: 1n }) ?? CLIENT_DEFAULTS.durationPeriods;
  const priceGiven = o.has("price");
  const price = o.muri("price") ?? CLIENT_DEFAULTS.pricePerFragmentPeriod;
  const defaulted = [
    ...(!fragmentsGiven && !sizeGiven ? [L("fragments")] : []),
    ...(!periodsGiven ? [L("periods")] : []),
    ...(!priceGiven ? [L("price")] : []),
  ];
  const opt = (name: MaguOption, max: bigint, fallback: bigint): bigint => o.integer(name, { max }) ?? fallback;
  const fragmentsOr = (fallback: bigint): bigint => o.integer("fragments", { max: U32, min: 1n }) ?? fallback;
  if (kind === 0) {
    for (const name of ["replication", "dim", "metric"] as const) {
      if (o.has(name)) o.fail(name, `${L(name)} applies to vector Magus only: drop it or use ${L("kind")} vector`);
    }
    const dataShards = opt("data-shards", U8, 1n);
    const parityShards = opt("parity-shards", U8, 1n);
    const width = dataShards + parityShards;
    const members = opt("members", U8, width);
    if (width > members) o.fail("members", `${L("members")}: ${members} is fewer than data + parity shards (${width})`);
    // A file of `size` bytes: stripes of K fragments of FRAGMENT_SIZE - 28 plaintext bytes each.
    const sized = dataBytes === undefined ? undefined : BigInt(stripesFor(dataBytes, FRAGMENT_SIZE - ENCRYPTION_OVERHEAD, Number(dataShards))) * width;
    const fragments = sized ?? fragmentsOr(DEFAULT_BLOB_STRIPES * width);
    if (fragments % width !== 0n) o.fail("fragments", `${L("fragments")}: ${fragments} is not a multiple of data + parity shards (${width})`);
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
  for (const name of ["data-shards", "parity-shards"] as const) {
    if (o.has(name)) o.fail(name, `${L(name)} applies to blob Magus only: drop it or use ${L("kind")} blob`);
  }
  o.required("dim", `the vector dimension, e.g. ${L("dim")} 128`);
  const dim = o.integer("dim", { max: U32 })!;
  const metricArg = (o.string("metric") ?? "l2").toLowerCase();
  if (!isVectorMetric(metricArg)) o.fail("metric", `${L("metric")}: "${metricArg}" is not a metric: use ${VECTOR_METRICS.join(", ")}`);
  const metric = METRIC_CODE[metricArg];
  const replication = opt("replication", U8, 1n);
  const members = opt("members", U8, replication);
  if (replication > members) o.fail("replication", `${L("replication")}: ${replication} is more than ${L("members")} ${members}`);
  return {
    kind,
    metric,
    dimension: Number(dim),
    members: Number(members),
    replication: Number(replication),
    dataShards: 0,
    parityShards: 0,
    maxFragments: dataBytes === undefined ? Number(fragmentsOr(DEFAULT_VECTOR_FRAGMENTS)) : Math.max(1, Math.ceil(dataBytes / VECTOR_CLIENT_DEFAULTS.fragmentSize)),
    durationPeriods: periods,
    pricePerFragmentPeriod: price,
    defaulted,
    dataBytes,
  };
}

/** Fragment copies the escrow pays for: a vector Magu's fragments x R, a blob Magu's fragments. */
export function storedFragments(params: MaguRegistryParams): bigint {
  return params.kind === 1 ? BigInt(params.maxFragments) * BigInt(params.replication) : BigInt(params.maxFragments);
}

/** The signer's chain as a creation uses it; the caller's transaction helpers. */
export interface MaguChain {
  account: Address;
  read: MuriContracts;
  write: MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
  /** The MaguRegistry's address (the spender of the escrow and deposit). */
  registry: Address;
  head(): Promise<bigint>;
  /** Resolves once the head is at least `block` (mining to it on a dev chain that can). */
  waitForBlock(block: bigint): Promise<void>;
  /** The receipt of `hash`; throws when it reverted. */
  confirm(hash: Hex, what: string): Promise<TransactionReceipt>;
  /** Throws a clear error when the account holds less than `amount` MURI. */
  requireMuri(amount: bigint, purpose: string): Promise<void>;
  /** Approves `spender` for `amount` unless the allowance covers it. */
  ensureAllowance(spender: Address, amount: bigint): Promise<unknown>;
}

/** A creation step that did not go as the chain promised; `code` names it. */
export class MaguCreateError extends Error {
  constructor(
    readonly code: "ERR_NO_EVENT" | "ERR_NOT_FORMED",
    message: string,
  ) {
    super(message);
    this.name = "MaguCreateError";
  }
}

/** A formed Magu: what `muri magu create --json` prints. */
export type CreatedMagu = Awaited<ReturnType<typeof createMagu>>;

/**
 * Requests and forms a Magu of `params` owned by `chain.account` (public when `makePublic`):
 * the escrow (price x fragment copies x periods) plus the formation deposit are approved, the
 * request waits for settled stake, and formation retries a missed window up to 3 times.
 */
export async function createMagu(chain: MaguChain, { defaulted, ...params }: Omit<MaguParams, "dataBytes">, makePublic: boolean) {
  const escrow = params.pricePerFragmentPeriod * storedFragments(params) * params.durationPeriods;
  const { formationDeposit } = await chain.read.maguRegistry.read.config();
  await chain.requireMuri(escrow + formationDeposit, "the Magu's escrow and formation deposit");
  await chain.ensureAllowance(chain.registry, escrow + formationDeposit);
  // A request sees only stake changes made an epoch before it: let recent ones settle.
  await chain.waitForBlock(await settledRequestBlock(chain.read));

  const createHash = await chain.write.maguRegistry.write.createMagu([params]);
  const receipt = await chain.confirm(createHash, "MaguRegistry.createMagu");
  const requested = parseEventLogs({ abi: maguRegistryAbi, logs: receipt.logs, eventName: "MaguRequested" })[0];
  if (!requested) throw new MaguCreateError("ERR_NO_EVENT", `MaguRegistry.createMagu (tx ${createHash}) emitted no MaguRequested event`);
  const id = requested.args.magu;
  let publicHash: Hex | undefined;
  if (makePublic) {
    publicHash = await chain.write.maguAccess.write.setPublic([id, true]);
    await chain.confirm(publicHash, "MaguAccess.setPublic");
  }

  let formHash: Hex | undefined;
  await formInWindow(
    {
      read: chain.read,
      head: () => chain.head(),
      waitForBlock: (block) => chain.waitForBlock(block),
      form: async () => {
        // Drawing members samples until it finds nodes with free stake and capacity: a stake or
        // another Magu's formation landing between the estimate and this transaction can make it
        // draw more (seen: "ran out of gas" with several clients forming at once), hence the margin.
        const estimate = await chain.write.maguRegistry.estimateGas.formMagu([id], { account: chain.account });
        formHash = await chain.write.maguRegistry.write.formMagu([id], { gas: estimate + estimate / 2n });
        await chain.confirm(formHash, "MaguRegistry.formMagu");
      },
      approveDeposit: async () => void (await chain.ensureAllowance(chain.registry, formationDeposit)),
    },
    id,
    FORM_ATTEMPTS,
  );
  const info = await chain.read.maguRegistry.read.maguInfo([id]);
  if (info.status !== 2) {
    throw new MaguCreateError("ERR_NOT_FORMED", `Magu ${id} is ${MAGU_STATUSES[info.status] ?? info.status} after ${FORM_ATTEMPTS} attempts to form it: run muri magu status ${id}`);
  }
  return {
    id,
    owner: chain.account,
    kind: MAGU_KINDS[params.kind]!,
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
    visibility: makePublic ? ("public" as const) : ("private" as const),
    status: MAGU_STATUSES[info.status],
    members: info.members,
    startPeriod: info.startPeriod,
    endPeriod: info.endPeriod,
    txs: { create: createHash, form: formHash, ...(publicHash !== undefined ? { setPublic: publicHash } : {}) },
  };
}
