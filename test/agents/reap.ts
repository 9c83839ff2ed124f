/**
 * Child processes a test file started in their own process groups (hardhat nodes, agents) do not get
 * the signals sent to the test file's group, so they outlive a test process that ends without running
 * its cleanup. `reapOnExit` kills every group in the given sets when this process exits, and also on
 * SIGTERM, SIGINT and SIGHUP (Ctrl-C, a runner giving up on the file): Node's default for those
 * signals ends the process without running "exit" listeners. After killing the children the signal is
 * raised again with the default action, so the process still ends the way it was told to.
 */
import type { ChildProcess } from "node:child_process";

const SIGNALS: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP"];
const tracked = new Set<ReadonlySet<ChildProcess>>();
let installed = false;

function killAll(): void {
  for (const children of tracked) {
    for (const child of children) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  killAll();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal);
}

export function reapOnExit(children: ReadonlySet<ChildProcess>): void {
  tracked.add(children);
  if (installed) return;
  installed = true;
  process.once("exit", killAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}
