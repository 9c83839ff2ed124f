/**
 * `muri validator`: one validator agent in the foreground (agents/roles/validator/validator-agent.ts: marks
 * missed proofs, fills vacancies, settles, audits what clients tell it about, checks and disputes
 * search answers, finalizes tasks, submits weights and finalizes epochs), until Ctrl-C or SIGTERM.
 * Its state lives in --dir, so a restart resumes; logs are JSON lines on stderr (`MURI_LOG`).
 */
import { createValidatorAgent } from "../../roles/validator/validator-agent.js";
import { jsonStderrLogger } from "../../store/logger.js";
import type { CommandArgs } from "../command.js";
import { resolveTarget } from "../context.js";
import { runForeground, type LocalCommand } from "../devnet/local-command.js";
import { ExitCode } from "../errors.js";
import { parseHttpPort, parseInteger, parseMultiaddr, parseMuri } from "../values.js";
import { agentKey, KEYSTORE_HELP, KEYSTORE_OPTIONS, ANNOUNCE_HELP, CONFIRMATIONS_HELP, HTTP_HELP, parseAnnounce, parseConfirmations, parseMetricsPort, withDashboard } from "./node.js";

function parseOptions(args: CommandArgs) {
  const dir = args.required("dir", "the validator's data directory (keys, metadata, documents)");
  const key = agentKey(args, "validator", "MURI_VALIDATOR_KEY");
  const listen = args.strings("listen").map((a) => parseMultiaddr(a, "--listen"));
  const auditMs = args.string("audit-ms");
  const stake = args.string("stake");
  return {
    dir,
    key,
    listen: listen.length ? listen : undefined,
    metricsPort: parseMetricsPort(args),
    http: parseHttpPort(args),
    auditIntervalMs: auditMs === undefined ? undefined : Number(parseInteger(auditMs, "--audit-ms", { max: 86_400_000n })),
    stake: stake === undefined ? undefined : parseMuri(stake, "--stake"),
    claimRewards: args.flag("claim"),
    confirmations: parseConfirmations(args),
    announce: parseAnnounce(args),
  };
}

export const validatorCommand: LocalCommand = {
  path: ["validator"],
  summary: "run a validator agent in the foreground until Ctrl-C",
  usage: "muri validator --key HEX --dir DIR [--rpc URL] [--devnet DIR | --deployment FILE] [--listen MA]... [--announce MA]... [--metrics-port N] [--http PORT] [--audit-ms MS] [--stake MURI] [--claim] [--confirmations N]",
  help: [
    "  --dir DIR            validator data directory (created if missing; a restart resumes from it)",
    ...KEYSTORE_HELP,
    "  --listen MA          libp2p listen multiaddr, repeatable (default /ip4/127.0.0.1/tcp/0)",
    "  --metrics-port N     serve Prometheus /metrics on 127.0.0.1:N (0: a free port)",
    HTTP_HELP,
    "  --audit-ms MS        pause between retrieval audit rounds (default 30000; 0 turns audits off)",
    "  --stake MURI         stake registered if not yet registered (default 2 x minStake)",
    "  --claim              claim the validator's rewards after each finalized epoch",
    ANNOUNCE_HELP,
    CONFIRMATIONS_HELP,
    "  the key is --key, $MURI_KEY or $MURI_VALIDATOR_KEY (never a devnet's clientKey); it registers and stakes if needed",
  ],
  options: {
    dir: { type: "string" },
    listen: { type: "string", multiple: true },
    "metrics-port": { type: "string" },
    http: { type: "string" },
    "audit-ms": { type: "string" },
    stake: { type: "string" },
    claim: { type: "boolean" },
    confirmations: { type: "string" },
    announce: { type: "string", multiple: true },
    ...KEYSTORE_OPTIONS,
  },
  signs: true,
  prepare(args) {
    parseOptions(args);
    return async () => {
      throw new Error('"muri validator" runs without a chain context');
    };
  },
  async runLocal(args, json) {
    const options = parseOptions(args);
    // The key first: a wrong passphrase is the message, before any chain or deployment.
    const privateKey = await options.key();
    const target = await resolveTarget(args);
    const agent = createValidatorAgent(
      {
        dir: options.dir,
        deployment: target.deployment,
        rpcUrl: target.rpcUrl,
        privateKey,
        listen: options.listen,
        stake: options.stake,
        auditIntervalMs: options.auditIntervalMs,
        claimRewards: options.claimRewards,
        metricsPort: options.metricsPort ?? (options.http !== undefined ? 0 : undefined),
        confirmations: options.confirmations,
        announce: options.announce,
      },
      { logger: jsonStderrLogger("validator") },
    );
    await runForeground("validator", withDashboard(agent, options.http, "validator", target), json, (status) => [
      `validator ${status.address} up on chain ${target.deployment.chainId} (${target.rpcUrl})`,
      ...(status.metricsUrl ? [`  metrics ${status.metricsUrl}`] : []),
      ...(status.dashboardUrl ? [`  dashboard ${status.dashboardUrl}`] : []),
    ]);
    return ExitCode.ok;
  },
};
