/**
 * Commands that do not run against a connected chain context: `muri devnet` starts its own chain,
 * `muri node` runs an agent in the foreground. They resolve what they need themselves, print their
 * own output and return the exit code; `main.ts` dispatches them before connecting.
 */
import type { Command, CommandArgs } from "../command.js";

export interface LocalCommand extends Command {
  /** Runs the command to its end (a long-running one until SIGINT/SIGTERM); returns the exit code. */
  runLocal(args: CommandArgs, json: boolean): Promise<number>;
}

export function isLocalCommand(command: Command): command is LocalCommand {
  return typeof (command as Partial<LocalCommand>).runLocal === "function";
}

/**
 * SIGINT/SIGTERM handling of a foreground command: the first signal aborts `signal`; later ones
 * only say that it is already stopping (so a second Ctrl-C cannot orphan child processes).
 */
export interface StopSignals {
  readonly signal: AbortSignal;
  /** The signal received, if any. */
  received(): NodeJS.Signals | undefined;
  /** Resolves once a signal arrived. */
  readonly stopped: Promise<NodeJS.Signals>;
  dispose(): void;
}

export function stopSignals(name: string): StopSignals {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  let resolveStopped: (s: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (resolveStopped = resolve));
  const onSignal = (s: NodeJS.Signals) => {
    if (received !== undefined) {
      process.stderr.write(`${name}: already stopping\n`);
      return;
    }
    received = s;
    controller.abort();
    resolveStopped(s);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    received: () => received,
    stopped,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** An agent a foreground command runs (`muri node`, `muri validator`). */
export interface ForegroundAgent<S extends { address: string; peerId: string; multiaddrs: string[] }> {
  start(): Promise<S>;
  stop(): Promise<void>;
}

/**
 * Starts `agent`, prints its ready line (JSON with `--json`, else `describe(status)` lines and a
 * hint), runs until SIGINT/SIGTERM and stops it, also when the start failed.
 */
export async function runForeground<S extends { address: string; peerId: string; multiaddrs: string[] }>(
  name: string,
  agent: ForegroundAgent<S>,
  json: boolean,
  describe: (status: S) => string[],
): Promise<void> {
  const signals = stopSignals(name);
  try {
    const status = await agent.start();
    if (signals.received() !== undefined) return;
    if (json) process.stdout.write(JSON.stringify({ event: "ready", ...status }) + "\n");
    else process.stdout.write([...describe(status), `  peer ${status.peerId}`, ...status.multiaddrs.map((a) => `  listening on ${a}`), "Ctrl-C stops it."].join("\n") + "\n");
    await signals.stopped;
  } finally {
    await agent.stop();
    signals.dispose();
  }
}
