/**
 * viem clients for a MuriData chain, the deployment file written by `scripts/deploy-local.ts`, and
 * typed contract handles built from the generated ABIs.
 */
import { readFile } from "node:fs/promises";
import { createPublicClient, createWalletClient, defineChain, fallback, getContract, http, isAddress, zeroAddress } from "viem";
import type { Account, Address, Chain, GetContractReturnType, Hex, PublicClient, Transport, WalletClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { muriAbis, muriContractNames } from "./abis.js";
import { DEFAULT_RPC_RETRY_COUNT, DEFAULT_RPC_TIMEOUT_MS } from "./constants.js";
import { ChainIdMismatchError, DeploymentFileError, InvalidChainOptionError, toChainError } from "./errors.js";

export type MuriPublicClient = PublicClient<Transport, Chain>;
export type MuriWalletClient = WalletClient<Transport, Chain, Account>;

/** Key of a core contract in a deployment file's `contracts`. */
export type MuriContractKey = keyof typeof muriAbis;
export const MURI_CONTRACT_KEYS = Object.keys(muriAbis) as MuriContractKey[];

export interface ChainClientsInit {
  /**
   * The RPC endpoint, or several separated by commas: requests go to the first that answers (viem's
   * `fallback` transport), so one provider's outage does not stop an agent.
   */
  rpcUrl: string;
  chainId: number;
  /** Signing key (0x + 64 hex); without it only the public client is created. */
  privateKey?: Hex;
  /** Retries of one HTTP request before it fails (default `DEFAULT_RPC_RETRY_COUNT`). */
  retryCount?: number;
  /** Timeout of one HTTP request in ms (default `DEFAULT_RPC_TIMEOUT_MS`). */
  timeoutMs?: number;
}

export interface ChainClients {
  chain: Chain;
  rpcUrl: string;
  publicClient: MuriPublicClient;
  walletClient?: MuriWalletClient;
  account?: Account;
}

export interface SigningChainClients extends ChainClients {
  walletClient: MuriWalletClient;
  account: Account;
}

/** A viem `Chain` for a MuriData network (devnets have no entry in `viem/chains`). */
export function muriChain(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: `muri-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: rpcUrlList(rpcUrl) } },
  });
}

/** The endpoints of an `rpcUrl` option: one URL, or several separated by commas. */
export function rpcUrlList(rpcUrl: string): string[] {
  return rpcUrl
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "");
}

/**
 * A public client and, given a private key, a wallet client bound to its account. Creating them
 * makes no request; use `verifyChain` to check the endpoint.
 */
export function createChainClients(init: ChainClientsInit & { privateKey: Hex }): SigningChainClients;
export function createChainClients(init: ChainClientsInit): ChainClients;
export function createChainClients(init: ChainClientsInit): ChainClients {
  const urls = rpcUrlList(init.rpcUrl);
  if (urls.length === 0 || urls.some((u) => !/^https?:\/\//.test(u))) {
    throw new InvalidChainOptionError({ option: "rpcUrl", value: init.rpcUrl }, "expected an http:// or https:// URL, or several separated by commas");
  }
  if (!Number.isSafeInteger(init.chainId) || init.chainId <= 0) {
    throw new InvalidChainOptionError({ option: "chainId", value: init.chainId }, "expected a positive integer");
  }
  const chain = muriChain(init.chainId, init.rpcUrl);
  const one = (url: string) => http(url, { retryCount: init.retryCount ?? DEFAULT_RPC_RETRY_COUNT, timeout: init.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS });
  const transport = urls.length === 1 ? one(urls[0]!) : fallback(urls.map(one), { retryCount: 0 });
  const publicClient = createPublicClient({ chain, transport }) as MuriPublicClient;
  if (init.privateKey === undefined) return { chain, rpcUrl: init.rpcUrl, publicClient };
  if (!/^0x[0-9a-fA-F]{64}$/.test(init.privateKey)) {
    // Never echo the key itself.
    throw new InvalidChainOptionError({ option: "privateKey", value: "(hidden)" }, "expected 0x followed by 64 hex digits");
  }
  // Nonces come from the pending count at each send; sends of one wallet are queued (see
  // serialSend), so two never read the same count. (viem's nonce manager is not used: it never lets
  // a nonce go back, so after a chain reset every send failed once.)
  const account = privateKeyToAccount(init.privateKey);
  const walletClient = createWalletClient({ chain, transport, account });
  return { chain, rpcUrl: init.rpcUrl, publicClient, walletClient, account };
}

/**
 * Checks that the endpoint answers and serves `chainId`.
 *
 * @throws RpcUnavailableError when it cannot be reached.
 * @throws ChainIdMismatchError when it serves another chain.
 */
export async function verifyChain(publicClient: MuriPublicClient, chainId: number, rpcUrl?: string): Promise<void> {
  let actual: number;
  try {
    actual = await publicClient.getChainId();
  } catch (err) {
    throw toChainError(err, { url: rpcUrl }) ?? err;
  }
  if (actual !== chainId) {
    const url = rpcUrl ?? publicClient.chain.rpcUrls.default.http[0] ?? "(unknown)";
    throw new ChainIdMismatchError({ url, expected: chainId, actual });
  }
}

/** What `scripts/deploy-local.ts` writes: where the core contracts live on which chain. */
export interface Deployment {
  chainId: number;
  rpcUrl: string;
  /** Block of the deployment; followers start here. */
  deployBlock: bigint;
  contracts: Record<MuriContractKey, Address>;
  /** Deployment parameters (periodBlocks, epochBlocks, ...), as written. */
  parameters: Record<string, unknown>;
}

/**
 * Reads and validates a deployment file.
 *
 * @throws DeploymentFileError naming the file and the field that is missing or malformed.
 */
export async function loadDeployment(path: string): Promise<Deployment> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DeploymentFileError(
      {
        path,
        problem:
          code === "ENOENT"
            ? "does not exist: deploy first (npm run deploy:local) or pass the right --deployment"
            : `cannot be read (${code ?? String(err)})`,
      },
      err,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DeploymentFileError({ path, problem: `is not valid JSON (${(err as Error).message})` }, err);
  }
  return parseDeployment(json, path);
}

/** Validates a parsed deployment file; `source` names it in errors. */
export function parseDeployment(json: unknown, source = "(deployment)"): Deployment {
  const fail = (field: string | undefined, problem: string): never => {
    throw new DeploymentFileError({ path: source, field, problem });
  };
  if (!isRecord(json)) return fail(undefined, "is not a JSON object");

  const chainId = json.chainId;
  if (chainId === undefined) fail("chainId", "is missing");
  if (typeof chainId !== "number" || !Number.isSafeInteger(chainId) || chainId <= 0) {
    fail("chainId", `must be a positive integer, got ${JSON.stringify(chainId)}`);
  }

  const rpcUrl = json.rpcUrl;
  if (rpcUrl === undefined) fail("rpcUrl", "is missing");
  if (typeof rpcUrl !== "string" || !/^(https?|wss?):\/\/\S+$/.test(rpcUrl)) {
    fail("rpcUrl", `must be an http(s):// or ws(s):// URL, got ${JSON.stringify(rpcUrl)}`);
  }

  const deployBlock = json.deployBlock;
  if (deployBlock === undefined) fail("deployBlock", "is missing");
  if (typeof deployBlock !== "number" || !Number.isSafeInteger(deployBlock) || deployBlock < 0) {
    fail("deployBlock", `must be a non-negative integer, got ${JSON.stringify(deployBlock)}`);
  }

  const contracts = json.contracts;
  if (contracts === undefined) fail("contracts", "is missing");
  if (!isRecord(contracts)) return fail("contracts", "must be an object of addresses");
  const addresses = {} as Record<MuriContractKey, Address>;
  for (const key of MURI_CONTRACT_KEYS) {
    const value = contracts[key];
    const field = `contracts.${key}`;
    if (value === undefined) fail(field, `is missing (the ${muriContractNames[key]} address)`);
    if (typeof value !== "string" || !isAddress(value, { strict: false })) {
      fail(field, `must be a 0x-prefixed 20-byte address, got ${JSON.stringify(value)}`);
    }
    if ((value as string).toLowerCase() === zeroAddress) fail(field, "is the zero address");
    addresses[key] = value as Address;
  }

  const parameters = json.parameters ?? {};
  if (!isRecord(parameters)) fail("parameters", "must be an object");

  return {
    chainId: chainId as number,
    rpcUrl: rpcUrl as string,
    deployBlock: BigInt(deployBlock as number),
    contracts: addresses,
    parameters: parameters as Record<string, unknown>,
  };
}

type ContractClient = MuriPublicClient | { public: MuriPublicClient; wallet: MuriWalletClient };

/** Typed handles (`read`, `simulate`, `write` with a wallet, `getEvents`, ...) of the seven core contracts. */
export type MuriContracts<C extends ContractClient = MuriPublicClient> = {
  [K in MuriContractKey]: GetContractReturnType<(typeof muriAbis)[K], C, Address>;
};

/**
 * Where a transaction goes in its wallet's queue: `proof` (storage proofs and repairs, which miss
 * a deadline and cost stake when late) before `normal`, before `task` (search-task commits and
 * reveals, which only cost a fee share).
 */
export type SendPriority = "proof" | "normal" | "task";
const PRIORITY_RANK: Record<SendPriority, number> = { proof: 0, normal: 1, task: 2 };

/** Options of `getMuriContracts`. */
export interface MuriContractsOptions {
  /** Queue priority of this handle's writes (default `normal`). */
  priority?: SendPriority;
}

/** Handles of the seven core contracts at `addresses`; with a wallet client they can also `write`. */
export function getMuriContracts(
  addresses: Record<MuriContractKey, Address>,
  clients: { publicClient: MuriPublicClient; walletClient: MuriWalletClient },
  options?: MuriContractsOptions,
): MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
export function getMuriContracts(
  addresses: Record<MuriContractKey, Address>,
  clients: { publicClient: MuriPublicClient; walletClient?: undefined },
  options?: MuriContractsOptions,
): MuriContracts<MuriPublicClient>;
export function getMuriContracts(
  addresses: Record<MuriContractKey, Address>,
  clients: { publicClient: MuriPublicClient; walletClient?: MuriWalletClient },
  options: MuriContractsOptions = {},
): MuriContracts<ContractClient> {
  const client: ContractClient = clients.walletClient
    ? { public: clients.publicClient, wallet: clients.walletClient }
    : clients.publicClient;
  const out = {} as Record<MuriContractKey, unknown>;
  for (const key of MURI_CONTRACT_KEYS) {
    const contract = getContract({ address: addresses[key], abi: muriAbis[key], client });
    out[key] = clients.walletClient ? withSerialWrites(contract, clients.walletClient, options.priority ?? "normal") : contract;
  }
  return out as MuriContracts<ContractClient>;
}

interface QueuedSend {
  rank: number;
  seq: number;
  start(): Promise<unknown>;
}

type SendQueue = { busy: boolean; waiting: QueuedSend[] };
/**
 * Each account's submissions: the one being handed to the RPC, and those waiting, by priority.
 * Keyed by chain id and address, not by wallet object: one process may hold several wallet
 * clients of one key (`muri serve` holds the storage client's, the vector client's and its own),
 * and two of them sending at once would read the same pending nonce.
 */
const accountQueues = new Map<string, SendQueue>();
/** Wallets without an account address (tests): one queue per object. */
const objectQueues = new WeakMap<object, SendQueue>();
let sendSeq = 0;

function queueOf(wallet: object): SendQueue {
  const w = wallet as { account?: { address?: unknown }; chain?: { id?: unknown } };
  const address = typeof w.account?.address === "string" ? w.account.address.toLowerCase() : undefined;
  if (address === undefined) {
    let q = objectQueues.get(wallet);
    if (q === undefined) objectQueues.set(wallet, (q = { busy: false, waiting: [] }));
    return q;
  }
  const key = `${String(w.chain?.id)}:${address}`;
  let q = accountQueues.get(key);
  if (q === undefined) accountQueues.set(key, (q = { busy: false, waiting: [] }));
  return q;
}

/**
 * Runs `send` once every submission from `wallet`'s account (on its chain; from any wallet client
 * of that key in this process) ahead of it has been handed to the RPC (or failed): first by
 * `priority`, then in call order. A submission takes a nonce, estimates gas,
 * signs and sends; if two overlap and the first fails after taking its nonce, the second lands
 * with a gap ("nonce too high"). Receipts are not waited for here, so transactions still confirm
 * in parallel.
 */
export function serialSend<T>(wallet: object, send: () => Promise<T>, priority: SendPriority = "normal"): Promise<T> {
  const q = queueOf(wallet);
  return new Promise<T>((resolve, reject) => {
    q.waiting.push({
      rank: PRIORITY_RANK[priority],
      seq: sendSeq++,
      start: () => Promise.resolve().then(send).then(resolve, reject),
    });
    runNext(q);
  });
}

function runNext(q: SendQueue): void {
  if (q.busy || q.waiting.length === 0) return;
  q.waiting.sort((a, b) => a.rank - b.rank || a.seq - b.seq);
  const next = q.waiting.shift()!;
  q.busy = true;
  void next.start().finally(() => {
    q.busy = false;
    runNext(q);
  });
}

function withSerialWrites<C extends { write?: unknown }>(contract: C, wallet: MuriWalletClient, priority: SendPriority): C {
  const write = contract.write as Record<string, (...args: unknown[]) => Promise<unknown>> | undefined;
  if (write === undefined) return contract;
  const serialWrite = new Proxy(write, {
    get: (target, name) => {
      const fn = Reflect.get(target, name) as ((...args: unknown[]) => Promise<unknown>) | undefined;
      return typeof fn === "function" ? (...args: unknown[]) => serialSend(wallet, () => fn(...args), priority) : fn;
    },
  });
  return { ...contract, write: serialWrite };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
