/**
 * `muri node`: one storage node agent in the foreground (agents/roles/node/node-agent.ts: store, Magu
 * index, p2p, registration, event follower, prover), until Ctrl-C or SIGTERM. Its state lives in
 * --dir, so a restart resumes; logs are JSON lines on stderr (`MURI_LOG=debug|info|warn|error`).
 */
import { readFile } from "node:fs/promises";
import type { Hex } from "viem";
import { DEFAULT_CONFIRMATIONS, decryptKeystore, KeystoreError, PUBLIC_CHAIN_CONFIRMATIONS, type Deployment } from "../../chain/index.js";
import { lightClientPage } from "../../light/bundle.js";
import { createDashboardSource, startDashboardServer, type DashboardServer } from "../../roles/shared/dashboard.js";
import { createNodeAgent, DEFAULT_CAPACITY } from "../../roles/node/node-agent.js";
import { CapacityError, describeBytes, describeCapacity, type CapacitySpec } from "../../store/index.js";
import type { CommandArgs } from "../command.js";
import { resolveTarget } from "../context.js";
import { runForeground, type ForegroundAgent, type LocalCommand } from "../devnet/local-command.js";
import { jsonStderrLogger } from "../../store/logger.js";
import { ExitCode, UsageError } from "../errors.js";
import { canPrompt, promptHidden } from "../prompt.js";
import { parseCapacity, parseHttpPort, parseInteger, parseKey, parseMultiaddr, parseMuri, parsePortOption, readPassphraseFile } from "../values.js";

interface NodeOptions {
  key: () => Promise<Hex>;
  dir: string;
  listen?: string[];
  capacity?: CapacitySpec;
  prove: boolean;
  confirmations?: number;
  metricsPort?: number;
  http?: number;
  announce?: string[];
  minTaskFee?: bigint;
}

/** `--http PORT` of the agents' commands. */
export const HTTP_HELP = "  --http PORT          serve the dashboard (nodes, Magus, tasks, plots; chain + this agent's /metrics) on http://127.0.0.1:PORT/ (0: a free port)";

type AgentStatus = { address: string; peerId: string; multiaddrs: string[]; metricsUrl?: string | null };

/**
 * `agent`, serving the dashboard on 127.0.0.1:`port` once started (when `port` is given): the
 * chain's public data and this agent's own `/metrics` (its health). Its status gains `dashboardUrl`.
 */
export function withDashboard<S extends AgentStatus>(
  agent: ForegroundAgent<S>,
  port: number | undefined,
  role: "node" | "validator",
  target: { deployment: Deployment; rpcUrl: string },
): ForegroundAgent<S & { dashboardUrl?: string }> {
  if (port === undefined) return agent;
  let server: DashboardServer | undefined;
  return {
    async start() {
      const status = await agent.start();
      const self = { name: `this ${role}`, role, address: status.address as `0x${string}`, metricsUrl: status.metricsUrl ?? undefined };
      try {
        server = await startDashboardServer(
          { port },
          { source: createDashboardSource({ deployment: target.deployment, rpcUrl: target.rpcUrl, agents: () => [self] }), light: lightClientPage(target.deployment, target.rpcUrl) },
        );
      } catch (err) {
        throw new UsageError(`--http ${port}: cannot serve the dashboard there (${(err as Error).message}); pick another port or 0`);
      }
      return { ...status, dashboardUrl: server.url };
    },
    async stop() {
      await server?.close();
      await agent.stop();
    },
  };
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

/** `--metrics-port N` of the agents' commands (0: a free port, as their help says). */
export function parseMetricsPort(args: CommandArgs): number | undefined {
  return parsePortOption(args, "metrics-port");
}

/** `--confirmations N`: blocks the agent's event followers stay behind the head. */
export function parseConfirmations(args: CommandArgs): number | undefined {
  const value = args.string("confirmations");
  return value === undefined ? undefined : Number(parseInteger(value, "--confirmations", { max: 1000n }));
}

/** Help lines of the key options shared by `muri node` and `muri validator`. */
export const KEYSTORE_HELP = [
  "  --keystore FILE      the account's key from an encrypted keystore (Web3 secret storage v3; muri keystore new makes one)",
  "  --password-file FILE its passphrase, the first line (else $MURI_KEYSTORE_PASSWORD, else asked at the terminal); --key HEX stays for devnets",
];

/** The key options of the agents' commands. */
export const KEYSTORE_OPTIONS = { keystore: { type: "string" }, "password-file": { type: "string" } } as const;

/**
 * The key of a foreground agent, resolved when called: `--keystore FILE` with `--password-file
 * FILE` or `$MURI_KEYSTORE_PASSWORD`, else --key, $MURI_KEY, else `$<envVar>`; never a devnet's
 * clientKey (an agent needs its own account). Missing options fail here, at once.
 */
export function agentKey(args: CommandArgs, command: string, envVar: string, env: NodeJS.ProcessEnv = process.env): () => Promise<Hex> {
  const keystore = args.string("keystore");
  if (keystore !== undefined) {
    if (args.string("key") !== undefined) throw new UsageError("give the account's key with --keystore FILE or --key HEX, not both");
    const passwordFile = args.string("password-file");
    const hint = "--keystore needs its passphrase: --password-file FILE or $MURI_KEYSTORE_PASSWORD, or run it at a terminal to be asked";
    if (passwordFile === undefined && !env.MURI_KEYSTORE_PASSWORD && !canPrompt()) throw new UsageError(hint);
    return async () => {
      const passphrase =
        passwordFile !== undefined
          ? await readPassphraseFile(passwordFile, "--password-file")
          : (env.MURI_KEYSTORE_PASSWORD ?? (await promptHidden(`passphrase of ${keystore}: `, hint)));
      let json: string;
      try {
        json = await readFile(keystore, "utf8");
      } catch (err) {
        throw new UsageError(`--keystore: cannot read ${keystore} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      try {
        return decryptKeystore(json, passphrase);
      } catch (err) {
        if (err instanceof KeystoreError) throw new UsageError(`--keystore ${keystore}: ${err.message.replace(/^keystore: /, "")}`);
        throw err;
      }
    };
  }
  const key = agentHexKey(args, command, envVar, env);
  return async () => key;
}

function agentHexKey(args: CommandArgs, command: string, envVar: string, env: NodeJS.ProcessEnv): Hex {
  const keyOption = args.string("key");
  const key =
    keyOption !== undefined
      ? parseKey(keyOption, "--key")
      : env.MURI_KEY
        ? parseKey(env.MURI_KEY, "MURI_KEY")
        : env[envVar]
          ? parseKey(env[envVar]!, envVar)
          : undefined;
  if (key === undefined) throw new UsageError(`--key or --keystore is required by "muri ${command}": the agent account's key (or set MURI_KEY / ${envVar})`);
  return key;
}

function parseOptions(args: CommandArgs, env: NodeJS.ProcessEnv = process.env): NodeOptions {
  const dir = args.required("dir", "the node's data directory (keys, metadata, fragments)");
  const key = agentKey(args, "node", "MURI_NODE_KEY", env);
  const listen = args.strings("listen").map((a) => parseMultiaddr(a, "--listen"));
  const capacityArg = args.string("capacity");
  const capacity = capacityArg === undefined ? undefined : parseCapacity(capacityArg, "--capacity");
  const minFee = args.string("min-task-fee");
  return { key, dir, listen: listen.length ? listen : undefined, capacity, prove: !args.flag("no-prove"), confirmations: parseConfirmations(args), metricsPort: parseMetricsPort(args), http: parseHttpPort(args), announce: parseAnnounce(args), minTaskFee: minFee === undefined ? undefined : parseMuri(minFee, "--min-task-fee", true) };
}

export const nodeCommand: LocalCommand = {
  path: ["node"],
  summary: "run a storage node agent in the foreground until Ctrl-C",
  usage: "muri node --key HEX --dir DIR [--rpc URL] [--devnet DIR | --deployment FILE] [--listen MA]... [--announce MA]... [--capacity P%|SIZE] [--no-prove] [--confirmations N] [--metrics-port N] [--http PORT] [--min-task-fee MURI]",
  help: [
    "  --dir DIR            node data directory (created if missing; a restart resumes from it)",
    ...KEYSTORE_HELP,
    "  --listen MA          libp2p listen multiaddr, repeatable (default /ip4/127.0.0.1/tcp/0); one ending in /ws",
    "                       (/ip4/127.0.0.1/tcp/PORT/ws) lets browsers dial it: the light client at --http's /light",
    "  --capacity P%|SIZE   storage offered: a share of the free space of --dir's disk plus what the node already",
    "                       stores (e.g. 50%), or a size (e.g. 20GiB) that must fit there; it is the fragment quota and",
    `                       the capacity registered on chain, kept in step at every start (default ${describeCapacity(DEFAULT_CAPACITY)})`,
    "  --no-prove           do not answer storage challenges",
    ANNOUNCE_HELP,
    CONFIRMATIONS_HELP,
    "  --metrics-port N     serve Prometheus /metrics on 127.0.0.1:N (0: a free port): follower health, p2p counters",
    HTTP_HELP,
    "  --min-task-fee MURI  do not answer on-chain search tasks paying less (default 0)",
    "  the key is --key, $MURI_KEY or $MURI_NODE_KEY (never a devnet's clientKey); it registers and stakes if needed",
  ],
  options: {
    dir: { type: "string" },
    listen: { type: "string", multiple: true },
    capacity: { type: "string" },
    "no-prove": { type: "boolean" },
    confirmations: { type: "string" },
    "metrics-port": { type: "string" },
    http: { type: "string" },
    announce: { type: "string", multiple: true },
    ...KEYSTORE_OPTIONS,
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
    // The key first: a wrong passphrase is the message, before any chain or deployment.
    const privateKey = await options.key();
    const target = await resolveTarget(args);
    const agent = createNodeAgent(
      {
        dir: options.dir,
        deployment: target.deployment,
        rpcUrl: target.rpcUrl,
        privateKey,
        listen: options.listen,
        capacity: options.capacity,
        prove: options.prove,
        confirmations: options.confirmations,
        // The dashboard reads this node's health from its /metrics: --http alone serves both.
        metricsPort: options.metricsPort ?? (options.http !== undefined ? 0 : undefined),
        announce: options.announce,
        minTaskFee: options.minTaskFee,
      },
      { logger: jsonStderrLogger("node") },
    );
    try {
      await runForeground("node", withDashboard(agent, options.http, "node", target), json, (status) => [
        `node ${status.address} up on chain ${target.deployment.chainId} (${target.rpcUrl})`,
        `  capacity ${describeBytes(status.capacity)} (${status.capacity} bytes, registered on chain)`,
        ...(status.metricsUrl ? [`  metrics ${status.metricsUrl}`] : []),
        ...(status.dashboardUrl ? [`  dashboard ${status.dashboardUrl}`] : []),
      ]);
    } catch (err) {
      // A capacity the disk or the node's memberships cannot take is bad input: exit 2, nothing sent.
      if (err instanceof CapacityError) throw new UsageError(`--${err.message}`);
      throw err;
    }
    return ExitCode.ok;
  },
};
