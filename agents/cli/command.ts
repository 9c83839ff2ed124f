/**
 * What a command is: its name, help, options (node:util parseArgs config) and `run`. Global options
 * are shared by every command and parsed together with the command's own, so they may come
 * anywhere on the line.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { CliContext } from "./context.js";
import { UsageError } from "./errors.js";

/** `bare`: a string option that may be given without a value, meaning `--name=<bare>` (`--compress` is `--compress=auto`). */
export type OptionSpec = { type: "string" | "boolean"; multiple?: boolean; short?: string; bare?: string };
export type Options = Record<string, OptionSpec>;
export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What a command hands back: one JSON object for `--json`, lines for people. */
export interface CommandResult {
  json: Record<string, unknown>;
  text: string[];
}

export interface Command {
  /** Words after `muri`: ["stake"], ["magu", "create"]. */
  path: string[];
  summary: string;
  usage: string;
  /** Option lines for `--help`, already formatted. */
  help: string[];
  options: Options;
  /** Names of positional arguments, in order (all required). */
  positionals?: string[];
  /** Needs a signing key (--key / MURI_KEY / the devnet's clientKey). */
  signs: boolean;
  /**
   * Validates the options (throwing `UsageError`s naming them) before any file is read or request
   * made, and returns what runs against the chain.
   */
  prepare(args: CommandArgs): (ctx: CliContext) => Promise<CommandResult>;
}

/** Parsed options and positionals of one command, with typed accessors that name the option. */
export class CommandArgs {
  constructor(readonly command: string, readonly values: ParsedValues, readonly positionals: string[]) {}

  string(name: string): string | undefined {
    const v = this.values[name];
    if (Array.isArray(v)) return v.length ? String(v[v.length - 1]) : undefined;
    return typeof v === "string" ? v : undefined;
  }

  required(name: string, hint: string): string {
    const v = this.string(name);
    if (v === undefined || v.trim() === "") {
      throw new UsageError(
        `--${name} is required by "muri ${this.command}": ${hint} (see muri ${this.command} --help)`
      );
    }
    return v;
  }

  strings(name: string): string[] {
    const v = this.values[name];
    if (v === undefined) return [];
    return (Array.isArray(v) ? v : [v]).map(String);
  }

  flag(name: string): boolean {
    return this.values[name] === true;
  }
}

/** Global options, valid with every command. */
export const GLOBAL_OPTIONS: Options = {
  devnet: { type: "string" },
  deployment: { type: "string" },
  rpc: { type: "string" },
  key: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
};

export const GLOBAL_HELP = [
  "  --devnet DIR         devnet directory: reads DIR/devnet.json (or DIR/deployment.json)",
  "  --deployment FILE    deployment file (default: $MURI_DEPLOYMENT_FILE, else deployments/31337.json)",
  "  --rpc URL            JSON-RPC endpoint, or several separated by commas, tried in order (default: $MURI_RPC_URL, else the deployment's rpcUrl)",
  "  --key HEX            signing key (default: $MURI_KEY, else the devnet's clientKey)",
  "  --json               print one JSON object on stdout (amounts in base units as decimal strings)",
  "  -h, --help           show help",
];

/** Parses `argv` (after the command words) against the command's and the global options. */
export function parseCommandArgs(command: Command, argv: string[]): CommandArgs {
  const name = command.path.join(" ");
  // parseArgs has no optional values: a bare `--name` of an option with a `bare` value becomes `--name=<bare>`.
  const bare = new Map<string, string>(Object.entries(command.options).flatMap(([n, spec]) => (spec.bare !== undefined ? [[`--${n}`, `--${n}=${spec.bare}`] as [string, string]] : [])));
  const config: ParseArgsConfig = {
    args: argv.map((a) => bare.get(a) ?? a),
    options: { ...GLOBAL_OPTIONS, ...command.options },
    allowPositionals: true,
    strict: true,
  };
  let parsed: { values: ParsedValues; positionals: string[] };
  try {
    parsed = parseArgs(config) as { values: ParsedValues; positionals: string[] };
  } catch (err) {
    throw usageFromParseArgs(err, name);
  }
  const expected = command.positionals ?? [];
  if (!parsed.values.help) {
    if (parsed.positionals.length > expected.length) {
      throw new UsageError(
        `unexpected argument "${parsed.positionals[expected.length]}" for "muri ${name}" (see muri ${name} --help)`
      );
    }
    if (parsed.positionals.length < expected.length) {
      throw new UsageError(`${expected[parsed.positionals.length]} is required: usage: ${command.usage}`);
    }
  }
  return new CommandArgs(name, parsed.values, parsed.positionals);
}

/** parseArgs' TypeErrors -> one-line usage errors that name the option. */
export function usageFromParseArgs(err: unknown, command: string): Error {
  const e = err as { code?: string; message?: string };
  if (typeof e.code !== "string" || !e.code.startsWith("ERR_PARSE_ARGS")) return err as Error;
  const option = /'(-[^' ]+)/.exec(e.message ?? "")?.[1];
  const see = command ? `see muri ${command} --help` : "see muri --help";
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    return new UsageError(`unknown option ${option ?? "(?)"}${command ? ` for "muri ${command}"` : ""} (${see})`);
  }
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (/argument missing/.test(e.message ?? "")) return new UsageError(`${option ?? "option"} needs a value (${see})`);
    return new UsageError(`${option ?? "option"} takes no value (${see})`);
  }
  return new UsageError(`${(e.message ?? String(err)).split("\n")[0]} (${see})`);
}

/** Help text of one command. */
export function commandHelp(command: Command): string {
  return [
    `muri ${command.path.join(" ")}: ${command.summary}`,
    "",
    `usage: ${command.usage}`,
    ...(command.help.length ? ["", "options:", ...command.help] : []),
    "",
    "global options:",
    ...GLOBAL_HELP,
  ].join("\n");
}
