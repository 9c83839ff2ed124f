/**
 * Errors of the CLI edge. A `UsageError` (exit 2) names the argument, what was wrong and what to do;
 * a `CliError` (exit 1) is a runtime condition the CLI itself detected (no such Magu, no MURI).
 * Everything else goes through the chain layer's `describeError`.
 */

/** Exit codes that mean something: 0 ok, 1 runtime or chain failure, 2 usage error. */
export const ExitCode = { ok: 0, failure: 1, usage: 2 } as const;

/** A bad invocation: missing or malformed argument, unknown command or option. Exit code 2. */
export class UsageError extends Error {
  readonly code = "ERR_USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A runtime condition the CLI detects itself (no Magu with that id, not enough MURI). Exit code 1. */
export class CliError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "CliError";
    this.code = code;
  }
}
