/**
 * An account's public key, for `muri share --to ADDRESS`: an address is a hash of the key, so the
 * key itself is read back from a transaction the account signed (its signature recovers it), the
 * latest one within the blocks the RPC serves. An account that never sent a transaction has to
 * give its key itself (`muri account` prints it).
 */
import { getAddress, keccak256, recoverPublicKey, serializeTransaction, type Address, type Hex, type PublicClient, type Transaction, type TransactionSerializable } from "viem";
import { publicKeyToAddress } from "viem/accounts";
import { ChainError } from "./errors.js";

/** How many blocks back `accountPublicKey` looks by default. */
export const PUBLIC_KEY_LOOKBACK_BLOCKS = 5_000n;

/** The account sent no transaction the lookup could see. */
export class PublicKeyNotFoundError extends ChainError<{ account: Address; blocks: string }> {
  constructor(account: Address, blocks: bigint) {
    super(
      "ERR_PUBLIC_KEY_NOT_FOUND",
      `account ${account} sent no transaction in the last ${blocks} blocks, so its public key cannot be read from the chain: ask its owner for the key (muri account prints it) and pass that instead of the address`,
      { account, blocks: blocks.toString() },
    );
  }
}

/** The fields a transaction's signer signed, as viem serializes them. */
function unsigned(tx: Transaction): TransactionSerializable {
  const base = { nonce: tx.nonce, gas: tx.gas, to: tx.to ?? undefined, value: tx.value, data: tx.input };
  if (tx.type === "legacy") return { ...base, ...(tx.chainId === undefined ? {} : { chainId: tx.chainId }), type: "legacy", gasPrice: tx.gasPrice };
  if (tx.chainId === undefined) throw new Error(`transaction ${tx.hash} of type ${tx.type} names no chain id`);
  const common = { ...base, chainId: tx.chainId };
  switch (tx.type) {
    case "eip2930":
      return { ...common, type: "eip2930", gasPrice: tx.gasPrice, accessList: tx.accessList };
    case "eip1559":
      return { ...common, type: "eip1559", maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas, accessList: tx.accessList };
    default:
      throw new Error(`transaction type ${tx.type} is not read for public keys`);
  }
}

/** The uncompressed public key (0x04 ‖ x ‖ y) that signed `tx`; checked to be its sender's. */
export async function transactionPublicKey(tx: Transaction): Promise<Hex> {
  const signature = { r: tx.r, s: tx.s, ...(tx.yParity !== undefined ? { yParity: tx.yParity } : { v: tx.v }) };
  const publicKey = await recoverPublicKey({ hash: keccak256(serializeTransaction(unsigned(tx))), signature });
  if (publicKeyToAddress(publicKey) !== getAddress(tx.from)) throw new Error(`transaction ${tx.hash} does not recover to its sender ${tx.from}`);
  return publicKey;
}

/**
 * `account`'s public key from the latest transaction it sent within `lookback` blocks of the head;
 * {@link PublicKeyNotFoundError} when there is none.
 */
export async function accountPublicKey(publicClient: Pick<PublicClient, "getBlockNumber" | "getBlock" | "getTransactionCount">, account: Address, lookback = PUBLIC_KEY_LOOKBACK_BLOCKS): Promise<Hex> {
  const wanted = getAddress(account);
  if ((await publicClient.getTransactionCount({ address: wanted })) === 0) throw new PublicKeyNotFoundError(wanted, lookback);
  const head = await publicClient.getBlockNumber({ cacheTime: 0 });
  const stop = head > lookback ? head - lookback : 0n;
  for (let n = head; n >= stop && n >= 0n; n--) {
    const block = await publicClient.getBlock({ blockNumber: n, includeTransactions: true });
    for (const tx of block.transactions) {
      if (getAddress(tx.from) !== wanted) continue;
      try {
        return await transactionPublicKey(tx);
      } catch {
        // a type this does not read: an older transaction may do
      }
    }
    if (n === 0n) break;
  }
  throw new PublicKeyNotFoundError(wanted, lookback);
}
