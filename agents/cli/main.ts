/**
 * `muri`: one command for MuriData. Dispatches to the command files in commands/, parses and
 * validates options at the edge, prints one JSON object with --json, and turns every failure into
 * one line on stderr (MURI_DEBUG=1 adds the stack). Exit codes: 0 ok, 1 failure, 2 usage error.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Address } from "viem";
import { describeError, toChainError } from "../chain/index.js";
import { GLOBAL_HELP, GLOBAL_OPTIONS, commandHelp, parseCommandArgs, type Command } from "./command.js";
import { connect, resolveTarget } from "./context.js";
import { isLocalCommand } from "./devnet/local-command.js";
import { ExitCode, UsageError } from "./errors.js";
import { printResult, toJson } from "./output.js";

/**
 * Every command, in the order `muri --help` lists them: its words and the module that defines it.
 * A command's module is loaded only when it runs (or for help), so a chain-only command such as
 * `muri stake` does not load libp2p, LevelDB and the index.
 */
const COMMANDS: CommandEntry[] = [
  entry("status", () => import("./commands/status.js").then((m) => m.statusCommand)),
  entry("account", () => import("./commands/share.js").then((m) => m.accountCommand)),
  entry("stake", () => import("./commands/stake.js").then((m) => m.stakeCommand)),
  entry("unstake", () => import("./commands/unstake.js").then((m) => m.unstakeCommand)),
  entry("withdraw", () => import("./commands/withdraw.js").then((m) => m.withdrawCommand)),
  entry("magu create", () => import("./commands/magu.js").then((m) => m.maguCreateCommand)),
  entry("magu status", () => import("./commands/magu.js").then((m) => m.maguStatusCommand)),
  entry("magu fire", () => import("./commands/magu.js").then((m) => m.maguFireCommand)),
  entry("magu grant", () => import("./commands/access.js").then((m) => m.maguGrantCommand)),
  entry("magu revoke", () => import("./commands/access.js").then((m) => m.maguRevokeCommand)),
  entry("magu visibility", () => import("./commands/access.js").then((m) => m.maguVisibilityCommand)),
  entry("magu search-price", () => import("./commands/access.js").then((m) => m.maguSearchPriceCommand)),
  entry("magu read-price", () => import("./commands/access.js").then((m) => m.maguReadPriceCommand)),
  entry("magu deposit", () => import("./commands/access.js").then((m) => m.maguDepositCommand)),
  entry("magu withdraw-deposit", () => import("./commands/access.js").then((m) => m.maguWithdrawDepositCommand)),
  entry("claim", () => import("./commands/claim.js").then((m) => m.claimCommand)),
  entry("devnet", () => import("./commands/devnet.js").then((m) => m.devnetCommand)),
  entry("node", () => import("./commands/node.js").then((m) => m.nodeCommand)),
  entry("node fsck", () => import("./commands/node-fsck.js").then((m) => m.nodeFsckCommand)),
  entry("secret backup", () => import("./commands/secret.js").then((m) => m.secretBackupCommand)),
  entry("secret restore", () => import("./commands/secret.js").then((m) => m.secretRestoreCommand)),
  entry("keystore new", () => import("./commands/keystore.js").then((m) => m.keystoreNewCommand)),
  entry("validator", () => import("./commands/validator.js").then((m) => m.validatorCommand)),
  entry("put", () => import("./commands/put.js").then((m) => m.putCommand)),
  entry("get", () => import("./commands/get.js").then((m) => m.getCommand)),
  entry("ls", () => import("./commands/ls.js").then((m) => m.lsCommand)),
  entry("share", () => import("./commands/share.js").then((m) => m.shareCommand)),
  entry("serve", () => import("./commands/serve.js").then((m) => m.serveCommand)),
  entry("vectors add", () => import("./commands/vectors.js").then((m) => m.vectorsAddCommand)),
  entry("vectors delete", () => import("./commands/vectors.js").then((m) => m.vectorsDeleteCommand)),
  entry("search", () => import("./commands/vectors.js").then((m) => m.searchCommand)),
];

interface CommandEntry {
  path: string[];
  load: () => Promise<Command>;
}

function entry(words: string, load: () => Promise<Command>): CommandEntry {
  const path = words.split(" ");
  return {
    path,
    load: async () => {
      const command = await load();
      // The table and the module must agree, or dispatch and help would name different commands.
      if (command.path.join(" ") !== words) throw new Error(`muri: the command table names "${words}" but its module defines "${command.path.join(" ")}"`);
      return command;
    },
  };
}

/** Every command's definition (for `muri --help`, `muri GROUP --help` and the tests). */
export async function loadCommands(entries: CommandEntry[] = COMMANDS): Promise<Command[]> {
  return Promise.all(entries.map((e) => e.load()));
}

/** Words that group subcommands (`muri magu create`). */
const GROUPS = new Set(COMMANDS.filter((c) => c.path.length > 1).map((c) => c.path[0]!));

export async function mainHelp(): Promise<string> {
  const commands = await loadCommands();
  const width = Math.max(...COMMANDS.map((c) => c.path.join(" ").length));
  return [
    "muri: stake, create Magus and inspect a MuriData network",
    "",
    "usage: muri <command> [options]",
    "",
    "commands:",
    ...commands.map((c) => `  ${c.path.join(" ").padEnd(width)}  ${c.summary}`),
    "",
    "global options:",
    ...GLOBAL_HELP,
    "",
    "Run muri <command> --help for a command's options. Exit codes: 0 ok, 1 failure, 2 usage error.",
  ].join("\n");
}

async function groupHelp(group: string): Promise<string> {
  const cmds = await loadCommands(COMMANDS.filter((c) => c.path[0] === group));
  const width = Math.max(...cmds.map((c) => c.path.join(" ").length));
  return [
    `usage: muri ${group} <command> [options]`,
    "",
    "commands:",
    ...cmds.map((c) => `  ${c.path.join(" ").padEnd(width)}  ${c.summary}`),
    "",
    `Run muri ${group} <command> --help for its options.`,
  ].join("\n");
}

/** Global options that take a value: the token after them is not a command word. */
const VALUE_OPTIONS = new Set(
  Object.entries(GLOBAL_OPTIONS)
    .filter(([, o]) => o.type === "string")
    .map(([name]) => `--${name}`)
);

/** Indexes of the positional tokens before any "--", skipping global options' values. */
function positionalIndexes(argv: string[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === "--") break;
    if (t.startsWith("-")) {
      if (VALUE_OPTIONS.has(t)) i++;
      continue;
    }
    out.push(i);
  }
  return out;
}

/** The global options alone, to check `muri --json` and the like before printing the help. */
const GLOBAL_ONLY: Command = {
  path: [],
  summary: "",
  usage: "muri <command> [options]",
  help: [],
  options: {},
  signs: false,
  prepare: () => {
    throw new Error("muri: no command to run");
  },
};

interface Outcome {
  code: number;
  /** Set once the options are known, so a failure can honour --json. */
  json: boolean;
}

/** Runs the CLI on `argv` (without node and script). Prints results and errors; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const outcome: Outcome = { code: ExitCode.ok, json: argv.includes("--json") };
  let errorContext: { url?: string; account?: Address } = {};
  try {
    const positions = positionalIndexes(argv);
    const wantsHelp = argv.includes("--help") || argv.includes("-h");
    const first = positions[0] !== undefined ? argv[positions[0]] : undefined;
    if (first === undefined) {
      if (!wantsHelp && argv.length > 0) {
        // options only, e.g. `muri --json`: still validate them for a precise message
        parseCommandArgs(GLOBAL_ONLY, argv);
      }
      process.stdout.write((await mainHelp()) + "\n");
      return ExitCode.ok;
    }
    if (first === "help") {
      process.stdout.write((await mainHelp()) + "\n");
      return ExitCode.ok;
    }
    let words = [first];
    // A word may be both a command and a group (`muri node`, `muri node fsck`): the group's
    // subcommand when the next word names one, else the command itself.
    const alsoCommand = COMMANDS.some((c) => c.path.length === 1 && c.path[0] === first);
    const next = positions[1] !== undefined && positions[1] === positions[0]! + 1 ? argv[positions[1]] : undefined;
    const namesSubcommand = next !== undefined && COMMANDS.some((c) => c.path.join(" ") === `${first} ${next}`);
    if (GROUPS.has(first) && (namesSubcommand || !alsoCommand)) {
      const second = next;
      if (second === undefined) {
        if (wantsHelp) {
          process.stdout.write((await groupHelp(first)) + "\n");
          return ExitCode.ok;
        }
        throw new UsageError(
          `"muri ${first}" needs a command: ${COMMANDS.filter((c) => c.path[0] === first)
            .map((c) => c.path[1])
            .join(" or ")} (see muri ${first} --help)`
        );
      }
      words = [first, second];
    }
    const found = COMMANDS.find((c) => c.path.join(" ") === words.join(" "));
    if (!found) {
      const known = GROUPS.has(first) ? `muri ${first} --help` : "muri --help";
      throw new UsageError(`unknown command "${words.join(" ")}": see ${known}`);
    }
    const command = await found.load();
    const rest = argv.filter((_, i) => !positions.slice(0, words.length).includes(i));
    const args = parseCommandArgs(command, rest);
    outcome.json = args.flag("json");
    if (args.flag("help")) {
      process.stdout.write(commandHelp(command) + "\n");
      return ExitCode.ok;
    }
    // devnet and node run without a connected context and print their own output.
    if (isLocalCommand(command)) return await command.runLocal(args, outcome.json);
    const execute = command.prepare(args);
    const target = await resolveTarget(args);
    errorContext = { url: target.rpcUrl };
    const ctx = await connect(target, { signs: command.signs, json: outcome.json });
    if (ctx.signer) errorContext.account = ctx.signer.account;
    const result = await execute(ctx);
    printResult(result, outcome.json);
    return ExitCode.ok;
  } catch (err) {
    return reportError(err, outcome.json, errorContext);
  }
}

/** One line on stderr (and with --json an error object on stdout); the stack only with MURI_DEBUG=1. */
export function reportError(err: unknown, json: boolean, context: { url?: string; account?: Address } = {}): number {
  const usage = err instanceof UsageError;
  let line: string;
  try {
    line = usage ? (err as Error).message : describeError(err, context);
  } catch {
    line = String(err);
  }
  line =
    line
      .split("\n")
      .map((s) => s.trim())
      .filter(Boolean)[0] ?? "unknown error";
  const code = (err as { code?: unknown })?.code;
  const errorCode = typeof code === "string" ? code : toChainErrorSafe(err, context) ?? "ERR_UNKNOWN";
  if (process.env.MURI_DEBUG === "1" && err instanceof Error && err.stack) process.stderr.write(err.stack + "\n");
  process.stderr.write(`muri: ${line}\n`);
  if (json) process.stdout.write(toJson({ error: { code: errorCode, message: line } }) + "\n");
  return usage ? ExitCode.usage : ExitCode.failure;
}

function toChainErrorSafe(err: unknown, context: { url?: string }): string | undefined {
  try {
    return toChainError(err, context)?.code;
  } catch {
    return undefined;
  }
}

/** The process entry: runs `argv`, then exits with its code (bin/muri.js calls this). */
export async function main(argv: string[] = process.argv.slice(2)): Promise<never> {
  const fatal = (err: unknown) => {
    process.exitCode = reportError(err, argv.includes("--json"));
    process.exit();
  };
  process.on("uncaughtException", fatal);
  process.on("unhandledRejection", fatal);
  const code = await run(argv);
  // Flush stdout, then exit even if a poller or socket would keep the loop alive.
  return new Promise<never>(() => process.stdout.write("", () => process.exit(code)));
}

// `node --import tsx agents/cli/main.ts ...` runs it directly too.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
