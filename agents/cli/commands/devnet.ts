/**
 * `muri devnet`: a whole local network in the foreground (chain, contracts, funded accounts, node
 * and validator processes; see devnet/devnet.ts), until Ctrl-C or SIGTERM stops every process it
 * started. `DIR/devnet.json` tells the other commands where it is (`muri put FILE --devnet DIR`).
 */
import { loadDeployment } from "../../chain/index.js";
import { lightClientPage } from "../../light/bundle.js";
import { createDashboardSource, startDashboardServer, type DashboardServer } from "../../roles/shared/dashboard.js";
import type { CommandArgs } from "../command.js";
import { DEVNET_DEFAULTS, HARDHAT_ACCOUNTS, startDevnet, type Devnet } from "../devnet/devnet.js";
import { stopSignals, type LocalCommand } from "../devnet/local-command.js";
import { ExitCode, UsageError } from "../errors.js";
import { toJson } from "../output.js";
import { parseHttpPort, parseInteger } from "../values.js";

/** Account #0 deploys and the last one is the client: N + V must leave two of Hardhat's 20. */
const MAX_AGENTS = HARDHAT_ACCOUNTS - 2;

interface DevnetOptions {
  dir: string;
  nodes: number;
  validators: number;
  blockMs: number;
  http: number;
}

function parseOptions(args: CommandArgs): DevnetOptions {
  const nodes = Number(parseInteger(args.string("nodes") ?? String(DEVNET_DEFAULTS.nodes), "--nodes", { min: 1n, max: BigInt(MAX_AGENTS) }));
  const validators = Number(
    parseInteger(args.string("validators") ?? String(DEVNET_DEFAULTS.validators), "--validators", { min: 0n, max: BigInt(MAX_AGENTS) }),
  );
  if (nodes + validators > MAX_AGENTS) {
    throw new UsageError(`--nodes + --validators: at most ${MAX_AGENTS} agents (Hardhat funds ${HARDHAT_ACCOUNTS} accounts), got ${nodes + validators}`);
  }
  const blockMs = Number(parseInteger(args.string("block-ms") ?? String(DEVNET_DEFAULTS.blockMs), "--block-ms", { min: 100n, max: 3_600_000n }));
  const dir = args.string("dir") ?? DEVNET_DEFAULTS.dir;
  if (dir.trim() === "") throw new UsageError("--dir: needs a directory path");
  if (args.string("rpc") !== undefined || args.string("devnet") !== undefined || args.string("deployment") !== undefined) {
    throw new UsageError('"muri devnet" starts its own chain: --rpc, --devnet and --deployment do not apply (use --dir DIR)');
  }
  return { dir, nodes, validators, blockMs, http: parseHttpPort(args) ?? 0 };
}

export const devnetCommand: LocalCommand = {
  path: ["devnet"],
  summary: "run a local network (chain, contracts, nodes, validators) until Ctrl-C",
  usage: "muri devnet [--nodes N] [--validators V] [--dir DIR] [--block-ms MS] [--http PORT]",
  help: [
    `  --nodes N            storage node processes (default ${DEVNET_DEFAULTS.nodes})`,
    `  --validators V       validator processes (default ${DEVNET_DEFAULTS.validators}; 0 when agents/roles/validator/run-validator.ts is absent)`,
    `  --dir DIR            state directory: devnet.json, logs/, agent data (default ${DEVNET_DEFAULTS.dir}); one devnet per DIR`,
    `  --block-ms MS        interval mining: a block every MS ms (default ${DEVNET_DEFAULTS.blockMs})`,
    "  --http PORT          serve the dashboard (nodes, Magus, tasks, plots) on http://127.0.0.1:PORT/ (default 0: a free port, printed)",
  ],
  options: {
    nodes: { type: "string" },
    validators: { type: "string" },
    dir: { type: "string" },
    "block-ms": { type: "string" },
    http: { type: "string" },
  },
  signs: false,
  prepare(args) {
    parseOptions(args);
    return async () => {
      throw new Error('"muri devnet" runs without a chain context');
    };
  },
  async runLocal(args, json) {
    const options = parseOptions(args);
    const started = performance.now();
    // Ctrl-C while starting stops the start, then everything started so far.
    const signals = stopSignals("devnet");
    try {
      let devnet: Devnet;
      try {
        devnet = await startDevnet({
          dir: options.dir,
          nodes: options.nodes,
          validators: options.validators,
          blockMs: options.blockMs,
          signal: signals.signal,
          onStep: (m) => process.stderr.write(`devnet: ${m}\n`),
        });
      } catch (err) {
        if (signals.received() !== undefined) {
          process.stderr.write("devnet: interrupted while starting; everything started was stopped\n");
          return ExitCode.ok;
        }
        throw err;
      }
      let dashboard: DashboardServer | undefined;
      if (signals.received() === undefined) {
        try {
          const deployment = await loadDeployment(devnet.file);
          dashboard = await startDashboardServer(
            { port: options.http },
            {
              source: createDashboardSource({
                deployment,
                rpcUrl: devnet.info.rpcUrl,
                agents: () => devnet.info.agents.map((a) => ({ name: a.name, role: a.role, address: a.address, metricsUrl: a.metricsUrl })),
              }),
              light: lightClientPage(deployment, devnet.info.rpcUrl),
            },
          );
        } catch (err) {
          await devnet.stop();
          throw new UsageError(`--http ${options.http}: cannot serve the dashboard there (${(err as Error).message}); pick another port or 0`);
        }
        printStatus(devnet, options, json, ((performance.now() - started) / 1000).toFixed(1), dashboard.url);
        devnet.onAgentExit((agent, code) =>
          process.stderr.write(`devnet: ${agent.name} (pid ${agent.pid}) exited (${code}); see ${agent.logFile}\n`),
        );
      }
      const why = await Promise.race([signals.stopped, devnet.chainExited.then(() => "chain" as const)]);
      if (why === "chain") {
        process.stderr.write(`devnet: the chain process exited unexpectedly; stopping (see ${devnet.dir}/logs/chain.log)\n`);
      } else {
        process.stderr.write(`devnet: ${why} received, stopping ${devnet.info.agents.length + 1} processes\n`);
      }
      await dashboard?.close();
      await devnet.stop();
      process.stderr.write("devnet: stopped\n");
      return why === "chain" ? ExitCode.failure : ExitCode.ok;
    } finally {
      signals.dispose();
    }
  },
};

function printStatus(devnet: Devnet, options: DevnetOptions, json: boolean, seconds: string, dashboardUrl: string): void {
  const info = devnet.info;
  if (json) {
    process.stdout.write(toJson({ event: "ready", file: devnet.file, dir: devnet.dir, dashboardUrl, ...info }) + "\n");
    return;
  }
  const lines = [
    `devnet up in ${seconds} s: chain ${info.chainId} at ${info.rpcUrl} (a block every ${info.blockMs} ms), pid ${info.pid}`,
    ...info.agents.map((a) => `  ${a.name.padEnd(12)} ${a.address}  ${a.peerId}  pid ${a.pid}`),
    `  validators: ${info.agents.filter((a) => a.role === "validator").length}${info.validatorsNote ? ` (${info.validatorsNote})` : ""}`,
    `  client ${info.clientAddress}: muri put FILE --devnet ${options.dir}`,
    `  dashboard ${dashboardUrl}`,
    `  state in ${devnet.file}, logs in ${devnet.dir}/logs/`,
    "Ctrl-C stops it.",
  ];
  process.stdout.write(lines.join("\n") + "\n");
}
