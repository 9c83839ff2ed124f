/**
 * Errors of the chain layer: one class per condition, each with a stable `code` and a structured
 * `context` (the Lodestar `LodestarError` / libp2p named-error habit). `toChainError` turns what
 * viem throws into one of them (walking the cause chain with `BaseError.walk`), and `describeError`
 * gives the one line a CLI prints.
 */
import { MuriError } from "../data/muri-error.js";
import { BaseError, ContractFunctionExecutionError, ContractFunctionRevertedError, decodeErrorResult, hexToString } from "viem";
import type { Abi, AbiParameter, Address, Hex } from "viem";

type AbiError = Extract<Abi[number], { type: "error" }>;
import { muriAbis, muriContractNames } from "./abis.js";

/** Base class of every chain-layer error. */
export class ChainError<Context extends object = Record<string, unknown>> extends MuriError<Context> {}

/** The RPC endpoint cannot be reached (connection refused, DNS failure, timeout, HTTP error status). */
export class RpcUnavailableError extends ChainError<{ url: string; reason: string }> {
  static readonly code = "ERR_RPC_UNAVAILABLE";
  constructor(context: { url: string; reason: string }, cause?: unknown) {
    super(
      RpcUnavailableError.code,
      `RPC ${context.url} is not reachable (${context.reason}): start a chain or pass --rpc`,
      context,
      { cause },
    );
  }
}

/** The RPC endpoint answered with an error that is not a revert nor a lack of funds. */
export class RpcRequestError extends ChainError<{ url?: string; rpcCode?: number; detail: string }> {
  static readonly code = "ERR_RPC_REQUEST";
  constructor(context: { url?: string; rpcCode?: number; detail: string }, cause?: unknown) {
    super(
      RpcRequestError.code,
      `RPC ${context.url ?? "request"} failed${context.rpcCode !== undefined ? ` (code ${context.rpcCode})` : ""}: ${context.detail}`,
      context,
      { cause },
    );
  }
}

/** The RPC endpoint serves another chain than the one expected (deployment file, --chain-id). */
export class ChainIdMismatchError extends ChainError<{ url: string; expected: number; actual: number }> {
  static readonly code = "ERR_CHAIN_ID_MISMATCH";
  constructor(context: { url: string; expected: number; actual: number }) {
    super(
      ChainIdMismatchError.code,
      `RPC ${context.url} serves chain ${context.actual}, expected chain ${context.expected}: ` +
        `point --rpc at the chain the deployment file describes`,
      context,
    );
  }
}

/** A contract call reverted; the custom error is decoded when any of the core ABIs knows it. */
export class ContractRevertError extends ChainError<{
  /** Contract name (`MaguRegistry`) when known. */
  contract?: string;
  address?: Address;
  functionName?: string;
  /** Custom error name (`MaguUnknown`), `Error` for a reason string, `Panic` for a panic. */
  errorName?: string;
  args: readonly unknown[];
  /** Names of the error's parameters, in order (empty when unknown). */
  argNames: readonly string[];
  /** Reason string or panic explanation, for `Error` / `Panic`. */
  reason?: string;
  /** 4-byte selector when the error could not be decoded. */
  signature?: Hex;
}> {
  static readonly code = "ERR_CONTRACT_REVERT";
  constructor(context: ContractRevertError["context"], cause?: unknown) {
    super(ContractRevertError.code, describeRevert(context), context, { cause });
  }
}

/** The sending account cannot pay for gas (and value). */
export class InsufficientGasFundsError extends ChainError<{ account?: Address; balance?: bigint; cost?: bigint }> {
  static readonly code = "ERR_INSUFFICIENT_FUNDS";
  constructor(context: { account?: Address; balance?: bigint; cost?: bigint }, cause?: unknown) {
    const who = `account ${context.account ?? "(unknown)"}`;
    const amounts =
      context.cost !== undefined && context.balance !== undefined
        ? ` (balance ${context.balance} wei, needs ${context.cost} wei)`
        : "";
    super(
      InsufficientGasFundsError.code,
      context.balance === 0n || context.balance === undefined
        ? `${who} has no funds for gas${amounts}: fund it with ETH first`
        : `${who} has not enough funds for gas${amounts}: fund it with ETH first`,
      context,
      { cause },
    );
  }
}

/** A deployment file is missing, not JSON, or a field is missing or malformed. */
export class DeploymentFileError extends ChainError<{ path: string; field?: string; problem: string }> {
  static readonly code = "ERR_DEPLOYMENT_FILE";
  constructor(context: { path: string; field?: string; problem: string }, cause?: unknown) {
    super(
      DeploymentFileError.code,
      `deployment file ${context.path}: ${context.field !== undefined ? `field "${context.field}" ` : ""}${context.problem}`,
      context,
      { cause },
    );
  }
}

/**
 * The chain shares none of the recent blocks the follower processed (a devnet restarted, or a
 * reorganisation deeper than every checkpoint it keeps). Following further would silently miss
 * events. A shallower reorganisation is not an error: the follower rewinds to the last block both
 * chains share and delivers the new chain's events.
 */
export class ChainResetError extends ChainError<{ url?: string; block: bigint; expectedHash: Hex; actualHash?: Hex; checkpoints?: number }> {
  static readonly code = "ERR_CHAIN_RESET";
  constructor(context: { url?: string; block: bigint; expectedHash: Hex; actualHash?: Hex; checkpoints?: number }) {
    super(
      ChainResetError.code,
      `chain${context.url ? ` at ${context.url}` : ""} no longer has block ${context.block} ${context.expectedHash.slice(0, 10)}… ` +
        `(${context.actualHash ? `found ${context.actualHash.slice(0, 10)}…` : "the chain is shorter"}): ` +
        `it was reset${context.checkpoints ? ` or reorganised deeper than the ${context.checkpoints} blocks the follower keeps` : ""}; ` +
        `point the agent at the right chain, or clear its chain state (data directory) and start again`,
      context,
    );
  }
}

/**
 * The chain moved while the follower read a range (a log's block hash is not the block's hash, or
 * the range's last block changed under the request): the range is read again, nothing is delivered
 * from it.
 */
export class ChainMovedError extends ChainError<{ url?: string; block: bigint; expectedHash?: Hex; actualHash?: Hex }> {
  static readonly code = "ERR_CHAIN_MOVED";
  constructor(context: { url?: string; block: bigint; expectedHash?: Hex; actualHash?: Hex }) {
    super(
      ChainMovedError.code,
      `chain${context.url ? ` at ${context.url}` : ""} changed block ${context.block} while it was read ` +
        `(${context.expectedHash?.slice(0, 10) ?? "?"}… then ${context.actualHash?.slice(0, 10) ?? "?"}…); reading the range again`,
      context,
    );
  }
}

/** An event handler threw; the follower retries the same log later and does not skip it. */
export class EventHandlerError extends ChainError<{
  eventName: string;
  blockNumber: bigint;
  logIndex: number;
  transactionHash: Hex;
}> {
  static readonly code = "ERR_EVENT_HANDLER";
  constructor(
    context: { eventName: string; blockNumber: bigint; logIndex: number; transactionHash: Hex },
    cause: unknown,
  ) {
    super(
      EventHandlerError.code,
      `handler of ${context.eventName} at block ${context.blockNumber} log ${context.logIndex} failed: ${firstLine(cause)}`,
      context,
      { cause },
    );
  }
}

/** The follower's stored cursor cannot be decoded (written by something else, or damaged). */
export class CursorCorruptError extends ChainError<{ id: string; length: number }> {
  static readonly code = "ERR_CURSOR_CORRUPT";
  constructor(context: { id: string; length: number }) {
    super(
      CursorCorruptError.code,
      `stored cursor of event follower "${context.id}" is ${context.length} bytes, expected 8 or 40: ` +
        `the metadata database is damaged; clear the node's chain state and start again`,
      context,
    );
  }
}

/** An option given to a chain-layer service is invalid. */
export class InvalidChainOptionError extends ChainError<{ option: string; value: unknown }> {
  static readonly code = "ERR_INVALID_CHAIN_OPTION";
  constructor(context: { option: string; value: unknown }, detail: string) {
    super(InvalidChainOptionError.code, `invalid option ${context.option}=${String(context.value)}: ${detail}`, context);
  }
}

/** What `toChainError` may use to name things viem does not know. */
export interface ErrorContext {
  /** RPC URL, when the error does not carry it. */
  url?: string;
  /** Contract names by address (any case), for reverts from contracts not built from our ABIs. */
  contracts?: Record<string, string>;
  /** The sending account, when the error does not carry it. */
  account?: Address;
}

/** Every custom error of the seven core contracts (deduplicated), to decode reverts that bubbled up. */
export const muriErrorsAbi: readonly AbiError[] = (() => {
  const seen = new Map<string, AbiError>();
  for (const abi of Object.values(muriAbis) as readonly Abi[]) {
    for (const item of abi) {
      if (item.type !== "error") continue;
      const key = `${item.name}(${item.inputs.map((i) => i.type).join(",")})`;
      if (!seen.has(key)) seen.set(key, item);
    }
  }
  return [...seen.values()];
})();

// Hardhat: "Sender doesn't have enough funds to send tx"; geth/anvil/reth: "insufficient funds".
const FUNDS_PATTERN = /insufficient funds|doesn't have enough funds|exceeds transaction sender account balance|outoffunds/i;

/**
 * Turns an error thrown by viem (or by this layer) into a `ChainError`, or `undefined` when it is
 * not a chain condition this layer knows.
 */
export function toChainError(err: unknown, context: ErrorContext = {}): ChainError | undefined {
  if (err instanceof ChainError) return err;
  if (!(err instanceof BaseError)) return undefined;

  const unavailable = err.walk(
    (e) => isNamed(e, "HttpRequestError") || isNamed(e, "TimeoutError") || isNamed(e, "WebSocketRequestError"),
  );
  if (unavailable) {
    const e = unavailable as BaseError & { url?: string; status?: number };
    return new RpcUnavailableError({ url: displayUrl(context.url ?? e.url), reason: unreachableReason(e) }, err);
  }

  const funds = err.walk((e) => isNamed(e, "InsufficientFundsError") || FUNDS_PATTERN.test(detailOf(e)));
  if (funds) {
    const text = allMessages(err);
    return new InsufficientGasFundsError({ account: senderOf(err) ?? context.account, ...fundsAmounts(text) }, err);
  }

  const reverted = err.walk((e) => e instanceof ContractFunctionRevertedError);
  if (reverted instanceof ContractFunctionRevertedError) {
    const exec = err.walk((e) => e instanceof ContractFunctionExecutionError) as ContractFunctionExecutionError | null;
    return new ContractRevertError(
      { ...decodeRevert(reverted), ...contractOf(exec, context), functionName: exec?.functionName },
      err,
    );
  }
  const rawRevert = err.walk((e) => isNamed(e, "ExecutionRevertedError") || isNamed(e, "RawContractError"));
  if (rawRevert) {
    const data = revertData(err);
    const decoded = data ? decodeAny(data) : undefined;
    return new ContractRevertError({ args: [], argNames: [], ...decoded, reason: decoded ? undefined : detailOf(rawRevert) }, err);
  }

  const rpc = err.walk((e) => isNamed(e, "RpcRequestError")) as (BaseError & { code?: number; url?: string }) | null;
  if (rpc) {
    const detail = firstLine(rpc.details || rpc.shortMessage);
    return new RpcRequestError({ url: rpc.url ?? context.url, rpcCode: rpc.code, detail }, err);
  }
  return undefined;
}

/**
 * One clear human line for any error: the chain-layer message when the condition is known,
 * otherwise viem's short message or the error's first line. For CLI output and logs.
 */
export function describeError(err: unknown, context: ErrorContext = {}): string {
  const chain = toChainError(err, context);
  if (chain) return chain.message;
  if (err instanceof BaseError) return firstLine(err.shortMessage);
  return firstLine(err);
}

function describeRevert(c: ContractRevertError["context"]): string {
  const who = `${c.contract ?? c.address ?? "contract"}${c.functionName ? `.${c.functionName}` : ""}`;
  if (c.errorName === "Error") return `${who} reverted: ${c.reason ?? String(c.args[0])}`;
  if (c.errorName === "Panic") return `${who} panicked: ${c.reason ?? `code ${String(c.args[0])}`}`;
  if (c.errorName) {
    const args = c.args.map((a, i) => (c.argNames[i] ? `${c.argNames[i]}=${formatValue(a)}` : formatValue(a)));
    return `${who} reverted ${c.errorName}(${args.join(", ")})`;
  }
  if (c.signature) return `${who} reverted with unknown error ${c.signature}`;
  return `${who} reverted${c.reason ? `: ${c.reason}` : " without a reason"}`;
}

type DecodedRevert = Pick<ContractRevertError["context"], "errorName" | "args" | "argNames" | "reason" | "signature">;

function decodeRevert(e: ContractFunctionRevertedError): DecodedRevert {
  if (e.data) {
    const inputs = (e.data.abiItem as { inputs?: readonly AbiParameter[] }).inputs ?? [];
    return {
      errorName: e.data.errorName,
      args: normaliseArgs(e.data.args, inputs),
      argNames: inputs.map((p) => p.name ?? ""),
      reason: e.reason,
    };
  }
  // Not in the called contract's ABI (bubbled up from a callee): try every core contract's errors.
  const fromAll = e.raw ? decodeAny(e.raw) : undefined;
  if (fromAll) return fromAll;
  return { args: [], argNames: [], reason: e.reason, signature: e.signature };
}

function decodeAny(data: Hex): DecodedRevert | undefined {
  try {
    const decoded = decodeErrorResult({ abi: muriErrorsAbi as Abi, data });
    const inputs = (decoded.abiItem as { inputs?: readonly AbiParameter[] }).inputs ?? [];
    return {
      errorName: decoded.errorName,
      args: normaliseArgs(decoded.args, inputs),
      argNames: inputs.map((p) => p.name ?? ""),
    };
  } catch {
    return data.length >= 10 ? { args: [], argNames: [], signature: data.slice(0, 10) as Hex } : undefined;
  }
}

/** bytes32 arguments holding short ASCII labels (`MaguInvalidParams("members", ...)`) become strings. */
function normaliseArgs(args: readonly unknown[] | undefined, inputs: readonly AbiParameter[]): readonly unknown[] {
  return (args ?? []).map((a, i) => (inputs[i]?.type === "bytes32" && typeof a === "string" ? asciiLabel(a as Hex) ?? a : a));
}

function asciiLabel(hex: Hex): string | undefined {
  const text = hexToString(hex, { size: 32 });
  return /^[\x20-\x7e]+$/.test(text) ? text : undefined;
}

function formatValue(v: unknown): string {
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "string") return /^0x[0-9a-fA-F]*$/.test(v) ? v : JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(formatValue).join(", ")}]`;
  if (v && typeof v === "object") {
    return `{${Object.entries(v).map(([k, x]) => `${k}: ${formatValue(x)}`).join(", ")}}`;
  }
  return String(v);
}

function contractOf(exec: ContractFunctionExecutionError | null, context: ErrorContext): { contract?: string; address?: Address } {
  if (!exec) return {};
  const address = exec.contractAddress;
  const byAddress = address
    ? Object.entries(context.contracts ?? {}).find(([a]) => a.toLowerCase() === address.toLowerCase())?.[1]
    : undefined;
  const byAbi = (Object.keys(muriAbis) as (keyof typeof muriAbis)[]).find((k) => muriAbis[k] === (exec.abi as unknown));
  return { contract: byAddress ?? (byAbi ? muriContractNames[byAbi] : undefined), address };
}

function revertData(err: BaseError): Hex | undefined {
  const withData = err.walk((e) => {
    const data = (e as { data?: unknown }).data;
    return typeof data === "string" && /^0x[0-9a-f]{8}/i.test(data);
  });
  return (withData as { data?: Hex } | null)?.data;
}

function senderOf(err: BaseError): Address | undefined {
  const exec = err.walk((e) => e instanceof ContractFunctionExecutionError) as ContractFunctionExecutionError | null;
  if (exec?.sender) return exec.sender;
  // viem's TransactionExecutionError prints the request, "from: 0x…", into its message.
  return allMessages(err).match(/from:\s+(0x[0-9a-fA-F]{40})/)?.[1] as Address | undefined;
}

function fundsAmounts(text: string): { balance?: bigint; cost?: bigint } {
  const hardhat = text.match(/max upfront cost is: (\d+) and the sender's balance is: (\d+)/);
  if (hardhat) return { cost: BigInt(hardhat[1]!), balance: BigInt(hardhat[2]!) };
  const geth = text.match(/have (\d+) want (\d+)/);
  if (geth) return { balance: BigInt(geth[1]!), cost: BigInt(geth[2]!) };
  return {};
}

function unreachableReason(e: BaseError & { status?: number }): string {
  if (isNamed(e, "TimeoutError")) return "request timed out";
  if (e.status) return `HTTP ${e.status}`;
  // undici: TypeError("fetch failed") caused by { code: "ECONNREFUSED", syscall: "connect" }.
  let cause: unknown = e.cause;
  let found: { code: string; syscall?: string } | undefined;
  for (let depth = 0; cause && depth < 8; depth++) {
    const c = cause as { code?: unknown; syscall?: unknown; cause?: unknown; errors?: unknown[] };
    if (typeof c.code === "string") found = { code: c.code, syscall: typeof c.syscall === "string" ? c.syscall : undefined };
    cause = c.cause ?? c.errors?.[0];
  }
  if (found) return found.syscall ? `${found.syscall} ${found.code}` : found.code;
  return firstLine(e.details || e.shortMessage);
}

/** The URL as a user typed it: `http://host:port`, without the "/" fetch appends. */
function displayUrl(url: string | undefined): string {
  if (!url) return "(unknown)";
  return url.replace(/^([a-z]+:\/\/[^/?#]+)\/$/i, "$1");
}

function isNamed(e: unknown, name: string): boolean {
  return (e as { name?: unknown })?.name === name;
}

function detailOf(e: unknown): string {
  const b = e as { details?: unknown; shortMessage?: unknown; message?: unknown };
  return String(b.details || b.shortMessage || b.message || "");
}

function allMessages(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e && depth < 16; depth++) {
    const x = e as { message?: unknown; details?: unknown; cause?: unknown };
    parts.push(String(x.message ?? ""), String(x.details ?? ""));
    e = x.cause;
  }
  return parts.join("\n");
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n").find((l) => l.trim() !== "")?.trim() ?? text;
}
