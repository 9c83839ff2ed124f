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
