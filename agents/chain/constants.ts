/** Defaults of the chain layer, in one place. */
import { parseUnits } from "viem";

/** Blocks the follower stays behind the head (0 suits an instant-mining devnet; use more on real chains). */
export const DEFAULT_CONFIRMATIONS = 0;

/** Chain ids of local development chains (hardhat, anvil, ganache): no reorganisations unless asked. */
export const DEV_CHAIN_IDS: readonly number[] = [31337, 1337];

/**
 * Blocks the agents' followers stay behind the head on a public chain by default, so a short
 * reorganisation is rewound before any handler sees the replaced block's events.
 */
export const PUBLIC_CHAIN_CONFIRMATIONS = 3;

/** Confirmations the agents use on chain `chainId` unless told otherwise. */
export function defaultConfirmations(chainId: number): number {
  return DEV_CHAIN_IDS.includes(chainId) ? DEFAULT_CONFIRMATIONS : PUBLIC_CHAIN_CONFIRMATIONS;
}

/** Most blocks one `eth_getLogs` request of the follower covers (many providers cap the range). */
export const DEFAULT_BATCH_BLOCKS = 500;

/** How often the follower asks for a new head once it caught up (ms). */
export const DEFAULT_POLL_MS = 1000;

/** First back-off after a failure (RPC down, handler threw), doubled per consecutive failure (ms). */
export const DEFAULT_BACKOFF_MIN_MS = 500;

/** Cap of the back-off (ms). */
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

/** HTTP transport: retries of one request before it fails (viem's own exponential retry). */
export const DEFAULT_RPC_RETRY_COUNT = 2;

/** HTTP transport: timeout of one request (ms). */
export const DEFAULT_RPC_TIMEOUT_MS = 10_000;

/** Name of a follower's cursor when the init does not give one. */
export const DEFAULT_FOLLOWER_ID = "default";

/** MURI has 18 decimals, like ether. */
export const MURI_DECIMALS = 18;

/**
 * "1000", "0.5" (at most 18 decimals, surrounding blanks ignored) -> base units; undefined for any
 * other text. Callers phrase the refusal for their own input (a CLI option, a JSON field).
 */
export function parseMuriAmount(text: string): bigint | undefined {
  const v = text.trim();
  return /^\d+(\.\d{1,18})?$/.test(v) ? parseUnits(v, MURI_DECIMALS) : undefined;
}
