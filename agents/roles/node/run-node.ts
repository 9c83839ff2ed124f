/**
 * Process entry of a storage node:
 *
 * ```
 * node --import tsx agents/roles/node/run-node.ts --rpc URL --deployment FILE --key HEX --dir DIR
 *      [--listen /ip4/127.0.0.1/tcp/0] [--capacity BYTES] [--no-prove] [--ef N] [--metrics-port N]
 *      [--settle-ms N] [--search-peer-ms N]
 * ```
 * `--settle-ms` is how often paid searches' and reads' vouchers are settled on chain (search-meter.ts, read-meter.ts).
 * `--search-peer-ms` is the search time one peer may use per second (default 250; the node's total
 * rises with it when above 600; shared/search-budget.ts).
 * `--metrics-port` serves `/metrics` on 127.0.0.1 (0: a free port; its URL is in the ready line).
 * `--ef` sets the default HNSW search effort of off-chain searches. `MURI_TEST_FAULT=false-distance`
 * (or `ignore-deletions`: return deleted ids) makes the node lie in on-chain search tasks and
 * off-chain answers (test-only; see
 * roles/node/search-tasks.ts and roles/shared/vector-service.ts).
 * Prints one JSON line `{"event":"ready","address","peerId","multiaddrs"}` on stdout once the node
 * is up; logs are JSON lines on stderr (`MURI_LOG=debug|info|warn|error`, default info).
 * SIGTERM / SIGINT stop the agent (parts in reverse order) and exit 0; a failed start exits 1.
 * The key may also come from the environment (`MURI_NODE_KEY`) to keep it off the command line.
 */
import { parseArgs } from "node:util";
import type { Hex } from "viem";
import { describeError, loadDeployment } from "../../chain/index.js";
import { jsonStderrLogger } from "../../store/logger.js";
import { createNodeAgent } from "./node-agent.js";
import { SEARCH_FAULTS, type SearchFault } from "../shared/vector-service.js";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rpc: { type: "string" },
      deployment: { type: "string" },
      key: { type: "string" },
      dir: { type: "string" },
      listen: { type: "string", multiple: true },
      capacity: { type: "string" },
      "no-prove": { type: "boolean", default: false },
      ef: { type: "string" },
      "metrics-port": { type: "string" },
      "settle-ms": { type: "string" },
      "search-peer-ms": { type: "string" },
    },
    strict: true,
  });
  const key = values.key ?? process.env.MURI_NODE_KEY;
  if (values.deployment === undefined || values.dir === undefined || key === undefined) {
    process.stderr.write("usage: run-node.ts --deployment FILE --dir DIR --key HEX [--rpc URL] [--listen MA]... [--capacity BYTES] [--no-prove] [--ef N] [--metrics-port N] [--search-peer-ms N]\n");
    return 2;
  }
  const metricsPort = values["metrics-port"] !== undefined ? Number(values["metrics-port"]) : undefined;
  if (metricsPort !== undefined && (!Number.isSafeInteger(metricsPort) || metricsPort < 0 || metricsPort > 65_535)) {
    process.stderr.write(`--metrics-port must be a TCP port (0 for a free one), got ${JSON.stringify(values["metrics-port"])}\n`);
    return 2;
  }
  const ef = values.ef !== undefined ? Number(values.ef) : undefined;
  if (ef !== undefined && (!Number.isSafeInteger(ef) || ef < 1)) {
    process.stderr.write(`--ef must be a positive integer, got ${JSON.stringify(values.ef)}\n`);
    return 2;
  }
  const settleMs = values["settle-ms"] !== undefined ? Number(values["settle-ms"]) : undefined;
  if (settleMs !== undefined && (!Number.isSafeInteger(settleMs) || settleMs < 100)) {
    process.stderr.write(`--settle-ms must be an integer of at least 100, got ${JSON.stringify(values["settle-ms"])}\n`);
    return 2;
  }
  const peerMs = values["search-peer-ms"] !== undefined ? Number(values["search-peer-ms"]) : undefined;
  if (peerMs !== undefined && (!Number.isSafeInteger(peerMs) || peerMs < 1 || peerMs > 1000)) {
    process.stderr.write(`--search-peer-ms must be an integer from 1 to 1000 (ms of search time one peer may use per second), got ${JSON.stringify(values["search-peer-ms"])}\n`);
    return 2;
  }
  const fault = process.env.MURI_TEST_FAULT;
  if (fault !== undefined && !(SEARCH_FAULTS as readonly string[]).includes(fault)) {
    process.stderr.write(`MURI_TEST_FAULT must be one of ${SEARCH_FAULTS.map((f) => JSON.stringify(f)).join(", ")} when set, got ${JSON.stringify(fault)}\n`);
    return 2;
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
    process.stderr.write("--key must be 0x followed by 64 hex digits\n");
    return 2;
  }
  const log = jsonStderrLogger("node");
  const deployment = await loadDeployment(values.deployment);
  const agent = createNodeAgent(
    {
      dir: values.dir,
      deployment,
      rpcUrl: values.rpc,
      privateKey: key as Hex,
      listen: values.listen,
      capacity: values.capacity !== undefined ? { bytes: Number(values.capacity) } : undefined,
      prove: !values["no-prove"],
      efSearch: ef,
      searchFault: fault as SearchFault | undefined,
      metricsPort,
      searchSettleMs: settleMs,
      ...(peerMs !== undefined ? { searchBudget: { perPeerMsPerSecond: peerMs, totalMsPerSecond: Math.max(peerMs, 600) } } : {}),
    },
    { logger: log },
  );

  const stopped = new AbortController();
  const onSignal = (signal: string): void => {
    log.info("signal received, stopping", { signal });
    stopped.abort();
  };
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));

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
    process.stderr.write(`run-node: ${describeError(err)}\n`);
    process.exit(1);
  },
);
