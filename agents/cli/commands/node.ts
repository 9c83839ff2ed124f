/**
 * `muri node`: one storage node agent in the foreground (agents/roles/node/node-agent.ts: store, Magu
 * index, p2p, registration, event follower, prover), until Ctrl-C or SIGTERM. Its state lives in
 * --dir, so a restart resumes; logs are JSON lines on stderr (`MURI_LOG=debug|info|warn|error`).
 */
import type { Hex } from "viem";
import { DEFAULT_CONFIRMATIONS, PUBLIC_CHAIN_CONFIRMATIONS } from "../../chain/index.js";
import { createNodeAgent, DEFAULT_QUOTA_BYTES } from "../../roles/node/node-agent.js";
import type { CommandArgs } from "../command.js";
import { resolveTarget } from "../context.js";
import { runForeground, type LocalCommand } from "../devnet/local-command.js";
import { jsonStderrLogger } from "../../store/logger.js";
import { ExitCode, UsageError } from "../errors.js";
import { formatBytes, parseBytes, parseInteger, parseKey, parseMultiaddr, parseMuri } from "../values.js";

interface NodeOptions {
  key: Hex;
  dir: string;
  listen?: string[];
  quotaBytes?: number;
  prove: boolean;
  confirmations?: number;
  metricsPort?: number;
  announce?: string[];
  minTaskFee?: bigint;
}

/** `--announce MA`, repeatable: the multiaddrs an agent registers for others to dial. */
export const ANNOUNCE_HELP = "  --announce MA        multiaddr others dial (registered on chain instead of the listen ones), repeatable";

/** `--announce MA`... of the agents' commands. */
export function parseAnnounce(args: CommandArgs): string[] | undefined {
  const announce = args.strings("announce").map((a) => parseMultiaddr(a, "--announce"));
  return announce.length ? announce : undefined;
}

/** `--confirmations N` of the agents' commands, shared by `muri node` and `muri validator`. */
export const CONFIRMATIONS_HELP = `  --confirmations N    blocks the event followers stay behind the head (default ${DEFAULT_CONFIRMATIONS} on a local chain, ${PUBLIC_CHAIN_CONFIRMATIONS} elsewhere)`;

/** `--metrics-port N` of the agents' commands. */
export function parseMetricsPort(args: CommandArgs): number | undefined {
  const port = args.string("metrics-port");
  return port === undefined ? undefined : Number(parseInteger(port, "--metrics-port", { max: 65535n }));
}

/** `--confirmations N`: blocks the agent's event followers stay behind the head. */
export function parseConfirmations(args: CommandArgs): number | undefined {
  const value = args.string("confirmations");
  return value === undefined ? undefined : Number(parseInteger(value, "--confirmations", { max: 1000n }));
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
  const minFee = args.string("min-task-fee");
  let quotaBytes: number | undefined;
  if (quota !== undefined) {
    const bytes = parseBytes(quota, "--quota");
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`--quota: ${quota} is too large`);
    quotaBytes = Number(bytes);
  }
  return { key, dir, listen: listen.length ? listen : undefined, quotaBytes, prove: !args.flag("no-prove"), confirmations: parseConfirmations(args), metricsPort: parseMetricsPort(args), announce: parseAnnounce(args), minTaskFee: minFee === undefined ? undefined : parseMuri(minFee, "--min-task-fee", true) };
}

export const nodeCommand: LocalCommand = {
  path: ["node"],
  summary: "run a storage node agent in the foreground until Ctrl-C",
  usage: "muri node --key HEX --dir DIR [--rpc URL] [--devnet DIR | --deployment FILE] [--listen MA]... [--announce MA]... [--quota SIZE] [--no-prove] [--confirmations N] [--metrics-port N] [--min-task-fee MURI]",
  help: [
    "  --dir DIR            node data directory (created if missing; a restart resumes from it)",
    "  --listen MA          libp2p listen multiaddr, repeatable (default /ip4/127.0.0.1/tcp/0)",
    `  --quota SIZE         fragment quota, also the capacity registered (default ${formatBytes(BigInt(DEFAULT_QUOTA_BYTES))})`,
    "  --no-prove           do not answer storage challenges",
    ANNOUNCE_HELP,
    CONFIRMATIONS_HELP,
    "  --metrics-port N     serve Prometheus /metrics on 127.0.0.1:N (0: a free port): follower health, p2p counters",
    "  --min-task-fee MURI  do not answer on-chain search tasks paying less (default 0)",
    "  the key is --key, $MURI_KEY or $MURI_NODE_KEY (never a devnet's clientKey); it registers and stakes if needed",
  ],
  options: {
    dir: { type: "string" },
    listen: { type: "string", multiple: true },
    quota: { type: "string" },
    "no-prove": { type: "boolean" },
    confirmations: { type: "string" },
    "metrics-port": { type: "string" },
    announce: { type: "string", multiple: true },
    "min-task-fee": { type: "string" },
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
        confirmations: options.confirmations,
        metricsPort: options.metricsPort,
        announce: options.announce,
        minTaskFee: options.minTaskFee,
      },
      { logger: jsonStderrLogger("node") },
    );
    await runForeground("node", agent, json, (status) => [
      `node ${status.address} up on chain ${target.deployment.chainId} (${target.rpcUrl})`,
      ...(status.metricsUrl ? [`  metrics ${status.metricsUrl}`] : []),
    ]);
    return ExitCode.ok;
  },
};
