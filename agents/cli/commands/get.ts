/**
 * `muri get CID -o FILE [--magu ID]`: fetches a stored file back (rebuilding lost shards from
 * parity). Without --magu the Magu is the one this client's record of the network lists the CID in.
 * A directory (`muri put DIR`) is restored into `-o DIR`, or one entry of it with `--path`.
 */
import { statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { CID } from "multiformats/cid";
import type { Command, CommandArgs, Options } from "../command.js";
import { CLIENT_DIR_HELP, clientDir, startClient } from "../devnet/storage-client.js";
import { humanBytes, startProgress } from "../devnet/progress.js";
import { UsageError } from "../errors.js";
import { parseInteger } from "../values.js";
import { readMagu } from "./magu.js";
import { GRANT_HELP } from "../grants.js";

/** The options `muri get` and `muri ls` share: where the file is and how this client may read it. */
export const STORED_REF_OPTIONS = {
  magu: { type: "string" },
  grant: { type: "string" },
  "client-dir": { type: "string" },
} as const satisfies Options;

/** The CID positional and `--magu` of `muri get` and `muri ls`, checked at the edge. */
export function parseStoredRef(args: CommandArgs): { manifestCid: CID; givenMagu: bigint | undefined } {
  const raw = args.positionals[0]!;
  let manifestCid: CID;
  try {
    manifestCid = CID.parse(raw.trim());
  } catch {
    throw new UsageError(`CID: "${raw}" is not a valid CID (muri put prints the manifest CID, e.g. bagu…)`);
  }
  const maguArg = args.string("magu");
  return { manifestCid, givenMagu: maguArg === undefined ? undefined : parseInteger(maguArg, "--magu") };
}

export const getCommand: Command = {
  path: ["get"],
  summary: "fetch a stored file (or directory) by its manifest CID, byte for byte",
  usage: "muri get CID -o FILE|DIR [--path PATH] [--force] [--magu ID]",
  help: [
    "  -o, --output FILE    where to write the file (written to FILE.<pid>.tmp, renamed once complete); a directory: the directory to restore it into (new or empty)",
    "  --path PATH          a directory: fetch only this entry (a file to -o FILE, a subdirectory to -o DIR), and only the fragments holding it",
    "  --force              a directory: write into a non-empty -o DIR (or over -o FILE with --path), replacing files of the same paths",
    "  --magu ID            the Magu holding it (default: the one this client directory recorded it in)",
    GRANT_HELP,
    CLIENT_DIR_HELP,
  ],
  options: {
    output: { type: "string", short: "o" },
    path: { type: "string" },
    force: { type: "boolean" },
    ...STORED_REF_OPTIONS,
  },
  positionals: ["CID"],
  signs: true,
  prepare(args) {
    const { manifestCid, givenMagu } = parseStoredRef(args);
    const out = resolve(args.required("output", "the file to write (-o FILE)"));
    let parentOk: boolean;
    try {
      parentOk = statSync(dirname(out)).isDirectory();
    } catch {
      parentOk = false;
    }
    if (!parentOk) throw new UsageError(`--output: directory ${dirname(out)} does not exist`);
    const path = args.string("path");
    if (path !== undefined && (path.trim() === "" || path.startsWith("/"))) throw new UsageError(`--path: "${path}" must be a path inside the directory, e.g. sub/file.txt (muri ls CID lists them)`);
    const force = args.flag("force");
    const dir = clientDir(args);

    return async (ctx) => {
      if (givenMagu !== undefined) await readMagu(ctx, givenMagu); // "no Magu ID" before any p2p work
      const client = await startClient(args, ctx, dir);
      let maguId: bigint;
      try {
        maguId = givenMagu ?? (await client.locate(manifestCid));
      } catch (err) {
        await client.stop();
        throw err;
      }
      const tmp = `${out}.${process.pid}.tmp`;
      const progress = startProgress("get", {
        poll: async () => `${humanBytes((await stat(tmp).catch(() => ({ size: 0 }))).size)} written`,
      });
      progress.update("fetching the manifest");
      try {
        const result = await client.get({ maguId, manifestCid }, out, { ...(path !== undefined ? { path } : {}), force });
        const e = result.entries;
        return {
          json: {
            output: out,
            maguId,
            manifestCid: manifestCid.toString(),
            kind: result.kind,
            ...(path !== undefined ? { path } : {}),
            ...(e !== undefined ? { entries: e } : {}),
            fileSize: result.fileSize,
            fetched: result.fetched,
            failed: result.failed,
            unreachable: result.unreachable,
          },
          text: [
            `wrote ${out} (${e !== undefined && (path === undefined || e.directories + e.symlinks > 0 || e.files !== 1) ? `${e.files} files, ${e.directories} directories${e.symlinks > 0 ? `, ${e.symlinks} symlinks` : ""}, ` : ""}${humanBytes(result.fileSize)}) from Magu ${maguId}: ${result.fetched} shards fetched` +
              (result.failed ? `, ${result.failed} rebuilt from parity (unreachable: ${result.unreachable.join(", ") || "none"})` : ""),
          ],
        };
      } finally {
        progress.done();
        await client.stop();
      }
    };
  },
};
