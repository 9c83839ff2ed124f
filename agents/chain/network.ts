/**
 * Which network a deployment is. A chain id and contract addresses do not tell networks apart: two
 * fresh `hardhat node`s deployed by the same key (or a devnet restarted) have the same id and the
 * same addresses. The hash of the deployment block, read from the chain, does: it commits to the
 * chain's whole history up to the deployment. State that belongs to a network (the client's Magu
 * records, roles/client/client-record.ts) is kept under `networkKey` and compared with the identity on use.
 */
import { BlockNotFoundError, getAddress, type Address, type Hex } from "viem";
import type { Deployment, MuriPublicClient } from "./clients.js";
import { ChainError, toChainError } from "./errors.js";

/** A network: chain id, MaguRegistry address and the deployment block with its hash. */
export interface NetworkIdentity {
  chainId: number;
  /** The MaguRegistry, whose ids name the Magus (checksummed). */
  maguRegistry: Address;
  deployBlock: bigint;
  /** Hash of `deployBlock` on this chain. */
  deployBlockHash: Hex;
}

/** Hex digits of the deployment block hash in `networkKey`. */
const KEY_HASH_DIGITS = 12;

/** The deployment does not match what the chain holds: no deployment block yet, or no MaguRegistry code. */
export class DeploymentNotOnChainError extends ChainError<{ url?: string; chainId: number; problem: string }> {
  static readonly code = "ERR_DEPLOYMENT_NOT_ON_CHAIN";
  constructor(context: { url?: string; chainId: number; problem: string }, cause?: unknown) {
    super(
      DeploymentNotOnChainError.code,
      `chain ${context.chainId}${context.url ? ` at ${context.url}` : ""} ${context.problem}: ` +
        `the deployment file describes another chain (or this one was reset): deploy again or pass the right --deployment`,
      context,
      { cause },
    );
  }
}

/**
 * Reads the identity of `deployment`'s network from the chain (two requests: the deployment
 * block and the MaguRegistry's code).
 *
 * @throws DeploymentNotOnChainError when the chain has no such block or no code at the MaguRegistry.
 * @throws RpcUnavailableError (or another ChainError) when the RPC fails.
 */
export async function readNetworkIdentity(publicClient: MuriPublicClient, deployment: Deployment, rpcUrl?: string): Promise<NetworkIdentity> {
  const maguRegistry = getAddress(deployment.contracts.maguRegistry);
  const fail = (problem: string, cause?: unknown): never => {
    throw new DeploymentNotOnChainError({ url: rpcUrl, chainId: deployment.chainId, problem }, cause);
  };
  let hash: Hex | null;
  let code: Hex | undefined;
  try {
    [hash, code] = await Promise.all([
      publicClient.getBlock({ blockNumber: deployment.deployBlock }).then(
        (b) => b.hash,
        (err: unknown) => {
          if (err instanceof BlockNotFoundError) return null;
          throw err;
        },
      ),
      publicClient.getCode({ address: maguRegistry }),
    ]);
  } catch (err) {
    throw toChainError(err, { url: rpcUrl }) ?? err;
  }
  if (hash === null) return fail(`has no block ${deployment.deployBlock} (the deployment block) yet`);
  if (code === undefined || code === "0x") return fail(`has no MaguRegistry at ${maguRegistry}`);
  return { chainId: deployment.chainId, maguRegistry, deployBlock: deployment.deployBlock, deployBlockHash: hash };
}

/** A file-name-safe key of the network: `<chainId>-<maguRegistry, lower case>-<first 12 hex digits of the block hash>`. */
export function networkKey(n: NetworkIdentity): string {
  return `${n.chainId}-${n.maguRegistry.toLowerCase()}-${n.deployBlockHash.slice(2, 2 + KEY_HASH_DIGITS).toLowerCase()}`;
}

/** Whether `a` and `b` are the same network (every field of the identity equal). */
export function sameNetwork(a: NetworkIdentity, b: NetworkIdentity): boolean {
  return (
    a.chainId === b.chainId &&
    a.maguRegistry.toLowerCase() === b.maguRegistry.toLowerCase() &&
    a.deployBlock === b.deployBlock &&
    a.deployBlockHash.toLowerCase() === b.deployBlockHash.toLowerCase()
  );
}

/** One phrase for messages: `chain 31337, MaguRegistry 0x…, deployed at block 12 (0x1a2b3c4d5e6f…)`. */
export function describeNetwork(n: NetworkIdentity): string {
  return `chain ${n.chainId}, MaguRegistry ${n.maguRegistry}, deployed at block ${n.deployBlock} (${n.deployBlockHash.slice(0, 2 + KEY_HASH_DIGITS)}…)`;
}
