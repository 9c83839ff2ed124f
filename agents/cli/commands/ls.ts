/**
 * `muri ls CID [--magu ID]`: lists a stored directory (`muri put DIR`): every entry's mode, size and
 * path, read from the directory's encrypted nodes (only the fragments holding them are fetched).
 */
import type { TreeEntry } from "../../data/directory.js";
import type { Command } from "../command.js";
import { CLIENT_DIR_HELP, clientDir, startClient } from "../devnet/storage-client.js";
import { GRANT_HELP } from "../grants.js";
import { STORED_REF_OPTIONS, parseStoredRef } from "./get.js";
import { readMagu } from "./magu.js";
import { listingJson } from "../../roles/client/folder.js";

/** `drwxr-xr-x` for a kind and permission bits. */
export function modeString(kind: TreeEntry["kind"], mode: number): string {
  const bits = "rwxrwxrwx".split("").map((c, i) => ((mode >> (8 - i)) & 1 ? c : "-")).join("");
  return (kind === "dir" ? "d" : kind === "symlink" ? "l" : "-") + bits;
}

export const lsCommand: Command = {
  path: ["ls"],
  summary: "list a stored directory: paths, sizes and modes",
  usage: "muri ls CID [--magu ID]",
  help: ["  --magu ID            the Magu holding it (default: the one this client directory recorded it in)", GRANT_HELP, CLIENT_DIR_HELP],
  options: { ...STORED_REF_OPTIONS },
  positionals: ["CID"],
  signs: true,
  prepare(args) {
    const { manifestCid, givenMagu } = parseStoredRef(args);
    const dir = clientDir(args);
    return async (ctx) => {
      if (givenMagu !== undefined) await readMagu(ctx, givenMagu);
      const client = await startClient(args, ctx, dir);
      try {
        const maguId = givenMagu ?? (await client.locate(manifestCid));
        const tree = await client.list({ maguId, manifestCid });
        const entries = listingJson(tree);
        const width = Math.max(1, ...tree.map((e) => (e.kind === "file" ? String(e.size).length : 1)));
        return {
          json: { maguId, manifestCid: manifestCid.toString(), entries },
          text: tree.map((e) => {
            if (e.kind === "symlink") return `${modeString("symlink", 0o777)} ${"-".padStart(width)}  ${e.path} -> ${e.target}`;
            return `${modeString(e.kind, e.mode)} ${(e.kind === "file" ? String(e.size) : "-").padStart(width)}  ${e.path}${e.kind === "dir" ? "/" : ""}`;
          }),
        };
      } finally {
        await client.stop();
      }
    };
  },
};
