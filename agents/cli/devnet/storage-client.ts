/**
 * The storage client of `muri put` / `muri get`: its directory (the encryption secret lives there,
 * so get must use the directory put used) and a started client for the resolved target.
 */
import { homedir } from "node:os";
import { join } from "node:path";
import type { StorageClient } from "../../roles/client/client.js";
import type { CommandArgs } from "../command.js";
import type { CliContext } from "../context.js";
import { resolveTarget } from "../context.js";
import { grantTokens } from "../grants.js";
import type { Logger } from "../../store/logger.js";
import { UsageError } from "../errors.js";

export const CLIENT_DIR_HELP =
  "  --client-dir DIR     client directory with the encryption secret (default: $MURI_CLIENT_DIR, else DIR/client with --devnet DIR, else ~/.muri/client)";

/** --client-dir, $MURI_CLIENT_DIR, the devnet's client/ directory, else ~/.muri/client. */
export function clientDir(args: CommandArgs, env: NodeJS.ProcessEnv = process.env): string {
  const explicit = args.string("client-dir");
  if (explicit !== undefined) {
    if (explicit.trim() === "") throw new UsageError("--client-dir: needs a directory path");
    return explicit;
  }
  if (env.MURI_CLIENT_DIR) return env.MURI_CLIENT_DIR;
  const devnet = args.string("devnet");
  if (devnet !== undefined) return join(devnet, "client");
  return join(homedir(), ".muri", "client");
}

/** A started client for the connected target, signing with the resolved key; stop() it after use. */
/** `staging`: ClientInit.memoryStagingBytes and stagingDiskReserveBytes (`muri serve`'s budget and --disk-reserve). */
export async function startClient(
  args: CommandArgs,
  ctx: CliContext,
  dir: string,
  logger?: Logger,
  extraGrants: readonly string[] = [],
  maxReadPrice?: bigint,
  staging: { memoryBytes?: number; diskReserveBytes?: number } = {},
): Promise<StorageClient> {
  const target = await resolveTarget(args);
  if (target.key === undefined) {
    throw new UsageError("--key is required to store: pass --key HEX, set MURI_KEY, or use a --devnet with a clientKey");
  }
  // Loaded here, not at the top: `muri status` reads clientDir() and must not load libp2p.
  const { createClient } = await import("../../roles/client/client.js");
  const client = createClient({ dir, deployment: ctx.deployment, rpcUrl: ctx.rpcUrl, privateKey: target.key, grants: [...grantTokens(args), ...extraGrants], maxReadPrice, memoryStagingBytes: staging.memoryBytes, stagingDiskReserveBytes: staging.diskReserveBytes }, { logger });
  await client.start();
  return client;
}
