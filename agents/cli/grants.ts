/**
 * `--grant TOKEN|FILE`: grant tokens for private Magus the client does not own (`muri magu grant`
 * prints them), read by `muri get`, `muri search` and the storage client.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import type { CommandArgs } from "./command.js";

/** The grant tokens `--grant` gives: a token, or a file holding one per line. */
export function grantTokens(args: CommandArgs): string[] {
  const value = args.string("grant");
  if (value === undefined) return [];
  if (!value.startsWith("muri-grant-") && existsSync(value) && statSync(value).isFile()) {
    return readFileSync(value, "utf8").split(/\s+/).filter((t) => t.length > 0);
  }
  return [value];
}

export const GRANT_HELP = "  --grant TOKEN|FILE   a grant from the Magu's owner (muri magu grant prints it), for a private Magu you do not own";
