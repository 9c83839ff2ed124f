/**
 * `muri get CID -o FILE [--magu ID]`: fetches a stored file back (rebuilding lost shards from
 * parity). Without --magu the Magu is the one this client's record of the network lists the CID in.
 */
import { statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { CID } from "multiformats/cid";
import type { Command } from "../command.js";
import { CLIENT_DIR_HELP, clientDir, startClient } from "../devnet/storage-client.js";
import { humanBytes, startProgress } from "../devnet/progress.js";
import { UsageError } from "../errors.js";
import { parseInteger } from "../values.js";
import { readMagu } from "./magu.js";
import { GRANT_HELP } from "../grants.js";

export const getCommand: Command = {
  path: ["get"],
  summary: "fetch a stored file by its manifest CID, byte for byte",
  usage: "muri get CID -o FILE [--magu ID]",
  help: [
    "  -o, --output FILE    where to write the file (written to FILE.<pid>.tmp, renamed once complete)",
    "  --magu ID            the Magu holding it (default: the one this client directory recorded it in)",
    GRANT_HELP,
    CLIENT_DIR_HELP,
  ],
  options: {
    output: { type: "string", short: "o" },
    magu: { type: "string" },
    grant: { type: "string" },
    "client-dir": { type: "string" },
  },
  positionals: ["CID"],
  signs: true,
  prepare(args) {
    const raw = args.positionals[0]!;
    let manifestCid: CID;
    try {
      manifestCid = CID.parse(raw.trim());
    } catch {
      throw new UsageError(`CID: "${raw}" is not a valid CID (muri put prints the manifest CID, e.g. bafk…)`);
    }
    const maguArg = args.string("magu");
    const givenMagu = maguArg === undefined ? undefined : parseInteger(maguArg, "--magu");
    const out = resolve(args.required("output", "the file to write (-o FILE)"));
    let parentOk: boolean;
    try {
      parentOk = statSync(dirname(out)).isDirectory();
    } catch {
      parentOk = false;
    }
    if (!parentOk) throw new UsageError(`--output: directory ${dirname(out)} does not exist`);
    try {
      if (statSync(out).isDirectory()) throw new UsageError(`--output: ${out} is a directory`);
    } catch (err) {
      if (err instanceof UsageError) throw err;
    }
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
        poll: async () => `${humanBytes((await stat(tmp)).size)} written`,
      });
      progress.update("fetching the manifest");
      try {
        const result = await client.get({ maguId, manifestCid }, out);
        return {
          json: {
            output: out,
            maguId,
            manifestCid: manifestCid.toString(),
            fileSize: result.fileSize,
            fetched: result.fetched,
            failed: result.failed,
            unreachable: result.unreachable,
          },
          text: [
            `wrote ${out} (${humanBytes(result.fileSize)}) from Magu ${maguId}: ${result.fetched} shards fetched` +
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
