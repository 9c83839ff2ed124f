/**
 * `muri node`: one storage node agent in the foreground (agents/roles/node/node-agent.ts: store, Magu
 * index, p2p, registration, event follower, prover), until Ctrl-C or SIGTERM. Its state lives in
 * --dir, so a restart resumes; logs are JSON lines on stderr (`MURI_LOG=debug|info|warn|error`).
 */
import type { Hex } from "viem";
import { createNodeAgent, DEFAULT_QUOTA_BYTES } from "../../roles/node/node-agent.js";
import type { CommandArgs } from "../command.js";
import { resolveTarget } from "../context.js";
import { runForeground, type LocalCommand } from "../devnet/local-command.js";
import { jsonStderrLogger } from "../../store/logger.js";
import { ExitCode, UsageError } from "../errors.js";
import { formatBytes, parseBytes, parseKey, parseMultiaddr } from "../values.js";

interface NodeOptions {
  key: Hex;
  dir: string;
  listen?: string[];
  quotaBytes?: number;
  prove: boolean;
}

/**
 * The key of a foreground agent: --key, $MURI_KEY, else `$<envVar>`; never a devnet's clientKey
 * (an agent needs its own account).
 */
export function agentKey(args: CommandArgs, command: string, envVar: string, env: NodeJS.ProcessEnv = process.env): Hex {
  const keyOption = args.string("key");
  const key =
    keyOption !== undefined
      ? parseKey(keyOption, "--key")
      : env.MURI_KEY
        ? parseKey(env.MURI_KEY, "MURI_KEY")
        : env[envVar]
          ? parseKey(env[envVar]!, envVar)
          : undefined;
  if (key === undefined) throw new UsageError(`--key is required by "muri ${command}": the agent account's key (or set MURI_KEY / ${envVar})`);
  return key;
}

function parseOptions(args: CommandArgs, env: NodeJS.ProcessEnv = process.env): NodeOptions {
  const dir = args.required("dir", "the node's data directory (keys, metadata, fragments)");
  const key = agentKey(args, "node", "MURI_NODE_KEY", env);
  const listen = args.strings("listen").map((a) => parseMultiaddr(a, "--listen"));
  const quota = args.string("quota");
  let quotaBytes: number | undefined;
  if (quota !== undefined) {
    const bytes = parseBytes(quota, "--quota");
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`--quota: ${quota} is too large`);
    quotaBytes = Number(bytes);
  }
  return { key, dir, listen: listen.length ? listen : undefined, quotaBytes, prove: !args.flag("no-prove") };
}

export const nodeCommand: LocalCommand = {
  path: ["node"],
  summary: "run a storage node agent in the foreground until Ctrl-C",
  usage: "muri node --key HEX --dir DIR [--rpc URL] [--devnet DIR | --deployment FILE] [--listen MA]... [--quota SIZE] [--no-prove]",
  help: [
    "  --dir DIR            node data directory (created if missing; a restart resumes from it)",
    "  --listen MA          libp2p listen multiaddr, repeatable (default /ip4/127.0.0.1/tcp/0)",
    `  --quota SIZE         fragment quota, also the capacity registered (default ${formatBytes(BigInt(DEFAULT_QUOTA_BYTES))})`,
    "  --no-prove           do not answer storage challenges",
    "  the key is --key, $MURI_KEY or $MURI_NODE_KEY (never a devnet's clientKey); it registers and stakes if needed",
  ],
  options: {
    dir: { type: "string" },
    listen: { type: "string", multiple: true },
    quota: { type: "string" },
    "no-prove": { type: "boolean" },
  },
  signs: true,
  prepare(args) {
    parseOptions(args);
    return async () => {
      throw new Error('"muri node" runs without a chain context');
    };
  },
  async runLocal(args, json) {
    const options = parseOptions(args);
    const target = await resolveTarget(args);
    const agent = createNodeAgent(
      {
        dir: options.dir,
        deployment: target.deployment,
        rpcUrl: target.rpcUrl,
        privateKey: options.key,
        listen: options.listen,
        quotaBytes: options.quotaBytes,
        prove: options.prove,
      },
      { logger: jsonStderrLogger("node") },
    );
    await runForeground("node", agent, json, (status) => [`node ${status.address} up on chain ${target.deployment.chainId} (${target.rpcUrl})`]);
    return ExitCode.ok;
  },
};
