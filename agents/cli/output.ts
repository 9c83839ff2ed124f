/** Printing results: one JSON object (bigints as decimal strings) or lines for people. */
import type { CommandResult } from "./command.js";

/** JSON.stringify with bigints as decimal strings. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), indent);
}

export function printResult(result: CommandResult, json: boolean): void {
  if (json) process.stdout.write(toJson(result.json) + "\n");
  else if (result.text.length) process.stdout.write(result.text.join("\n") + "\n");
}
