/**
 * `muri get CID -o FILE [--magu ID]`: fetches a stored file back (rebuilding lost shards from
 * parity). Without --magu the Magu is the one this client's record of the network lists the CID in.
 * A directory (`muri put DIR`) is restored into `-o DIR`, or one entry of it with `--path`.
 * `muri get SHARE_TOKEN -o FILE`: a file (or directory) another account shared with this one (`muri share`).
 */
import { statSync } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { CID } from "multiformats/cid";
import { getAddress } from "viem";
import type { FileKey } from "../../data/crypto.js";
import { decodeShareToken, isShareToken, unwrapFileKey, type Share } from "../../data/share.js";
import type { Command, CommandArgs, Options } from "../command.js";
import { CLIENT_DIR_HELP, clientDir, startClient } from "../devnet/storage-client.js";
import { humanBytes, startProgress } from "../devnet/progress.js";
import { signerOf, type CliContext } from "../context.js";
import { CliError, UsageError } from "../errors.js";
import { formatMuri, parseInteger, parseMuri } from "../values.js";
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

/**
 * The file key a share token carries, opened with this command's key: refused (naming the account
 * it was made for) before anything is fetched when the token is for another account or chain.
 */
function openShare(ctx: CliContext, share: Share): FileKey {
  if (share.chainId !== ctx.deployment.chainId) {
    throw new CliError("ERR_SHARE_OTHER_CHAIN", `the share token is for chain ${share.chainId}, but this deployment is chain ${ctx.deployment.chainId}: use the sharer's network (--deployment, --rpc)`);
  }
  const { account, publicKey, ecdh } = signerOf(ctx);
  if (getAddress(share.to) !== account) {
    throw new CliError("ERR_SHARE_NOT_FOR_YOU", `the share token was made for account ${getAddress(share.to)}, and this key is ${account}: run muri get with that account's key, or ask the sharer for a token to yours (muri account prints your public key)`);
  }
  return unwrapFileKey(share, publicKey, ecdh);
}

export const getCommand: Command = {
  path: ["get"],
  summary: "fetch a stored file (or directory) by its manifest CID, byte for byte",
  usage: "muri get CID|SHARE_TOKEN -o FILE|DIR [--path PATH] [--force] [--magu ID] [--max-read-price MURI]",
  help: [
    "  -o, --output FILE    where to write the file (written to FILE.<pid>.tmp, renamed once complete); a directory: the directory to restore it into (new or empty)",
    "  --path PATH          a directory: fetch only this entry (a file to -o FILE, a subdirectory to -o DIR), and only the fragments holding it",
    "  --force              a directory: write into a non-empty -o DIR (or over -o FILE with --path), replacing files of the same paths",
    "  --magu ID            the Magu holding it (default: the one this client directory recorded it in)",
    "  SHARE_TOKEN          what muri share printed for your account: names the file and carries its key (and a read grant)",
    "  --max-read-price M   a Magu that charges for reads (muri magu read-price): the most you pay per fragment, in MURI (default: the chain's cap, x2 the base price; each fragment costs what the chain quotes for it); paid from your deposit (muri magu deposit ID MURI)",
    GRANT_HELP,
    CLIENT_DIR_HELP,
  ],
  options: {
    output: { type: "string", short: "o" },
    path: { type: "string" },
    force: { type: "boolean" },
    "max-read-price": { type: "string" },
    ...STORED_REF_OPTIONS,
  },
  positionals: ["CID"],
  signs: true,
  prepare(args) {
    // A share token (muri share) names the Magu and the manifest, and carries the file's key.
    const raw = args.positionals[0]!;
    const share = isShareToken(raw) ? decodeShareToken(raw) : undefined;
    if (share !== undefined && args.string("magu") !== undefined) throw new UsageError("--magu: a share token names its Magu already; leave --magu out");
    const { manifestCid, givenMagu } = share !== undefined ? { manifestCid: share.manifestCid, givenMagu: share.maguId } : parseStoredRef(args);
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
    const maxArg = args.string("max-read-price");
    const maxReadPrice = maxArg === undefined ? undefined : parseMuri(maxArg, "--max-read-price", true);

    return async (ctx) => {
      const fileKey = share === undefined ? undefined : openShare(ctx, share);
      if (givenMagu !== undefined) await readMagu(ctx, givenMagu); // "no Magu ID" before any p2p work
      const client = await startClient(args, ctx, dir, undefined, share?.grant === undefined ? [] : [share.grant], maxReadPrice);
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
        const result = await client.get({ maguId, manifestCid }, out, { ...(path !== undefined ? { path } : {}), force, ...(fileKey !== undefined ? { fileKey } : {}) });
        const e = result.entries;
        const paid = client.readsPaid(maguId);
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
            readsPaid: paid,
          },
          text: [
            `wrote ${out} (${e !== undefined && (path === undefined || e.directories + e.symlinks > 0 || e.files !== 1) ? `${e.files} files, ${e.directories} directories${e.symlinks > 0 ? `, ${e.symlinks} symlinks` : ""}, ` : ""}${humanBytes(result.fileSize)}) from Magu ${maguId}: ${result.fetched} shards fetched` +
              (result.failed ? `, ${result.failed} rebuilt from parity (unreachable: ${result.unreachable.join(", ") || "none"})` : ""),
            ...(paid.fragments > 0n ? [`paid ${formatMuri(paid.wei)} MURI for ${paid.fragments} fragments read, from your deposit in Magu ${maguId}`] : []),
          ],
        };
      } finally {
        progress.done();
        await client.stop();
      }
    };
  },
};
