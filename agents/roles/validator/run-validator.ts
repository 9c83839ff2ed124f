/**
 * Process entry of a validator:
 *
 * ```
 * node --import tsx agents/roles/validator/run-validator.ts --rpc URL --deployment FILE --key HEX --dir DIR
 *      [--metrics-port N] [--poll-ms MS] [--stake WEI] [--claim]
 *      [--listen MA]... [--audit-ms MS]
 * ```
 * Runs the validator agent (validator-agent.ts): registers the account as a validator (roles = 2,
 * stake default 2 x minStake) with its libp2p peer id and addresses unless it is registered
 * (updating them when they changed), takes the Magu documents clients push, audits, checks search
 * answers, and, with `--metrics-port`, serves `/metrics` on 127.0.0.1 (0 picks a free port).
 * Prints one JSON line `{"event":"ready","address","peerId","multiaddrs","metricsUrl"}` on stdout;
 * logs are JSON lines on stderr (`MURI_LOG`). SIGTERM / SIGINT stop it and exit 0; a failed start
 * exits 1. The key may come from `MURI_VALIDATOR_KEY`. `--dir` holds its state (created if missing).
 */
import { mkdir } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { Hex } from "viem";
import { describeError, loadDeployment } from "../../chain/index.js";
import { jsonStderrLogger } from "../../store/logger.js";
import { createValidatorAgent } from "./validator-agent.js";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rpc: { type: "string" },
      deployment: { type: "string" },
      key: { type: "string" },
      dir: { type: "string" },
      "metrics-port": { type: "string" },
      "poll-ms": { type: "string" },
      stake: { type: "string" },
      claim: { type: "boolean", default: false },
      listen: { type: "string", multiple: true },
      "audit-ms": { type: "string" },
    },
    strict: true,
  });
  const key = values.key ?? process.env.MURI_VALIDATOR_KEY;
  if (values.deployment === undefined || values.dir === undefined || key === undefined) {
    process.stderr.write("usage: run-validator.ts --deployment FILE --dir DIR --key HEX [--rpc URL] [--metrics-port N] [--poll-ms MS] [--stake WEI] [--claim] [--listen MA]... [--audit-ms MS]\n");
    return 2;
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
    process.stderr.write("--key must be 0x followed by 64 hex digits\n");
    return 2;
  }
  const metricsPort = values["metrics-port"] !== undefined ? Number(values["metrics-port"]) : undefined;
  if (metricsPort !== undefined && (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535)) {
    process.stderr.write("--metrics-port must be 0..65535\n");
    return 2;
  }
  const log = jsonStderrLogger("validator");
  const deployment = await loadDeployment(values.deployment);
  await mkdir(values.dir, { recursive: true });

  const stopped = new AbortController();
  const onSignal = (signal: string): void => {
    log.info("signal received, stopping", { signal });
    stopped.abort();
  };
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));

  const auditMs = values["audit-ms"] !== undefined ? Number(values["audit-ms"]) : undefined;
  if (auditMs !== undefined && (!Number.isInteger(auditMs) || auditMs < 0)) {
    process.stderr.write("--audit-ms must be a non-negative integer (0 turns audits off)\n");
    return 2;
  }
  const agent = createValidatorAgent(
    {
      dir: values.dir,
      deployment,
      rpcUrl: values.rpc,
      privateKey: key as Hex,
      listen: values.listen,
      stake: values.stake !== undefined ? BigInt(values.stake) : undefined,
      pollMs: values["poll-ms"] !== undefined ? Number(values["poll-ms"]) : undefined,
      auditIntervalMs: auditMs,
      claimRewards: values.claim,
      metricsPort,
    },
    { logger: log },
  );
  try {
    const status = await agent.start();
    if (!stopped.signal.aborted) process.stdout.write(JSON.stringify({ event: "ready", ...status }) + "\n");
  } catch (err) {
    log.error("start failed", { error: describeError(err) });
    await agent.stop();
    return 1;
  }
  if (!stopped.signal.aborted) await new Promise((resolve) => stopped.signal.addEventListener("abort", resolve, { once: true }));
  await agent.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`run-validator: ${describeError(err)}\n`);
    process.exit(1);
  },
);
