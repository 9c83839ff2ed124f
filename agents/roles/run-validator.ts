/**
 * Process entry of a validator:
 *
 * ```
 * node --import tsx agents/roles/run-validator.ts --rpc URL --deployment FILE --key HEX --dir DIR
 *      [--metrics-port N] [--poll-ms MS] [--stake WEI] [--claim]
 * ```
 * Registers the account as a validator (roles = 2, stake default 2 x minStake) unless it is
 * registered, starts the validator loop and, with `--metrics-port`, `/metrics` on 127.0.0.1 (0
 * picks a free port). Prints one JSON line `{"event":"ready","address","metricsUrl"}` on stdout;
 * logs are JSON lines on stderr (`MURI_LOG`). SIGTERM / SIGINT stop it and exit 0; a failed start
 * exits 1. The key may come from `MURI_VALIDATOR_KEY`. `--dir` is created (reserved for state).
 */
import { mkdir } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { Hex } from "viem";
import { createChainClients, describeError, getMuriContracts, loadDeployment } from "../chain/index.js";
import { startMetricsServer, type MetricsServer } from "./metrics-server.js";
import { jsonStderrLogger } from "../store/logger.js";
import { createValidator, ensureValidatorRegistered, type Validator } from "./validator.js";

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
    },
    strict: true,
  });
  const key = values.key ?? process.env.MURI_VALIDATOR_KEY;
  if (values.deployment === undefined || values.dir === undefined || key === undefined) {
    process.stderr.write("usage: run-validator.ts --deployment FILE --dir DIR --key HEX [--rpc URL] [--metrics-port N] [--poll-ms MS] [--stake WEI] [--claim]\n");
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

  let validator: Validator | undefined;
  let metrics: MetricsServer | undefined;
  const stopAll = async () => {
    await validator?.stop();
    await metrics?.close();
  };
  try {
    const clients = createChainClients({ rpcUrl: values.rpc ?? deployment.rpcUrl, chainId: deployment.chainId, privateKey: key as Hex });
    const contracts = getMuriContracts(deployment.contracts, clients);
    const address = clients.account.address;
    const minStake = (await contracts.nodeRegistry.read.config()).minStake;
    const stake = values.stake !== undefined ? BigInt(values.stake) : 2n * minStake;
    await ensureValidatorRegistered({ contracts, publicClient: clients.publicClient, logger: log }, { address, nodeRegistryAddress: deployment.contracts.nodeRegistry, stake });
    validator = createValidator(
      { address, pollMs: values["poll-ms"] !== undefined ? Number(values["poll-ms"]) : undefined, claimRewards: values.claim },
      { contracts, publicClient: clients.publicClient, walletClient: clients.walletClient, logger: log },
    );
    if (metricsPort !== undefined) metrics = await startMetricsServer({ port: metricsPort }, { registry: validator.registry });
    await validator.start();
    if (!stopped.signal.aborted) process.stdout.write(JSON.stringify({ event: "ready", address, metricsUrl: metrics?.url ?? null }) + "\n");
  } catch (err) {
    log.error("start failed", { error: describeError(err) });
    await stopAll();
    return 1;
  }
  if (!stopped.signal.aborted) await new Promise((resolve) => stopped.signal.addEventListener("abort", resolve, { once: true }));
  await stopAll();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`run-validator: ${describeError(err)}\n`);
    process.exit(1);
  },
);
