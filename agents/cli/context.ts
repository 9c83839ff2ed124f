/**
 * Where a command talks to: the deployment (--devnet DIR, --deployment FILE, $MURI_DEPLOYMENT_FILE,
 * else deployments/31337.json), the RPC (--rpc, $MURI_RPC_URL, else the deployment's) and the key
 * (--key, $MURI_KEY, else the devnet's clientKey). Resolved and validated before any request.
 */
import { createECDH } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Address, Hex } from "viem";
import {
  DeploymentFileError,
  createChainClients,
  getMuriContracts,
  loadDeployment,
  parseDeployment,
  verifyChain,
  type ChainClients,
  type Deployment,
  type MuriContracts,
  type MuriPublicClient,
  type MuriWalletClient,
  type SigningChainClients,
} from "../chain/index.js";
import type { CommandArgs } from "./command.js";
import { CliError, UsageError } from "./errors.js";
import { parseKey, parseRpcUrl } from "./values.js";

/** Default deployment file `npm run deploy:local` writes for a hardhat chain. */
export const DEFAULT_DEPLOYMENT_FILE = "deployments/31337.json";
/** One retry per request: a CLI should fail fast when the RPC is down. */
const RPC_RETRY_COUNT = 1;
const RPC_TIMEOUT_MS = 15_000;

export interface ResolvedTarget {
  deployment: Deployment;
  /** Where the deployment came from (for messages). */
  source: string;
  rpcUrl: string;
  key?: Hex;
}

export interface CliContext {
  deployment: Deployment;
  rpcUrl: string;
  publicClient: MuriPublicClient;
  /** Read-only handles. */
  read: MuriContracts;
  /** Present when the command signs. */
  signer?: {
    account: Address;
    walletClient: MuriWalletClient;
    contracts: MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
    /** The account's secp256k1 public key, compressed (33 bytes): what `muri share --to` wraps to. */
    publicKey: Buffer;
    /** The x coordinate of the account's private key times `publicKey` (opens a `muri share` token). */
    ecdh(publicKey: Buffer): Buffer;
  };
  json: boolean;
}

/** Resolves deployment, RPC URL and key from options and environment; reads files, makes no request. */
export async function resolveTarget(args: CommandArgs, env: NodeJS.ProcessEnv = process.env): Promise<ResolvedTarget> {
  let deployment: Deployment;
  let source: string;
  let devnetKey: Hex | undefined;
  const devnet = args.string("devnet");
  if (devnet !== undefined) {
    ({ deployment, source, clientKey: devnetKey } = await loadDevnet(devnet));
  } else {
    const explicit = args.string("deployment") ?? env.MURI_DEPLOYMENT_FILE;
    const file = explicit ?? DEFAULT_DEPLOYMENT_FILE;
    if (explicit === undefined && !existsSync(file)) {
      throw new UsageError(
        `no deployment: pass --devnet DIR or --deployment FILE (or set MURI_DEPLOYMENT_FILE); ${DEFAULT_DEPLOYMENT_FILE} does not exist here`
      );
    }
    if (explicit !== undefined && !existsSync(file)) {
      const option = args.string("deployment") !== undefined ? "--deployment" : "MURI_DEPLOYMENT_FILE";
      throw new UsageError(
        `${option}: ${file} does not exist: deploy first (npm run deploy:local) or pass the right file`
      );
    }
    deployment = await loadDeployment(file);
    source = file;
  }
  const rpcOption = args.string("rpc");
  const rpcUrl =
    rpcOption !== undefined
      ? parseRpcUrl(rpcOption, "--rpc")
      : env.MURI_RPC_URL
      ? parseRpcUrl(env.MURI_RPC_URL, "MURI_RPC_URL")
      : deployment.rpcUrl;
  const keyOption = args.string("key");
  const key =
    keyOption !== undefined
      ? parseKey(keyOption, "--key")
      : env.MURI_KEY
      ? parseKey(env.MURI_KEY, "MURI_KEY")
      : devnetKey;
  return { deployment, source, rpcUrl, key };
}

/** Reads DIR/devnet.json (deployment fields plus optional clientKey) or DIR/deployment.json. */
export async function loadDevnet(dir: string): Promise<{ deployment: Deployment; source: string; clientKey?: Hex }> {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) {
    throw new UsageError(
      `--devnet: ${resolve(dir)} is not a directory: start a devnet there first or pass the right --devnet DIR`
    );
  }
  const devnetFile = join(dir, "devnet.json");
  const deploymentFile = join(dir, "deployment.json");
  if (existsSync(devnetFile)) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(devnetFile, "utf8"));
    } catch (err) {
      throw new DeploymentFileError(
        { path: devnetFile, problem: `cannot be read as JSON (${(err as Error).message})` },
        err
      );
    }
    const deployment = parseDeployment(json, devnetFile);
    const raw = (json as Record<string, unknown>).clientKey;
    let clientKey: Hex | undefined;
    if (raw !== undefined) {
      if (typeof raw !== "string")
        throw new DeploymentFileError({ path: devnetFile, field: "clientKey", problem: "must be a hex string" });
      try {
        clientKey = parseKey(raw, "clientKey");
      } catch {
        throw new DeploymentFileError({
          path: devnetFile,
          field: "clientKey",
          problem: "must be 64 hex digits (optionally 0x-prefixed)",
        });
      }
    }
    return { deployment, source: devnetFile, clientKey };
  }
  if (existsSync(deploymentFile)) return { deployment: await loadDeployment(deploymentFile), source: deploymentFile };
  throw new UsageError(
    `--devnet: ${resolve(dir)} has neither devnet.json nor deployment.json: pass the devnet's directory`
  );
}

/** Clients for the target; checks the RPC answers and serves the deployment's chain. */
export async function connect(target: ResolvedTarget, opts: { signs: boolean; json: boolean }): Promise<CliContext> {
  if (opts.signs && target.key === undefined) {
    throw new UsageError("--key is required to sign: pass --key HEX, set MURI_KEY, or use a --devnet with a clientKey");
  }
  const init = {
    rpcUrl: target.rpcUrl,
    chainId: target.deployment.chainId,
    retryCount: RPC_RETRY_COUNT,
    timeoutMs: RPC_TIMEOUT_MS,
  };
  const clients: ChainClients | SigningChainClients = opts.signs
    ? createChainClients({ ...init, privateKey: target.key! })
    : createChainClients(init);
  await verifyChain(clients.publicClient, target.deployment.chainId, target.rpcUrl);
  const ctx: CliContext = {
    deployment: target.deployment,
    rpcUrl: target.rpcUrl,
    publicClient: clients.publicClient,
    read: getMuriContracts(target.deployment.contracts, { publicClient: clients.publicClient }),
    json: opts.json,
  };
  if (opts.signs) {
    const s = clients as SigningChainClients;
    const key = createECDH("secp256k1");
    key.setPrivateKey(Buffer.from(target.key!.replace(/^0x/, ""), "hex"));
    ctx.signer = {
      publicKey: key.getPublicKey(undefined, "compressed"),
      ecdh: (publicKey) => key.computeSecret(publicKey),
      account: s.account.address,
      walletClient: s.walletClient,
      contracts: getMuriContracts(target.deployment.contracts, {
        publicClient: s.publicClient,
        walletClient: s.walletClient,
      }),
    };
  }
  return ctx;
}

/** The signer of a command declared `signs: true`. */
export function signerOf(ctx: CliContext): NonNullable<CliContext["signer"]> {
  if (!ctx.signer)
    throw new CliError("ERR_NO_SIGNER", "this command needs a signing key: pass --key HEX or set MURI_KEY");
  return ctx.signer;
}
